"""Model cards: how to feed a single-image alpha model and read its answer.

A card is a small TOML file (or a dict with the same keys) that describes the contract of an ONNX
matting model, so any such model runs without code (:class:`~mattekit.models.card_onnx.CardSession`)::

    name = "modnet"  # optional: shown in listings
    license = "Apache-2.0"  # optional
    source = "..."  # optional: paper / repository / export script

    [input]
    name = "input"  # optional: default the graph's first input
    layout = "NCHW"  # or "NHWC"
    colour = "RGB"  # or "BGR"
    mean = [0.5, 0.5, 0.5]  # on pixels scaled to 0..1, in the colour order above
    std = [0.5, 0.5, 0.5]  # x = (pixel / 255 - mean) / std

    [size]  # the resolution the network sees
    policy = "short_side"  # "fixed" | "short_side" | "long_side"
    size = 512
    multiple = 32  # optional, default 1: sides rounded down to a multiple
    upscale = true  # optional (short_side): false = only ever shrink

    [output]
    name = "output"  # optional: default the graph's first output
    activation = "none"  # "none" | "sigmoid" | "minmax" (rescale to 0..1)
    fgr = "foreground"  # optional: an N×3×H×W RGB 0..1 foreground output

Shipped cards (``mattekit/models/cards/*.toml``) give the contracts of MODNet, PP-Matting /
PP-MattingV2, BiRefNet and U²-Net exports, each citing the project file it was read from; pass
``card="modnet"`` (a shipped name), a path to a TOML file, or put ``<model>.toml`` beside
``<model>.onnx``.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NoReturn, cast

from mattekit.errors import ModelError
from mattekit.models.base import SizePolicy

LAYOUTS = ("NCHW", "NHWC")
COLOURS = ("RGB", "BGR")
ACTIVATIONS = ("none", "sigmoid", "minmax")
MIN_STD = 1e-6  # smallest [input] std (pixels are scaled to 0..1 first: x <= 1e6, finite in float32)
_SECTIONS = {
    "": {"name", "license", "source", "input", "size", "output"},
    "input": {"name", "layout", "colour", "mean", "std"},
    "size": {"policy", "size", "multiple", "upscale"},
    "output": {"name", "activation", "fgr"},
}


@dataclass(frozen=True)
class ModelCard:
    """A parsed, validated model card (see the module docstring for the meaning of each field)."""

    name: str
    license: str
    source: str
    input_name: str | None
    layout: str
    colour: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size_policy: SizePolicy
    output_name: str | None
    activation: str
    fgr_name: str | None


def shipped_cards() -> list[str]:
    """Names of the cards shipped with mattekit (``modnet``, ``birefnet``...)."""
    folder = resources.files("mattekit.models") / "cards"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def shipped_card_text(name: str) -> str:
    """The TOML text of a shipped card.

    Raises:
        mattekit.errors.ModelError: no shipped card of that name.
    """
    if name not in shipped_cards():
        raise ModelError(f"no shipped model card {name!r} (known: {', '.join(shipped_cards())})")
    return (resources.files("mattekit.models") / "cards" / f"{name}.toml").read_text(encoding="utf-8")


def card_beside(model_path: Path) -> Path | None:
    """``<model>.toml`` beside ``<model>.onnx`` when it exists, else ``None``."""
    candidate = model_path.with_suffix(".toml")
    return candidate if candidate.is_file() else None


def load_card(card: str | os.PathLike | dict | ModelCard) -> ModelCard:
    """Parse and validate a card given as a shipped name, a TOML path, a dict or a card.

    Raises:
        mattekit.errors.ModelError: unreadable TOML, unknown key, or a value out of range (one
            line naming the card and the key).
    """
    if isinstance(card, ModelCard):
        return card
    if isinstance(card, dict):
        return parse_card(card, "model card")
    text = os.fspath(card)
    path = Path(text).expanduser()
    if not path.suffix and os.sep not in text and not path.exists():
        return parse_card(tomllib.loads(shipped_card_text(text)), f"card {text}")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model card ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{path}: not a valid TOML model card ({exc})") from None
    except UnicodeDecodeError:
        raise ModelError(f"{path}: not a valid TOML model card (not UTF-8 text)") from None
    return parse_card(data, str(path))


def parse_card(data: dict, label: str) -> ModelCard:
    """Validate a card's dict (see :func:`load_card`); ``label`` names it in errors."""

    def fail(problem: str) -> NoReturn:
        raise ModelError(f"{label}: {problem}")

    for section, allowed in _SECTIONS.items():
        table = data if not section else data.get(section, {})
        if not isinstance(table, dict):
            fail(f"[{section}] must be a table")
        unknown = sorted(set(table) - allowed)
        if unknown:
            fail(
                f"unknown key {'[' + section + '] ' if section else ''}{unknown[0]!r} "
                f"(known: {', '.join(sorted(allowed))})"
            )
    inp, size, out = data.get("input", {}), data.get("size"), data.get("output", {})

    def text(table, key, default=None):
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            fail(f"{key} must be a string, not {value!r}")
        return value or default

    def choice(table, key, options, default):
        value = text(table, key, default)
        if value not in options:
            fail(f"{key} must be one of {', '.join(options)}, not {value!r}")
        return value

    def triple(key, default, positive):
        value = inp.get(key, default)
        if (
            not isinstance(value, list)
            or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            fail(f"[input] {key} must be a list of 3 numbers, not {value!r}")
        # a std under 1e-6 (1e-320 is 0 in float32) turned every pixel into inf and the alpha into NaN
        if not all(math.isfinite(v) and (v >= MIN_STD if positive else True) and abs(v) < 1e6 for v in value):
            fail(f"[input] {key} must be finite{f' and >= {MIN_STD:g}' if positive else ''}, not {value!r}")
        return tuple(float(v) for v in value)

    if not isinstance(size, dict):
        fail("[size] is required (policy, size, multiple)")
    try:
        policy = SizePolicy(
            size.get("policy", "fixed"), cast(int, size.get("size")), size.get("multiple", 1), size.get("upscale", True)
        )
    except ModelError as exc:
        fail(str(exc))
    return ModelCard(
        name=text(data, "name", "") or "",
        license=text(data, "license", "") or "",
        source=text(data, "source", "") or "",
        input_name=text(inp, "name"),
        layout=choice(inp, "layout", LAYOUTS, "NCHW"),
        colour=choice(inp, "colour", COLOURS, "RGB"),
        mean=triple("mean", [0.0, 0.0, 0.0], False),
        std=triple("std", [1.0, 1.0, 1.0], True),
        size_policy=policy,
        output_name=text(out, "name"),
        activation=choice(out, "activation", ACTIVATIONS, "none"),
        fgr_name=text(out, "fgr"),
    )
