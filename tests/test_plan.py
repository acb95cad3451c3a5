"""The output plan (mattekit.plan): one place for the rules of outputs, output types and
backgrounds, one vocabulary, and the old spellings that still work."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

from mattekit import matte_folder
from mattekit.cli.main import main
from mattekit.compose.background import BlurBackground, ColorBackground, TransparentBackground, VideoBackground
from mattekit.compose.render import render_still
from mattekit.errors import ParameterError, ParameterTypeError
from mattekit.plan import IMAGE, OLD_OUTPUTS, OLD_VIDEO_FORMATS, OutputPlan, default_output_type, deprecation
from media import write_clip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outputs": {}}, "outputs: no output requested (give a composition, alpha or foreground output)"),
        (
            {"outputs": {}, "source": "clip.mp4"},
            "clip.mp4: no output requested (give a composition, alpha or foreground output)",
        ),
        ({"outputs": {"composite": "a.mp4"}}, "outputs: must be among composition, alpha, foreground, not composite"),
        (
            {"outputs": "composition,transparent"},
            "outputs: must be among composition, alpha, foreground, not transparent",
        ),
        (
            {"outputs": {"alpha": "a.mp4"}, "output_type": "mp4"},
            "output_type: must be one of png_sequence, video, webm, prores, gif, not 'mp4'",
        ),
        (
            {"outputs": {"alpha": "a.mp4"}, "output_type": "webm"},
            "a.mp4: output type webm writes .webm or .mkv files, not .mp4",
        ),
        (
            {"outputs": {"alpha": "a"}, "output_type": "video"},
            "a: output type video writes .mp4 or .m4v or .mov or .mkv files, not a name without suffix",
        ),
        (
            {"outputs": {"composition": "a.gif"}, "output_type": IMAGE},
            "a.gif: an image output is written as .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp, not .gif",
        ),
        (
            {"outputs": {"composition": "a.mp4"}, "background": "transparent"},
            "background: transparent needs an output type that keeps alpha (png_sequence, webm, prores, gif), "
            "not video",
        ),
        (
            {"outputs": {"composition": "a.jpg"}, "output_type": IMAGE, "background": " Transparent "},
            "background: transparent needs a picture format that keeps alpha (.png, .webp, .tif, .tiff), not .jpg",
        ),
        (
            {"outputs": {"alpha": "a.webm"}, "output_type": "webm", "preset": "fast"},
            "preset: applies to the video (H.264) output type only, not webm",
        ),
        (
            {"outputs": {"alpha": "a.mp4"}, "preset": "turbo"},
            "preset: must be one of ultrafast, superfast, veryfast, "
            "faster, fast, medium, slow, slower, veryslow, not 'turbo'",
        ),
        (
            {"outputs": {"alpha": "a.mp4"}, "mbps": 0},
            "output_video_mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not 0",
        ),
        (
            {"outputs": {"alpha": "a.mp4"}, "mbps": float("nan")},
            "output_video_mbps: must be a number in [0.01, 1000] Mbit/s (or left out for quality-based), not nan",
        ),
    ],
)
def test_each_rule_is_one_line_naming_the_parameter_or_file(kwargs, message):
    with pytest.raises(ParameterError) as caught:
        OutputPlan(**kwargs)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError) and caught.value.exit_code == 2


def test_types_are_checked_too():
    with pytest.raises(ParameterTypeError, match=r"^overwrite: must be True or False, not 'no'$"):
        OutputPlan({"alpha": "a.mp4"}, overwrite="no")
    with pytest.raises(ParameterTypeError, match=r"^output_video_mbps: must be a number"):
        OutputPlan({"alpha": "a.mp4"}, mbps="4")


def test_transparent_takes_one_form_and_the_default_follows_the_type():
    for spec in ("transparent", "TRANSPARENT", TransparentBackground()):
        plan = OutputPlan({"composition": "c.webm"}, "webm", spec)
        assert type(plan.background) is TransparentBackground and plan.transparent
        assert plan.image_kind("composition") == "rgba"
    assert type(OutputPlan({"composition": "c.webm"}, "webm").background) is TransparentBackground
    assert type(OutputPlan({"composition": "c"}, "png_sequence").background) is TransparentBackground
    opaque = OutputPlan({"composition": "c.mp4", "foreground": "f.mp4", "alpha": "a.mp4"})
    assert opaque.background.rgb == (120, 255, 155)  # RVM's green
    assert [opaque.image_kind(k) for k in ("composition", "foreground", "alpha")] == ["composite", "rgb", "gray"]
    webm = OutputPlan({"composition": "c.webm", "foreground": "f.webm"}, "webm", "white")
    assert webm.background.rgb == (255, 255, 255) and webm.image_kind("foreground") == "rgba"
    # no composition: the background is not read (and may be anything RVM would ignore)
    assert OutputPlan({"alpha": "a.mp4"}, background="no/such/file.png").background is None
    assert default_output_type("transparent") == "webm" and default_output_type("white") == "video"


def test_batch_plan_names_outputs_and_keeps_one_background(tmp_path):
    plan = OutputPlan("composition, alpha", "webm", "blur:5", mbps=2, overwrite=False)
    assert plan.kinds == ("composition", "alpha") and plan.paths == {}
    names = plan.named(tmp_path / "sub", "clip")
    assert names == {
        "composition": tmp_path / "sub" / "clip_composition.webm",
        "alpha": tmp_path / "sub" / "clip_alpha.webm",
    }
    one = plan.at(names, overwrite=True)
    assert one.paths == names and one.overwrite and not plan.overwrite
    assert one.background is plan.background and one.bit_rate == 2_000_000  # parsed once, shared
    assert plan.at({"alpha": names["alpha"]}).background is None
    with pytest.raises(ParameterError, match=r"^outputs: foreground not in this plan \(composition, alpha\)$"):
        plan.at({"foreground": tmp_path / "f.webm"})
    image = OutputPlan(["foreground", "alpha", "composition"], IMAGE, "white")
    assert {k: p.name for k, p in image.named(tmp_path, "a").items()} == {
        "foreground": "a.png",
        "alpha": "a_alpha.png",
        "composition": "a_composition.jpg",
    }
    assert image.named(tmp_path, "a")["composition"].suffix == ".jpg"
    assert (
        OutputPlan(["composition"], IMAGE, "transparent").named(tmp_path, "a")["composition"].name
        == "a_composition.png"
    )


def test_old_server_spellings_map_to_the_vocabulary():
    assert OLD_VIDEO_FORMATS == {"mp4": "video", "webm": "webm", "png": "png_sequence"}
    assert OLD_OUTPUTS == {"composite": ("composition", None), "transparent": ("composition", "transparent")}
    assert deprecation("--composite", "--background") == "--composite is deprecated; use --background"


def test_one_function_renders_every_output_picture():
    rng = np.random.default_rng(0)
    alpha = rng.random((5, 7), dtype=np.float32)
    fgr = rng.random((5, 7, 3), dtype=np.float32)
    expect_alpha = np.floor(np.clip(alpha * 255 + 0.5, 0, 255)).astype(np.uint8)
    assert np.array_equal(render_still("gray", alpha, fgr), expect_alpha)
    rgba = render_still("rgba", alpha, fgr)
    assert rgba.shape == (5, 7, 4) and np.array_equal(rgba[..., 3], expect_alpha)
    assert np.array_equal(render_still("rgb", alpha, fgr), rgba[..., :3])
    over = render_still("composite", alpha, fgr, ColorBackground((0, 0, 255)))
    expect = np.floor(np.clip(alpha[..., None] * (fgr * 255 - [0, 0, 255]) + [0, 0, 255] + 0.5, 0, 255))
    assert np.abs(over.astype(int) - expect).max() <= 1  # float32 arithmetic against float64
    with pytest.raises(ValueError, match="opaque background"):
        render_still("composite", alpha, fgr, TransparentBackground())


def test_backgrounds_travel_to_cluster_workers(tmp_path):
    bg = VideoBackground(write_clip(tmp_path / "bg.mp4", frames=3, size=(32, 16), rate=10))
    before = bg.frame(2, 16, 32).copy()
    copy = pickle.loads(pickle.dumps(bg))
    assert np.array_equal(copy.frame(2, 16, 32), before)
    assert isinstance(pickle.loads(pickle.dumps(BlurBackground(3))), BlurBackground)
    bg.close()
    copy.close()


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    img = np.full((24, 32, 3), 40, np.uint8)
    img[6:20, 10:22] = 220
    Image.fromarray(img).save(folder / "a.png")
    return folder


def test_matte_folder_background_and_its_old_name(photos, tmp_path, fake_session):
    new = matte_folder(photos, tmp_path / "new", background="white", model=fake_session)
    assert [o.status for o in new.outcomes] == ["done"]
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["a.png", "a_composition.jpg"]
    with pytest.warns(FutureWarning, match=r"^composite= is deprecated; use background=$") as caught:
        old = matte_folder(photos, tmp_path / "old", composite="white", model=fake_session)
    assert caught[0].filename == __file__  # points at the caller
    assert [o.status for o in old.outcomes] == ["done"]
    for name in ("a.png", "a_composition.jpg"):
        assert np.array_equal(
            np.asarray(Image.open(tmp_path / "new" / name)), np.asarray(Image.open(tmp_path / "old" / name))
        )
    warnings.simplefilter("ignore", FutureWarning)
    with pytest.raises(TypeError, match="both background= and its old name composite="):
        matte_folder(photos, tmp_path / "x", background="white", composite="black", model=fake_session)


def test_cli_image_background_and_deprecated_composite(photos, tmp_path, capsys):
    assert main(["image", str(photos), "-o", str(tmp_path / "new"), "-b", "white", "--model", "fake", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert (
        main(["image", str(photos), "-o", str(tmp_path / "old"), "--composite", "white", "--model", "fake", "-q"]) == 0
    )
    assert capsys.readouterr().err.splitlines() == ["mattekit: warning: --composite is deprecated; use --background"]
    for name in ("a.png", "a_composition.jpg"):
        assert np.array_equal(
            np.asarray(Image.open(tmp_path / "new" / name)), np.asarray(Image.open(tmp_path / "old" / name))
        )
    assert (
        main(
            ["image", str(photos), "-o", str(tmp_path / "x"), "-b", "white", "--composite", "black", "--model", "fake"]
        )
        == 2
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--output-type", "video", "-b", "transparent"],
            "mattekit: error: --background: transparent needs an output type that keeps alpha "
            "(png_sequence, webm, prores, gif), not video",
        ),
        (
            ["--output-type", "webm", "--preset", "fast"],
            "mattekit: error: --preset: applies to the video (H.264) output type only, not webm",
        ),
    ],
)
def test_cli_video_plan_errors_name_the_option(photos, tmp_path, capsys, args, line):
    out = tmp_path / ("o.webm" if "webm" in args else "o.mp4")
    assert main(["video", str(photos), "-c", str(out), "--model", "fake", *args]) == 2
    assert capsys.readouterr().err.splitlines() == [line]
    assert not out.exists()


def test_cli_video_batch_outputs_error(photos, tmp_path, capsys):
    assert (
        main(["video", str(photos), "-o", str(tmp_path / "out"), "--outputs", "composite,alpha", "--model", "fake"])
        == 2
    )
    assert capsys.readouterr().err.splitlines() == [
        "mattekit: error: --outputs: must be among composition, alpha, foreground, not composite"
    ]


def test_a_prebuilt_plan_replaces_the_options_it_holds(photos, tmp_path, fake_session):
    from mattekit import convert_folder
    from mattekit.batch import image_plan

    with pytest.raises(TypeError, match=r"^give either plan= or outputs, background, not both$"):
        convert_folder(photos, tmp_path / "v", plan=OutputPlan("alpha"), outputs=("alpha",), background="red")
    with pytest.raises(TypeError, match=r"^give either plan= or alpha, not both$"):
        matte_folder(photos, tmp_path / "i", plan=image_plan(), alpha=True)
    result = matte_folder(photos, tmp_path / "i", plan=image_plan(alpha=True), model=fake_session)
    assert [o.status for o in result.outcomes] == ["done"]
    assert sorted(p.name for p in (tmp_path / "i").iterdir()) == ["a.png", "a_alpha.png"]
