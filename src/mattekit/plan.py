"""The output plan: what a run writes, how it is stored and over what background.

Every front door (:func:`~mattekit.pipeline.video.convert_video`,
:func:`~mattekit.batch.convert_folder`, :func:`~mattekit.batch.matte_folder`,
the ``video`` and ``image`` CLI verbs, the server) builds one :class:`OutputPlan`; every writer
follows it. The rules of which outputs go with which output types and backgrounds live here and
nowhere else; a plan that breaks one is refused with a one-line
:class:`~mattekit.errors.ParameterError` (a ``ValueError``) before anything is read or written.

Vocabulary (the field's terms, those of Robust Video Matting's ``convert_video``):

* **outputs** (:data:`OUTPUTS`): ``composition`` (the person over the background), ``alpha``
  (the matte, gray) and ``foreground`` (the person's predicted colour; RGBA when the output keeps
  alpha). "Composite" is the verb, never an output's name.
* **output type** (:data:`OUTPUT_TYPES`): how each output is stored: ``video`` (H.264 .mp4),
  ``webm`` (VP9, alpha), ``prores`` (ProRes 4444 .mov, alpha), ``gif`` (1-bit alpha),
  ``png_sequence`` (a folder of PNGs); and :data:`IMAGE` for stills (the format follows each
  path's suffix: PNG, WebP and TIFF keep alpha, JPEG and BMP do not).
* **background**: what the composition is placed on: a colour, a picture, a video, ``blur[:N]``
  or ``"transparent"``, parsed once (:func:`~mattekit.compose.background.parse_background`) into
  one :class:`~mattekit.compose.background.Background`; transparency is
  :class:`~mattekit.compose.background.TransparentBackground` and nothing else.

Rules (each raises :class:`~mattekit.errors.ParameterError`):

1. every output is one of :data:`OUTPUTS`, and at least one is asked for;
2. ``output_type`` is one of :data:`OUTPUT_TYPES` or :data:`IMAGE`;
3. each output's path fits the type (suffix of the container, see
   :data:`mattekit.io.video_writer.VIDEO_FORMATS`; an image suffix for :data:`IMAGE`);
4. the background is parsed once, only when a composition is asked for; left out, it is
   transparency for a type that keeps alpha (:data:`TRANSPARENT_TYPES`) and RVM's green
   (:data:`~mattekit.compose.background.DEFAULT_COLOR`) otherwise;
5. a transparent background needs an output that keeps alpha (a transparent type, or an image
   suffix of :data:`ALPHA_IMAGE_SUFFIXES`);
6. ``mbps`` is ``None`` or in :data:`mattekit.params.MBPS_RANGE` (ignored by types without
   bit-rate control: prores, gif, png_sequence);
7. ``preset`` is ``None`` or a libx264 preset, and only for the ``video`` type;
8. ``overwrite`` is a bool.

Old spellings that still work (each with a deprecation message, :func:`deprecation`): the
image batch's ``composite=`` / ``--composite`` (a background) is ``background=`` /
``--background``; the server's ``output=composite`` is ``composition``, ``output=transparent`` is
``composition`` with ``background=transparent`` (:data:`OLD_OUTPUTS`), and
``video_format=mp4|webm|png`` is ``output_type=video|webm|png_sequence``
(:data:`OLD_VIDEO_FORMATS`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mattekit.compose.background import (
    DEFAULT_COLOR,
    Background,
    TransparentBackground,
    parse_background,
)
from mattekit.errors import ParameterError, ParameterTypeError
from mattekit.io.image import IMAGE_SUFFIXES
from mattekit.io.video_writer import VIDEO_FORMATS, X264_PRESETS
from mattekit.params import validate_output_video_mbps, validate_path

#: the outputs of a run, in RVM's order
OUTPUTS = ("composition", "alpha", "foreground")
#: how video outputs are stored (``output_type`` / ``--output-type``)
OUTPUT_TYPES = ("png_sequence", *VIDEO_FORMATS)
#: the output type of stills: each output's format follows its path's suffix
IMAGE = "image"
#: output types that keep alpha (a composition over ``transparent``, an RGBA foreground)
TRANSPARENT_TYPES = ("png_sequence", *(name for name, f in VIDEO_FORMATS.items() if f.alpha))
#: picture suffixes that keep alpha (the others are written without it)
ALPHA_IMAGE_SUFFIXES = (".png", ".webp", ".tif", ".tiff")
#: the word for transparency as a background
TRANSPARENT = "transparent"

#: the server's old ``video_format`` values -> ``output_type``
OLD_VIDEO_FORMATS = {"mp4": "video", "webm": "webm", "png": "png_sequence"}
#: the server's old ``output`` values -> (output, background it implies or ``None``)
OLD_OUTPUTS = {"composite": ("composition", None), "transparent": ("composition", TRANSPARENT)}


def deprecation(old: str, new: str) -> str:
    """The one message for a renamed option or value: ``"<old> is deprecated; use <new>"``.

    Python callers get it as a :class:`FutureWarning` (:func:`warn_deprecated`), the CLI prints
    ``mattekit: warning: <message>`` on stderr, the HTTP API lists it in ``warnings``.
    """
    return f"{old} is deprecated; use {new}"


def warn_deprecated(old: str, new: str, stacklevel: int = 3) -> None:
    """Emit :func:`deprecation` as a :class:`FutureWarning` pointing at the caller's caller."""
    warnings.warn(deprecation(old, new), FutureWarning, stacklevel=stacklevel)


