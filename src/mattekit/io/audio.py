"""Carry a source's audio track into a written video, interleaved with its frames.

The first audio stream is copied packet by packet when the output container accepts its codec
(AAC into MP4/MOV, Opus or Vorbis into WebM, anything into Matroska); otherwise it is decoded and
encoded again (AAC, or Opus for WebM).
"""

from __future__ import annotations

from pathlib import Path

import av

# containers (by suffix) -> audio codecs they take as they are
COPYABLE = {
    ".mp4": {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"},
    ".m4v": {"aac", "mp3", "alac", "ac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_f32le"},
    ".mkv": None,  # None: any codec
    ".webm": {"opus", "vorbis"},
}
TRANSCODE_TO = {".webm": "libopus"}


class AudioMuxer:
    """Copy or re-encode the first audio stream of ``source`` into ``output``.

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
        self._encoder = None
        self._resampler = None
        self._decoder = None
        try:
            container = av.open(str(source), metadata_errors="ignore")
        except av.error.FFmpegError:
            return
        if not container.streams.audio:
            container.close()
            return
        self._input = container
        in_stream = container.streams.audio[0]
        self._in_stream = in_stream
        codec = in_stream.codec_context.name
        allowed = COPYABLE.get(suffix.lower(), set())
        self.copy = allowed is None or codec in allowed
        self._output = output
        if self.copy:
            self._out_stream = output.add_stream_from_template(in_stream)
        else:
            target = TRANSCODE_TO.get(suffix.lower(), "aac")
            rate = in_stream.codec_context.sample_rate or 48000
            if target == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
                rate = 48000
            self._out_stream = output.add_stream(target, rate=rate)
            layout = in_stream.codec_context.layout.name if in_stream.codec_context.layout else "stereo"
            self._out_stream.codec_context.layout = layout if layout in ("mono", "stereo") else "stereo"
            fmt = self._out_stream.codec_context.codec.audio_formats[0].name
            self._resampler = av.AudioResampler(format=fmt, layout=self._out_stream.codec_context.layout,
                                                rate=rate)
        self._packets = container.demux(in_stream)

    @property
    def active(self) -> bool:
        """True when there is an audio track being carried."""
        return self._input is not None

    def _next(self):
        if self._pending is not None:
            packet, self._pending = self._pending, None
            return packet
        for packet in self._packets:
            if packet.dts is None and packet.pts is None:
                continue
            return packet
        return None

    def _write(self, packet) -> None:
        if self.copy:
            if packet.size == 0:
                return
            packet.stream = self._out_stream
            self._output.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None
            for resampled in self._resampler.resample(frame):
                self._output.mux(self._out_stream.encode(resampled))

    def mux_until(self, seconds: float | None) -> None:
        """Write the audio packets that start before ``seconds`` (all of them for ``None``)."""
        if self._input is None:
            return
        while True:
            packet = self._next()
            if packet is None:
                return
            ts = packet.pts if packet.pts is not None else packet.dts
            if seconds is not None and ts is not None and packet.time_base is not None \
                    and float(ts * packet.time_base) > seconds:
                self._pending = packet
                return
            self._write(packet)

    def finish(self) -> None:
        """Write the rest of the audio and flush the encoder; close the source."""
        if self._input is None:
            return
        try:
            self.mux_until(None)
            if not self.copy:
                for resampled in self._resampler.resample(None):
                    self._output.mux(self._out_stream.encode(resampled))
                self._output.mux(self._out_stream.encode(None))
        finally:
            self.close()

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
            self._input = None
