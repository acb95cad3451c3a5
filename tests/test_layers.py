"""The import graph of ``src/mattekit`` points one way (issue 14 item 4; docs/architecture.md).

An AST scan of every module collects its imports, including those inside functions (mattekit
imports lazily, but a lazy import is still an arrow). The graph must have no cycle, no module may
import from a layer above its own, and no CLI verb but ``serve`` may reach ``mattekit.server``.
Two tables load modules by name on demand, the verbs (``cli/main.py``) and the model backends
and builders (``models/registry.py``); those names are not arrows, so subprocesses run
``python -m mattekit`` and check which modules were really loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "mattekit"

# Bottom first. A module belongs to the layer of the longest name below that matches it (a name
# matches itself and its sub-modules; "mattekit" alone is the package's face, __init__.py) and may
# import only from its own layer or lower ones. Within a layer any direction is allowed, as long
# as the module graph has no cycle.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "extras", "home"),
    ("params", "metrics"),
    ("io",),
    ("models", "compose"),
    ("matte", "plan"),  # a still's matte; the output plan (outputs, type, background)
    ("classical",),
    ("pipeline",),  # one video, one image, and the record of a file's outcome
    ("cluster",),  # the Ray executor of a folder run
    ("batch",),  # folder runs, on this machine or through cluster/
    ("",),  # the package's face: mattekit/__init__.py
    ("evaluation", "compare_models", "keying", "train", "demo"),
    ("server",),
    ("cli",),
    ("__main__",),
]


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    modules = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:  # "from a.b import c": c is a name of a.b
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                add(f"{base}.{alias.name}")
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of the longest name matching ``module``."""
    rest = module.removeprefix(PACKAGE).removeprefix(".")
    best, best_length = None, -1
    for index, names in enumerate(LAYERS):
        for prefix in names:
            if (rest == prefix or rest.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
            if prefix == "" and rest == "":
                best, best_length = index, 0
    if best is None:
        raise AssertionError(
            f"{module} is in no layer: add it to LAYERS in tests/test_layers.py "
            f"and to the layer list in docs/architecture.md"
        )
    return best


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Modules loaded when ``start`` runs all its code: its imports, theirs, and the packages
    (``__init__``) Python runs on the way to each."""
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph.get(module, ()))
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
    return seen


def test_the_scan_sees_lazy_imports():
    graph = import_graph()
    # lazy: inside cli/serve_cmd.py's function; from a package: "from mattekit.server import ..."
    assert "mattekit.server" in graph["mattekit.cli.serve_cmd"]
    assert "mattekit.server.db" in graph["mattekit.cli.serve_cmd"]
    # a small graph with a cycle and one without
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_upward_import():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_layer_check_would_catch_an_upward_import():
    assert layer_of("mattekit.io.image") < layer_of("mattekit.pipeline.video") < layer_of("mattekit.cluster.work")
    assert layer_of("mattekit.cluster.executor") < layer_of("mattekit.batch") < layer_of("mattekit.cli.main")
    assert layer_of("mattekit.pipeline.outcome") < layer_of("mattekit.cluster.executor")


def test_no_verb_but_serve_reaches_the_server():
    from mattekit.cli.main import COMMANDS

    graph = import_graph()
    for verb, (module, _, _) in sorted(COMMANDS.items()):
        loaded = reachable(graph, module) | reachable(graph, "mattekit.__main__")
        server = sorted(m for m in loaded if m == "mattekit.server" or m.startswith("mattekit.server."))
        if verb == "serve":
            assert server, "the scan must see serve reach the server (else this test proves nothing)"
        else:
            assert not server, f"mattekit {verb} reaches {', '.join(server)}"


def _loaded_by(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m mattekit ARGS``; return it and the modules it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mattekit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    names = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return proc, names


@pytest.mark.parametrize(
    "args",
    [
        ["models", "list"],
        ["video", "--help"],
        ["eval", "--help"],
        ["key", "--help"],
        ["trimap", "--help"],
        ["demo", "--help"],
    ],
)
def test_python_m_mattekit_imports_nothing_of_the_server(args, tmp_path):
    proc, names = _loaded_by(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mattekit.cli.main" in names  # the import log was read
    assert not {n for n in names if n.startswith(("mattekit.server", "fastapi", "uvicorn", "starlette"))}


def test_matting_an_image_from_the_command_line_imports_nothing_of_the_server(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    proc, names = _loaded_by(["image", "photo.png", "--model", "fake", "-o", "out", "--quiet"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "photo.png").is_file()
    assert "mattekit.pipeline.image" in names
    assert not {n for n in names if n.startswith(("mattekit.server", "fastapi", "uvicorn", "starlette"))}


def test_the_import_log_shows_the_server_when_it_is_loaded(tmp_path):
    """The same reading of ``-X importtime`` sees the server when it is loaded (so the checks
    above can fail)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import mattekit.server"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mattekit.server" in {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def test_evaluation_reads_trimaps_without_loading_pymatting(tmp_path):
    """``evaluate_images`` with trimaps runs without importing pymatting (and numba, its
    compiler): trimaps are read by ``io/trimap.py``, not through ``classical/``."""
    rng = np.random.default_rng(1)
    for folder in ("gt", "pred", "trimap"):
        (tmp_path / folder).mkdir()
    gt = rng.random((24, 32))
    Image.fromarray((gt * 255).astype(np.uint8)).save(tmp_path / "gt" / "a.png")
    Image.fromarray((np.clip(gt + 0.1, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "pred" / "a.png")
    trimap = np.full((24, 32), 128, np.uint8)
    trimap[:4] = 0
    trimap[-4:] = 255
    Image.fromarray(trimap).save(tmp_path / "trimap" / "a.png")
    code = (
        "import sys\n"
        "from mattekit.evaluation import evaluate_images\n"
        "table = evaluate_images('pred', 'gt', 'trimap')\n"
        "print(len(table.rows), table.rows[0][1]['SAD'] > 0, 'pymatting' in sys.modules, 'numba' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["1", "True", "False", "False"]
