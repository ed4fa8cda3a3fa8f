"""Event timing: when the sound events start, their envelope, and what each video frame shows of it.

The audio-visual synchrony of the corpus comes from here. Every event starts exactly on a video
frame boundary (onset frame k starts at k / fps), the audio envelope is attack-decay-release, and
each frame's visual intensity is the mean of the same envelope over the frame's display interval
[j / fps, (j + 1) / fps). The picture therefore changes most between frames k - 1 and k, the audio
energy rises at sample round(k · sample_rate / fps), and windows taken in sync share the envelope
while shifted windows do not.
"""

from __future__ import annotations

import numpy as np

EVENT_DURATION_S: tuple[float, float] = (0.18, 0.32)  # each event's length, drawn uniformly
MIN_ONSET_GAP_S = 0.4  # longer than the longest event: events never overlap
FIRST_ONSET_S = 0.12  # a quiet, still lead-in, so even the first onset is a visible change
ATTACK_S = 0.005
RELEASE_S = 0.02


def frame_boundaries(num_frames: int, fps: int, sample_rate: int) -> np.ndarray:
    """Sample index at which each frame's display interval starts, plus the end: `[num_frames + 1]`."""
    return np.round(np.arange(num_frames + 1) * (sample_rate / fps)).astype(np.int64)


def onset_frame_range(num_frames: int, fps: int) -> tuple[int, int]:
    """First and last frame (inclusive) on which an event may start and still end inside the clip."""
    first = max(1, int(np.ceil(FIRST_ONSET_S * fps)))
    last = int(np.floor((num_frames / fps - EVENT_DURATION_S[1]) * fps))
    return first, last


def min_onset_gap_frames(fps: int) -> int:
    return max(1, int(np.ceil(MIN_ONSET_GAP_S * fps)))


def max_events(num_frames: int, fps: int) -> int:
    """How many events fit in a clip of `num_frames` with the minimum onset gap (0 if none)."""
    first, last = onset_frame_range(num_frames, fps)
    if last < first:
        return 0
    return 1 + (last - first) // min_onset_gap_frames(fps)


def sample_onset_frames(rng: np.random.Generator, num_frames: int, fps: int, count: int) -> np.ndarray:
    """`count` sorted onset frames, uniformly among placements that keep the minimum gap.

    Draws `count` distinct values from a range shortened by the total gap slack, then adds the
    slack back (i · (gap - 1) to the i-th), which maps them one-to-one onto valid placements.
    """
    if not 1 <= count <= max_events(num_frames, fps):
        raise ValueError(
            f"cannot place {count} events in {num_frames} frames at {fps} fps "
            f"(at most {max_events(num_frames, fps)} fit)"
        )
    first, last = onset_frame_range(num_frames, fps)
    gap = min_onset_gap_frames(fps)
    slots = last - first - (count - 1) * (gap - 1) + 1
    chosen = np.sort(rng.choice(slots, size=count, replace=False))
    return first + chosen + np.arange(count) * (gap - 1)


def event_envelope(num_samples: int, sample_rate: int) -> np.ndarray:
    """Amplitude envelope `[num_samples]` of one event: linear attack, exponential decay, release.

    Peak 1 at the end of the 5 ms attack; decays with time constant of a third of the event; the
    last 20 ms fade linearly to zero so the event ends without a click.
    """
    t = np.arange(num_samples) / sample_rate
    attack = np.clip(t / ATTACK_S, 0.0, 1.0)
    decay = np.exp(-np.maximum(t - ATTACK_S, 0.0) / (num_samples / sample_rate / 3.0))
    release = np.clip((num_samples / sample_rate - t) / RELEASE_S, 0.0, 1.0)
    return attack * decay * release


def activity_curve(
    onset_samples: np.ndarray,
    duration_samples: np.ndarray,
    gains: np.ndarray,
    total_samples: int,
    sample_rate: int,
) -> np.ndarray:
    """Sum over events of gain × envelope, placed at each onset: `[total_samples]`, in [0, 1]."""
    activity = np.zeros(total_samples)
    for onset, length, gain in zip(onset_samples, duration_samples, gains, strict=True):
        activity[onset : onset + length] += gain * event_envelope(int(length), sample_rate)
    return activity


def frame_activity(activity: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Mean of `activity` over each frame's display interval: `[num_frames]`."""
    sums = np.add.reduceat(activity, boundaries[:-1])
    return sums / np.diff(boundaries)
