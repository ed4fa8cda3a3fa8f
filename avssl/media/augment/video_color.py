"""Colour video ops: colour jitter, random grayscale, mean/std normalisation.

Semantics are torchvision's tensor ``ColorJitter`` / ``Grayscale`` (spec §2.5, §3A.3, §4.2: jitter
(0.4, 0.4, 0.4, 0.2) with the four adjustments in a random order, grayscale p 0.2 replicated to three
channels), with one factor set per clip shared by all its frames. Clips ``[B, 3, T, H, W]`` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from avssl.media.color_stats import IMAGENET_MEAN, IMAGENET_STD

from .random_params import coin_flips, random_permutations, uniform
from .transform import VideoTransform, apply_by_group, apply_to_selected, check_probability

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale uses on tensors.
LUMA_WEIGHTS = (0.2989, 0.587, 0.114)


def _per_clip(factors: Tensor, like: Tensor) -> Tensor:
    """``[b]`` factors as ``[b, 1, 1, 1, 1]`` on the device and dtype of clips ``like``."""
    return factors.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1, 1)


def _check_rgb(owner: str, clips: Tensor) -> None:
    if clips.shape[1] != 3:
        raise ValueError(f"{owner}: needs RGB clips (3 channels on axis 1), got shape {tuple(clips.shape)}")


def rgb_to_grayscale(clips: Tensor) -> Tensor:
    """Luma ``[B, 1, T, H, W]`` of RGB clips ``[B, 3, T, H, W]``."""
    r, g, b = clips.unbind(dim=1)
    return (LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b).unsqueeze(1)


def _blend(clips: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    # factor·x + (1 − factor)·other, clipped to [0, 1]: contrast and saturation are such blends
    # (torchvision's formula, computed with one full-size temporary).
    out = clips * factor
    return out.add_(other * (1.0 - factor)).clamp_(0.0, 1.0)


def adjust_brightness(clips: Tensor, factor: Tensor) -> Tensor:
    """Scale intensities by ``factor`` ``[b]`` (a blend with black)."""
    return (clips * _per_clip(factor, clips)).clamp_(0.0, 1.0)


def adjust_contrast(clips: Tensor, factor: Tensor) -> Tensor:
    """Blend with the mean luma of each frame (per frame, as the per-image original does)."""
    mean = rgb_to_grayscale(clips).mean(dim=(-2, -1), keepdim=True)  # [b, 1, T, 1, 1]
    return _blend(clips, mean, _per_clip(factor, clips))


def adjust_saturation(clips: Tensor, factor: Tensor) -> Tensor:
    """Blend with the grayscale version of each pixel."""
    return _blend(clips, rgb_to_grayscale(clips), _per_clip(factor, clips))


def adjust_hue(clips: Tensor, shift: Tensor) -> Tensor:
    """Rotate hue by ``shift`` ``[b]`` turns (in [-0.5, 0.5]) keeping HSV saturation and value.

    Hue h ∈ [0, 1) from the standard RGB→HSV sector formula; back to RGB with the closed form
    channel_n = V − C·clamp(min(k, 4 − k), 0, 1), k = (n + 6h) mod 6, n = 5, 3, 1 for R, G, B,
    where V = max and C = max − min (chroma), both unchanged by a hue rotation.

    Written with 0/1 masks, multiply-adds and in-place steps: ``max(dim)`` indices, ``where``,
    ``remainder`` and every fresh full-size temporary (page faults) cost more on the CPU than the
    arithmetic. min(k, 4 − k) = 2 − |k − 2|, and k is made positive before the mod.
    """
    r, g, b = clips.unbind(dim=1)
    value = clips.amax(dim=1)  # [b, T, H, W]
    chroma = clips.amin(dim=1).neg_().add_(value)
    # One-hot of the channel holding the max; ties resolve to red, then green (the usual convention).
    red = (r == value).to(clips.dtype)
    green = (g == value).to(clips.dtype).mul_(1.0 - red)
    blue = (1.0 - red).sub_(green)
    numerator = torch.addcmul(torch.addcmul((r - g).mul_(blue), g - b, red), b - r, green)
    sector_start = green.mul_(2.0).add_(blue, alpha=4.0)  # 0, 2 or 4 sixths
    safe_chroma = (chroma <= 0).to(clips.dtype).add_(chroma)  # 1 where the pixel is grey (numerator 0)
    hue6 = numerator.div_(safe_chroma).add_(sector_start)  # hue in sixths of a turn, in (-1, 5]
    hue6.add_(6.0 * _per_clip(shift, clips).squeeze(1) + 6.0)  # shifted, plus one turn: > 0
    channel_offsets = torch.tensor([5.0, 3.0, 1.0], device=clips.device, dtype=clips.dtype)
    k = hue6.unsqueeze(1) + channel_offsets.view(1, 3, 1, 1, 1)  # [b, 3, T, H, W], positive
    k.div_(6.0).frac_().mul_(6.0)  # mod 6
    ramp = k.sub_(2.0).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)  # clamp(min(k, 4 − k), 0, 1)
    return ramp.mul_(-chroma.unsqueeze(1)).add_(value.unsqueeze(1))


_ADJUSTMENTS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


@dataclass(frozen=True)
class JitterParams:
    """Per-clip jitter draws: ``order`` ``[B, 4]`` (indices into brightness, contrast, saturation, hue),
    ``factors`` ``[B, 4]`` in that fixed op order, and ``applied`` ``[B]`` (the ``p`` coin)."""

    order: Tensor
    factors: Tensor
    applied: Tensor


class ColorJitter(VideoTransform):
    """Random brightness, contrast, saturation and hue, in a random order per clip, with probability ``p``.

    Factors are drawn as torchvision does: brightness/contrast/saturation ~ U(max(0, 1 − v), 1 + v), hue
    shift ~ U(−v, v); a strength of 0 switches that adjustment off.
    """

    def __init__(
        self,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
        p: float = 1.0,
    ):
        for field, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if value < 0:
                raise ValueError(f"ColorJitter: {field} must be >= 0, got {value!r}")
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"ColorJitter: hue must be in [0, 0.5], got {hue!r}")
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.p = check_probability("ColorJitter", "p", p)

    def _ranges(self) -> list[tuple[float, float] | None]:
        ranges: list[tuple[float, float] | None] = [
            (max(0.0, 1.0 - v), 1.0 + v) if v > 0 else None
            for v in (self.brightness, self.contrast, self.saturation)
        ]
        ranges.append((-self.hue, self.hue) if self.hue > 0 else None)
        return ranges

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> JitterParams:
        batch = shape[0]
        order = random_permutations(batch, 4, generator)
        # A switched-off adjustment keeps its identity value (factor 1, hue shift 0); it is skipped anyway.
        identity = (1.0, 1.0, 1.0, 0.0)
        columns = [
            uniform(batch, *bounds, generator) if bounds
            else torch.full((batch,), identity[i], dtype=torch.float64)
            for i, bounds in enumerate(self._ranges())
        ]
        factors = torch.stack(columns, dim=1)
        return JitterParams(order=order, factors=factors, applied=coin_flips(batch, self.p, generator))

    def apply_params(self, clips: Tensor, params: JitterParams) -> Tensor:
        _check_rgb("ColorJitter", clips)
        enabled = [bounds is not None for bounds in self._ranges()]
        # Clips that drew the same order are processed together: each adjustment runs once per clip.
        order_code = (params.order * torch.tensor([64, 16, 4, 1])).sum(dim=1)
        groups = torch.where(params.applied, order_code, -1)

        def jitter(sub: Tensor, index: Tensor, _: int) -> Tensor:
            for op_index in params.order[index[0]].tolist():
                if enabled[op_index]:
                    sub = _ADJUSTMENTS[op_index](sub, params.factors[index, op_index])
            return sub

        return apply_by_group(clips, groups, jitter)

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(clips, self.sample_params(clips.shape, generator))


class RandomGrayscale(VideoTransform):
    """Replace a clip by its luma replicated to three channels, with probability ``p`` (spec §2.5: 0.2)."""

    def __init__(self, p: float = 0.2):
        self.p = check_probability("RandomGrayscale", "p", p)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        return coin_flips(shape[0], self.p, generator)

    def apply_params(self, clips: Tensor, grayed: Tensor) -> Tensor:
        _check_rgb("RandomGrayscale", clips)
        return apply_to_selected(clips, grayed, lambda sub, _: rgb_to_grayscale(sub).repeat(1, 3, 1, 1, 1))

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(clips, self.sample_params(clips.shape, generator))


class Normalize(VideoTransform):
    """``(x − mean[c]) / std[c]`` per channel; ImageNet statistics by default (§2.2, §3A.2, §4.6)."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        if len(mean) != len(std):
            raise ValueError(f"Normalize: mean and std need one value per channel, got {mean!r} and {std!r}")
        if any(s <= 0 for s in std):
            raise ValueError(f"Normalize: std must be positive, got {std!r}")
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        if clips.shape[1] != len(self.mean):
            raise ValueError(
                f"Normalize: {len(self.mean)} channel statistics for clips with {clips.shape[1]} channels"
            )
        mean = torch.tensor(self.mean, device=clips.device, dtype=torch.float64)
        std = torch.tensor(self.std, device=clips.device, dtype=torch.float64)
        # (x − mean) / std as one pass: x · (1 / std) + (−mean / std).
        scale = (1.0 / std).to(clips.dtype).view(1, -1, 1, 1, 1)
        offset = (-mean / std).to(clips.dtype).view(1, -1, 1, 1, 1)
        return torch.addcmul(offset, clips, scale)
