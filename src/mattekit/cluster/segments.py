"""Join the outputs of a video's chunks into the final output without re-encoding.

Each chunk is encoded by its worker as its own segment (same container, encoder and settings as
the one-machine writer, no audio). Joining copies the segments' packets one after the other into
the final container (a remux) and carries the source's audio tracks in, interleaved, exactly as
:class:`~mattekit.io.video_writer.VideoWriter` does. Each packet is given the source's own
timestamp of its frame (from the driver's packet scan), converted to the output's time base with
the rounding the one-machine writer's muxer applies, so the frame count, every frame's timestamp
(variable frame rate included) and the audio are those of a one-machine run. (A segment's own
timestamps are not used for that: MP4 stores a segment's start in an edit list in milliseconds,
which moves a segment not starting at 0 by up to a millisecond.) A ``png_sequence`` chunk is a folder of
``<frame index>.png`` files; joining moves them into one folder.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
from fractions import Fraction
from pathlib import Path

import av

from mattekit.errors import OutputError
from mattekit.io.atomic import commit, discard, seal_folder, start_temp
from mattekit.io.audio import AudioMuxer
from mattekit.io.video_writer import VIDEO_FORMATS

# output types a video may be cut for (GIF drops frames by its 10 ms clock: kept in one piece)
SPLITTABLE_TYPES = ("video", "webm", "prores", "png_sequence")


def join_segments(
    segments: list[Path],
    final: Path,
    output_type: str,
    audio_source: Path | None,
    frame_pts: list[list[int]] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """Write ``final`` from the chunk outputs ``segments`` (in order), then rename it into place.

    Args:
        segments: the chunks' outputs, in frame order (files of ``output_type``, or folders of
            PNGs for ``png_sequence``).
        final: the output path; nothing appears under it until it is complete.
        output_type: one of :data:`SPLITTABLE_TYPES`.
        audio_source: the input video whose audio tracks go in, or ``None``.
        frame_pts: per segment, the source timestamps of its frames in presentation order (in
            ``time_base`` units); required for encoded types.
        time_base: the source stream's time base.

    Returns:
        ``final``.

    Raises:
        mattekit.errors.OutputError: a segment is missing or unreadable, holds another number of
            frames than expected, or ``final`` cannot be written.
    """
    temp = start_temp(final)
    try:
        if output_type == "png_sequence":
            temp.mkdir(parents=True)
            for folder in segments:  # links, so a join killed half-way leaves the segments whole
                for png in sorted(folder.glob("*.png")):
                    _link_or_copy(png, temp / png.name)
            seal_folder(temp)
        else:
            if frame_pts is None or time_base is None:
                raise ValueError(f"join_segments: {output_type} needs frame_pts and time_base")
            _remux(
                segments,
                temp,
                final.suffix,
                audio_source if VIDEO_FORMATS[output_type].audio else None,
                frame_pts,
                Fraction(time_base),
            )
    except BaseException:
        discard(temp)
        raise
    commit(temp, final)
    return final


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def rescale(value: int, source: Fraction, target: Fraction) -> int:
    """``value`` in ``source`` units -> ``target`` units, rounded to nearest, halves away from 0
    (FFmpeg's ``av_rescale_q``, which the muxer applies to the one-machine writer's packets)."""
    x = Fraction(value) * source / target
    n = math.floor(abs(x) + Fraction(1, 2))
    return n if x >= 0 else -n


def _open(path: Path):
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(path, f"chunk output unreadable ({exc})") from None


def _remux(
    segments: list[Path],
    temp: Path,
    suffix: str,
    audio_source: Path | None,
    frame_pts: list[list[int]],
    source_tb: Fraction,
) -> None:
    first = _open(segments[0])
    output = av.open(str(temp), mode="w")
    audio = None
    try:
        template = first.streams.video[0]
        stream = output.add_stream_from_template(template)
        stream.time_base = template.time_base
        if template.metadata.get("alpha_mode") == "1":  # VP9's alpha layer (WebM BlockAdditional):
            stream.codec_context.pix_fmt = "yuva420p"  # the muxer flags it from the pixel format
        if template.average_rate:
            stream.codec_context.framerate = template.average_rate
        if audio_source is not None:
            audio = AudioMuxer(audio_source, output, suffix)
        output.start_encoding()
        out_tb = Fraction(stream.time_base)
        first.close()
        last_dts = None
        for path, stamps in zip(segments, frame_pts, strict=True):
            with _open(path) as container:
                seg = container.streams.video[0]
                packets = [p for p in container.demux(seg) if p.pts is not None]
            if len(packets) != len(stamps):
                raise OutputError(path, f"chunk output holds {len(packets)} frames, not {len(stamps)}")
            seg_tb = Fraction(seg.time_base)
            order = {p: i for i, p in enumerate(sorted(p.pts for p in packets))}
            seg_start = min(order)
            out_start = rescale(stamps[0], source_tb, out_tb)
            for packet in packets:
                pts = rescale(stamps[order[packet.pts]], source_tb, out_tb)
                if packet.dts is not None:
                    dts = out_start + rescale(packet.dts - seg_start, seg_tb, out_tb)
                else:  # Matroska stores no decode time for the first reordered frames
                    dts = pts if last_dts is None else last_dts + 1
                # each segment's encoder starts its decode clock before its first frame (B-frame
                # delay); keep decode times strictly increasing across the joins
                if last_dts is not None and dts <= last_dts:
                    dts = last_dts + 1
                if dts > pts:
                    raise OutputError(path, "chunk outputs overlap in time; cannot join them")
                last_dts = dts
                if audio is not None:
                    audio.mux_until(float(dts * out_tb))
                packet.pts, packet.dts, packet.time_base = pts, dts, out_tb
                packet.stream = stream
                output.mux(packet)
        if audio is not None:
            audio.finish()
        output.close()
    except BaseException:
        if audio is not None:
            audio.close()
        with contextlib.suppress(Exception):
            output.close()
        first.close()
        raise
