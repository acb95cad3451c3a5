"""Carry a source's audio tracks into a written video, interleaved with its frames.

Every audio stream of the source is carried, in order (a clip with two tracks, e.g. two
languages, keeps both). A stream is copied packet by packet when the output container accepts its
codec (AAC or PCM into MOV/MP4, Opus or Vorbis into WebM, anything into Matroska); otherwise it is
decoded and encoded again (Opus for WebM, AAC for the rest). Copied packets keep their
timestamps, so the audio timeline is exactly the source's.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

# containers (by suffix) -> audio codecs they take as they are
COPYABLE = {
    ".mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    ".m4v": {"aac", "mp3", "alac", "ac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be", "pcm_f32le"},
    ".mkv": None,  # None: any codec
    ".webm": {"opus", "vorbis"},
}
TRANSCODE_TO = {".webm": "libopus"}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class _Track:
    """One audio stream: its output stream and, when re-encoding, its resampler."""

    def __init__(self, in_stream, output: av.container.OutputContainer, suffix: str):
        self.in_stream = in_stream
        codec = in_stream.codec_context.name
        allowed = COPYABLE.get(suffix, set())
        self.copy = allowed is None or codec in allowed
        self.resampler = None
        self.next_pts = None  # re-encoding: next sample's pts, in 1/rate units
        if self.copy:
            self.out_stream = output.add_stream_from_template(in_stream)
            return
        target = TRANSCODE_TO.get(suffix, "aac")
        rate = in_stream.codec_context.sample_rate or 48000
        if target == "libopus" and rate not in OPUS_RATES:
            rate = 48000
        self.out_stream = output.add_stream(target, rate=rate)
        layout = in_stream.codec_context.layout.name if in_stream.codec_context.layout else "stereo"
        self.out_stream.codec_context.layout = layout if layout in ("mono", "stereo") else "stereo"
        if in_stream.metadata.get("language"):
            self.out_stream.metadata["language"] = in_stream.metadata["language"]
        fmt = self.out_stream.codec_context.codec.audio_formats[0].name
        self.resampler = av.AudioResampler(format=fmt, layout=self.out_stream.codec_context.layout, rate=rate)


class AudioMuxer:
    """Copy or re-encode every audio stream of ``source`` into ``output``.

    Call :meth:`mux_until` with each video frame's time so the file is interleaved, and
    :meth:`finish` once after the last frame. A source without audio makes every call a no-op.

    Args:
        source: the input media file.
        output: an open PyAV output container (before its header is written).
        suffix: the output's file suffix, which decides copy or re-encode.
    """

    def __init__(self, source: Path, output: av.container.OutputContainer, suffix: str):
        self._input = None
        self._packets = None
        self._pending = None
        self._tracks: dict[int, _Track] = {}
        self._output = output
        try:
            container = av.open(str(source), metadata_errors="ignore")
        except av.error.FFmpegError:
            return
        streams = list(container.streams.audio)
        if not streams:
            container.close()
            return
        self._input = container
        for stream in streams:
            self._tracks[stream.index] = _Track(stream, output, suffix.lower())
        self._packets = container.demux(*streams)

    def _next(self):
        if self._pending is not None:
            packet, self._pending = self._pending, None
            return packet
        try:
            for packet in self._packets:
                if packet.dts is None and packet.pts is None:
                    continue
                return packet
        except av.error.FFmpegError:  # the source cannot be read further (cut short, damaged)
            self._packets = iter(())
        return None

    def _write(self, packet) -> None:
        track = self._tracks[packet.stream.index]
        if track.copy:
            if packet.size == 0:
                return
            packet.stream = track.out_stream
            self._output.mux(packet)
            return
        try:
            frames = packet.decode()
        except av.error.FFmpegError:  # a damaged packet: skip it, as ffmpeg does
            return
        for frame in frames:
            if track.next_pts is None:  # keep the source's audio start time
                start = frame.time if frame.time is not None else 0.0
                track.next_pts = max(0, round(start * track.out_stream.codec_context.sample_rate))
            frame.pts = None
            assert track.resampler is not None  # every re-encoded track has one
            for resampled in track.resampler.resample(frame):
                self._encode(track, resampled)

    def _encode(self, track: _Track, frame) -> None:
        if frame is not None:
            rate = track.out_stream.codec_context.sample_rate
            frame.pts = track.next_pts or 0
            frame.time_base = Fraction(1, rate)
            track.next_pts = (track.next_pts or 0) + frame.samples
        self._output.mux(track.out_stream.encode(frame))

    def mux_until(self, seconds: float | None) -> None:
        """Write the audio packets that start before ``seconds`` (all of them for ``None``)."""
        if self._input is None:
            return
        while True:
            packet = self._next()
            if packet is None:
                return
            ts = packet.pts if packet.pts is not None else packet.dts
            if (
                seconds is not None
                and ts is not None
                and packet.time_base is not None
                and float(ts * packet.time_base) > seconds
            ):
                self._pending = packet
                return
            self._write(packet)

    def finish(self, end: float | None = None) -> None:
        """Write the rest of the audio (up to ``end`` seconds when given: the packets that start
        before it) and flush the encoders; close the source."""
        if self._input is None:
            return
        try:
            self.mux_until(None if end is None else end - 1e-6)
            for track in self._tracks.values():
                if track.resampler is not None:  # the re-encoded tracks
                    for resampled in track.resampler.resample(None):
                        self._encode(track, resampled)
                    self._encode(track, None)
        finally:
            self.close()

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
            self._input = None
