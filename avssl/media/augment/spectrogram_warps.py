"""Geometric spectrogram ops on ``[B, C, F, T]``: BYOL-A random resize crop and time warp.

* :class:`SpectrogramRandomResizeCrop` (CrissCross §2.5, XKD §4.2 local audio view): the spectrogram sits
  at the centre of a zero canvas 1.0× its height and 1.5× its width; a crop of U(0.6, 1.5)× the
  spectrogram's height and width (each drawn separately, clipped to the canvas) is taken at a uniform
  position and resized back to ``F × T`` with bicubic interpolation (``align_corners=True``, as BYOL-A).
* :class:`TimeWarp` (CrissCross SVM / XKD fine-tune training, §2.7 ``wrap_window 20``, §4.6): a random
  centre frame moves by up to ``window`` frames; the two segments on either side are resized to fill their
  new lengths, so the shape and both end frames are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .random_params import random_index, random_integers, uniform
from .resampling import apply_separable, point_sample_weights
from .transform import SpectrogramTransform, check_interval, check_positive_int


def _align_corners_positions(start: Tensor, length: Tensor, out_size: int, device: torch.device) -> Tensor:
    """Index positions ``[B, out_size]`` spreading ``out_size`` samples evenly from the first to the last
    pixel of the window ``[start, start + length)`` (``align_corners=True`` resizing)."""
    start = start.to(device=device, dtype=torch.float64)
    span = (length.to(device=device, dtype=torch.float64) - 1.0).clamp(min=0.0)
    step = span / (out_size - 1) if out_size > 1 else torch.zeros_like(span)
    return start[:, None] + step[:, None] * torch.arange(out_size, device=device, dtype=torch.float64)


@dataclass(frozen=True)
class CanvasCrops:
    """Crop boxes on the virtual canvas (int64 CPU ``[B]``) and where the spectrogram sits on it."""

    top: Tensor
    left: Tensor
    height: Tensor
    width: Tensor
    canvas_top: int
    canvas_left: int


class SpectrogramRandomResizeCrop(SpectrogramTransform):
    """BYOL-A random resize crop over a virtual zero canvas (see module docstring)."""

    def __init__(
        self,
        virtual_crop_scale: Sequence[float] = (1.0, 1.5),
        scale: Sequence[float] = (0.6, 1.5),
    ):
        owner = "SpectrogramRandomResizeCrop"
        if len(virtual_crop_scale) != 2 or min(virtual_crop_scale) < 1.0:
            raise ValueError(
                f"{owner}: virtual_crop_scale must be (freq, time) factors >= 1, got {virtual_crop_scale!r}"
            )
        self.virtual_crop_scale = (float(virtual_crop_scale[0]), float(virtual_crop_scale[1]))
        low, high = check_interval(owner, "scale", scale)
        if low <= 0:
            raise ValueError(f"{owner}: scale must be positive, got {scale!r}")
        self.scale = (low, high)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> CanvasCrops:
        batch, freqs, frames = shape[0], shape[-2], shape[-1]
        canvas_h = int(freqs * self.virtual_crop_scale[0])
        canvas_w = int(frames * self.virtual_crop_scale[1])
        height = (uniform(batch, *self.scale, generator) * freqs).to(torch.int64).clamp(1, canvas_h)
        width = (uniform(batch, *self.scale, generator) * frames).to(torch.int64).clamp(1, canvas_w)
        return CanvasCrops(
            top=random_index(canvas_h - height + 1, generator),
            left=random_index(canvas_w - width + 1, generator),
            height=height,
            width=width,
            canvas_top=(canvas_h - freqs) // 2,
            canvas_left=(canvas_w - frames) // 2,
        )

    def apply_params(self, spec: Tensor, crops: CanvasCrops) -> Tensor:
        freqs, frames, device = spec.shape[-2], spec.shape[-1], spec.device
        row_positions = _align_corners_positions(crops.top, crops.height, freqs, device)
        col_positions = _align_corners_positions(crops.left, crops.width, frames, device)
        # Taps stay inside the crop (interpolating the cut-out crop) and read zeros off the spectrogram.
        row_weights = point_sample_weights(
            row_positions, crops.top.to(device)[:, None], (crops.top + crops.height - 1).to(device)[:, None],
            freqs, "cubic", offset=crops.canvas_top,
        )
        col_weights = point_sample_weights(
            col_positions, crops.left.to(device)[:, None], (crops.left + crops.width - 1).to(device)[:, None],
            frames, "cubic", offset=crops.canvas_left,
        )
        return apply_separable(spec, row_weights, col_weights)

    def forward_batch(self, spec: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(spec, self.sample_params(spec.shape, generator))


@dataclass(frozen=True)
class WarpParams:
    """Per-spectrogram warp (int64 CPU ``[B]``): frame ``centre`` moves to frame ``target``."""

    centre: Tensor
    target: Tensor


class TimeWarp(SpectrogramTransform):
    """Move frame c ~ U{W..T−W−1} to c + U{−W..W} (kept inside (0, T−1)) and stretch both sides.

    Output frames ``[0, target]`` are frames ``[0, centre]`` resized, ``[target, T−1]`` are
    ``[centre, T−1]`` resized (``align_corners=True``, each segment interpolated on its own).
    """

    def __init__(self, window: int = 20, interpolation: Literal["linear", "cubic"] = "cubic"):
        self.window = check_positive_int("TimeWarp", "window", window)
        if interpolation not in ("linear", "cubic"):
            raise ValueError(f"TimeWarp: interpolation must be 'linear' or 'cubic', got {interpolation!r}")
        self.interpolation = interpolation

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> WarpParams:
        batch, frames = shape[0], shape[-1]
        if frames < 2 * self.window + 1:
            raise ValueError(
                f"TimeWarp: window {self.window} needs at least {2 * self.window + 1} frames, got {frames}"
            )
        centre = random_integers(batch, self.window, frames - self.window - 1, generator)
        target = (centre + random_integers(batch, -self.window, self.window, generator)).clamp(1, frames - 2)
        return WarpParams(centre=centre, target=target)

    def apply_params(self, spec: Tensor, params: WarpParams) -> Tensor:
        frames, device = spec.shape[-1], spec.device
        last = float(frames - 1)
        centre = params.centre.to(device=device, dtype=torch.float64)[:, None]
        target = params.target.to(device=device, dtype=torch.float64)[:, None]
        out = torch.arange(frames, device=device, dtype=torch.float64)[None]  # [1, T]
        left = out <= target
        positions = torch.where(
            left, out * centre / target, centre + (out - target) * (last - centre) / (last - target)
        )
        low = torch.where(left, 0.0, centre)
        high = torch.where(left, centre, last)
        col_weights = point_sample_weights(positions, low, high, frames, self.interpolation)
        return apply_separable(spec, None, col_weights)

    def forward_batch(self, spec: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(spec, self.sample_params(spec.shape, generator))
