"""Waveform augmentation, applied before the spectrogram front end: random gain (volume jitter) and
added noise of a random colour.

Gain, spec: CrissCross §2.5 (× U(0.8, 1.2), ``vol: 0.2``), AVID §3A.3 (× U(0.9, 1.1)), AV-SSRL §3B.3
(× U(0.7, 1.0)), XKD §4.2 (global × U(0.9, 1.1), local × U(0.8, 1.2)). The noise is in no method's recipe.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .random_params import coin_flips, gaussian, uniform
from .transform import WaveformTransform, check_interval, check_probability


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


class RandomColouredNoise(WaveformTransform):
    """Add noise of a random colour at a random signal-to-noise ratio to each waveform.

    Not part of any method's recipe in the spec: an extra audio op, the waveform's counterpart of colour
    jitter. Where every clip carries its own background (a hiss of some colour at some level), that
    background alone can tell the clips apart; noise drawn afresh for every view covers it, so that
    matching two views of a clip has to rely on the foreground sound.

    Per waveform: exponent β ~ U(``exponent``) (noise power ∝ 1/f^β: 0 white, 1 pink, 2 brown) and
    SNR ~ U(``snr_db``) in dB relative to the waveform's own RMS (over all its channels); with
    probability ``p``. The noise is Gaussian, shaped in the frequency domain by f^(−β/2) (the DC bin
    gets the first bin's weight), scaled to unit RMS and then to ``rms · 10^(−SNR/20)``; every channel
    of a waveform gets the same noise. A silent waveform gets none (its RMS is 0).
    """

    def __init__(self, snr_db: Sequence[float] = (0.0, 20.0), exponent: Sequence[float] = (0.0, 2.0),
                 p: float = 1.0):
        self.snr_db = check_interval("RandomColouredNoise", "snr_db", snr_db)
        self.exponent = check_interval("RandomColouredNoise", "exponent", exponent, minimum=0.0, maximum=4.0)
        self.p = check_probability("RandomColouredNoise", "p", p)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> dict[str, Tensor]:
        """``snr_db``, ``exponent`` (float64 ``[B]``), ``apply`` (bool ``[B]``) and ``white``
        (float32 ``[B, N]``, the Gaussian noise before shaping)."""
        batch, length = shape[0], shape[-1]
        white = gaussian((batch, length), generator)
        return {
            "snr_db": uniform(batch, *self.snr_db, generator),
            "exponent": uniform(batch, *self.exponent, generator),
            "apply": coin_flips(batch, self.p, generator),
            "white": white,
        }

    def apply_params(self, waveforms: Tensor, params: dict[str, Tensor]) -> Tensor:
        length = waveforms.shape[-1]
        device = waveforms.device
        spectrum = torch.fft.rfft(params["white"].to(device=device, dtype=torch.float32), dim=-1)
        bins = torch.arange(spectrum.shape[-1], device=device, dtype=torch.float32).clamp_(min=1.0)
        exponent = params["exponent"].to(device=device, dtype=torch.float32).unsqueeze(1)
        noise = torch.fft.irfft(spectrum * bins.pow(-exponent / 2), n=length, dim=-1)
        noise = noise / noise.pow(2).mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-12)
        flat = waveforms.reshape(waveforms.shape[0], -1)
        signal_rms = flat.float().pow(2).mean(dim=-1).sqrt()
        level = signal_rms * torch.pow(10.0, -params["snr_db"].to(device=device, dtype=torch.float32) / 20.0)
        level = level * params["apply"].to(device=device, dtype=torch.float32)
        if waveforms.ndim == 3:  # [B, C, N]: the same noise on every channel
            noise = noise.unsqueeze(1)
            level = level.unsqueeze(1)
        return waveforms + (noise * level.unsqueeze(-1)).to(waveforms.dtype)

    def forward_batch(self, waveforms: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(waveforms, self.sample_params(waveforms.shape, generator))
