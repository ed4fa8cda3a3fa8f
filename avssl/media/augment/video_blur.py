"""Gaussian blur of video clips with a random σ per clip (spec §2.5: p 0.5, kernel 11, σ ~ U(0.1, 2);
§4.2 XKD local views: kernel 9)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .random_params import coin_flips, uniform
from .resampling import apply_separable, gaussian_blur_weights
from .transform import (
    VideoTransform,
    apply_to_selected,
    check_interval,
    check_positive_int,
    check_probability,
)


@dataclass(frozen=True)
class BlurParams:
    """Per-clip draws: ``sigma`` ``[B]`` and ``applied`` ``[B]`` (the ``p`` coin)."""

    sigma: Tensor
    applied: Tensor


class GaussianBlur(VideoTransform):
    """Blur every frame of a clip with the same isotropic Gaussian, with probability ``p``.

    torchvision's ``gaussian_blur`` semantics: a ``kernel_size``-tap kernel sampled at integer offsets and
    normalised, applied separably with reflected borders; σ ~ U(``sigma``) per clip.
    """

    def __init__(self, kernel_size: int, sigma: Sequence[float] = (0.1, 2.0), p: float = 0.5):
        self.kernel_size = check_positive_int("GaussianBlur", "kernel_size", kernel_size)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"GaussianBlur: kernel_size must be odd, got {kernel_size}")
        low, high = check_interval("GaussianBlur", "sigma", sigma)
        if low <= 0:
            raise ValueError(f"GaussianBlur: sigma must be positive, got {sigma!r}")
        self.sigma = (low, high)
        self.p = check_probability("GaussianBlur", "p", p)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> BlurParams:
        batch = shape[0]
        sigma = uniform(batch, *self.sigma, generator)
        return BlurParams(sigma=sigma, applied=coin_flips(batch, self.p, generator))

    def apply_params(self, clips: Tensor, params: BlurParams) -> Tensor:
        def blur(sub: Tensor, index: Tensor) -> Tensor:
            b, channels, frames, height, width = sub.shape
            sigma = params.sigma[index]
            row_weights = gaussian_blur_weights(sigma, self.kernel_size, height, sub.device)
            col_weights = (
                row_weights if width == height
                else gaussian_blur_weights(sigma, self.kernel_size, width, sub.device)
            )
            planes = sub.reshape(b, channels * frames, height, width)
            return apply_separable(planes, row_weights, col_weights).reshape(sub.shape)

        return apply_to_selected(clips, params.applied, blur)

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(clips, self.sample_params(clips.shape, generator))
