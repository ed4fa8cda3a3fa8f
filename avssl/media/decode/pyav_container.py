"""Access to a file through PyAV: open, choose streams, seek, decode packet by packet.

`PyAVSource` is one open file. Its `decode_from` seeks once to the keyframe before a target time and
copes with containers that seek imprecisely (MPEG-PS, AVI audio): when a seek lands after the target it
backs off (1 s, 2 s, 4 s, ...) and finally reopens the file and decodes from its start. Undecodable
packets are skipped, so a truncated or damaged file yields the frames that do decode. Given an
`UnpickedFrames` (frame_skipping.py), video decoding looks a few packets ahead and lets the decoder drop
the non-reference frames that no query picks.

Packed-bitstream AVI (DivX/Xvid with B-frames packed into the previous packet, common in HMDB51) gets
frame timestamps out of order although the decoder outputs display order; `has_permuted_frame_times`
recognises it by its few-byte placeholder packets, and readers then time frames by their position.
"""

from __future__ import annotations

import collections
import functools
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from avssl.media.decode.frame_skipping import UnpickedFrames
from avssl.media.decode.info import DecodeError

# Packed-bitstream AVI: how many packets are inspected, and the size of a placeholder packet ("N-VOP").
_PACKED_AVI_PACKETS = 64
_PLACEHOLDER_BYTES = 8
# Consecutive undecodable packets after which a stream is taken to end (a truncated or corrupt file).
_MAX_BAD_PACKETS = 32
# Packets demuxed ahead of the one being decoded, so that the times of the frames that follow it in
# display order are known (B-frame reordering puts them at most a few packets later).
_LOOKAHEAD_PACKETS = 8
# FFmpeg's AVINDEX_DISCARD_FRAME: an index entry an edit list hides (decoded, never displayed).
_INDEX_DISCARD = 2


def open_container(path: str | Path) -> av.container.InputContainer:
    """Open a media file for reading; any failure becomes a DecodeError naming the file."""
    try:
        # metadata_errors="ignore": some real files (HMDB51) carry tags that are not valid UTF-8.
        return av.open(str(path), metadata_errors="ignore")
    except FileNotFoundError:
        raise DecodeError(path, "file not found") from None
    except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
        raise DecodeError(path, f"cannot open as media ({error})") from None


def first_video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first video stream that is not an attached picture (cover art of an audio file)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def first_audio_stream(container: av.container.InputContainer) -> av.AudioStream | None:
    return container.streams.audio[0] if container.streams.audio else None


def frame_times_are_permuted(path: str | Path) -> bool:
    """Whether `path` is packed-bitstream AVI, whose frames get their times from their position."""
    return container_traits(path)[1]


def decode_packet(packet: av.Packet) -> list[av.frame.Frame]:
    """The frames one packet decodes to; none when it does not decode (a damaged packet)."""
    try:
        return packet.decode()
    except av.FFmpegError:
        return []


def container_traits(path: str | Path) -> tuple[frozenset[str], bool]:
    """(FFmpeg format names of the container, whether it is packed-bitstream AVI)."""
    source = PyAVSource(path)
    try:
        formats = frozenset(source.container.format.name.split(","))
        packed = first_video_stream(source.container) is not None and source.has_permuted_frame_times()
        return formats, packed
    finally:
        source.close()


@functools.lru_cache(maxsize=4096)
def _has_placeholder_packets(path: str, size: int, mtime_ns: int) -> bool:
    del size, mtime_ns  # cache key only: a rewritten file is looked at again
    with open_container(path) as container:
        stream = first_video_stream(container)
        for count, packet in enumerate(container.demux(stream)):
            if count >= _PACKED_AVI_PACKETS or (packet.pts is None and packet.size == 0):
                break  # enough seen, or the end of the stream
            if packet.size <= _PLACEHOLDER_BYTES:
                return True
    return False


def frame_time(frame: av.VideoFrame | av.AudioFrame) -> float | None:
    """Presentation time of a decoded frame in seconds (its decoding time when it has none)."""
    stamp = frame.pts if frame.pts is not None else frame.dts
    return None if stamp is None else seconds(stamp, frame.time_base)


