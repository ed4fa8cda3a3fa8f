"""Geometric video ops: random resized crop, horizontal flip, and the evaluation resize and crops.

All take clips ``[B, C, T, H, W]`` (or one clip ``[C, T, H, W]``) and give every frame of a clip the same
geometry (spec §2.5, §3A.3, §4.2: "temporally consistent"). Crops are resized with antialiased
bilinear filtering, the tensor equivalent of the PIL resize the original pipelines ran on frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .random_params import coin_flips, random_index, uniform
from .transform import (
    VideoTransform,
    apply_to_selected,
    check_interval,
    check_positive_int,
    check_probability,
    check_size,
    to_unit_float,
)

RRC_TRIES = 10  # torchvision's RandomResizedCrop tries 10 boxes before falling back to a centre crop


@dataclass(frozen=True)
class CropBoxes:
    """One crop box per clip, in pixels: int64 CPU tensors ``[B]``."""

    top: Tensor
    left: Tensor
    height: Tensor
    width: Tensor


def resized_crop(clips: Tensor, boxes: CropBoxes, size: tuple[int, int]) -> Tensor:
    """Cut ``boxes`` out of ``clips`` ``[B, C, T, H, W]`` and resize each to ``size`` → float ``[B, C, T, h, w]``.

    Each clip's window is sliced out first (only it is converted, when ``clips`` are uint8 in
    [0, 255]: the result is in [0, 1]) and resized in one antialiased bilinear ``F.interpolate`` over
    all its channels and frames — PIL's resize of the original pipelines, never reading a pixel outside
    the window. One call per clip: slicing makes the work proportional to the window, where a batched
    formulation over the whole frames costs several times more on the CPU.
    """
    batch, channels, frames = clips.shape[:3]
    dtype = clips.dtype if clips.is_floating_point() else torch.float32
    out = torch.empty((batch, channels, frames, *size), dtype=dtype, device=clips.device)
    for b, (top, left, height, width) in enumerate(
        zip(boxes.top.tolist(), boxes.left.tolist(), boxes.height.tolist(), boxes.width.tolist())
    ):
        window = clips[b, :, :, top : top + height, left : left + width]  # [C, T, h0, w0]
        window = to_unit_float(window) if window.dtype == torch.uint8 else window
        planes = window.reshape(1, channels * frames, height, width)
        resized = F.interpolate(planes, size=size, mode="bilinear", align_corners=False, antialias=True)
        out[b] = resized.reshape(channels, frames, *size)
    return out


class RandomResizedCrop(VideoTransform):
    """Random crop of random area and aspect ratio, resized to ``size``; one box per clip.

    Takes uint8 clips as they are and converts only the cropped windows (see :func:`resized_crop`).
    Box sampling follows torchvision's rule: up to 10 tries of area ~ U(scale)·H·W and aspect ratio
    ~ exp(U(log ratio)), rounded; the first box that fits is used, else a centre crop clipped to the
    ratio range. Spec: CrissCross §2.5 (112, scale (0.08, 1)), AVID §3A.3 (224), XKD §4.2 (global 112
    scale (0.2, 1); local 96 scale (0.08, 0.4)).
    """

    takes_uint8 = True

    def __init__(
        self,
        size: int | Sequence[int],
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
    ):
        self.size = check_size("RandomResizedCrop", "size", size)
        self.scale = check_interval("RandomResizedCrop", "scale", scale, minimum=0.0)
        self.ratio = check_interval("RandomResizedCrop", "ratio", ratio, minimum=1e-6)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> CropBoxes:
        batch, height, width = shape[0], shape[-2], shape[-1]
        area = height * width
        target_area = area * uniform((batch, RRC_TRIES), *self.scale, generator)
        log_ratio = uniform((batch, RRC_TRIES), math.log(self.ratio[0]), math.log(self.ratio[1]), generator)
        aspect = log_ratio.exp()
        # torch.round rounds halves to even, like Python's round() in torchvision's rule.
        widths = (target_area * aspect).sqrt().round().to(torch.int64)
        heights = (target_area / aspect).sqrt().round().to(torch.int64)
        fits = (widths > 0) & (widths <= width) & (heights > 0) & (heights <= height)
        first_fit = torch.where(fits.any(dim=1), fits.to(torch.int64).argmax(dim=1), 0)
        crop_w = widths.gather(1, first_fit[:, None]).squeeze(1)
        crop_h = heights.gather(1, first_fit[:, None]).squeeze(1)
        fallback_h, fallback_w = self._fallback_box(height, width)
        found = fits.any(dim=1)
        crop_h = torch.where(found, crop_h, fallback_h)
        crop_w = torch.where(found, crop_w, fallback_w)
        top = random_index(height - crop_h + 1, generator)
        left = random_index(width - crop_w + 1, generator)
        top = torch.where(found, top, (height - crop_h) // 2)
        left = torch.where(found, left, (width - crop_w) // 2)
        return CropBoxes(top=top, left=left, height=crop_h, width=crop_w)

    def _fallback_box(self, height: int, width: int) -> tuple[int, int]:
        # The whole frame, trimmed to the nearest allowed aspect ratio.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            return round(width / self.ratio[0]), width
        if in_ratio > self.ratio[1]:
            return height, round(height * self.ratio[1])
        return height, width

    def apply_params(self, clips: Tensor, boxes: CropBoxes) -> Tensor:
        return resized_crop(clips, boxes, self.size)

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(clips, self.sample_params(clips.shape, generator))


class RandomHorizontalFlip(VideoTransform):
    """Mirror a clip left-right with probability ``p`` (whole clip, all frames)."""

    def __init__(self, p: float = 0.5):
        self.p = check_probability("RandomHorizontalFlip", "p", p)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> Tensor:
        return coin_flips(shape[0], self.p, generator)

    def apply_params(self, clips: Tensor, flipped: Tensor) -> Tensor:
        return apply_to_selected(clips, flipped, lambda sub, _: sub.flip(-1))

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(clips, self.sample_params(clips.shape, generator))


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """Output ``(height, width)`` with the short side at ``short_side`` and the aspect kept (truncated)."""
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


class ResizeShortSide(VideoTransform):
    """Resize every frame so that its short side is ``size`` (evaluation, spec §2.7, §3A.3, §4.6).

    uint8 clips pass through untouched when they already have that size (the decoder resized them)."""

    takes_uint8 = True

    def __init__(self, size: int):
        self.size = check_positive_int("ResizeShortSide", "size", size)

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        batch, height, width = clips.shape[0], clips.shape[-2], clips.shape[-1]
        out_size = short_side_size(height, width, self.size)
        if out_size == (height, width):
            return clips
        whole = CropBoxes(
            top=torch.zeros(batch, dtype=torch.int64),
            left=torch.zeros(batch, dtype=torch.int64),
            height=torch.full((batch,), height),
            width=torch.full((batch,), width),
        )
        return resized_crop(clips, whole, out_size)


def _check_fits(owner: str, size: tuple[int, int], height: int, width: int) -> None:
    if size[0] > height or size[1] > width:
        raise ValueError(f"{owner}: crop {size} is larger than the {height}x{width} frames; resize first")


class CenterCrop(VideoTransform):
    """Cut the central ``size`` window (offsets rounded as torchvision's ``center_crop``)."""

    def __init__(self, size: int | Sequence[int]):
        self.size = check_size("CenterCrop", "size", size)

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        height, width = clips.shape[-2:]
        _check_fits("CenterCrop", self.size, height, width)
        top = int(round((height - self.size[0]) / 2.0))
        left = int(round((width - self.size[1]) / 2.0))
        return clips[..., top : top + self.size[0], left : left + self.size[1]]


class ThreeCrop(VideoTransform):
    """Three ``size`` squares along the long side: start, centre, end (left/centre/right for landscape).

    XKD's fine-tuning test (spec §4.6: short side → 224, 3 spatial crops). Returns ``[B, 3, C, T, s, s]``
    (``[3, C, T, s, s]`` for one clip), so it must be the last step of a composition.
    """

    def __init__(self, size: int):
        self.size = check_positive_int("ThreeCrop", "size", size)

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        height, width = clips.shape[-2:]
        s = self.size
        _check_fits("ThreeCrop", (s, s), height, width)
        top_mid, left_mid = int(round((height - s) / 2.0)), int(round((width - s) / 2.0))
        if width >= height:
            corners = [(top_mid, 0), (top_mid, left_mid), (top_mid, width - s)]
        else:
            corners = [(0, left_mid), (top_mid, left_mid), (height - s, left_mid)]
        crops = [clips[..., top : top + s, left : left + s] for top, left in corners]
        return torch.stack(crops, dim=1)
