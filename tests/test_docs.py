"""The docs index links every page, every relative link in the docs resolves, and the layer
table of docs/architecture.md is the one tests/test_layers.py enforces (issue 14 item 7)."""

from __future__ import annotations

import re
from pathlib import Path

from test_layers import LAYERS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def links(page: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(page.read_text(encoding="utf-8"))]


def test_the_index_links_every_page():
    linked = {(DOCS / target).resolve() for target in links(DOCS / "README.md")}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.name != "README.md" and p.resolve() not in linked]
    assert not missing, f"docs/README.md does not link: {', '.join(missing)}"


def test_every_relative_link_resolves():
    broken = []
    for page in [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]:
        for target in links(page):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same page
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links: " + "; ".join(broken)


def test_the_architecture_page_lists_the_layers_the_test_enforces():
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", text, flags=re.MULTILINE)
    documented = [tuple(re.findall(r"`([\w.]+)`", cells.split(" (")[0])) for _, cells in rows]
    expected = [tuple("mattekit" if name == "" else name for name in layer) for layer in LAYERS]
    assert documented == expected
