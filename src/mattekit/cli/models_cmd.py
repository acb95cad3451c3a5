"""``mattekit models``: list the registered models and fetch them into the cache."""

from __future__ import annotations

import click

from mattekit.models.fetch import cache_dir, ensure, is_cached
from mattekit.models.registry import DEFAULT_MODEL, MODELS


@click.group()
def models() -> None:
    """List and fetch the matting models."""


@models.command("list")
def list_models() -> None:
    """Show every registered model, whether it is cached, and the cache folder."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"models (cache: {cache_dir()})")
    for col in ("name", "cached", "licence", "description"):
        table.add_column(col)
    for name, spec in MODELS.items():
        label = name + (" (default)" if name == DEFAULT_MODEL else "")
        table.add_row(label, "yes" if is_cached(name) else "no", spec.license, spec.description)
    Console().print(table)


@models.command("fetch")
@click.argument("name", required=False, default=DEFAULT_MODEL)
@click.option("--force", is_flag=True, help="Download again even if a verified copy is cached.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def fetch_model(name: str, force: bool, quiet: bool) -> None:
    """Download model NAME (default rvm-mobilenetv3) into the cache and verify its SHA-256."""
    path, downloaded = ensure(name, force=force)
    if not quiet:
        click.echo(f"{name}: {'fetched' if downloaded else 'already cached'} at {path}")


@models.command("quantize")
@click.argument("name", required=False, default=DEFAULT_MODEL)
@click.option("--force", is_flag=True, help="Rebuild even if an up-to-date INT8 file is cached.")
def quantize_model(name: str, force: bool) -> None:
    """Build the INT8 copy of model NAME in the model cache (what --precision int8 loads)."""
    from mattekit.models.fetch import resolve_model_path
    from mattekit.models.quantize import build_int8

    click.echo(f"{name}: int8 at {build_int8(resolve_model_path(name), force=force)}")
