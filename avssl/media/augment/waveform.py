"""Waveform augmentation: random gain (volume jitter), applied before the spectrogram front end.

Spec: CrissCross §2.5 (× U(0.8, 1.2), ``vol: 0.2``), AVID §3A.3 (× U(0.9, 1.1)), AV-SSRL §3B.3
(× U(0.7, 1.0)), XKD §4.2 (global × U(0.9, 1.1), local × U(0.8, 1.2)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .random_params import uniform
from .transform import WaveformTransform, check_interval


class RandomGain(WaveformTransform):
    """Multiply each waveform (all its channels) by one factor ~ U(``gain``)."""

    def __init__(self, gain: Sequence[float] = (0.8, 1.2)):
        self.gain = check_interval("RandomGain", "gain", gain, minimum=0.0)

    @classmethod
    def from_volume(cls, volume: float) -> RandomGain:
        """The original configs' ``vol``/``volume`` setting v, meaning a factor ~ U(1 − v, 1 + v)."""
        if not 0.0 <= volume <= 1.0:
            raise ValueError(f"RandomGain: volume must be in [0, 1], got {volume!r}")
        return cls((1.0 - volume, 1.0 + volume))

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        return uniform(shape[0], *self.gain, generator)

    def apply_params(self, waveforms: Tensor, gains: Tensor) -> Tensor:
        factors = gains.to(device=waveforms.device, dtype=waveforms.dtype)
        return waveforms * factors.view(-1, *([1] * (waveforms.ndim - 1)))

    def forward_batch(self, waveforms: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(waveforms, self.sample_params(waveforms.shape, generator))
