"""Gaussian blur of video clips with a random σ per clip (spec §2.5: p 0.5, kernel 11, σ ~ U(0.1, 2);
§4.2 XKD local views: kernel 9)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .random_params import coin_flips, uniform
from .transform import (
    VideoTransform,
    apply_to_selected,
    check_interval,
    check_positive_int,
    check_probability,
)


def gaussian_kernels(sigma: Tensor, kernel_size: int) -> Tensor:
    """1-D kernels ``[B, K]`` for per-clip ``sigma`` ``[B]``: exp(−x²/2σ²) at the integer offsets
    −(K−1)/2 … (K−1)/2, normalised to sum 1 (torchvision's ``gaussian_blur`` kernel)."""
    half = kernel_size // 2
    offsets = torch.arange(-half, half + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma.to(torch.float64)[:, None]) ** 2)
    return kernel / kernel.sum(dim=1, keepdim=True)


def blur_planes(planes: Tensor, kernels: Tensor) -> Tensor:
    """Blur each plane of ``planes`` ``[N, H, W]`` with its own separable kernel ``kernels`` ``[N, K]``.

    Reflected borders without repeating the edge pixel (torchvision's padding); one depthwise
    convolution per axis for all planes.
    """
    count, height, width = planes.shape
    size = kernels.shape[1]
    half = size // 2
    if half >= height or half >= width:
        raise ValueError(f"GaussianBlur: kernel_size {size} needs an image side > {half}, got {min(height, width)}")
    weights = kernels.to(device=planes.device, dtype=planes.dtype)
    x = F.pad(planes[None], (half, half, 0, 0), mode="reflect")
    x = F.conv2d(x, weights.view(count, 1, 1, size), groups=count)
    x = F.pad(x, (0, 0, half, half), mode="reflect")
    return F.conv2d(x, weights.view(count, 1, size, 1), groups=count)[0]


@dataclass(frozen=True)
class BlurParams:
    """Per-clip draws: ``sigma`` ``[B]`` and ``applied`` ``[B]`` (the ``p`` coin)."""

    sigma: Tensor
    applied: Tensor


class GaussianBlur(VideoTransform):
    """Blur every frame of a clip with the same isotropic Gaussian, with probability ``p``.

    torchvision's ``gaussian_blur`` semantics: a ``kernel_size``-tap kernel sampled at integer offsets and
    normalised, applied separably with reflected borders; σ ~ U(``sigma``) per clip. Computed as two
    depthwise convolutions (each plane gets its clip's kernel): K taps per pixel, where a dense
    per-clip resampling matrix would cost H (or W) multiply-adds per pixel.
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
            # Every channel and frame of a clip gets that clip's kernel.
            kernels = gaussian_kernels(params.sigma[index], self.kernel_size).repeat_interleave(channels * frames, 0)
            return blur_planes(sub.reshape(-1, height, width), kernels).reshape(sub.shape)

        return apply_to_selected(clips, params.applied, blur)

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(clips, self.sample_params(clips.shape, generator))
