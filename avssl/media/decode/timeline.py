"""Which source frames a time window maps to, and other backend-independent rules of decoding.

Video, spec §2.2 (nearest-frame rule of the AVID lineage, shared by CrissCross, AV-SSRL and XKD): output
frame k of a window starting at `s` sits at t_k = s + k/fps_out, and the original code takes source frame
int((t_k - video_start) * native_fps). We keep exactly that for constant-frame-rate streams and extend it
to streams whose timestamps disagree with their frame index (variable frame rate, dropped frames, rounded
millisecond timestamps) by choosing on presentation time:

    slot_k  = floor((t_k - video_start) * native_fps + 1e-6)     # the original index (float noise absorbed)
    query_k = video_start + (max(slot_k, 0) + 0.5) / native_fps    # middle of that nominal frame slot
    frame_k = the last frame whose timestamp is <= query_k         # the frame on screen at query_k

For a constant-rate stream (frame i at video_start + i/fps, give or take less than half a frame of
timestamp rounding) frame_k is frame slot_k, i.e. the original rule; times before the first frame take
frame 0 and times past the last frame repeat the last frame, as the originals pad by repetition. For a
variable-rate stream it is the frame being shown in the middle of the nominal slot.

Audio windows are cut in audio.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Absorbs float noise in (t - start) * fps, in frames; far below any real timestamp difference.
SLOT_EPS = 1e-6


def check_windows(windows: Sequence[tuple[float, float]], path: str) -> list[tuple[float, float]]:
    """Validate `(start_s, duration_s)` windows; returns them as floats. Raises ValueError naming `path`."""
    checked = []
    for i, window in enumerate(windows):
        try:
            start, duration = (float(v) for v in window)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: window {i} must be (start_s, duration_s), got {window!r}") from None
        if not (math.isfinite(start) and math.isfinite(duration)) or duration < 0:
            raise ValueError(f"{path}: window {i} = {window!r} needs a finite start and a duration >= 0")
        checked.append((start, duration))
    return checked


def window_length(duration: float, rate: float) -> int:
    """Number of frames or samples of a window: round(duration * rate)."""
    return int(round(duration * rate))


def window_frame_times(start: float, duration: float, fps: float) -> np.ndarray:
    """Output times t_k = start + k/fps of one window, k < round(duration * fps). float64 [T]."""
    return start + np.arange(window_length(duration, fps), dtype=np.float64) / fps


def frame_slots(times: np.ndarray, video_start: float, native_fps: float) -> np.ndarray:
    """Nominal source-frame slot of each output time: floor((t - video_start) · native_fps), >= 0. int64 [T]."""
    return np.maximum(np.floor((times - video_start) * native_fps + SLOT_EPS), 0.0).astype(np.int64)


def frame_query_times(times: np.ndarray, video_start: float, native_fps: float) -> np.ndarray:
    """Map output times to the middle of their nominal source-frame slot (see module docstring)."""
    return video_start + (frame_slots(times, video_start, native_fps) + 0.5) / native_fps


def resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side set to `short_side`, aspect kept, long side truncated

    (torchvision's `Resize(int)` convention)."""
    if short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def rot90_turns(rotation: int) -> int:
    """`k` for torch.rot90(x, k, dims=(-2, -1)) that applies a clockwise `rotation` (0/90/180/270)."""
    return (-(rotation // 90)) % 4


def rotation_from_display_matrix(angle: float | None) -> int:
    """FFmpeg's display-matrix angle (counter-clockwise, e.g. -90 for a phone held upright) to our

    clockwise 0/90/180/270 convention."""
    if angle is None or not math.isfinite(angle):
        return 0
    return int(round(-angle / 90.0)) % 4 * 90