def default_output_type(background=None) -> str:
    """``video`` (H.264), or ``webm`` when the background asked for is transparency."""
    return "webm" if is_transparent(background) else "video"


def is_transparent(background) -> bool:
    """True for ``"transparent"`` (any case, spaces around) or a transparent Background."""
    if isinstance(background, Background):
        return background.transparent
    return isinstance(background, str) and background.strip().lower() == TRANSPARENT


def keeps_alpha(output_type: str, path: str | os.PathLike | None = None) -> bool:
    """Whether an output of ``output_type`` (for :data:`IMAGE`: at ``path``) stores alpha."""
    if output_type == IMAGE:
        return path is not None and Path(path).suffix.lower() in ALPHA_IMAGE_SUFFIXES
    return output_type in TRANSPARENT_TYPES


def check_output_type(output_type) -> str:
    """Rule 2: one of :data:`OUTPUT_TYPES` or :data:`IMAGE`."""
    if not isinstance(output_type, str) or output_type not in (*OUTPUT_TYPES, IMAGE):
        raise ParameterError("output_type", f"must be one of {', '.join(OUTPUT_TYPES)}, not {output_type!r}")
    return output_type


def check_preset(preset, output_type: str) -> str | None:
    """Rule 7: ``None``, or a libx264 preset (:data:`~mattekit.io.video_writer.X264_PRESETS`)
    for the ``video`` type only."""
    if preset is None:
        return None
    if preset not in X264_PRESETS:
        raise ParameterError("preset", f"must be one of {', '.join(X264_PRESETS)}, not {preset!r}")
    if output_type != "video":
        raise ParameterError("preset", f"applies to the video (H.264) output type only, not {output_type}")
    return preset


def output_suffix(output_type: str) -> str:
    """The suffix of an output of ``output_type`` named by a batch (``""`` for a PNG folder)."""
    return "" if output_type in ("png_sequence", IMAGE) else VIDEO_FORMATS[output_type].suffix


def check_path(path: Path, output_type: str) -> None:
    """Rule 3: the path's suffix fits the output type."""
    suffix = path.suffix.lower()
    if output_type == "png_sequence":
        return
    if output_type == IMAGE:
        if suffix not in IMAGE_SUFFIXES:
            raise ParameterError(
                str(path),
                f"an image output is written as {', '.join(sorted(IMAGE_SUFFIXES))}, "
                f"not {suffix or 'a name without suffix'}",
                path=path,
            )
        return
    fmt = VIDEO_FORMATS[output_type]
    if suffix not in fmt.suffixes:
        raise ParameterError(
            str(path),
            f"output type {output_type} writes {' or '.join(fmt.suffixes)} files, "
            f"not {suffix or 'a name without suffix'}",
            path=path,
        )


