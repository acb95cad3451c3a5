"""A request's form fields -> the job's validated options (and the words it used that are deprecated).

The fields (the same for ``POST /api/jobs`` and ``POST /api/matte``):

* ``output``: ``composition`` (the person over ``background``), ``alpha`` or ``foreground``, or
  several, comma-separated (``composition,alpha``: one pass, one file each);
* ``background``: a colour name or ``#rrggbb``, ``transparent``, ``blur`` (the input blurred), or
  ``image`` with a ``background_file`` (a picture; for a video job also a video);
* ``output_type`` (videos): ``video`` (H.264 .mp4), ``webm`` (VP9, keeps alpha), ``prores``
  (ProRes 4444 .mov), ``gif`` or ``png_sequence`` (downloaded as one .zip);
* ``downsample_ratio``: ``auto`` or a number in (0, 1]; ``refine`` (images): ``true``/``false``;
  ``model``: a registered model name.

The rules of which outputs, output types and backgrounds combine are the output plan's
(:class:`mattekit.plan.OutputPlan`): this module turns the fields into its arguments, builds it to
check them, and answers a broken rule with 422.

Earlier spellings keep working and are reported in :attr:`Options.warnings` (with
:attr:`Options.deprecated` set, so the route adds ``Deprecation: true``): ``output=composite`` is
``composition``; ``output=transparent`` is ``output=composition`` with ``background=transparent``;
``video_format=mp4|webm|png`` is ``output_type=video|webm|png_sequence``. Jobs stored by an
earlier server carry the old words in their options; :meth:`Options.from_stored` reads them too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mattekit.compose.background import (
    DEFAULT_COLOR,
    Background,
    BlurBackground,
    ColorBackground,
    TransparentBackground,
    parse_background,
    parse_color,
)
from mattekit.errors import ParameterError
from mattekit.params import parse, validate_downsample_ratio
from mattekit.plan import (
    IMAGE,
    OLD_OUTPUTS,
    OLD_VIDEO_FORMATS,
    OUTPUT_TYPES,
    OutputPlan,
    check_output_type,
    default_output_type,
    deprecation,
    output_suffix,
)
from mattekit.server.errors import ApiError

#: the words ``background`` takes besides a colour (``image`` needs a ``background_file``)
BACKGROUND_WORDS = ("transparent", "blur", "image")
_BOOLEANS = {
    "1": True,
    "true": True,
    "on": True,
    "yes": True,
    "0": False,
    "false": False,
    "off": False,
    "no": False,
    "": False,
}

#: the form's fields as the OpenAPI document shows them
FORM_FIELDS: dict[str, dict[str, Any]] = {
    "file": {"type": "string", "format": "binary", "description": "the image or video"},
    "output": {
        "type": "string",
        "description": "composition (the person over background), alpha (the "
        "matte, gray) or foreground (the person's colour, with alpha where the type keeps it); "
        "for a job also several, comma-separated, e.g. composition,alpha. Deprecated: composite "
        "(= composition), transparent (= composition with background=transparent)",
    },
    "background": {
        "type": "string",
        "description": "colour name or #rrggbb, 'transparent', 'blur', or 'image' with background_file",
    },
    "background_file": {
        "type": "string",
        "format": "binary",
        "description": "a background picture (or, for a video job, a video)",
    },
    "output_type": {
        "type": "string",
        "enum": list(OUTPUT_TYPES),
        "description": "videos only: video (H.264 .mp4), webm (VP9, keeps transparency), "
        "prores (ProRes 4444 .mov), gif, png_sequence (downloaded as .zip); default video, "
        "or webm for a transparent composition",
    },
    "video_format": {
        "type": "string",
        "enum": list(OLD_VIDEO_FORMATS),
        "deprecated": True,
        "description": "deprecated: use output_type (mp4 = video, png = png_sequence)",
    },
    "downsample_ratio": {"type": "string", "description": "'auto' or a number in (0, 1]"},
    "refine": {
        "type": "boolean",
        "description": "images only: re-solve the alpha near its edges with "
        "closed-form matting (Levin et al. 2008), slower",
    },
    "model": {
        "type": "string",
        "description": "a registered model name (see /api/health 'models'); default the server's model",
    },
}


def multipart_doc(fields: list[str]) -> dict:
    """The OpenAPI ``requestBody`` of a multipart form with ``fields`` (``file`` required)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {k: FORM_FIELDS[k] for k in fields},
                    }
                }
            },
        }
    }