def seconds(stamp: int, time_base: Fraction) -> float:
    """`stamp` ticks of `time_base` in seconds: exactly float(stamp * time_base) (one correctly rounded
    integer division), without the Fraction arithmetic that cost ~1 ms per decoded clip."""
    return stamp * time_base.numerator / time_base.denominator


class StreamTicks:
    """A stream's time base as two integers: PyAV builds a new Fraction for every `.time_base` read, which
    the per-packet timing of a decoding pass cannot afford. Results equal the Fraction arithmetic's."""

    def __init__(self, time_base: Fraction):
        self.numerator, self.denominator = time_base.numerator, time_base.denominator
        self.seconds_per_tick = self.numerator / self.denominator  # float(time_base)

    def seconds(self, stamp: int) -> float:
        return stamp * self.numerator / self.denominator

    def stamp_at(self, time: float) -> int:
        """The tick count at `time` seconds, truncated, as int(time / time_base)."""
        return int(time / self.seconds_per_tick)


def nominal_fps(path: str | Path) -> float | None:
    """FFmpeg's average frame rate of the first video stream (header only; None without video)."""
    source = PyAVSource(path)
    try:
        stream = first_video_stream(source.container)
        return None if stream is None else nominal_stream_fps(stream)
    finally:
        source.close()


