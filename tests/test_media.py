"""Real-world media, each generated here (PyAV, Pillow, OpenCV): rotated phone video, odd sizes,
variable frame rate with audio, 10-bit, no audio, two audio tracks, 1 frame, 32x32; images in
gray, RGBA, palette, 16-bit, with EXIF orientation, and a large photo."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

import media
from mattekit import convert_video, matte_image
from mattekit.io.image import read_image
from mattekit.io.rgba_reader import read_rgba_frames
from mattekit.io.video_reader import VideoFileReader

RED = (230, 20, 20)
BLUE = (20, 20, 230)


def person_like(width, height, i=0):
    """A dark frame with a bright moving block and a red marker in the top-right corner."""
    img = np.full((height, width, 3), 35, np.uint8)
    img[height // 5 : height - 2, width // 4 + i : width // 2 + i] = 205
    img[: max(2, height // 6), width - max(2, width // 6) :] = RED
    img[height - max(2, height // 6) :, : max(3, width // 5)] = BLUE  # bottom-left: tells mirrors apart
    return img


def write_clip(path, frames=4, size=(64, 48), **options):
    """A test clip of :func:`person_like` frames (``options``: see :func:`media.write_clip`)."""
    return media.write_clip(path, frames, size, images=lambda w, h, i: person_like(w, h, i % 8), **options)


def frames_of(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        out = [(f.to_ndarray(format="rgb24"), f.time, f.rotation) for f in container.decode(stream)]
    return out


# ---- videos ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("degrees", "hflip", "vflip"),
    [
        (90, False, False),
        (-90, False, False),
        (180, False, False),
        (90, True, False),
        (-90, True, False),
        (0, True, False),
        (0, False, True),
    ],
)
def test_rotated_phone_video_comes_out_upright(tmp_path, fake_session, degrees, hflip, vflip):
    clip = write_clip(tmp_path / "phone.mp4", size=(64, 32), rotation=(degrees, hflip, vflip))
    stored = person_like(64, 32)
    # what a player shows: the display matrix turns counter-clockwise, then mirrors
    upright = np.rot90(stored, (degrees // 90) % 4)
    upright = upright[:, ::-1] if hflip else upright
    upright = upright[::-1] if vflip else upright
    with VideoFileReader(clip) as reader:
        assert (reader.width, reader.height) == (upright.shape[1], upright.shape[0])
        first = next(iter(reader)).rgb
    # the red and blue markers are where the player shows them
    for colour in (RED, BLUE):
        got = np.abs(first.astype(int) - colour).max(axis=2) < 40
        expected = np.abs(upright.astype(int) - colour).max(axis=2) < 40
        assert expected.any() and (got == expected).mean() > 0.97
    out = tmp_path / "out.mp4"
    convert_video(clip, output_foreground=out, progress=False, model=fake_session)
    written = frames_of(out)
    assert written[0][0].shape == upright.shape and written[0][2] == 0  # upright pixels, no rotation flag
    assert len(written) == 4


@pytest.mark.parametrize(
    ("output_type", "suffix", "pix_fmt"),
    [
        ("video", ".mp4", "yuv444p"),  # H.264 4:2:0 cannot code odd sizes: 4:4:4 at the exact size
        ("webm", ".webm", "yuva420p"),
        ("prores", ".mov", "yuva444p12le"),
    ],
)
def test_odd_size_is_kept(tmp_path, fake_session, output_type, suffix, pix_fmt):
    frames = tmp_path / "odd"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(person_like(47, 33, i)).save(frames / f"{i}.png")
    out = tmp_path / f"out{suffix}"
    convert_video(frames, output_type=output_type, output_composition=out, progress=False, model=fake_session)
    decoded = list(read_rgba_frames(out))
    assert len(decoded) == 3 and decoded[0].rgba.shape == (33, 47, 4) and decoded[0].pix_fmt == pix_fmt


def test_variable_frame_rate_timestamps_and_audio_are_kept(tmp_path, fake_session):
    rng = np.random.default_rng(3)
    gaps = rng.choice([17, 33, 50, 100], size=60)  # ms between frames: 60, 30, 20, 10 fps mixed
    pts = np.concatenate([[0], np.cumsum(gaps)[:-1]]).tolist()
    seconds = (pts[-1] + 50) / 1000
    clip = write_clip(
        tmp_path / "vfr.mp4",
        frames=60,
        size=(48, 32),
        pts=pts,
        time_base=Fraction(1, 1000),
        audio_tracks=1,
        seconds=seconds,
    )
    out = tmp_path / "out.mp4"
    convert_video(clip, output_composition=out, progress=False, model=fake_session)
    t_in = [t for _, t, _ in frames_of(clip)]
    t_out = [t for _, t, _ in frames_of(out)]
    assert len(t_out) == 60
    assert max(abs(a - b) for a, b in zip(t_in, t_out, strict=True)) < 0.002  # each frame at its source time
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        ain = [float(p.pts * p.time_base) for p in a.demux(audio=0) if p.pts is not None]
        aout = [float(p.pts * p.time_base) for p in b.demux(audio=0) if p.pts is not None]
    assert ain == aout  # audio copied packet for packet: same timeline, so no drift


def test_ten_bit_input(tmp_path, fake_session):
    clip = write_clip(tmp_path / "10bit.mp4", pix_fmt="yuv420p10le")
    with av.open(str(clip)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    with VideoFileReader(clip) as reader:
        first = next(iter(reader)).rgb
    assert first.dtype == np.uint8 and np.abs(first[20:40, 18:30].astype(int) - 205).mean() < 6
    out = tmp_path / "alpha.mp4"
    assert convert_video(clip, output_alpha=out, progress=False, model=fake_session).frames == 4


def test_audio_tracks_none_one_two(tmp_path, fake_session):
    for tracks in (0, 2):
        clip = write_clip(tmp_path / f"a{tracks}.mp4", audio_tracks=tracks)
        for suffix, output_type, codec in ((".mp4", "video", "aac"), (".webm", "webm", "opus")):
            out = tmp_path / f"out{tracks}{suffix}"
            convert_video(clip, output_type=output_type, output_composition=out, progress=False, model=fake_session)
            with av.open(str(out)) as c:
                assert [s.codec_context.name for s in c.streams.audio] == [codec] * tracks
                assert len(list(c.decode(video=0))) == 4


@pytest.mark.parametrize(("frames", "size"), [(1, (64, 48)), (3, (32, 32))])
def test_one_frame_and_tiny_frames(tmp_path, fake_session, frames, size):
    clip = write_clip(tmp_path / "c.mp4", frames=frames, size=size)
    out = tmp_path / "out.webm"
    result = convert_video(clip, output_type="webm", output_composition=out, progress=False, model=fake_session)
    decoded = list(read_rgba_frames(out))
    assert result.frames == len(decoded) == frames
    assert decoded[0].rgba.shape == (size[1], size[0], 4)


# ---- images ------------------------------------------------------------------------------------


def test_image_modes(tmp_path):
    base = person_like(40, 30)
    gray = base[:, :, 1]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(np.dstack([base, np.full((30, 40), 255, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(base).quantize(16).save(tmp_path / "pal.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    import cv2

    cv2.imwrite(str(tmp_path / "rgb16.png"), base[:, :, ::-1].astype(np.uint16) * 257)
    with Image.open(tmp_path / "gray16.png") as im:
        assert im.mode.startswith("I")
    for name, expected in (
        ("gray.png", np.repeat(gray[:, :, None], 3, 2)),
        ("rgba.png", base),
        ("gray16.png", np.repeat(gray[:, :, None], 3, 2)),
        ("rgb16.png", base),
    ):
        got = read_image(tmp_path / name)
        assert got.shape == (30, 40, 3) and got.dtype == np.uint8, name
        assert np.abs(got.astype(int) - expected).max() <= 1, name
    pal = read_image(tmp_path / "pal.png")
    assert pal.shape == (30, 40, 3) and np.abs(pal.astype(int) - base).mean() < 4


def test_transparent_palette_and_rgba_images_are_matted(tmp_path, fake_session):
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., :3] = person_like(64, 48)
    rgba[..., 3] = 255
    rgba[:, :8, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "cut.png")
    Image.fromarray(rgba).convert("P").save(tmp_path / "cutp.png", transparency=0)
    for name in ("cut.png", "cutp.png"):
        matte = matte_image(tmp_path / name, fake_session)
        assert matte.alpha.shape == (48, 64) and matte.rgba().shape == (48, 64, 4)


def test_exif_orientation_is_applied(tmp_path):
    stored = person_like(60, 40)  # landscape as stored by the camera
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = read_image(tmp_path / "phone.jpg")
    assert shown.shape == (60, 40, 3)
    expected = np.rot90(stored, -1)  # clockwise
    assert np.abs(shown.astype(int) - expected).mean() < 6


@pytest.mark.slow
def test_large_photo_reads_in_bounded_memory(tmp_path):
    """An 8000x6000 JPEG is read with peak memory close to its 144 MB of RGB pixels."""
    path = tmp_path / "big.jpg"
    img = Image.new("RGB", (8000, 6000), (120, 130, 140))
    img.paste((200, 60, 60), (3000, 1000, 5000, 6000))
    img.save(path, quality=85)
    del img
    # VmHWM: this process's own peak (ru_maxrss would include the forking test runner's)
    code = (
        "from mattekit.io.image import read_image; "
        f"a = read_image({str(path)!r}); "
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]; "
        "print(a.shape, int(hwm) // 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(")")
    assert out[0] + ")" == "(6000, 8000, 3)"
    peak_mb = int(out[1])
    # Pillow holds 4 bytes a pixel (192 MB), the RGB array 144 MB, the interpreter ~60 MB
    assert peak_mb < 500, f"peak RSS {peak_mb} MB"
