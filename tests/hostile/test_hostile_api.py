"""The hostile-input corpus through the Python API (issue 9), in process with one shared model.

Every case builds its files in a fresh folder, calls ``convert_video``, ``matte_image``,
``matte_folder``, ``Matte.composite`` or ``new_session`` and checks:

* the call either succeeds (where handling the input is right; then extra checks on the result)
  or raises a documented error: a :class:`mattekit.errors.MattekitError` of the expected kind
  (InputError, OutputError, ModelError) whose one-line message names the file, or ``ValueError``
  / ``TypeError`` naming the bad argument; never a library's raw exception (ONNX Runtime,
  ``ZeroDivisionError``, ``AttributeError``, ``OverflowError``...);
* no file outside the declared outputs was created, changed or removed (the folder is hashed
  before and after; a failure may change nothing), and no ``.partial-*`` file is left;
* nothing was logged with a traceback.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import hostile_inputs as gen
from hostile_harness import (
    RAW_EXCEPTION,
    assert_only_declared_changes,
    case_params,
    case_registry,
    killed_run_partials,
    mattekit_argv,
    partials,
    snapshot,
)
from mattekit import convert_video, matte_folder, matte_image
from mattekit.errors import InputError, ModelError, OutputError

INFERENCE = pytest.mark.inference
ARG = (ValueError, TypeError)  # a bad argument value or type


@dataclass
class Call:
    fn: Callable[[], object]  # the API call
    raises: tuple = ()  # accepted exception types; empty: must succeed
    ok: bool = False  # with ``raises``: success is also acceptable
    names: tuple[str, ...] = ()  # the message holds one of these
    outputs: list[str] = field(default_factory=list)
    removable: list[str] = field(default_factory=list)
    check: Callable | None = None  # (result) -> None on success


CASES: dict[str, tuple[str, Callable, tuple]] = {}


case = case_registry(CASES)


def _video(root: Path, name: str = "in.mp4", **kw) -> Path:
    return gen.video(root / name, **{"frames": 2, **kw})


# -- data loss (items 1, 2, 4, 5) -------------------------------------------------------------------


@case("png-sequence-into-input-folder", "1")
def _(root, session):
    proj = root / "proj"
    proj.mkdir()
    _video(proj, "input.mp4")
    gen.user_file(proj / "notes.txt")
    return Call(
        lambda: convert_video(
            proj / "input.mp4",
            output_type="png_sequence",
            output_composition=proj,
            model=session,
            overwrite=True,
            progress=False,
        ),
        raises=(OutputError,),
        names=("proj",),
    )


@case("background-is-output", "4")
def _(root, session):
    _video(root)
    bg = _video(root, "bg.mp4", seed=3)
    return Call(
        lambda: convert_video(
            root / "in.mp4", output_composition=bg, background=bg, model=session, overwrite=True, progress=False
        ),
        raises=(OutputError,),
        names=("bg.mp4",),
    )


@case("int8-beside-user-model-garbage", "2")
def _(root, session):
    from mattekit import new_session

    (root / "mymodels").mkdir()
    model = gen.garbage_model(root / "mymodels" / "foo.onnx")
    gen.user_file(root / "mymodels" / "foo_int8.onnx", "the user's own int8 model\n")
    return Call(lambda: new_session(model, precision="int8"), raises=(ModelError,), names=("foo.onnx",))


@case("stale-partial-removed-on-rerun", "5", INFERENCE)
def _(root, session):
    _video(root, frames=24, width=96, height=64)
    left = killed_run_partials(mattekit_argv("video", "in.mp4", "-c", "out.mp4", "-q"), root, dict(os.environ))
    assert left, "the killed run left no partial file to clean"
    return Call(
        lambda: convert_video(root / "in.mp4", output_composition=root / "out.mp4", model=session, progress=False),
        outputs=["out.mp4"],
        removable=[p.relative_to(root).as_posix() for p in left],
    )


# -- validation (items 10, 12-15, 19) ---------------------------------------------------------------


@case("zero-frame-video-input", "10")
def _(root, session):
    zero = gen.zero_frame_video(root / "zero.mkv")
    return Call(
        lambda: convert_video(zero, output_alpha=root / "out.mp4", model=session, progress=False),
        raises=(InputError,),
        names=("zero.mkv",),
    )


@case("zero-frame-video-background", "10")
def _(root, session):
    _video(root)
    zero = gen.zero_frame_video(root / "zero.mkv")
    return Call(
        lambda: convert_video(
            root / "in.mp4", output_composition=root / "out.mp4", background=zero, model=session, progress=False
        ),
        raises=(InputError,),
        names=("zero.mkv",),
    )


for _value in (-1.0, math.nan, 0, math.inf, "0.5", 0.001):

    def _ratio_image(root, session, value=_value):
        img = gen.png(root / "a.png", 64, 48)
        ok = value in ("0.5", 0.001)  # a number given as text, or a tiny ratio, may be handled
        return Call(
            lambda: matte_image(img, session, downsample_ratio=value), raises=ARG, ok=ok, names=("downsample_ratio",)
        )

    def _ratio_video(root, session, value=_value):
        _video(root)
        ok = value in ("0.5", 0.001)
        return Call(
            lambda: convert_video(
                root / "in.mp4", output_alpha=root / "out.mp4", downsample_ratio=value, model=session, progress=False
            ),
            raises=ARG,
            ok=ok,
            names=("downsample_ratio",),
            outputs=["out.mp4"],
        )

    _marks = (INFERENCE,) if _value in ("0.5", 0.001) else ()  # the others are refused before the network
    case(f"matte_image-downsample_ratio-{_value}", "12", *_marks)(_ratio_image)
    case(f"convert_video-downsample_ratio-{_value}", "12", *_marks)(_ratio_video)


@case("convert_video-cancel-True", "12")
def _(root, session):
    _video(root)
    return Call(
        lambda: convert_video(
            root / "in.mp4", output_alpha=root / "out.mp4", cancel=True, model=session, progress=False
        ),
        raises=ARG,
        names=("cancel",),
    )


# (blur:1e9 and 1e6 run in the CLI corpus, where a child process can be timed out and its memory capped)
for _value in ("inf", "nan", "-3"):

    def _blur(root, session, value=_value):
        _video(root, width=160, height=96)
        return Call(
            lambda: convert_video(
                root / "in.mp4",
                output_composition=root / "out.mp4",
                background=f"blur:{value}",
                model=session,
                progress=False,
            ),
            raises=(InputError, ValueError),
            ok=True,
            names=("blur",),
            outputs=["out.mp4"],
        )

    case(f"background-blur-{_value}", "13")(_blur)

for _value in (-1.0, math.nan, math.inf, 1e12, 0):

    def _mbps(root, session, value=_value):
        _video(root)
        return Call(
            lambda: convert_video(
                root / "in.mp4",
                output_composition=root / "out.mp4",
                output_video_mbps=value,
                model=session,
                progress=False,
            ),
            raises=ARG,
            names=("output_video_mbps", "mbps", "bit rate"),
        )

    case(f"output_video_mbps-{_value}", "14")(_mbps)

for _value in (-1.0, math.nan, math.inf, 0):

    def _rate(root, session, value=_value):
        gen.frame_folder(root / "frames", 2, 32, 24)
        return Call(
            lambda: convert_video(
                root / "frames", output_alpha=root / "out.mp4", frame_rate=value, model=session, progress=False
            ),
            raises=ARG,
            names=("frame_rate", "frame rate"),
        )

    case(f"frame_rate-{_value}", "14")(_rate)


@case("svg-as-video", "15")
def _(root, session):
    pic = gen.svg(root / "pic.svg")
    return Call(
        lambda: convert_video(pic, output_alpha=root / "out.mp4", model=session, progress=False),
        raises=(InputError,),
        names=("pic.svg",),
    )


@case("svg-as-image", "15")
def _(root, session):
    pic = gen.svg(root / "pic.svg")
    return Call(lambda: matte_image(pic, session), raises=(InputError,), names=("pic.svg",))


@case("image-array-0x0", "19")
def _(root, session):
    return Call(
        lambda: matte_image(np.zeros((0, 0, 3), np.uint8), session),
        raises=(*ARG, InputError),
        names=("0", "empty", "image"),
    )


def _shape_is(h, w):
    def check(matte):
        assert matte.alpha.shape == (h, w) and matte.fgr.shape == (h, w, 3), (matte.alpha.shape, matte.fgr.shape)
        assert np.isfinite(matte.alpha).all() and np.isfinite(matte.fgr).all()

    return check


@case("image-array-1x1", "19", INFERENCE)
def _(root, session):
    return Call(
        lambda: matte_image(np.full((1, 1, 3), 128, np.uint8), session),
        raises=(*ARG, InputError),
        ok=True,
        names=("1x1", "1×1", "small"),
        check=_shape_is(1, 1),
    )


@case("image-file-16x4000", "19", INFERENCE)
def _(root, session):
    img = gen.png(root / "tall.png", 16, 4000)
    return Call(
        lambda: matte_image(img, session), raises=(InputError,), ok=True, names=("tall.png",), check=_shape_is(4000, 16)
    )


for _colour in ((300, 0, 0), (-1, 0, 0), (math.nan, 0, 0)):

    def _composite(root, session, colour=_colour):
        from mattekit import Matte

        matte = Matte(alpha=np.full((4, 4), 0.5, np.float32), fgr=np.full((4, 4, 3), 0.5, np.float32))
        return Call(lambda: matte.composite(colour), raises=(*ARG, InputError), names=("colour", "color", "0..255"))

    case(f"composite-colour-{_colour}", "19")(_composite)


@case("matte_folder-into-itself", "20")
def _(root, session):
    (root / "imgdir").mkdir()
    gen.png(root / "imgdir" / "a.png", 32, 24)
    gen.png(root / "imgdir" / "b.png", 32, 24, seed=2)

    def call():
        result = matte_folder(root / "imgdir", root / "imgdir", model=session, overwrite=True)
        assert not result.done, f"matted into its own input folder: {[o.outputs for o in result.done]}"
        raise OutputError(root / "imgdir", "; ".join(o.reason for o in result.failed))

    return Call(call, raises=(OutputError,), names=("imgdir", "a.png"))


@case("convert_folder-output-names-collide", "20", INFERENCE)
def _(root, session):
    from mattekit import convert_folder

    # a.mp4 and a.mov get their suffix added (a_mp4_composition.mp4): the name a_mp4.mkv already
    # has; its result used to be reported done ("complete output exists") with a.mp4's video
    (root / "in").mkdir()
    _video(root / "in", "a.mp4")
    _video(root / "in", "a.mov", seed=3)
    _video(root / "in", "a_mp4.mkv", seed=4)

    def check(result):
        assert [o.status for o in result.outcomes] == ["done"] * 3, [(o.source, o.status) for o in result.outcomes]
        paths = [p for o in result.outcomes for p in o.outputs]
        assert len(set(paths)) == 3, f"two files share an output: {paths}"

    return Call(
        lambda: convert_folder(root / "in", root / "out", outputs=("alpha",), model=session),
        outputs=["out"],
        check=check,
    )


@case("convert_video-input_resize-over-cap", "17")
def _(root, session):
    # input_resize up to 16384x16384 (268 MP) was accepted, past the video frame cap (8192x4320)
    # that refuses such frames in a file; the cap is lowered here to keep the case small
    _video(root)

    def call():
        old = os.environ.get("MATTEKIT_MAX_VIDEO_PIXELS")
        os.environ["MATTEKIT_MAX_VIDEO_PIXELS"] = str(96 * 64)
        try:
            return convert_video(
                root / "in.mp4", output_alpha=root / "out.mp4", input_resize=(200, 100), model=session, progress=False
            )
        finally:
            if old is None:
                del os.environ["MATTEKIT_MAX_VIDEO_PIXELS"]
            else:
                os.environ["MATTEKIT_MAX_VIDEO_PIXELS"] = old

    return Call(call, raises=ARG, names=("input_resize",))


# a path of the wrong type gave Python's own "expected str, bytes or os.PathLike object, not int"
# (or "'int' object is not iterable"), naming no argument
PATH_TYPE_CALLS = {
    "convert_video-input_source-int": (
        lambda root, s: convert_video(5, output_alpha=root / "o.mp4", model=s),
        "input_source",
    ),
    "convert_video-output_alpha-bytes": (
        lambda root, s: convert_video(root / "in.mp4", output_alpha=b"o.mp4", model=s, progress=False),
        "output_alpha",
    ),
    "matte_folder-inputs-int": (lambda root, s: matte_folder(5, root / "out", model=s), "inputs"),
    "matte_folder-output_dir-None": (
        lambda root, s: matte_folder(root / "a.png", None, model=s),
        "output_dir",
    ),
    "matte_image-list": (lambda root, s: matte_image([[0, 0, 0]], s), "image"),
}
for _case_id, (_fn, _name) in PATH_TYPE_CALLS.items():

    def _path_type(root, session, fn=_fn, name=_name):
        _video(root)
        gen.png(root / "a.png", 8, 8)
        return Call(lambda: fn(root, session), raises=(TypeError,), names=(name,))

    case(_case_id, "12")(_path_type)


@case("convert_video-newline-in-name", "corpus")
def _(root, session):
    gen.text(root / "bad\nname.mp4")
    return Call(
        lambda: convert_video(root / "bad\nname.mp4", output_alpha=root / "o.mp4", model=session, progress=False),
        raises=(InputError,),
        names=("bad\\nname.mp4",),
    )


# -- silently wrong results (item 23) --------------------------------------------------------------


@case("corrupt-middle-of-video", "23", INFERENCE)
def _(root, session):
    gen.video(root / "clean.mp4", frames=24, width=96, height=64, audio=True)
    gen.corrupt_middle(root / "clean.mp4", root / "corrupt.mp4")
    (root / "clean.mp4").unlink()

    def check(result):
        assert result.frames >= 20, f"only {result.frames} of 24 frames matted"
        assert result.warning and "frame" in result.warning, f"no report of lost frames: {result.warning!r}"

    return Call(
        lambda: convert_video(root / "corrupt.mp4", output_alpha=root / "out.mp4", model=session, progress=False),
        outputs=["out.mp4"],
        check=check,
    )


# -- the test ---------------------------------------------------------------------------------------

# case id -> why it is still expected to fail (the issue item and the failing line)
XFAIL: dict[str, str] = {}


@pytest.mark.parametrize("case_id", case_params(CASES, XFAIL))
def test_api_hostile_input(case_id, tmp_path, rvm_session, caplog):
    _item, build, _ = CASES[case_id]
    root = tmp_path / "case"
    root.mkdir()
    call = build(root, rvm_session)
    before = snapshot(root)
    caplog.set_level(logging.WARNING)
    error: BaseException | None = None
    result = None
    try:
        result = call.fn()
    except Exception as exc:  # judged below
        error = exc
    after = snapshot(root)
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert not partials(root), f"partial files left: {partials(root)}"
    if error is None:
        assert not call.raises or call.ok, f"no error raised (expected one of {call.raises})"
        assert_only_declared_changes(before, after, call.outputs, call.removable)
        if call.check:
            call.check(result)
        return
    message = str(error)
    shown = f"{type(error).__module__}.{type(error).__name__}: {message[:300]}"
    assert call.raises and isinstance(error, call.raises), f"raised {shown}; expected one of {call.raises}"
    assert "\n" not in message.strip(), f"not one line: {shown}"
    assert any(n in message for n in call.names), f"the message names none of {call.names}: {shown}"
    assert not RAW_EXCEPTION.search(message), f"a raw exception, not a clear problem: {shown}"
    assert_only_declared_changes(before, after, [], call.removable)
