"""``mattekit eval``: compare predicted alpha mattes with ground truth and print a metric table, or
run models on a folder of images and compare them (``--model a,b --images DIR``)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from mattekit.cli.options import overwrite_option
from mattekit.errors import OutputError
from mattekit.io.atomic import check_outputs


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.3e}"
    return f"{v:#.4g}" if abs(v) < 10 else f"{v:.2f}"


def render(table, title: str, with_mean: bool = True) -> Table:
    """A rich table: one row per item, then the mean (when ``with_mean``)."""
    t = Table(title=title, title_justify="left")
    t.add_column("name", style="bold")
    for m in table.metrics:
        t.add_column(table.labels[m], justify="right")
    for name, row in table.rows:
        t.add_row(name, *(_fmt(row[m]) for m in table.metrics))
    if with_mean:
        t.add_section()
        mean = table.mean
        t.add_row("mean", *(_fmt(mean[m]) for m in table.metrics), style="bold")
    return t


@click.command("eval")
@click.option(
    "--pred",
    "pred",
    type=click.Path(path_type=Path),
    help="Folder of predicted alpha mattes (with --video: of clips, or one clip).",
)
@click.option(
    "--model",
    "models",
    metavar="NAME[,NAME...]",
    help="Instead of --pred: run these models (names or ONNX paths, comma-separated) on --images "
    "and print one row per model (mean metrics and seconds per image).",
)
@click.option(
    "--images",
    "images",
    type=click.Path(path_type=Path),
    help="With --model: folder of input images, matched to --gt by file name.",
)
@click.option(
    "--gt",
    "gt",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of ground-truth alpha mattes, matched to --pred by file name.",
)
@click.option(
    "--trimap",
    "trimap",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of trimaps (0/128/255): measure only their unknown region.",
)
@click.option("--video", is_flag=True, help="Items are clips: add dtSSD and MESSDdt.")
@click.option(
    "--convention",
    type=click.Choice(["rvm", "paddleseg"]),
    default="rvm",
    show_default=True,
    help="Scale factors of the Robust Video Matting or the PaddleSeg tables.",
)
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="Also write the table as CSV.")
@click.option(
    "--json", "json_path", type=click.Path(path_type=Path), default=None, help="Also write the table as JSON."
)
@overwrite_option
def eval(pred, models, images, gt, trimap, video, convention, csv_path, json_path, overwrite):
    """Compute SAD, MSE, MAD, Grad, Conn (and dtSSD, MESSDdt with --video) of predictions against
    ground truth, per item and on average; or, with --model and --images, run each model and
    compare them."""
    from mattekit.evaluation import evaluate_images, evaluate_videos

    if (pred is None) == (models is None):
        raise click.UsageError("give either --pred (predicted mattes) or --model with --images")
    if models is not None and (images is None or video):
        raise click.UsageError("--model runs models on still images: give --images DIR (and no --video)")
    inputs = [p for p in (pred, images, gt, trimap) if p is not None]
    reports = [out for out in (csv_path, json_path) if out is not None]
    for out in reports:
        resolved = out.expanduser().resolve()
        for item in inputs:
            item = item.expanduser().resolve()
            if item in resolved.parents:
                raise OutputError(out, "report would be written inside an input folder; choose another path")
    check_outputs(reports, inputs, overwrite)
    err = Console(stderr=True)
    if models is not None:
        _compare(models, images, gt, trimap, convention, csv_path, json_path, err)
        return
    run = evaluate_videos if video else evaluate_images
    with err.status("evaluating...") as status:
        table = run(
            pred, gt, trimap, convention, progress=lambda done, total: status.update(f"evaluating {done}/{total}")
        )
    if table.unmatched:
        err.print(
            f"[yellow]note:[/] {len(table.unmatched)} prediction(s) with no ground truth ignored: "
            + ", ".join(table.unmatched[:5])
            + (" ..." if len(table.unmatched) > 5 else "")
        )
    where = " over the trimaps' unknown region" if trimap else ""
    title = f"{'Video' if video else 'Image'} matting metrics, {convention} convention{where} ({len(table.rows)} items)"
    Console(width=200 if video else 140).print(render(table, title))
    if csv_path:
        table.write_csv(csv_path.expanduser())
    if json_path:
        table.write_json(json_path.expanduser())


def _compare(
    models: str,
    images: Path,
    gt: Path,
    trimap: Path | None,
    convention: str,
    csv_path: Path | None,
    json_path: Path | None,
    err: Console,
) -> None:
    from mattekit.compare_models import compare_models

    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise click.UsageError("--model needs at least one model name")
    with err.status("loading models...") as status:
        table = compare_models(
            names,
            images,
            gt,
            trimap,
            convention,
            progress=lambda model, done, total: status.update(f"{model}: {done}/{total}"),
        )
    where = " over the trimaps' unknown region" if trimap else ", whole image"
    title = f"Models on {images}, {convention} convention{where} (mean over the images)"
    Console(width=140).print(render(table, title, with_mean=False))
    if csv_path:
        table.write_csv(csv_path.expanduser())
    if json_path:
        table.write_json(json_path.expanduser())
