"""Time windows: which seconds of the video and audio streams each view of a sample reads.

Pure functions of stream limits and a ``numpy.random.Generator``; nothing here decodes. A window
is a :class:`Window` ``(start, duration)`` in seconds, a named tuple, so ``start, duration = w``
works. Readers (``avssl.media.decode``) turn windows into frames and samples.

Schemes (spec §2.3, §3A.3, §3B.3, §4.2, §6.1 and §6.2 item 3):

* :func:`synchronous_pair` — AVID / AV-SSRL: audio window uniform, video window uniform inside the
  audio window widened by ``±max_offsync``;
* :func:`crisscross_views` — the CrissCross ``two_clips`` submodes, four windows (v1, v2, a1, a2);
* :func:`xkd_views` — XKD synchronous 4 s global window plus local video/audio crops;
* :func:`vicreg_video_views` — AV-SSRL video-only VICReg: two 1 s clips 2–8 s apart;
* :func:`dense_windows` — ``n`` evenly spread test windows (video-level evaluation);
* :func:`random_window` — one window of one stream.

Short streams: when a stream (or the span two streams share) is shorter than a window, the
window starts at the earliest allowed time and keeps its full duration; readers pad the missing
part (frame repetition / zeros), as the original loaders do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Real
from typing import NamedTuple

import numpy as np


class Window(NamedTuple):
    """A time window in seconds; unpacks to ``(start, duration)``."""

    start: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


class AVWindows(NamedTuple):
    """One video window and one audio window of the same sample."""

    video: Window
    audio: Window


class ViewWindows(NamedTuple):
    """Two views per modality (CrissCross): video v1, v2 and audio a1, a2."""

    v1: Window
    v2: Window
    a1: Window
    a2: Window


class WindowSamplingError(ValueError):
    """No valid window exists (or none was found within the allowed number of draws)."""


def _check_finite(where: str, **values: float) -> None:
    for name, value in values.items():
        if not isinstance(value, Real) or not math.isfinite(value):
            raise ValueError(f"{where}: {name} must be a finite number, got {value!r}")


def _check_positive(where: str, **values: float) -> None:
    _check_finite(where, **values)
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{where}: {name} must be > 0, got {value!r}")


def _check_rng(where: str, rng: object) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{where}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {rng!r}")


@dataclass(frozen=True)
class StreamSpan:
    """Start and end times (seconds) of a file's video and audio streams, as probed.

    The streams must overlap: every audio-visual scheme reads both inside the shared part.
    """

    video_start: float
    video_end: float
    audio_start: float
    audio_end: float

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        _check_finite("StreamSpan", **values)
        for name, value in values.items():
            # Probed times often arrive as Fractions (PyAV time_base arithmetic); store plain floats.
            object.__setattr__(self, name, float(value))
        for stream in ("video", "audio"):
            if not values[f"{stream}_end"] > values[f"{stream}_start"]:
                raise ValueError(
                    f"StreamSpan: {stream}_end ({values[f'{stream}_end']}) must be after "
                    f"{stream}_start ({values[f'{stream}_start']})"
                )
        if not self.common_end > self.common_start:
            raise ValueError(
                f"StreamSpan: video [{self.video_start}, {self.video_end}] and audio "
                f"[{self.audio_start}, {self.audio_end}] do not overlap"
            )

    @classmethod
    def of_duration(cls, seconds: float) -> StreamSpan:
        """Both streams on ``[0, seconds]``."""
        return cls(0.0, seconds, 0.0, seconds)

    @property
    def common_start(self) -> float:
        return max(self.video_start, self.audio_start)

    @property
    def common_end(self) -> float:
        return min(self.video_end, self.audio_end)


def _uniform_start(rng: np.random.Generator, low: float, high: float) -> float:
    """``U[low, high]``; ``low`` when the range is empty (the stream is shorter than the window)."""
    return float(rng.uniform(low, high)) if high > low else float(low)


def random_window(rng: np.random.Generator, start: float, end: float, duration: float) -> Window:
    """A window of ``duration`` with start ``~ U[start, end − duration]`` (``start`` if too short)."""
    _check_rng("random_window", rng)
    _check_finite("random_window", start=start, end=end)
    _check_positive("random_window", duration=duration)
    return Window(_uniform_start(rng, start, end - duration), duration)


def synchronous_pair(
    rng: np.random.Generator,
    span: StreamSpan,
    video_duration: float = 0.5,
    audio_duration: float = 2.0,
    max_offsync: float = 0.0,
) -> AVWindows:
    """One video and one audio window, the shorter placed inside the longer (spec §3A.3, §3B.3).

    With audio the longer (AVID: 0.5 s video / 2 s audio; AV-SSRL: 1 s / 2 s):

    * ``s_a ~ U[max(a_st, v_st), min(a_end − D_a, v_end − D_v)]``;
    * ``s_v ~ U[max(s_a − off, v_st), min(s_a + D_a + off, v_end) − D_v]``: the video window lies in
      the audio window widened by ``off = max_offsync`` (0.5 s in training, 0 otherwise) and inside
      the video stream.

    With equal durations or video the longer, the roles swap (video first, audio inside it).
    AV-SSRL and CrissCross clip exactly like this; AVID-CMA bounded the video *start* by ``v_end``
    instead of ``v_end − D_v``, letting the window run past the stream end, which we do not copy.
    """
    _check_rng("synchronous_pair", rng)
    _check_positive("synchronous_pair", video_duration=video_duration, audio_duration=audio_duration)
    _check_finite("synchronous_pair", max_offsync=max_offsync)
    if max_offsync < 0:
        raise ValueError(f"synchronous_pair: max_offsync must be >= 0, got {max_offsync}")
    first_start = _uniform_start(
        rng, span.common_start, min(span.audio_end - audio_duration, span.video_end - video_duration)
    )
    if audio_duration > video_duration:
        outer, inner_duration = Window(first_start, audio_duration), video_duration
        inner_start, inner_end = span.video_start, span.video_end
    else:
        outer, inner_duration = Window(first_start, video_duration), audio_duration
        inner_start, inner_end = span.audio_start, span.audio_end
    low = max(outer.start - max_offsync, inner_start)
    high = min(outer.end + max_offsync, inner_end) - inner_duration
    inner = Window(_uniform_start(rng, low, high), inner_duration)
    return AVWindows(video=inner, audio=outer) if audio_duration > video_duration else AVWindows(outer, inner)


# ----------------------------------------------------------------------------- CrissCross (§2.3)

CRISSCROSS_SUBMODES = (
    "overlapped", "same_timestamp", "adjacent", "random", "far_apart", "v_far_a_same", "v_same_a_far",
)


def _first_and_last(pair: AVWindows, video_duration: float, audio_duration: float) -> ViewWindows:
    """Views = the first and the last ``D`` seconds of each (extended) window."""
    v, a = pair
    return ViewWindows(
        v1=Window(v.start, video_duration),
        v2=Window(v.end - video_duration, video_duration),
        a1=Window(a.start, audio_duration),
        a2=Window(a.end - audio_duration, audio_duration),
    )


def _far_apart_starts(rng: np.random.Generator, start: float, end: float, duration: float) -> tuple[float, float]:
    """Two starts half the span apart: ``s1 ~ U[start, start + half − D]``, ``s2 = s1 + half``.

    If a window does not fit in half the span, the two windows go to the two ends instead.
    """
    half = (end - start) / 2
    if duration > half:
        return start, max(start, end - duration)
    first = float(rng.uniform(start, start + half - duration))
    return first, first + half


def crisscross_views(
    rng: np.random.Generator,
    span: StreamSpan,
    submode: str = "overlapped",
    video_duration: float = 0.5,
    audio_duration: float = 2.0,
    overlap_extension: float = 1.5,
) -> ViewWindows:
    """Four windows (v1, v2, a1, a2) of the CrissCross ``two_clips`` submodes (spec §2.3).

    * ``overlapped`` (default): a :func:`synchronous_pair` (no off-sync) of windows extended
      ``overlap_extension``× (0.75 s video, 3 s audio); v1/v2 are its first/last 0.5 s (8 frames
      at 16 fps, 4 shared), a1/a2 its first/last 2 s (1 s shared). With the audio window starting
      at ``s_a`` and the video at ``s_v``: ``s_a ~ U[max(a_st, v_st), min(a_end − 3, v_end − 0.75)]``,
      ``s_v ~ U[max(s_a, v_st), min(s_a + 3, v_end) − 0.75]``.
    * ``same_timestamp``: one synchronous pair, each view read twice (augmented independently).
    * ``adjacent``: as ``overlapped`` with windows extended 2×: views back to back.
    * ``random``: two independent synchronous pairs.
    * ``far_apart``: view 2 starts half the shared span after view 1; video and audio of a view
      share their start.
    * ``v_far_a_same`` / ``v_same_a_far``: one modality far apart, the other reads one of the two
      positions (chosen at random) for both of its views.
    """
    _check_rng("crisscross_views", rng)
    _check_positive(
        "crisscross_views", video_duration=video_duration, audio_duration=audio_duration,
        overlap_extension=overlap_extension,
    )
    if submode not in CRISSCROSS_SUBMODES:
        raise ValueError(f"crisscross_views: unknown submode {submode!r}; expected one of {CRISSCROSS_SUBMODES}")

    if submode in ("overlapped", "adjacent"):
        factor = overlap_extension if submode == "overlapped" else 2.0
        extended = synchronous_pair(rng, span, video_duration * factor, audio_duration * factor)
        return _first_and_last(extended, video_duration, audio_duration)
    if submode == "same_timestamp":
        video, audio = synchronous_pair(rng, span, video_duration, audio_duration)
        return ViewWindows(video, video, audio, audio)
    if submode == "random":
        first = synchronous_pair(rng, span, video_duration, audio_duration)
        second = synchronous_pair(rng, span, video_duration, audio_duration)
        return ViewWindows(first.video, second.video, first.audio, second.audio)

    starts = _far_apart_starts(rng, span.common_start, span.common_end, max(video_duration, audio_duration))
    videos = [Window(s, video_duration) for s in starts]
    audios = [Window(s, audio_duration) for s in starts]
    if submode == "v_far_a_same":
        audios = [audios[int(rng.integers(2))]] * 2
    elif submode == "v_same_a_far":
        videos = [videos[int(rng.integers(2))]] * 2
    return ViewWindows(videos[0], videos[1], audios[0], audios[1])


# ----------------------------------------------------------------------------- XKD (§4.2)


@dataclass(frozen=True)
class GlobalLocalWindows:
    """XKD views: one synchronous global window and ``n`` local crops of it per modality.

    Local crops are offsets into the decoded global clip — ``local_video_offsets`` in frames
    (``local_video_frames`` consecutive frames each), ``local_audio_offsets`` in samples
    (``local_audio_samples`` each) — so they cut the already decoded tensors exactly. The same
    crops as time windows: :attr:`local_video_windows`, :attr:`local_audio_windows`.
    """

    video: Window
    audio: Window
    fps: float
    sample_rate: int
    local_video_frames: int
    local_audio_samples: int
    local_video_offsets: tuple[int, ...]
    local_audio_offsets: tuple[int, ...]

    @property
    def local_video_windows(self) -> tuple[Window, ...]:
        duration = self.local_video_frames / self.fps
        return tuple(Window(self.video.start + k / self.fps, duration) for k in self.local_video_offsets)

    @property
    def local_audio_windows(self) -> tuple[Window, ...]:
        duration = self.local_audio_samples / self.sample_rate
        return tuple(Window(self.audio.start + k / self.sample_rate, duration) for k in self.local_audio_offsets)


def xkd_views(
    rng: np.random.Generator,
    span: StreamSpan,
    global_duration: float = 4.0,
    fps: float = 8.0,
    sample_rate: int = 16000,
    temporal_ratio: int = 4,
    audio_offset_step: int = 100,
    num_local_views: int = 1,
) -> GlobalLocalWindows:
    """XKD global + local windows (spec §4.2).

    * global: video and audio windows of ``global_duration`` with the **same** start
      ``~ U[max(a_st, v_st), min(a_end, v_end) − D]`` (32 frames at 8 fps, 64000 samples);
    * each local video view: ``frames // temporal_ratio`` (8) consecutive frames at an offset
      ``~ U{0, …, frames − 8}``;
    * each local audio view: ``samples // temporal_ratio`` (16000, 1 s) samples starting at a random
      multiple of ``audio_offset_step`` (100) in ``{0, 100, …, 48000}``.

    MAS / MATS use ``num_local_views=3``.
    """
    _check_rng("xkd_views", rng)
    _check_positive("xkd_views", global_duration=global_duration, fps=fps, sample_rate=sample_rate)
    for name, value in (("temporal_ratio", temporal_ratio), ("audio_offset_step", audio_offset_step)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"xkd_views: {name} must be a positive integer, got {value!r}")
    if not isinstance(num_local_views, int) or num_local_views < 0:
        raise ValueError(f"xkd_views: num_local_views must be an integer >= 0, got {num_local_views!r}")
    frames = int(round(global_duration * fps))
    samples = int(round(global_duration * sample_rate))
    local_frames, local_samples = frames // temporal_ratio, samples // temporal_ratio
    if local_frames < 1 or local_samples < 1:
        raise ValueError(
            f"xkd_views: temporal_ratio={temporal_ratio} leaves no local frame/sample of a "
            f"{frames}-frame, {samples}-sample global clip"
        )
    start = _uniform_start(rng, span.common_start, span.common_end - global_duration)
    video_offsets = rng.integers(0, frames - local_frames, size=num_local_views, endpoint=True)
    audio_offsets = audio_offset_step * rng.integers(
        0, (samples - local_samples) // audio_offset_step, size=num_local_views, endpoint=True
    )
    return GlobalLocalWindows(
        video=Window(start, global_duration),
        audio=Window(start, global_duration),
        fps=float(fps),
        sample_rate=int(sample_rate),
        local_video_frames=local_frames,
        local_audio_samples=local_samples,
        local_video_offsets=tuple(int(k) for k in video_offsets),
        local_audio_offsets=tuple(int(k) for k in audio_offsets),
    )


# ----------------------------------------------------------------------------- AV-SSRL VICReg-V (§3B.3)


def vicreg_video_views(
    rng: np.random.Generator,
    start: float,
    end: float,
    clip_duration: float = 1.0,
    min_gap: float = 2.0,
    max_gap: float = 8.0,
    max_draws: int = 100,
) -> tuple[Window, Window]:
    """Two video clips of one video whose starts differ by ``dt ~ U(min_gap, max_gap)`` modulo its length.

    ``s1 ~ U[start, end − D]``; then ``s2 = start + (s1 − start + dt) mod (end − start)`` is redrawn
    until ``start < s2`` and ``s2 + D < end`` (AV-SSRL's acceptance test). After ``max_draws``
    rejected draws a :class:`WindowSamplingError` is raised, so a dataset can skip the video
    instead of looping forever as the original does on videos barely longer than a clip.
    A video no longer than one clip gives the same window twice (readers pad).
    """
    _check_rng("vicreg_video_views", rng)
    _check_finite("vicreg_video_views", start=start, end=end)
    _check_positive("vicreg_video_views", clip_duration=clip_duration, min_gap=min_gap, max_gap=max_gap)
    if max_gap < min_gap or not (isinstance(max_draws, int) and max_draws >= 1):
        raise ValueError(
            f"vicreg_video_views: need min_gap <= max_gap and max_draws >= 1, "
            f"got min_gap={min_gap}, max_gap={max_gap}, max_draws={max_draws!r}"
        )
    length = end - start
    if length <= clip_duration:
        first = Window(start, clip_duration)
        return first, first
    first = Window(float(rng.uniform(start, end - clip_duration)), clip_duration)
    for _ in range(max_draws):
        gap = float(rng.uniform(min_gap, max_gap))
        second_start = start + (first.start - start + gap) % length
        if start < second_start and second_start + clip_duration < end:
            return first, Window(second_start, clip_duration)
    raise WindowSamplingError(
        f"vicreg_video_views: no second {clip_duration} s clip {min_gap}–{max_gap} s (mod {length:.3f} s) "
        f"after the first at {first.start:.3f} s fits in [{start}, {end}] within {max_draws} draws"
    )


# ----------------------------------------------------------------------------- dense test windows


def dense_windows(start: float, end: float, duration: float, num_windows: int) -> list[Window]:
    """``num_windows`` windows of ``duration`` starting at ``start + linspace(0, N − L, n)``.

    ``N = end − start``; if the stream is shorter than a window (``N < L``) every window starts at
    ``start`` (readers pad). This is the video-level test of every method (spec §6.1).
    """
    _check_finite("dense_windows", start=start, end=end)
    _check_positive("dense_windows", duration=duration)
    if not isinstance(num_windows, int) or num_windows < 1:
        raise ValueError(f"dense_windows: num_windows must be a positive integer, got {num_windows!r}")
    if end < start:
        raise ValueError(f"dense_windows: end ({end}) is before start ({start})")
    last_start = max(end - start - duration, 0.0)
    return [Window(start + float(offset), duration) for offset in np.linspace(0.0, last_start, num_windows)]
