"""PyAV backend: FFmpeg bundled in the `av` wheel, so it works everywhere (the portable fallback).

Video is read in one forward pass: seek once to the keyframe before the first needed time, decode
forward, and hand every query time the last frame whose timestamp is <= it (`NearestFramePicker`), so
each needed frame is converted to RGB once however many windows share it. Audio is decoded once over
the union of the windows and resampled to mono float with `av.AudioResampler`.

Two container quirks are handled here and documented because they change which frame is which:
* Packed-bitstream AVI (DivX/Xvid with B-frames, common in HMDB51): the frame timestamps FFmpeg attaches
  come out permuted (1, 2, 4, 3, ...), although the decoder's output order is the display order. We
  recognise it by its placeholder packets and decode such files from the start, giving frame i the time
  first_time + i/fps (AVI is constant-rate by construction). Any other file whose decoded timestamps go
  backwards is read the same way.
* Imprecise seeking (MPEG-PS, AVI audio): when a seek lands after the time asked for, we seek again
  further back (1 s, 2 s, 4 s, ...) and finally reopen the file and decode from its start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import torch

from avssl.media.decode.info import AudioFacts, DecodeError, MediaInfo, VideoFacts, assemble_media_info
from avssl.media.decode.timeline import rot90_turns, rotation_from_display_matrix

NAME = "pyav"

# Audio decoded before the first window and after the last one, so that the codec's overlapped
# transforms (AAC/MP3) and the resampler's filter have settled where the windows are cut.
AUDIO_MARGIN_S = 0.1
# Packed-bitstream AVI: how many packets are inspected, and the size of a placeholder packet.
_PACKED_AVI_PACKETS = 64
_PLACEHOLDER_BYTES = 8
# Consecutive undecodable packets after which a stream is taken to end (a truncated or corrupt file).
_MAX_BAD_PACKETS = 32


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
    source = _Source(path)
    try:
        return first_video_stream(source.container) is not None and source.has_permuted_frame_times()
    finally:
        source.close()


def decode_packet(packet: av.Packet) -> list[av.frame.Frame]:
    """The frames one packet decodes to; none when it does not decode (a damaged packet)."""
    try:
        return packet.decode()
    except av.FFmpegError:
        return []


def container_traits(path: str | Path) -> tuple[frozenset[str], bool]:
    """(FFmpeg format names of the container, whether it is packed-bitstream AVI)."""
    source = _Source(path)
    try:
        formats = frozenset(source.container.format.name.split(","))
        packed = first_video_stream(source.container) is not None and source.has_permuted_frame_times()
        return formats, packed
    finally:
        source.close()


def _frame_time(frame: av.VideoFrame | av.AudioFrame) -> float | None:
    stamp = frame.pts if frame.pts is not None else frame.dts
    return None if stamp is None else float(stamp * frame.time_base)


class TimesGoBackwards(Exception):
    """Decoded frame timestamps went backwards although the decoder outputs display order."""


class VideoClock:
    """Presentation times of decoded video frames, in output (= display) order.

    `permuted=True` (packed AVI) replaces the scrambled timestamps by first_time + i/fps. Otherwise a
    timestamp that does not increase raises `TimesGoBackwards`, and the caller starts over permuted.
    """

    def __init__(self, fps: float, permuted: bool):
        self.fps = fps
        self.permuted = permuted
        self.count = 0
        self.first_time: float | None = None
        self.last_time: float | None = None

    def time_of(self, frame: av.VideoFrame) -> float:
        raw = _frame_time(frame)
        if self.first_time is None:
            self.first_time = raw if raw is not None else 0.0
        if self.permuted or raw is None:
            time = self.first_time + self.count / self.fps
        else:
            time = raw
            if self.last_time is not None and time <= self.last_time:
                raise TimesGoBackwards
        self.count += 1
        self.last_time = time
        return time

    def restart(self) -> None:
        """The next frame follows a jump ahead: do not compare its time with the last one."""
        self.last_time = None


def nominal_fps(path: str | Path) -> float | None:
    """FFmpeg's average frame rate of the first video stream (header only; None without video)."""
    source = _Source(path)
    try:
        stream = first_video_stream(source.container)
        return None if stream is None else _nominal_fps(stream)
    finally:
        source.close()