def nominal_stream_fps(stream: av.VideoStream) -> float | None:
    """avg_frame_rate (what the original code used), else FFmpeg's guesses."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return None


class PyAVSource:
    """One open file and its first video and audio streams; reopened only when decoding must restart
    at the very beginning after something was read."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.container = self._open()
        self.fresh = True  # nothing demuxed yet: decoding starts at the very first packet
        self._index_delay: float | None = None  # see keyframe_before

    def _open(self) -> av.container.InputContainer:
        container = open_container(self.path)
        # The first video and audio streams, looked up once per open container; their time bases when used.
        self._streams = {"video": first_video_stream(container), "audio": first_audio_stream(container)}
        self._ticks: dict[str, StreamTicks] = {}
        for stream in self._streams.values():
            if stream is not None:
                # Data-loader workers parallelise across files: one decoding thread each.
                stream.codec_context.thread_count = 1
        return container

    def reopen(self) -> None:
        self.container.close()
        self.container = self._open()
        self.fresh = True

    def stream(self, kind: str) -> av.VideoStream | av.AudioStream:
        stream = self._streams[kind]
        if stream is None:
            raise DecodeError(self.path, f"no {kind} stream")
        return stream

    def ticks(self, kind: str) -> StreamTicks:
        if kind not in self._ticks:
            self._ticks[kind] = StreamTicks(self.stream(kind).time_base)
        return self._ticks[kind]

    def close(self) -> None:
        self.container.close()

    def has_permuted_frame_times(self) -> bool:
        """True for packed-bitstream AVI (DivX/Xvid with B-frames packed into the previous packet).

        Recognised by the few-byte placeholder packets ("N-VOPs") that follow each packed frame, on a
        separate look at the first packets of an AVI (remembered per file), nothing for other files.
        """
        if "avi" not in self.container.format.name.split(","):
            return False
        stat = os.stat(self.path)
        return _has_placeholder_packets(self.path, stat.st_size, stat.st_mtime_ns)

    def decode_from(
        self, kind: str, target: float, stream_start: float, skip: UnpickedFrames | None = None
    ) -> Iterator[av.frame.Frame]:
        """Decode `kind` frames so that the first one is at or before `target` (or is the stream's first).

        Seeks once to the keyframe before `target`; if the container lands after `target` it backs off
        (1 s, 2 s, ...) and, once the back-off passes the stream start, reopens and decodes from the start.
        With `skip`, the non-reference frames it calls unpicked are not decoded.
        """
        back = 0.0
        while True:
            seek_time = target - back
            at_start = seek_time <= stream_start + 1e-6 or not self._seek(kind, seek_time)
            if at_start and not self.fresh:
                self.reopen()
            self.fresh = False
            frames = self._decoded(kind, skip)
            first = next(frames, None)
            if first is None and at_start:
                return
            first_time = None if first is None else frame_time(first)
            landed_late = first is None or (first_time is not None and first_time > target + 1e-6)
            if landed_late and not at_start:  # past the target, or past the end of the stream
                back = max(1.0, 2.0 * back)
                continue
            yield first
            yield from frames
            return

    def _seek(self, kind: str, time: float) -> bool:
        """Seek to the keyframe at or before `time`; False when the container cannot seek there."""
        stream = self.stream(kind)
        try:
            self.container.seek(self.ticks(kind).stamp_at(time), stream=stream, backward=True)
        except av.FFmpegError:
            return False
        return True

    def keyframe_before(self, time: float, stream_start: float) -> float | None:
        """Estimated presentation time of the last indexed video keyframe at or before `time`, or None.

        The container index holds decoding times; they run ahead of presentation times by the B-frame
        delay, estimated from the first displayed index entry and the stream's first presentation time.
        Entries an edit list discards (cav-mae/KlsG1EnBEjc_000361.mp4: 3.4 s of them, with negative
        times) are not displayed: measuring the delay from them put every keyframe seconds off."""
        entries = self.stream("video").index_entries
        if len(entries) == 0:
            return None
        ticks = self.ticks("video")
        if self._index_delay is None:
            shown = next((entry for entry in entries if not entry.flags & _INDEX_DISCARD), entries[0])
            self._index_delay = stream_start - ticks.seconds(shown.timestamp)
        delay = self._index_delay
        found = entries.search_timestamp(ticks.stamp_at(time - delay), backward=True)
        return None if found < 0 else ticks.seconds(entries[found].timestamp) + delay

    def decode_all(self, kind: str) -> Iterator[av.frame.Frame]:
        """Decode `kind` frames from the very start of the file."""
        if not self.fresh:
            self.reopen()
        self.fresh = False
        return self._decoded(kind)

    def _decoded(self, kind: str, skip: UnpickedFrames | None = None) -> Iterator[av.frame.Frame]:
        """Decoded frames, packet by packet. Undecodable packets are skipped (the first ones after a seek
        into an MPEG program stream are partial); a file none of whose packets decode raises DecodeError.
        With `skip`, each packet whose frame no query picks is decoded with `skip_frame = NONREF`."""
        stream = self.stream(kind)
        context = stream.codec_context
        context.skip_frame = "DEFAULT"  # a previous pass over this stream may have left it changed
        produced, failures, error = False, 0, None
        packets = self.container.demux(stream)
        ticks = self.ticks(kind)
        if skip is not None:
            skip.restart()
            packets = _noted_ahead(packets, skip, ticks)
        while failures < _MAX_BAD_PACKETS:
            try:
                packet = next(packets, None)
                if packet is None:
                    break
                if skip is not None:
                    time = None if packet.pts is None else ticks.seconds(packet.pts)
                    mode = "NONREF" if time is not None and skip.unpicked(time) else "DEFAULT"
                    if context.skip_frame != mode:
                        context.skip_frame = mode
                frames = packet.decode()
            except av.FFmpegError as caught:  # a corrupt or truncated file
                failures, error = failures + 1, caught
                continue
            failures = 0
            for frame in frames:
                produced = True
                yield frame
        if not produced and error is not None:
            raise DecodeError(self.path, f"cannot decode {kind} ({error})")




def _noted_ahead(packets: Iterator[av.Packet], skip: UnpickedFrames, ticks: StreamTicks) -> Iterator[av.Packet]:
    """`packets` delayed by _LOOKAHEAD_PACKETS, each packet's time noted in `skip` when it is demuxed.

    A demuxing error is raised only after the packets already read have been handed on."""
    buffer: collections.deque[av.Packet] = collections.deque()
    try:
        for packet in packets:
            if packet.pts is not None:
                skip.note(ticks.seconds(packet.pts))
            buffer.append(packet)
            if len(buffer) > _LOOKAHEAD_PACKETS:
                yield buffer.popleft()
    except av.FFmpegError:
        while buffer:
            yield buffer.popleft()
        raise
    while buffer:
        yield buffer.popleft()
