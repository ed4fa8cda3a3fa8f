"""Mono audio on the file's own sample grid: resampling anchored to the file clock, and window cutting.

Both backends decode native-rate samples and average the channels (spec §6.1: mono; the original took
the mean after PyAV's resampler). Resampling then starts at an input sample whose time is a multiple of
1 / gcd(rate, target_rate) seconds (10 ms for 44.1 -> 16 kHz), so output sample k of any decode sits at
exactly anchor + k / target_rate on the file clock. The same window therefore comes out identical
whichever stretch of the file was decoded around it (all windows in one call, or one at a time) and from
either backend, once the margin decoded around the windows has absorbed the codec's priming after a seek
and the resampler's edge. One limit: a stretch is placed by its first frame's timestamp and then by the
count of decoded samples, so where a file's frame timestamps and sample counts disagree (AAC behind an
edit list: one sample, cav-mae/00W1lcxW-WU_40.000.mp4; Matroska's millisecond stamps: up to 0.5 ms) a
window can move by that much with the point where decoding started. The filter is FFmpeg's swr (as in the original PyAV loaders) through PyAV; it
puts output sample k at input time k / target_rate exactly (checked in tests/test_decode.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import av
import numpy as np
import torch

from avssl.media.decode.timeline import window_length


def resample_on_grid(samples: torch.Tensor, first_time: float, rate: int, target_rate: int) -> tuple[torch.Tensor, float]:
    """Resample mono float32 `samples` [N] (first one at `first_time`) to `target_rate`.

    Returns the resampled samples [M] and the time of the first one, a multiple of 1/gcd(rate, target_rate).
    """
    if rate == target_rate or samples.numel() == 0:
        return samples, first_time
    step = rate // math.gcd(rate, target_rate)  # input samples per common period
    first_index = round(first_time * rate)
    skip = (-first_index) % step
    anchored = samples[skip:].numpy()
    if anchored.size == 0:
        return torch.zeros(0, dtype=torch.float32), (first_index + skip) / rate
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(anchored[None]), format="fltp", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=target_rate)
    chunks = [out.to_ndarray()[0] for out in [*resampler.resample(frame), *resampler.resample(None)]]
    return torch.from_numpy(np.concatenate(chunks)), (first_index + skip) / rate


def cut_audio_windows(
    samples: torch.Tensor, first_time: float, sample_rate: int, windows: Sequence[tuple[float, float]]
) -> list[torch.Tensor]:
    """Slice windows out of one decoded mono stretch `samples` [N] whose first sample is at `first_time`.

    Window start s maps to sample floor((s - first_time) * sample_rate + 0.5) (ties round up, as in
    TorchCodec). Each result is float32 [round(duration * sample_rate)], zero where the window leaves the
    stretch.
    """
    out = []
    total = samples.shape[0]
    for start, duration in windows:
        length = window_length(duration, sample_rate)
        window = torch.zeros(length, dtype=torch.float32)
        offset = math.floor((start - first_time) * sample_rate + 0.5)
        lo, hi = max(offset, 0), min(offset + length, total)
        if hi > lo:
            window[lo - offset : hi - offset] = samples[lo:hi]
        out.append(window)
    return out
