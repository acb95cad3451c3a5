"""One training stage's settings, read from a TOML file (the shipped ``configs/stage1..4.toml``
hold the paper's four stages).

A file has the sections ``[model]``, ``[data]``, ``[schedule]`` and ``[run]``; every key is
unique across sections, so ``--set key=value`` on the command line overrides one by name.
Relative data paths are resolved against the current folder when the run starts.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mattekit.errors import InputError

SHIPPED = Path(__file__).with_name("configs")


@dataclass
class StageConfig:
    """Settings of one training stage (units: pixels, frames, steps; learning rates for Adam).

    Model: ``variant`` (mobilenetv3, resnet50, efficientnetv2); ``init``: ``scratch`` (random
    weights; no ImageNet download here), a registered model name or an RVM ``.onnx`` file
    (imported, :mod:`mattekit.train.onnx_import`), or a ``.pt`` checkpoint of an earlier stage;
    ``freeze_batchnorm``: keep batch-norm statistics fixed (on for imported weights).

    Data: ``foreground`` (foreground + alpha sources), ``backgrounds`` (folders of pictures and
    videos), ``segmentation`` (image/ + mask/ folders; empty: no segmentation pass);
    ``validation_fraction``: the last part of every foreground held back for validation;
    ``validation_backgrounds``: backgrounds held back (never seen in training).

    Schedule: low-resolution pass ``resolution_lr`` (square side; crops of random height and
    width between half and all of it, as RVM) × ``seq_length_lr`` frames at downsample ratio 1
    without the guided filter; a high-resolution pass when ``resolution_hr`` > 0 (``seq_length_hr``
    frames, ``downsample_ratio_hr``, guided filter on); ``batch_size`` clips per step; ``steps``,
    or ``epochs`` passes over the foreground frames when ``steps`` is 0; one learning rate per
    part of the network.

    Run: ``seed``, ``device`` (auto, cpu, cuda, mps), ``checkpoint_dir``, ``checkpoint_every``,
    ``validate_every`` (steps; 0 = only at the end).
    """

    variant: str = "mobilenetv3"
    init: str = "scratch"
    freeze_batchnorm: bool = False
    foreground: list[str] = field(default_factory=list)
    backgrounds: list[str] = field(default_factory=list)
    segmentation: list[str] = field(default_factory=list)
    validation_fraction: float = 0.1
    validation_backgrounds: int = 1
    resolution_lr: int = 512
    seq_length_lr: int = 15
    resolution_hr: int = 0
    seq_length_hr: int = 6
    downsample_ratio_hr: float = 0.25
    batch_size: int = 1
    steps: int = 0
    epochs: float = 1.0
    lr_backbone: float = 1e-4
    lr_aspp: float = 2e-4
    lr_decoder: float = 2e-4
    lr_refiner: float = 0.0
    seed: int = 0
    device: str = "auto"
    checkpoint_dir: str = "checkpoints"
    checkpoint_every: int = 500
    validate_every: int = 0

    def check(self) -> StageConfig:
        """Raise ValueError naming the first setting that makes no sense."""
        positive = ("resolution_lr", "seq_length_lr", "seq_length_hr", "batch_size")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if self.resolution_lr < 64 or (self.resolution_hr and self.resolution_hr < 64):
            raise ValueError("resolutions must be at least 64 px (the network works at 1/16)")
        if max(self.resolution_lr, self.resolution_hr) > 4096:
            raise ValueError("resolutions above 4096 px are refused (the paper's largest is 2048)")
        for name in ("steps", "checkpoint_every", "validate_every", "resolution_hr", "validation_backgrounds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in (
            "lr_backbone",
            "lr_aspp",
            "lr_decoder",
            "lr_refiner",
            "epochs",
            "validation_fraction",
            "downsample_ratio_hr",
        ):
            value = float(getattr(self, name))
            if not (value == value and 0 <= value < float("inf")):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not 0 < self.downsample_ratio_hr <= 1:
            raise ValueError(f"downsample_ratio_hr must be in (0, 1], got {self.downsample_ratio_hr}")
        if self.validation_fraction >= 1:
            raise ValueError("validation_fraction must be below 1")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be a whole number from 0 to {2**32 - 1}, got {self.seed}")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise ValueError(f"device must be auto, cpu, cuda or mps, got {self.device!r}")
        if not self.foreground or not self.backgrounds:
            raise ValueError("foreground and backgrounds must each name at least one path")
        return self

    def override(self, assignments: list[str]) -> StageConfig:
        """A copy with ``key=value`` assignments applied (lists: comma-separated).

        Raises:
            ValueError: unknown key or a value of the wrong type.
        """
        kinds = {f.name: f.type for f in dataclasses.fields(self)}
        changes: dict[str, object] = {}
        for item in assignments:
            key, sep, text = item.partition("=")
            key = key.strip().split(".")[-1]
            if not sep or key not in kinds:
                raise ValueError(f"--set {item!r}: expected key=value with a key among {', '.join(kinds)}")
            current = getattr(self, key)
            try:
                value: object
                if isinstance(current, list):
                    value = [p for p in text.split(",") if p]
                elif isinstance(current, bool):
                    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(text)
                    value = text.lower() in ("true", "1", "yes")
                else:
                    value = type(current)(text)
            except ValueError:
                raise ValueError(f"--set {item!r}: {text!r} is not a {type(current).__name__}") from None
            changes[key] = value
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]  # each value checked above

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | os.PathLike) -> StageConfig:
    """Read a stage file: a path, or the name of a shipped one (``stage1`` .. ``stage4``).

    Raises:
        mattekit.errors.InputError: missing file, bad TOML, unknown key or wrong type.
    """
    p = Path(path)
    if not p.exists() and (SHIPPED / f"{p.stem}.toml").is_file() and p.parent == Path("."):
        p = SHIPPED / f"{p.stem}.toml"
    if not p.is_file():
        names = ", ".join(sorted(f.stem for f in SHIPPED.glob("*.toml")))
        raise InputError(p, f"config not found (shipped: {names})")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(p, f"not valid TOML ({exc})") from None
    flat = {}
    for section, values in data.items():
        if not isinstance(values, dict):
            raise InputError(p, f"{section!r} must be a [section]")
        flat.update(values)
    kinds = {f.name for f in dataclasses.fields(StageConfig)}
    unknown = sorted(set(flat) - kinds)
    if unknown:
        raise InputError(p, f"unknown setting {unknown[0]!r}")
    default = StageConfig()
    for key, value in flat.items():
        expected = type(getattr(default, key))
        ok = isinstance(value, expected) or (
            expected is float and isinstance(value, int) and not isinstance(value, bool)
        )
        if not ok or (expected is int and isinstance(value, bool)):
            raise InputError(p, f"{key} must be a {expected.__name__}, got {value!r}")
    settings: dict[str, Any] = {k: (float(v) if isinstance(getattr(default, k), float) else v) for k, v in flat.items()}
    return StageConfig(**settings)
