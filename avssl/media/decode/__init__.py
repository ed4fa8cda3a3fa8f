"""Probe a media file; read video frames and audio samples for given time windows.

Two backends give the same results (DESIGN.md "Choices"): TorchCodec, PyTorch's decoder on the system
FFmpeg, and PyAV, which ships its own FFmpeg and works everywhere. `default_backend()` picks TorchCodec when
it loads, PyAV otherwise; the environment variable AVSSL_DECODER (`torchcodec` or `pyav`) overrides it.
`read_video` without a named backend uses PyAV (`video_backend()`): its forward pass leaves undecoded the
non-reference frames no window picks (frame_skipping.py), which TorchCodec 0.17 cannot, and that is most
of the decoding work for clips at 8-16 fps from B-frame H.264 (benchmarks/loader.py, docs/benchmarks.md).

Frame choice (spec §2.2, AVID lineage, kept by CrissCross/AV-SSRL/XKD): see `timeline.py`. In short,
output frame k of a window at `start` sits at t_k = start + k/fps and takes source frame
int((t_k - video_start) * native_fps) for constant-rate video, the frame on screen at that slot for
variable-rate video, the first frame before the start and the last frame past the end.

Every call reads all its windows with one open of the file and one forward decoding pass over the union
of what they need (decode once, pick many). Pass `info` (from `probe`, or a manifest row) to save a probe.

Measured agreement of the two backends on the shared test media (tests/test_decode.py): the same frame
chosen everywhere; pixels identical without resizing except rare 1-level rounding differences (swscale
of the system FFmpeg 5.1 vs PyAV's own FFmpeg), and within 3 levels when resizing a rotated video
(FFmpeg's filter graph vs PyAV's resize-then-rot90); audio within 1e-7 (the same resampler, audio.py).
TorchCodec 0.17 mis-seeks in MPEG-PS/TS and packed-bitstream AVI: its backend reads those with PyAV.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from avssl.media.decode import pyav_backend
from avssl.media.decode.audio import cut_audio_windows, resample_on_grid
from avssl.media.decode.info import DecodeError, MediaInfo
from avssl.media.decode.timeline import check_windows, frame_query_times, resized_size, window_frame_times

__all__ = [
    "DecodeError",
    "MediaInfo",
    "available_backends",
    "default_backend",
    "probe",
    "read_audio",
    "read_video",
    "video_backend",
]

BACKEND_ENV = "AVSSL_DECODER"


@functools.lru_cache(maxsize=1)
def available_backends() -> list[str]:
    """Backends usable here, fastest first: "torchcodec" only if it really loads, then "pyav"."""
    from avssl.media.decode import torchcodec_backend

    return (["torchcodec"] if torchcodec_backend.loads() else []) + ["pyav"]


def default_backend() -> str:
    """AVSSL_DECODER if set (it must name an available backend), else the first available one."""
    chosen = os.environ.get(BACKEND_ENV, "").strip().lower()
    if chosen:
        if chosen not in available_backends():
            raise ValueError(f"{BACKEND_ENV}={chosen!r} is not an available decoder; "
                             f"available here: {available_backends()}")
        return chosen
    return available_backends()[0]


def video_backend() -> str:
    """The backend `read_video` uses when none is named: AVSSL_DECODER if set, else PyAV (see above)."""
    return default_backend() if os.environ.get(BACKEND_ENV, "").strip() else "pyav"


def _backend(name: str | None) -> ModuleType:
    name = default_backend() if name is None else name
    if name not in ("torchcodec", "pyav"):
        raise ValueError(f"unknown decoder backend {name!r}; choose from {available_backends()}")
    if name not in available_backends():
        raise ValueError(f"decoder backend {name!r} is not available here (available: {available_backends()})")
    if name == "pyav":
        return pyav_backend
    from avssl.media.decode import torchcodec_backend

    return torchcodec_backend


def probe(path: str | Path, *, count_frames: bool = True, backend: str | None = None) -> MediaInfo:
    """Facts of the first video and first audio stream of a file (see `MediaInfo`).

    `count_frames` decodes every frame and sample, so that `num_frames` and the stream durations are what
    really decodes (the verification `avssl prepare` does); without it only the first frame and sample of
    each stream are decoded and the durations come from the header.
    """
    return _backend(backend).probe(path, count_frames)


def read_video(
    path: str | Path,
    windows: Sequence[tuple[float, float]],
    fps: float,
    *,
    backend: str | None = None,
    info: MediaInfo | None = None,
    short_side: int | None = None,
) -> list[torch.Tensor]:
    """Frames of each `(start_s, duration_s)` window at `fps` frames per second.

    Returns one uint8 tensor [3, T, H, W] per window, T = round(duration * fps), upright (rotation applied),
    resized so the short side is `short_side` when given (antialiased bilinear, as each frame is decoded).
    """
    path = str(path)
    windows = check_windows(windows, path)
    if not fps > 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    info = info or probe(path, count_frames=False, backend=backend)
    if not info.has_video:
        raise DecodeError(path, "no video stream")
    if not (info.fps and info.width and info.height):
        raise DecodeError(path, "the video frame rate or size is unknown (pass a probed `info`)")
    if not windows:
        return []
    size = resized_size(info.height, info.width, short_side) if short_side else (info.height, info.width)

    times = [window_frame_times(start, duration, fps) for start, duration in windows]
    queries = frame_query_times(np.concatenate(times), info.video_start, info.fps)
    unique, where = np.unique(queries, return_inverse=True)  # sorted; a shared frame is decoded once
    if len(unique) == 0:
        return [torch.empty(3, 0, *size, dtype=torch.uint8) for _ in windows]
    frames = _backend(backend or video_backend()).read_frames(path, unique, info, size if short_side else None)

    out, offset = [], 0
    for window_times in times:
        out.append(_gather(frames, where[offset : offset + len(window_times)]))
        offset += len(window_times)
    return out


def _gather(frames: torch.Tensor | list[torch.Tensor], indices: np.ndarray) -> torch.Tensor:
    """uint8 [3, T, H, W] from decoded frames ([U, H, W, 3] or U tensors [H, W, 3]): one copy per frame."""
    if isinstance(frames, torch.Tensor):
        return frames.permute(3, 0, 1, 2)[:, torch.from_numpy(indices)].contiguous()
    height, width = frames[0].shape[:2]
    out = torch.empty((3, len(indices), height, width), dtype=torch.uint8)
    for k, index in enumerate(indices):
        out[:, k] = frames[index].permute(2, 0, 1)
    return out


def read_audio(
    path: str | Path,
    windows: Sequence[tuple[float, float]],
    sample_rate: int,
    *,
    backend: str | None = None,
    info: MediaInfo | None = None,
) -> list[torch.Tensor]:
    """Mono audio of each `(start_s, duration_s)` window, resampled to `sample_rate`.

    Returns one float32 tensor [round(duration * sample_rate)] per window, values in [-1, 1] (mean over
    channels of the decoded float samples), zero where the window lies outside the audio stream.
    """
    path = str(path)
    windows = check_windows(windows, path)
    if not (isinstance(sample_rate, int) and sample_rate > 0):
        raise ValueError(f"{path}: sample_rate must be a positive int, got {sample_rate!r}")
    info = info or probe(path, count_frames=False, backend=backend)
    if not info.has_audio:
        raise DecodeError(path, "no audio stream")
    if not windows:
        return []
    start = max(min(s for s, _ in windows), info.audio_start)
    stop = min(max(s + d for s, d in windows), info.audio_end)
    if stop > start:
        native, native_time, rate = _backend(backend).read_native_samples(path, start, stop, info)
        samples, first_time = resample_on_grid(native, native_time, rate, sample_rate)
    else:  # every window lies outside the stream
        samples, first_time = torch.zeros(0, dtype=torch.float32), start
    return cut_audio_windows(samples.clamp_(-1.0, 1.0), first_time, sample_rate, windows)
