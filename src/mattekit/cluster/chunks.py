"""Cut a video into chunks at its keyframes (from the packets alone, no decoding) and read one
chunk with a warm-up run-in.

A chunk is a run of frames ``[start, end)`` (0-based, presentation order) beginning at a
keyframe, so a worker can seek straight to it. Robust Video Matting carries a recurrent state from
frame to frame; a chunk matted from an empty state would differ from the one-machine run for its
first frames (a visible seam). :class:`ChunkReader` therefore decodes from ``warmup`` frames
before ``start`` (seeking to the keyframe at or before that frame), and the caller steps the model
through those frames and discards their outputs (docs/cluster.md gives the measured effect of the
warm-up length).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from mattekit.errors import InputError
from mattekit.io.video_reader import VideoFileReader, orient

# frames a chunk should hold at least (chunks are cut at the first keyframe past this length)
DEFAULT_CHUNK_FRAMES = 900


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, end)`` of a video, to be matted after ``warmup`` run-in frames.

    Attributes:
        index: 0-based position of the chunk in the video.
        start, end: first frame and one past the last (presentation order, 0-based).
        warmup: frames decoded and stepped before ``start`` whose outputs are discarded
            (``min(W, start)``).
        seek_pts: pts of the keyframe at or before ``start - warmup`` (decoding starts there),
            ``None`` for the first chunk.
    """

    index: int
    start: int
    end: int
    warmup: int
    seek_pts: int | None

    @property
    def frames(self) -> int:
        """Frames this chunk outputs (``end - start``)."""
        return self.end - self.start


@dataclass(frozen=True)
class FrameIndex:
    """The frames of a video's first video stream, from its packets.

    Attributes:
        pts: every frame's presentation timestamp in ``time_base`` units, sorted.
        keyframes: indices (into ``pts``) of the keyframes.
    """

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]


def scan_frames(path: str | os.PathLike) -> FrameIndex | None:
    """Read the packets of ``path``'s video stream (no decoding) and list frames and keyframes.

    Returns:
        A :class:`FrameIndex`, or ``None`` when the video cannot be cut safely (a packet without
        pts, duplicate timestamps, no keyframe at the first frame): such a video is matted in
        one piece.

    Raises:
        mattekit.errors.InputError: the file is not a readable video.
    """
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise InputError(path, f"not a readable video ({exc})") from None
    try:
        if not container.streams.video:
            raise InputError(path, "has no video stream")
        stream = container.streams.video[0]
        stamps, keys = [], set()
        try:
            for packet in container.demux(stream):
                if packet.size == 0 and packet.pts is None:
                    continue  # the demuxer's final flush packet
                if packet.pts is None:
                    return None
                stamps.append(packet.pts)
                if packet.is_keyframe:
                    keys.add(packet.pts)
        except av.error.FFmpegError:
            return None  # damaged: the one-piece path reports what can be decoded
    finally:
        container.close()
    ordered = sorted(stamps)
    if not ordered or len(set(ordered)) != len(ordered) or ordered[0] not in keys:
        return None
    return FrameIndex(tuple(ordered), tuple(i for i, p in enumerate(ordered) if p in keys))


