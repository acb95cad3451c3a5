"""Key a green/blue-screen clip into foreground + alpha, written as any transparent type."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from mattekit.errors import InputError, OutputError
from mattekit.keying.key_color import KeySettings, pick_key_settings
from mattekit.keying.key_filter import KeyFilter


@dataclass
class KeyResult:
    """What :func:`key_video` did: frames keyed, seconds, the settings used, files written."""

    frames: int
    seconds: float
    settings: KeySettings | None  # None when the clip had no frame
    outputs: dict[str, Path] = field(default_factory=dict)


def key_video(
    input_source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    output_type: str = "webm",
    output_alpha: str | os.PathLike | None = None,
    color: tuple[int, int, int] | None = None,
    similarity: float | None = None,
    blend: float | None = None,
    method: str = "chromakey",
    clean_plate: str | os.PathLike | None = None,
    despill: bool = True,
    overwrite: bool = False,
    progress=True,
    frame_rate: float | None = None,
) -> KeyResult:
    """Key ``input_source`` (a video file or a folder of frames) with FFmpeg's keying filters.

    Args:
        output: the keyed foreground as RGBA (straight alpha) in ``output_type``
            (``webm``, ``prores``, ``gif`` or ``png_sequence``: types with transparency).
        output_alpha: the alpha alone (grey), in ``output_type`` (any type may hold grey).
        color: screen colour (R, G, B); ``None`` picks it from the first frame's border.
        similarity, blend: keyer thresholds in 0..1 (FFmpeg's units); ``None`` measures them
            (:func:`mattekit.keying.pick_key_settings`).
        method: ``chromakey``, ``hsvkey`` or ``backgroundkey`` (needs ``clean_plate``: a picture of
            the empty scene of the clip's size).
        despill: remove the screen's colour from the foreground.

    Returns:
        :class:`KeyResult`.

    Raises:
        mattekit.errors.InputError: unreadable input or clean plate, clean plate of another size.
        mattekit.errors.OutputError: output exists (without ``overwrite``), equals the input, or a
            type without transparency was asked for the RGBA output.
        ValueError: no output asked for, unknown method or output type, thresholds outside 0..1.
    """
    from mattekit.io.atomic import check_outputs, existing_paths
    from mattekit.io.image import read_image
    from mattekit.io.video_reader import open_source
    from mattekit.io.video_writer import open_writer
    from mattekit.pipeline.progress import Progress
    from mattekit.plan import TRANSPARENT_TYPES, check_path

    if output is None and output_alpha is None:
        raise ValueError("give an output (RGBA) or an alpha output")
    if output is not None and output_type not in TRANSPARENT_TYPES:
        raise OutputError(
            output,
            f"output type {output_type} has no transparency; "
            f"use {', '.join(TRANSPARENT_TYPES)} (or write only the alpha)",
        )
    requested = {k: p for k, p in (("foreground", output), ("alpha", output_alpha)) if p}
    for path in requested.values():
        check_path(Path(path), output_type)
    targets = dict(
        zip(
            requested,
            check_outputs(
                requested.values(),
                existing_paths(input_source, clean_plate),
                overwrite,
                folder=output_type == "png_sequence",
            ),
            strict=True,
        )
    )
    plate = None
    if method == "backgroundkey":
        if clean_plate is None:
            raise ValueError("backgroundkey needs a clean plate (a picture of the empty scene)")
        plate = read_image(clean_plate)
    started = time.perf_counter()
    with open_source(input_source, frame_rate) as source:
        if plate is not None and clean_plate is not None and plate.shape[:2] != (source.height, source.width):
            raise InputError(
                clean_plate,
                f"clean plate is {plate.shape[1]}x{plate.shape[0]}, the clip {source.width}x{source.height}",
            )
        audio = Path(input_source) if source.has_audio else None
        writers = {
            k: open_writer(
                p, output_type, source.width, source.height, source.frame_rate, source.time_base, audio_source=audio
            )
            for k, p in targets.items()
        }
        bar = Progress(progress, source.frame_count, "keying")
        keyer = settings = None
        try:
            for frame in source:
                if keyer is None:
                    settings = pick_key_settings(frame.rgb, color, similarity, blend, method, plate)
                    keyer = KeyFilter(source.width, source.height, settings, method, plate, despill)
                rgba = keyer(frame.rgb)
                if "foreground" in writers:
                    writers["foreground"].write(rgba, frame.pts, frame.index)
                if "alpha" in writers:
                    writers["alpha"].write(rgba[:, :, 3:], frame.pts, frame.index)
                bar.advance()
            outputs = {k: w.close() for k, w in writers.items()}
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        finally:
            bar.close()
        frames = source.frames_read
    return KeyResult(frames=frames, seconds=time.perf_counter() - started, settings=settings, outputs=outputs)
