"""Frequency and time masking of spectrograms ``[B, C, F, T]`` (SpecAugment-style).

Two samplers share one masking core:

* :class:`FrequencyMask` / :class:`TimeMask` — a fixed number of bands of width ~ U{0..max_width − 1}
  (CrissCross §2.5: 2 frequency masks < 10 bins, 2 time masks < 20 frames, filled with the spectrogram
  mean as its ``replace_with_zero=False``; XKD fine-tuning §4.6 likewise);
* :class:`VariableSpectrogramMask` — AV-SSRL's ``tfmask`` (§3B.3): per spectrogram r_t, r_f ~ U(0, 0.2),
  ⌊r_t·T⌋ // 5 time bands of U{1..5} frames and ⌊r_f·F⌋ // 3 frequency bands of U{1..3} bins at
  distinct starts, filled with the spectrogram minimum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .random_params import random_index, random_integers, random_permutations, uniform
from .transform import SpectrogramTransform, check_positive_int

FillMode = Literal["mean", "min", "zero"]
FILL_MODES = ("mean", "min", "zero")
AXES = {"freq": -2, "time": -1}


@dataclass(frozen=True)
class MaskBands:
    """Bands per spectrogram along one axis: int64 CPU ``starts`` and ``widths`` ``[B, K]``.

    A band covers ``[start, start + width)``; width 0 marks an unused slot.
    """

    starts: Tensor
    widths: Tensor


def _fill_value(spec: Tensor, fill: str) -> Tensor:
    """Per-spectrogram fill ``[B, 1, 1, 1]`` computed from the spectrogram as it is now."""
    if fill == "mean":
        return spec.mean(dim=(1, 2, 3), keepdim=True)
    if fill == "min":
        return spec.amin(dim=(1, 2, 3), keepdim=True)
    return spec.new_zeros(spec.shape[0], 1, 1, 1)


def fill_bands(spec: Tensor, axis: Literal["freq", "time"], bands: MaskBands, fill: str) -> Tensor:
    """Set every band of ``bands`` along ``axis`` to the ``fill`` statistic, one band slot at a time.

    The statistic is recomputed before each slot, so a later ``"mean"`` band sees the earlier bands
    (as masking a copy in place one mask after another does); ``"min"`` and ``"zero"`` are unaffected.
    """
    dim = AXES[axis]
    size = spec.shape[dim]
    positions = torch.arange(size, device=spec.device)
    starts, widths = bands.starts.to(spec.device), bands.widths.to(spec.device)
    view = (-1, 1, size, 1) if axis == "freq" else (-1, 1, 1, size)
    for slot in range(starts.shape[1]):
        start, width = starts[:, slot, None], widths[:, slot, None]
        inside = ((positions >= start) & (positions < start + width)).view(view)
        spec = torch.where(inside, _fill_value(spec, fill), spec)
    return spec


def _check_fill(owner: str, fill: str) -> str:
    if fill not in FILL_MODES:
        raise ValueError(f"{owner}: fill must be one of {FILL_MODES}, got {fill!r}")
    return fill


class SpectrogramMask(SpectrogramTransform):
    """``num_masks`` bands along ``axis``: width ~ U{0..``max_width`` − 1}, start ~ U{0..size − width}."""

    def __init__(
        self,
        axis: Literal["freq", "time"],
        num_masks: int,
        max_width: int,
        fill: FillMode = "mean",
    ):
        owner = type(self).__name__
        if axis not in AXES:
            raise ValueError(f"{owner}: axis must be 'freq' or 'time', got {axis!r}")
        self.axis = axis
        self.num_masks = check_positive_int(owner, "num_masks", num_masks, allow_zero=True)
        self.max_width = check_positive_int(owner, "max_width", max_width)
        self.fill = _check_fill(owner, fill)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> MaskBands:
        size = shape[AXES[self.axis]]
        if self.max_width > size:
            raise ValueError(
                f"{type(self).__name__}: max_width {self.max_width} exceeds the {self.axis} size {size}"
            )
        widths = random_integers((shape[0], self.num_masks), 0, self.max_width - 1, generator)
        return MaskBands(starts=random_index(size - widths + 1, generator), widths=widths)

    def apply_params(self, spec: Tensor, bands: MaskBands) -> Tensor:
        return fill_bands(spec, self.axis, bands, self.fill)

    def forward_batch(self, spec: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(spec, self.sample_params(spec.shape, generator))


class FrequencyMask(SpectrogramMask):
    """Frequency masking: ``num_masks`` bands of < ``max_width`` bins (CrissCross: 2 × < 10, mean fill)."""

    def __init__(self, num_masks: int = 2, max_width: int = 10, fill: FillMode = "mean"):
        super().__init__("freq", num_masks, max_width, fill)


class TimeMask(SpectrogramMask):
    """Time masking: ``num_masks`` bands of < ``max_width`` frames (CrissCross: 2 × < 20, mean fill)."""

    def __init__(self, num_masks: int = 2, max_width: int = 20, fill: FillMode = "mean"):
        super().__init__("time", num_masks, max_width, fill)


@dataclass(frozen=True)
class VariableMaskParams:
    """AV-SSRL draws: the masking ratios ``[B]`` and the bands along each axis."""

    time_ratio: Tensor
    freq_ratio: Tensor
    time_bands: MaskBands
    freq_bands: MaskBands


class VariableSpectrogramMask(SpectrogramTransform):
    """AV-SSRL's variable time-frequency masking (spec §3B.3, ``tfmask_params`` with ``var_masks: true``).

    Per spectrogram: r ~ U(``max_ratio``) per axis; ⌊r·size⌋ // ``step`` bands, each of width
    U{1..``max_width``}, at distinct starts in {0..size − max_width}; filled with ``fill`` (the minimum).
    """

    def __init__(
        self,
        max_time_ratio: float = 0.2,
        max_freq_ratio: float = 0.2,
        time_step: int = 5,
        freq_step: int = 3,
        max_time_width: int = 5,
        max_freq_width: int = 3,
        fill: FillMode = "min",
    ):
        owner = "VariableSpectrogramMask"
        for field, ratio in (("max_time_ratio", max_time_ratio), ("max_freq_ratio", max_freq_ratio)):
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"{owner}: {field} must be in [0, 1], got {ratio!r}")
        self.max_time_ratio, self.max_freq_ratio = float(max_time_ratio), float(max_freq_ratio)
        self.time_step = check_positive_int(owner, "time_step", time_step)
        self.freq_step = check_positive_int(owner, "freq_step", freq_step)
        self.max_time_width = check_positive_int(owner, "max_time_width", max_time_width)
        self.max_freq_width = check_positive_int(owner, "max_freq_width", max_freq_width)
        self.fill = _check_fill(owner, fill)

    def _sample_axis(
        self, batch: int, size: int, max_ratio: float, step: int, max_width: int,
        generator: torch.Generator | None, axis: str,
    ) -> tuple[Tensor, MaskBands]:
        if max_width > size:
            raise ValueError(f"VariableSpectrogramMask: max width {max_width} exceeds the {axis} size {size}")
        ratio = uniform(batch, 0.0, max_ratio, generator)
        counts = (ratio * size).floor().to(torch.int64) // step  # [B]
        most = int(max_ratio * size) // step
        candidates = size - max_width + 1
        slots = min(most, candidates)  # distinct starts cannot outnumber the candidate positions
        starts = random_permutations(batch, candidates, generator)[:, :slots]
        widths = random_integers((batch, slots), 1, max_width, generator)
        widths = torch.where(torch.arange(slots) < counts[:, None], widths, 0)
        return ratio, MaskBands(starts=starts, widths=widths)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> VariableMaskParams:
        batch, freqs, frames = shape[0], shape[-2], shape[-1]
        time_ratio, time_bands = self._sample_axis(
            batch, frames, self.max_time_ratio, self.time_step, self.max_time_width, generator, "time"
        )
        freq_ratio, freq_bands = self._sample_axis(
            batch, freqs, self.max_freq_ratio, self.freq_step, self.max_freq_width, generator, "freq"
        )
        return VariableMaskParams(time_ratio, freq_ratio, time_bands, freq_bands)

    def apply_params(self, spec: Tensor, params: VariableMaskParams) -> Tensor:
        spec = fill_bands(spec, "time", params.time_bands, self.fill)
        return fill_bands(spec, "freq", params.freq_bands, self.fill)

    def forward_batch(self, spec: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(spec, self.sample_params(spec.shape, generator))