def plan_chunks(
    index: FrameIndex | None, frame_count: int, chunk_frames: int = DEFAULT_CHUNK_FRAMES, warmup: int = 0
) -> list[Chunk]:
    """Split ``frame_count`` frames into chunks of at least ``chunk_frames`` cut at keyframes.

    Args:
        index: the video's :class:`FrameIndex`, or ``None`` (one chunk).
        frame_count: frames in the video (>= 1).
        chunk_frames: the shortest chunk (>= 1); the last chunk may be shorter only when a
            longer one would need a keyframe the video does not have (it then joins the one
            before it, so no chunk is shorter than ``chunk_frames`` unless the video is).
        warmup: run-in frames before each chunk (>= 0).

    Returns:
        Chunks covering ``0..frame_count`` in order, without overlap.

    Raises:
        ValueError: ``chunk_frames < 1`` or ``warmup < 0``.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, not {chunk_frames}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, not {warmup}")
    starts = [0]
    if index is not None:
        for k in index.keyframes:
            if k - starts[-1] >= chunk_frames and frame_count - k >= chunk_frames:
                starts.append(k)
    chunks = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else frame_count
        run_in = min(warmup, start)
        seek = None
        if start:  # only an index gives starts past 0
            assert index is not None
            first = start - run_in
            assert index is not None  # starts after 0 are keyframes of the index
            seek = index.pts[max(k for k in index.keyframes if k <= first)]
        chunks.append(Chunk(i, start, end, run_in, seek))
    return chunks


class DamagedChunk(InputError):
    """A chunk's frames could not all be decoded (a damaged packet, a decoding error).

    The one-machine reader skips such packets and reports the loss; a chunk cannot, because the
    join needs every frame it planned. The executor then mattes the whole file in one task, which
    gives exactly the one-machine output and warning.
    """


class ChunkReader(VideoFileReader):
    """Decode frames ``[chunk.start - chunk.warmup, chunk.end)`` of a video.

    Frames carry their index in the whole video and their own pts, exactly as
    :class:`~mattekit.io.video_reader.VideoFileReader` gives them for a full decode (same
    conversion to RGB, same display rotation), so the outputs can be joined into the one-machine
    result. ``frame_count`` is the number of frames yielded (warm-up included).

    Args:
        path: the video file.
        chunk: the :class:`Chunk` to read.
        index: the video's :class:`FrameIndex` (maps pts to frame indices).

    Raises:
        mattekit.errors.InputError: as for :class:`VideoFileReader`.
        DamagedChunk: a packet in the chunk (or its warm-up) was damaged, or a frame is missing.
    """

    def __init__(self, path: str | os.PathLike, chunk: Chunk, index: FrameIndex):
        super().__init__(path)
        self.chunk = chunk
        self._position = {p: i for i, p in enumerate(index.pts)}
        self.frame_count = chunk.end - (chunk.start - chunk.warmup)

    def _frames(self):
        if self.chunk.seek_pts is None:
            if self._first is not None:
                first, self._first = self._first, None
                yield first
            yield from self._decoded
            return
        self._first = None
        self._container.seek(self.chunk.seek_pts, stream=self._stream, backward=True, any_frame=False)
        yield from self._decode()

    def __iter__(self) -> Iterator:
        from mattekit.io.video_reader import SourceFrame

        first = self.chunk.start - self.chunk.warmup
        expected = first
        try:
            for frame in self._frames():
                i = self._position.get(frame.pts)
                if i is None or i < first:
                    continue
                if i >= self.chunk.end:
                    break
                if i != expected:
                    raise DamagedChunk(
                        self.path, f"frame {expected} could not be decoded for chunk {self.chunk.index} (got frame {i})"
                    )
                rgb = frame.to_ndarray(format="rgb24")
                if self.orientation:
                    rgb = np.ascontiguousarray(orient(rgb, self.orientation))
                yield SourceFrame(rgb=rgb, index=i, pts=frame.pts)
                expected += 1
                self.frames_read += 1
        except av.error.FFmpegError as exc:
            raise DamagedChunk(
                self.path, f"chunk {self.chunk.index}: decoding failed at frame {expected} ({exc})"
            ) from None
        if self.damaged_packets or self._stopped is not None:  # even when every frame came out:
            # the one-machine run reports the damage, so the whole file goes to it
            raise DamagedChunk(self.path, f"chunk {self.chunk.index}: {self.damaged_packets} damaged packets")
        if expected != self.chunk.end:
            raise DamagedChunk(
                self.path,
                f"chunk {self.chunk.index}: only frames {first}..{expected - 1} "
                f"of {first}..{self.chunk.end - 1} decoded",
            )