def _nominal_fps(stream: av.VideoStream) -> float | None:
    """avg_frame_rate (what the original code used), else FFmpeg's guesses."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return None


class _Source:
    """One open file with its chosen streams; reopened only when a seek overshoots back to the start."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.container = self._open()
        self.fresh = True  # nothing demuxed yet: decoding starts at the very first packet

    def _open(self) -> av.container.InputContainer:
        container = open_container(self.path)
        for stream in (first_video_stream(container), first_audio_stream(container)):
            if stream is not None:
                # Data-loader workers parallelise across files: one decoding thread each.
                stream.codec_context.thread_count = 1
        return container

    def reopen(self) -> None:
        self.container.close()
        self.container = self._open()
        self.fresh = True

    def stream(self, kind: str) -> av.VideoStream | av.AudioStream:
        stream = first_video_stream(self.container) if kind == "video" else first_audio_stream(self.container)
        if stream is None:
            raise DecodeError(self.path, f"no {kind} stream")
        return stream

    def close(self) -> None:
        self.container.close()

    def has_permuted_frame_times(self) -> bool:
        """True for packed-bitstream AVI (DivX/Xvid with B-frames packed into the previous packet).

        Recognised by the few-byte placeholder packets ("N-VOPs") that follow each packed frame. Reads
        the first packets of an AVI, nothing of other files.
        """
        if "avi" not in self.container.format.name.split(","):
            return False
        self.fresh = False
        for count, packet in enumerate(self.container.demux(self.stream("video"))):
            if count >= _PACKED_AVI_PACKETS or (packet.pts is None and packet.size == 0):
                break  # enough seen, or the end of the stream
            if packet.size <= _PLACEHOLDER_BYTES:
                return True
        return False

    def decode_from(self, kind: str, target: float, stream_start: float) -> Iterator[av.frame.Frame]:
        """Decode `kind` frames so that the first one is at or before `target` (or is the stream's first).

        Seeks once to the keyframe before `target`; if the container lands after `target` it backs off
        (1 s, 2 s, ...) and, once the back-off passes the stream start, reopens and decodes from the start.
        """
        back = 0.0
        while True:
            seek_time = target - back
            at_start = seek_time <= stream_start + 1e-6 or not self._seek(kind, seek_time)
            if at_start and not self.fresh:
                self.reopen()
            self.fresh = False
            frames = self._decoded(kind)
            first = next(frames, None)
            if first is None and at_start:
                return
            first_time = None if first is None else _frame_time(first)
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
            self.container.seek(int(time / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            return False
        return True

    def keyframe_before(self, time: float, stream_start: float) -> float | None:
        """Estimated presentation time of the last indexed video keyframe at or before `time`, or None.

        The container index holds decoding times; they run ahead of presentation times by the B-frame
        delay, estimated from the first index entry and the stream's first presentation time."""
        stream = self.stream("video")
        entries = stream.index_entries
        if len(entries) == 0:
            return None
        delay = stream_start - float(entries[0].timestamp * stream.time_base)
        found = entries.search_timestamp(int((time - delay) / stream.time_base), backward=True)
        return None if found < 0 else float(entries[found].timestamp * stream.time_base) + delay

    def decode_all(self, kind: str) -> Iterator[av.frame.Frame]:
        """Decode `kind` frames from the very start of the file."""
        if not self.fresh:
            self.reopen()
        self.fresh = False
        return self._decoded(kind)

    def _decoded(self, kind: str) -> Iterator[av.frame.Frame]:
        """Decoded frames, packet by packet. Undecodable packets are skipped (the first ones after a seek
        into an MPEG program stream are partial); a file none of whose packets decode raises DecodeError."""
        stream = self.stream(kind)
        produced, failures, error = False, 0, None
        packets = self.container.demux(stream)
        while failures < _MAX_BAD_PACKETS:
            try:
                packet = next(packets, None)
                if packet is None:
                    break
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


class NearestFramePicker:
    """Consumes frames in presentation order; each sorted query gets the last frame with time <= query.

    Queries before the first frame get the first frame, queries after the last frame the last one.
    `convert` runs once per chosen frame.
    """

    def __init__(self, queries: np.ndarray, convert: Callable[[av.VideoFrame], torch.Tensor]):
        self.queries = queries
        self.convert = convert
        self.answers: list[torch.Tensor | None] = [None] * len(queries)
        self.next = 0
        self.previous: av.VideoFrame | None = None
        self.previous_tensor: torch.Tensor | None = None

    @property
    def done(self) -> bool:
        return self.next >= len(self.queries)

    @property
    def pending(self) -> float:
        """The earliest query not answered yet."""
        return float(self.queries[self.next])

    def restart(self) -> None:
        """The frames that follow are not adjacent to the previous one (the decoder jumped ahead)."""
        self.previous, self.previous_tensor = None, None

    def push(self, time: float, frame: av.VideoFrame) -> None:
        while not self.done and self.queries[self.next] < time:
            self._answer(self.previous if self.previous is not None else frame)
        if not self.done:
            self.previous, self.previous_tensor = frame, None

    def finish(self) -> list[torch.Tensor]:
        while not self.done:
            self._answer(self.previous)
        return self.answers  # type: ignore[return-value]

    def _answer(self, frame: av.VideoFrame) -> None:
        if frame is self.previous:
            if self.previous_tensor is None:
                self.previous_tensor = self.convert(frame)
            tensor = self.previous_tensor
        else:  # a query before the very first frame
            tensor = self.convert(frame)
        self.answers[self.next] = tensor
        self.next += 1


def upright_rgb(frame: av.VideoFrame, size: tuple[int, int] | None) -> torch.Tensor:
    """uint8 [3, H, W], upright; `size` is the upright (height, width) to resize to, or None.

    As TorchCodec does: convert to RGB at full size, then resize bilinearly in RGB, then rotate.
    """
    turns = rot90_turns(rotation_from_display_matrix(frame.rotation))
    rgb = frame.reformat(format="rgb24")
    if size is not None:
        height, width = size if turns % 2 == 0 else size[::-1]
        if (height, width) != (rgb.height, rgb.width):
            rgb = rgb.reformat(width=width, height=height, interpolation="BILINEAR")
    tensor = torch.from_numpy(rgb.to_ndarray()).permute(2, 0, 1)
    if turns:
        tensor = torch.rot90(tensor, turns, dims=(1, 2))
    return tensor.contiguous()


def read_frames(
    path: str | Path, queries: np.ndarray, info: MediaInfo, size: tuple[int, int] | None
) -> list[torch.Tensor]:
    """For sorted query times, the frame on screen at each (see timeline.py); one forward pass."""
    source = _Source(path)
    try:
        if not source.has_permuted_frame_times():
            try:
                return _pick_frames(source, info, queries, size, permuted=False)
            except TimesGoBackwards:
                pass
        return _pick_frames(source, info, queries, size, permuted=True)
    finally:
        source.close()


def _pick_frames(
    source: _Source, info: MediaInfo, queries: np.ndarray, size: tuple[int, int] | None, permuted: bool
) -> list[torch.Tensor]:
    """Decode forward from the first query, handing each query its frame.

    Where the next query lies beyond the next keyframe, the decoder jumps ahead to that keyframe instead
    of decoding the frames in between (not for packed AVI, which is read from the start to the end).
    """
    clock = VideoClock(info.fps or 1.0, permuted)
    picker = NearestFramePicker(queries, lambda frame: upright_rgb(frame, size))
    frames = source.decode_all("video") if permuted else source.decode_from("video", picker.pending, info.video_start)
    jumped_to: set[float] = set()  # each keyframe is jumped to once, even if the seek lands earlier
    while not picker.done:
        frame = next(frames, None)
        if frame is None:
            break
        time = clock.time_of(frame)
        picker.push(time, frame)
        if permuted or picker.done:
            continue
        keyframe = source.keyframe_before(picker.pending, info.video_start)
        if keyframe is not None and keyframe > time + 1e-6 and keyframe not in jumped_to:
            jumped_to.add(keyframe)
            picker.restart()
            clock.restart()
            frames = source.decode_from("video", picker.pending, info.video_start)
    if picker.previous is None and not picker.done:
        raise DecodeError(source.path, "no video frame decodes")
    return picker.finish()


def read_native_samples(path: str | Path, start: float, stop: float, info: MediaInfo) -> tuple[torch.Tensor, float, int]:
    """Mono float32 samples at the stream's own rate covering [start, stop) plus AUDIO_MARGIN_S on each

    side (as far as the stream goes): (samples [N], time of the first, sample rate)."""
    source = _Source(path)
    try:
        rate = source.stream("audio").rate
        to_float = av.AudioResampler(format="fltp")  # sample format only: same rate, same channels
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        next_time = 0.0
        for frame in source.decode_from("audio", start - AUDIO_MARGIN_S, info.audio_start):
            time = _frame_time(frame)
            time = next_time if time is None else time
            if time >= stop + AUDIO_MARGIN_S:
                break
            next_time = time + frame.samples / frame.sample_rate
            if first_time is None:
                first_time = time
            chunks.extend(out.to_ndarray().mean(axis=0) for out in to_float.resample(frame))
        if first_time is None or not chunks:
            return torch.zeros(0, dtype=torch.float32), start, rate
        return torch.from_numpy(np.concatenate(chunks).astype(np.float32)), first_time, rate
    finally:
        source.close()


def probe(path: str | Path, count_frames: bool) -> MediaInfo:
    """Facts of the first video and first audio stream (see MediaInfo). Decodes the first frame of each

    (true start times, rotation) or, with `count_frames`, every frame and sample (true counts and ends)."""
    source = _Source(path)
    try:
        has_video = first_video_stream(source.container) is not None
        has_audio = first_audio_stream(source.container) is not None
        duration = source.container.duration / av.time_base if source.container.duration else None
        video = _probe_video(source, count_frames) if has_video else None
        audio = _probe_audio(source, count_frames) if has_audio else None
        return assemble_media_info(str(path), duration, video, audio)
    finally:
        source.close()


def _probe_video(source: _Source, count_frames: bool) -> VideoFacts | None:
    stream = source.stream("video")
    fps = _nominal_fps(stream)
    header_duration = float(stream.duration * stream.time_base) if stream.duration is not None else None
    permuted = source.has_permuted_frame_times()
    try:
        scan = _scan_video(source, fps, permuted, count_frames)
    except TimesGoBackwards:
        scan = _scan_video(source, fps, True, count_frames)
    if scan is None:
        return None  # a video stream none of whose frames decodes is no video
    clock, first = scan
    if fps is None:
        span = clock.last_time - clock.first_time
        fps = (clock.count - 1) / span if clock.count > 1 and span > 0 else None
    if count_frames:
        # The last frame lasts one nominal frame: containers disagree on its own duration.
        video_duration = clock.last_time + (1.0 / fps if fps else 0.0) - clock.first_time
    else:
        video_duration = header_duration
    rotation = rotation_from_display_matrix(first.rotation)
    height, width = (first.height, first.width) if rotation % 180 == 0 else (first.width, first.height)
    return VideoFacts(fps=fps, num_frames=clock.count if count_frames else None, width=width,
                      height=height, rotation=rotation, start=clock.first_time, duration=video_duration)


def _scan_video(
    source: _Source, fps: float | None, permuted: bool, count_frames: bool
) -> tuple[VideoClock, av.VideoFrame] | None:
    """Decode from the start: the first frame only, or all of them. Returns (clock, first frame)."""
    clock = VideoClock(fps or 1.0, permuted)
    first: av.VideoFrame | None = None
    try:
        for frame in source.decode_all("video"):
            clock.time_of(frame)
            if first is None:
                first = frame
            if not count_frames:
                break
    except DecodeError:
        return None
    return None if first is None else (clock, first)


def _probe_audio(source: _Source, count_samples: bool) -> AudioFacts | None:
    stream = source.stream("audio")
    sample_rate, channels = stream.rate, stream.channels
    header_duration = float(stream.duration * stream.time_base) if stream.duration is not None else None
    first_time: float | None = None
    end_time = 0.0
    try:
        for frame in source.decode_all("audio"):
            time = _frame_time(frame)
            time = end_time if time is None else time
            if first_time is None:
                first_time = time
            end_time = time + frame.samples / frame.sample_rate
            if not count_samples:
                break
    except DecodeError:
        return None
    if first_time is None:
        return None
    audio_duration = end_time - first_time if count_samples else header_duration
    return AudioFacts(sample_rate=sample_rate, channels=channels, start=first_time, duration=audio_duration)
