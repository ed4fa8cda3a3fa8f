"""PyAV backend: FFmpeg bundled in the `av` wheel, so it works everywhere (the portable fallback).

Video is read in one forward pass: seek once to the keyframe before the first needed time, decode
forward, and hand every query time the last frame whose timestamp is <= it (`NearestFramePicker`), so
each needed frame is converted to RGB once however many windows share it; where the next needed time
lies beyond the next indexed keyframe the pass jumps ahead to it, and non-reference frames that no query
picks are not decoded at all (frame_skipping.py). Audio is decoded once over the union of the windows at
the stream's own rate (audio.py resamples).

Packed-bitstream AVI (see pyav_container.py) is decoded from the start and frame i gets the time
first_time + i/fps (AVI is constant-rate by construction); the frames of any other file whose decoded
timestamps go backwards are timed the same way. Container access lives in pyav_container.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from avssl.media.decode.frame_skipping import UnpickedFrames
from avssl.media.decode.info import AudioFacts, DecodeError, MediaInfo, VideoFacts, assemble_media_info
from avssl.media.decode.pyav_container import (
    PyAVSource,
    first_audio_stream,
    first_video_stream,
    frame_time,
    nominal_stream_fps,
)
from avssl.media.decode.timeline import rot90_turns, rotation_from_display_matrix

NAME = "pyav"

# Audio decoded before the first window and after the last one, so that the codec's overlapped
# transforms (AAC/MP3) and the resampler's filter have settled where the windows are cut.
AUDIO_MARGIN_S = 0.1


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
        raw = frame_time(frame)
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


class UprightRGB:
    """Turns decoded frames into uint8 [H, W, 3] upright RGB (channels last, as decoded); `size` is the
    upright (height, width) to resize to, or None.

    As TorchCodec does, the picture is converted to RGB at full size, resized bilinearly in RGB, then
    rotated (resizing the YUV picture instead moves colours by up to 22 levels against TorchCodec). The
    conversion is swscale's (one thread, context kept between frames: data-loader workers parallelise
    across files); the resize is torch's antialiased bilinear on uint8 (torchvision's `Resize`), half the
    time of swscale's packed-RGB scaler (0.27 vs 0.55 ms per 256p frame) and within a few levels of it
    (mean 0.2, at most 12 at sharp edges).
    """

    def __init__(self, size: tuple[int, int] | None):
        self.size = size
        self.to_rgb = VideoReformatter()

    def __call__(self, frame: av.VideoFrame) -> torch.Tensor:
        turns = rot90_turns(rotation_from_display_matrix(frame.rotation))
        image = torch.from_numpy(self.to_rgb.reformat(frame, format="rgb24", threads=1).to_ndarray())  # [H, W, 3]
        if self.size is not None:
            height, width = self.size if turns % 2 == 0 else self.size[::-1]
            if (height, width) != tuple(image.shape[:2]):
                image = resize_rgb(image, (height, width))
        return torch.rot90(image, turns, dims=(0, 1)) if turns else image


def resize_rgb(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 [H, W, 3] -> uint8 [h, w, 3], antialiased bilinear (half-pixel centres, rounded)."""
    planes = image.permute(2, 0, 1).unsqueeze(0)  # a channels-last view: torch's fast uint8 path
    resized = torch.nn.functional.interpolate(planes, size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].permute(1, 2, 0)  # a view: _gather makes the one copy


def upright_rgb(frame: av.VideoFrame, size: tuple[int, int] | None) -> torch.Tensor:
    """One frame through `UprightRGB` (for callers that convert a single frame)."""
    return UprightRGB(size)(frame)


def read_frames(
    path: str | Path, queries: np.ndarray, info: MediaInfo, size: tuple[int, int] | None
) -> list[torch.Tensor]:
    """For sorted query times, the frame on screen at each (see timeline.py), uint8 [H, W, 3] upright;
    one forward pass."""
    source = PyAVSource(path)
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
    source: PyAVSource, info: MediaInfo, queries: np.ndarray, size: tuple[int, int] | None, permuted: bool
) -> list[torch.Tensor]:
    """Decode forward from the first query, handing each query its frame.

    Where the next query lies beyond the next keyframe, the decoder jumps ahead to that keyframe instead
    of decoding the frames in between, and non-reference frames that no query picks are not decoded
    (frame_skipping.py; neither for packed AVI, which is read from the start to the end and timed by
    frame count).
    """
    clock = VideoClock(info.fps or 1.0, permuted)
    picker = NearestFramePicker(queries, UprightRGB(size))
    skip = None if permuted else UnpickedFrames(queries)
    frames = (
        source.decode_all("video") if permuted else source.decode_from("video", picker.pending, info.video_start, skip)
    )
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
            frames = source.decode_from("video", picker.pending, info.video_start, skip)
    if picker.previous is None and not picker.done:
        raise DecodeError(source.path, "no video frame decodes")
    return picker.finish()


def read_native_samples(path: str | Path, start: float, stop: float, info: MediaInfo) -> tuple[torch.Tensor, float, int]:
    """Mono float32 samples at the stream's own rate covering [start, stop) plus AUDIO_MARGIN_S on each

    side (as far as the stream goes): (samples [N], time of the first, sample rate)."""
    source = PyAVSource(path)
    try:
        rate = source.stream("audio").rate
        to_float = av.AudioResampler(format="fltp")  # sample format only: same rate, same channels
        chunks: list[np.ndarray] = []
        first_time: float | None = None
        next_time = 0.0
        for frame in source.decode_from("audio", start - AUDIO_MARGIN_S, info.audio_start):
            time = frame_time(frame)
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
    source = PyAVSource(path)
    try:
        has_video = first_video_stream(source.container) is not None
        has_audio = first_audio_stream(source.container) is not None
        duration = source.container.duration / av.time_base if source.container.duration else None
        video = _probe_video(source, count_frames) if has_video else None
        audio = _probe_audio(source, count_frames) if has_audio else None
        return assemble_media_info(str(path), duration, video, audio)
    finally:
        source.close()


def _probe_video(source: PyAVSource, count_frames: bool) -> VideoFacts | None:
    stream = source.stream("video")
    fps = nominal_stream_fps(stream)
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
    source: PyAVSource, fps: float | None, permuted: bool, count_frames: bool
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


def _probe_audio(source: PyAVSource, count_samples: bool) -> AudioFacts | None:
    stream = source.stream("audio")
    sample_rate, channels = stream.rate, stream.channels
    header_duration = float(stream.duration * stream.time_base) if stream.duration is not None else None
    first_time: float | None = None
    end_time = 0.0
    try:
        for frame in source.decode_all("audio"):
            time = frame_time(frame)
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