def background_of(option: str | None, picture: Path | None) -> Background | None:
    """The ``background`` of a job's plan for its ``background`` option.

    Returns:
        ``None`` (the plan's default) or a :class:`~mattekit.compose.background.Background`: the
        uploaded picture or video ``picture`` (option ``"image"``; opened here), a colour,
        transparent or the input blurred (built here, so that no file named like the option is
        ever looked for).

    Raises:
        mattekit.errors.InputError: the picture cannot be read.
    """
    if option == "image":
        return parse_background(picture)
    if option == "transparent":
        return TransparentBackground()
    if option == "blur":
        return BlurBackground()
    rgb = parse_color(option) if option else None
    return ColorBackground(rgb) if rgb is not None else None


@dataclass
class Options:
    """A job's validated options (stored with the job as :meth:`stored`).

    Attributes:
        output: the outputs, comma-separated (``composition``, ``alpha``, ``foreground``).
        background: ``None`` (the plan's default), a colour as typed, ``transparent``, ``blur`` or
            ``image`` (the job's ``background_file``).
        output_type: how a video's outputs are stored; ``None`` for an image (PNGs).
        downsample_ratio: ``None`` (auto) or in (0, 1].
        refine: images only; ``None`` for a video.
        model: a registered model name, or ``None`` for the server's.
        background_file: the stored background picture's name in the job folder, or ``None``.
        warnings: what the request should know: the deprecated words it used, fields that were
            ignored (not stored).
        deprecated: the request used a deprecated word (not stored).
    """

    output: str
    background: str | None = None
    output_type: str | None = None
    downsample_ratio: float | None = None
    refine: bool | None = None
    model: str | None = None
    background_file: str | None = None
    warnings: list[str] = field(default_factory=list, compare=False)
    deprecated: bool = field(default=False, compare=False)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The outputs asked for, in order."""
        return tuple(k.strip() for k in self.output.split(",") if k.strip())

    def plan(self, folder: Path, background: Background | None) -> OutputPlan:
        """The job's :class:`~mattekit.plan.OutputPlan`: its outputs in ``folder``
        (``<output>.png`` for an image, ``<output><suffix of the type>`` for a video).

        Raises:
            mattekit.errors.ParameterError: the plan breaks one of its rules.
        """
        if self.output_type is None:
            return OutputPlan({k: folder / f"{k}.png" for k in self.kinds}, IMAGE, background)
        suffix = output_suffix(self.output_type)
        return OutputPlan({k: folder / f"{k}{suffix}" for k in self.kinds}, self.output_type, background)

    def stored(self) -> dict:
        """The options as stored in the job's row (and shown by the API)."""
        data = asdict(self)
        del data["warnings"], data["deprecated"]
        return {k: v for k, v in data.items() if v is not None or k in ("background", "model")}

    @classmethod
    def from_stored(cls, data: dict) -> Options:
        """A stored job's options, also one stored by an earlier server with the old words."""
        data = dict(data)
        output, old_format = data.pop("output", "composition"), data.pop("video_format", None)
        if isinstance(output, str) and output in OLD_OUTPUTS:
            output, implied = OLD_OUTPUTS[output]
            if implied is not None:
                data["background"] = implied
        if isinstance(old_format, str) and "output_type" not in data:
            data["output_type"] = OLD_VIDEO_FORMATS.get(old_format, old_format)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k not in ("warnings", "deprecated")}
        return cls(output=output, **known)


def _text(fields: dict[str, str], name: str) -> str:
    return (fields.get(name) or "").strip()


def _bad(detail: str) -> ApiError:
    return ApiError(422, "bad_option", detail)