@dataclass(frozen=True, eq=False, init=False)
class OutputPlan:
    """The validated outputs of one run (rules in this module's docstring).

    Built from what a user gives and checked at once; every attribute is then final.

    Args / attributes:
        outputs: output name (:data:`OUTPUTS`) -> path; or, for a batch whose paths are chosen
            per file, a list of output names or one comma-separated string (the paths are then
            ``None`` until :meth:`at` gives them, see :meth:`named`). A mapping's ``None``
            values are left out (RVM's ``output_alpha=None``).
        output_type: :data:`OUTPUT_TYPES` or :data:`IMAGE`.
        background: anything :func:`~mattekit.compose.background.parse_background` takes, or
            ``None`` for the default of the type (rule 4); held parsed (a
            :class:`~mattekit.compose.background.Background`), or ``None`` when no composition
            is asked for (it is then not read at all).
        mbps: bit rate of encoded videos in Mbit/s, or ``None`` (quality-based).
        preset: libx264 preset of the ``video`` type, or ``None`` (mattekit's default).
        overwrite: replace existing outputs.
        source: the input, named in the message when no output is asked for.

    Raises:
        mattekit.errors.ParameterError: a rule is broken (one line naming the parameter or path).
        mattekit.errors.ParameterTypeError: ``mbps`` is not a number or ``overwrite`` not a bool.
        mattekit.errors.InputError: the background file cannot be read (or the text is no
            background).
    """

    outputs: Mapping[str, Path | None]
    output_type: str
    background: Background | None
    mbps: float | None
    preset: str | None
    overwrite: bool
    source: str | os.PathLike | None = field(repr=False)

    def __init__(
        self,
        outputs: Mapping[str, str | os.PathLike | None] | Iterable[str] | str,
        output_type: str = "video",
        background: object = None,
        mbps: float | None = None,
        preset: str | None = None,
        overwrite: bool = False,
        source: str | os.PathLike | None = None,
    ):
        output_type = check_output_type(output_type)
        paths = _outputs(outputs, source)
        for path in paths.values():
            if path is not None:
                check_path(path, output_type)
        if not isinstance(overwrite, (bool, np.bool_)):
            raise ParameterTypeError("overwrite", f"must be True or False, not {overwrite!r}")
        set_ = object.__setattr__
        set_(self, "output_type", output_type)
        set_(self, "outputs", paths)
        set_(self, "mbps", validate_output_video_mbps(mbps, name="output_video_mbps"))
        set_(self, "preset", check_preset(preset, output_type))
        set_(self, "overwrite", bool(overwrite))
        set_(self, "source", source)
        set_(self, "background", self._background(background))

    def _background(self, spec) -> Background | None:
        """Rules 4 and 5: the parsed background of the composition, or ``None`` without one."""
        if "composition" not in self.outputs:
            return None
        if isinstance(spec, Background):
            background = spec
        elif spec is None and self.output_type in TRANSPARENT_TYPES:
            background = TransparentBackground()
        else:
            background = parse_background(spec, default=DEFAULT_COLOR)
        path = self.outputs["composition"]
        if background.transparent and not keeps_alpha(self.output_type, path or "composition.png"):
            if self.output_type == IMAGE:
                problem = (
                    f"transparent needs a picture format that keeps alpha "
                    f"({', '.join(ALPHA_IMAGE_SUFFIXES)}), not {Path(path or '').suffix}"
                )
            else:
                problem = (
                    f"transparent needs an output type that keeps alpha "
                    f"({', '.join(TRANSPARENT_TYPES)}), not {self.output_type}"
                )
            background.close()
            raise ParameterError("background", problem)
        return background

    # -- what the writers read ---------------------------------------------------------------------

    @property
    def kinds(self) -> tuple[str, ...]:
        """The outputs asked for, in the order given."""
        return tuple(self.outputs)

    @property
    def paths(self) -> dict[str, Path]:
        """Output name -> path of the outputs whose path is known."""
        return {k: p for k, p in self.outputs.items() if p is not None}

    @property
    def bit_rate(self) -> int | None:
        """``mbps`` in bits per second, or ``None``."""
        return int(self.mbps * 1e6) if self.mbps else None

    @property
    def transparent(self) -> bool:
        """True when the composition is the person on transparency (RGBA)."""
        return self.background is not None and self.background.transparent

    def keeps_alpha(self, kind: str) -> bool:
        """Whether output ``kind`` is written with alpha (a foreground then is RGBA)."""
        return keeps_alpha(self.output_type, self.outputs.get(kind) or None)

    def image_kind(self, kind: str) -> str:
        """What output ``kind`` holds per frame: ``rgba``, ``gray``, ``rgb`` or ``composite``."""
        if kind == "alpha":
            return "gray"
        if kind == "foreground":
            return "rgba" if self.keeps_alpha(kind) else "rgb"
        return "rgba" if self.transparent else "composite"

    # -- batches: one plan, paths per file ---------------------------------------------------------

    def at(self, paths: Mapping[str, str | os.PathLike], overwrite: bool | None = None) -> OutputPlan:
        """This plan with ``paths`` (a subset of its outputs) as its outputs (and ``overwrite``,
        unless ``None``); the background is the same object (not parsed again).

        Raises:
            mattekit.errors.ParameterError: an output this plan does not hold, or a path of
                the wrong suffix.
        """
        extra = [k for k in paths if k not in self.outputs]
        if extra:
            raise ParameterError("outputs", f"{', '.join(extra)} not in this plan ({', '.join(self.kinds)})")
        return replace(
            self,
            outputs={k: Path(p) for k, p in paths.items()},
            background=self.background if "composition" in paths else None,
            overwrite=self.overwrite if overwrite is None else overwrite,
        )

    def named(self, folder: str | os.PathLike, stem: str) -> dict[str, Path]:
        """The paths a batch gives a file's outputs: ``<folder>/<stem>_<output><suffix>`` (videos:
        ``clip_composition.mp4``; :data:`IMAGE`: ``<stem>.png`` for the foreground cut-out,
        ``<stem>_alpha.png``, ``<stem>_composition.jpg``)."""
        folder = Path(folder)
        if self.output_type == IMAGE:
            names = {
                "foreground": f"{stem}.png",
                "alpha": f"{stem}_alpha.png",
                "composition": f"{stem}_composition{'.png' if self.transparent else '.jpg'}",
            }
            return {k: folder / names[k] for k in self.outputs}
        suffix = output_suffix(self.output_type)
        return {k: folder / f"{stem}_{k}{suffix}" for k in self.outputs}

    def close(self) -> None:
        """Release the files the background reads (a video background's decoder)."""
        if self.background is not None:
            self.background.close()