def parse_options(
    fields: dict[str, str],
    kind: str,
    has_background_file: bool,
    default_background: str | None = None,
    size: tuple[int, int] | None = None,
) -> Options:
    """Check a form's fields and return the job's options.

    Args:
        fields: the form's text fields.
        kind: ``"image"`` or ``"video"`` (what the upload is).
        has_background_file: the form carries a ``background_file``.
        default_background: the background when the form names none (``POST /api/matte``:
            ``"transparent"``; jobs: ``None``, the plan's default).
        size: the input's (width, height), to check that ``downsample_ratio`` leaves the network
            at least one pixel on each side.

    Raises:
        ApiError: 422 ``bad_option`` naming the field and the accepted values, or the rule of the
            output plan the request breaks.
    """
    output, background, warnings = _old_output(
        _text(fields, "output").lower() or "composition",
        _parse_background(_text(fields, "background"), has_background_file),
    )
    if warnings and background is None:  # output=composite meant the default colour, as before
        default_background = None
    output_type, old_format = _output_type_option(fields)
    if old_format:
        warnings.append(deprecation(f"video_format={old_format}", f"output_type={output_type}"))
    if background is None and not has_background_file:
        background = default_background
    options = Options(
        output=output,
        background=background,
        model=_model_option(fields),
        downsample_ratio=_ratio_option(fields, size),
        deprecated=bool(warnings),
    )
    refine = _text(fields, "refine").lower()
    if refine not in _BOOLEANS:
        raise _bad(f"refine must be true or false, not {refine!r}")
    if kind == "image":
        options.refine = _BOOLEANS[refine]
        if output_type is not None:
            warnings.append(f"output_type {output_type} applies to videos; an image's outputs are PNGs")
    elif _BOOLEANS[refine]:
        raise _bad("refine is available for images only (it is too slow for every frame of a video)")
    else:
        options.output_type = output_type or default_output_type(background)
    options.warnings = warnings
    # the plan's rules: an uploaded picture or video is an opaque background (opened when the job runs)
    stand_in = ColorBackground(DEFAULT_COLOR) if background == "image" else background_of(background, None)
    try:
        plan = options.plan(Path("."), stand_in)
    except ParameterError as exc:  # the plan's "outputs" is this form's "output"
        raise _bad(f"{'output' if exc.name == 'outputs' else exc.name}: {exc.problem}") from None
    options.output = ",".join(plan.kinds)
    return options


def _old_output(output: str, background: str | None) -> tuple[str, str | None, list[str]]:
    """(output, background, deprecation messages) for a deprecated ``output`` word
    (``composite``, ``transparent``); other words pass unchanged with no message."""
    if output not in OLD_OUTPUTS:
        return output, background, []
    new, implied = OLD_OUTPUTS[output]
    messages = [deprecation(f"output={output}", f"output={new}" + (f" with background={implied}" if implied else ""))]
    if implied is not None:
        if background not in (None, implied):
            messages.append(f"background {background!r} is ignored with output={output}")
        background = implied
    return new, background, messages


def _parse_background(text: str, has_background_file: bool) -> str | None:
    word = text.lower()
    if has_background_file and word in ("", "image"):
        return "image"
    if word == "image":
        raise _bad("background 'image' needs a picture in background_file")
    if word in BACKGROUND_WORDS:
        return word
    if text and parse_color(text) is None:
        raise _bad(f"background {text!r} is not a colour name or #rrggbb, 'transparent', 'blur' or 'image'")
    return text or None


def _output_type_option(fields: dict[str, str]) -> tuple[str | None, str | None]:
    """(``output_type`` or ``None``, the deprecated ``video_format`` it came from or ``None``)."""
    output_type, old = _text(fields, "output_type").lower(), _text(fields, "video_format").lower()
    if old:
        if old not in OLD_VIDEO_FORMATS:
            raise _bad(
                f"video_format must be one of {', '.join(OLD_VIDEO_FORMATS)}, not {old!r} "
                "(video_format is deprecated; use output_type)"
            )
        new = OLD_VIDEO_FORMATS[old]
        if output_type and output_type != new:
            raise _bad(f"video_format={old} contradicts output_type={output_type}; give output_type only")
        output_type = new
    if not output_type:
        return None, None
    try:
        if output_type == IMAGE:  # the type of stills: an image's outputs are PNGs anyway
            raise ParameterError("output_type", f"must be one of {', '.join(OUTPUT_TYPES)}, not {output_type!r}")
        return check_output_type(output_type), old or None
    except ParameterError as exc:
        raise _bad(str(exc)) from None


def _ratio_option(fields: dict[str, str], size: tuple[int, int] | None) -> float | None:
    """``downsample_ratio``, checked by the same validator as the CLI's and the Python API's."""
    try:
        ratio = parse(_text(fields, "downsample_ratio") or "auto", validate_downsample_ratio, words={"auto": None})
        if ratio is not None and size is not None:
            validate_downsample_ratio(ratio, height=size[1], width=size[0])
    except ParameterError as exc:
        raise _bad(str(exc)) from None
    return ratio


def selectable_models() -> list[dict]:
    """The registered models a request may name (test-only models are not offered)."""
    from mattekit.models.registry import MODELS

    return [
        {"name": s.name, "kind": s.kind, "precision": s.precision, "license": s.license, "description": s.description}
        for s in MODELS.values()
        if not s.hidden
    ]


def _model_option(fields: dict[str, str]) -> str | None:
    """The ``model`` field: ``None`` (the server's model) or a registered name; never a path."""
    name = _text(fields, "model")
    if not name:
        return None
    names = [m["name"] for m in selectable_models()]
    if name not in names:
        raise _bad(f"model must be one of {', '.join(names)}, not {name!r}")
    return name