def _outputs(outputs, source) -> dict[str, Path | None]:
    """Rule 1: output name -> ``Path`` (or ``None``: chosen later), known names, at least one."""
    result: dict[str, Path | None]
    if isinstance(outputs, str):  # "composition,alpha" (a batch's --outputs)
        result = dict.fromkeys(_known([k.strip() for k in outputs.split(",") if k.strip()]))
    elif isinstance(outputs, Mapping):
        result = {
            k: validate_path(outputs[k], f"output_{k}")
            for k in _known([k for k, v in outputs.items() if v is not None])
        }
    else:
        result = dict.fromkeys(_known(list(outputs)))
    if not result:
        problem = "no output requested (give a composition, alpha or foreground output)"
        if source is not None:
            raise ParameterError(os.fspath(source), problem, path=os.fspath(source))
        raise ParameterError("outputs", problem)
    return result


def _known(kinds: list) -> tuple[str, ...]:
    """``kinds`` each once, in order, all among :data:`OUTPUTS` (an empty list passes)."""
    unknown = [str(k) for k in kinds if k not in OUTPUTS]
    if unknown:
        raise ParameterError("outputs", f"must be among {', '.join(OUTPUTS)}, not {', '.join(unknown)}")
    return tuple(dict.fromkeys(kinds))
