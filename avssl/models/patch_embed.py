"""Cut a video clip or a spectrogram into non-overlapping patches and embed them (spec §4.1).

XKD tokenises video into 4×16×16 (t×h×w) cuboids and log-mel spectrograms into 4×16 (f×t) patches.
Inside a patch the values are flattened with the **channels fastest**, exactly as XKD's
``rearrange('b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2 c)')``; the tokens follow the patch
grid in row-major order (t, h, w for video; f, t for audio, i.e. frequency-major). That order is
what the released ``cuboid_embed.proj`` / ``patch_embed.proj`` weights (a ``Linear``, not a
convolution) expect, and also the order of the masked-reconstruction targets (§4.3 step 1), so one
:func:`patchify` serves both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn


def patchify(x: Tensor, patch_size: tuple[int, ...]) -> Tensor:
    """``B×C×(g1·p1)×(g2·p2)…`` → ``B×(g1·g2·…)×(p1·p2·…·C)`` in XKD's patch order.

    Works for any number of patch axes (3 for video ``B×C×T×H×W``, 2 for audio ``B×1×F×T``).
    The caller guarantees that every axis is a multiple of its patch size.
    """
    batch, channels = x.shape[:2]
    grid = [size // p for size, p in zip(x.shape[2:], patch_size)]
    n_axes = len(patch_size)
    # [B, C, g1, p1, g2, p2, ...]
    split = x.reshape(batch, channels, *[v for g, p in zip(grid, patch_size) for v in (g, p)])
    grid_dims = [2 + 2 * i for i in range(n_axes)]
    patch_dims = [3 + 2 * i for i in range(n_axes)]
    # [B, g1, g2, ..., p1, p2, ..., C]: channels vary fastest inside a patch
    ordered = split.permute(0, *grid_dims, *patch_dims, 1)
    return ordered.reshape(batch, math.prod(grid), math.prod(patch_size) * channels)


@dataclass(frozen=True)
class PatchGrid:
    """How one modality is cut into tokens, and the token grid its position embedding was learnt on.

    ``grid`` is the native token grid (video 8×7×7 for 32×112×112, audio 20×28 for 80×448).
    Other input sizes interpolate the position embedding with ``pos_interp_mode`` over all grid
    axes except ``fixed_axes``, which must keep their native size (audio frequency: the mel bins
    are not a translation-invariant axis, so XKD never resizes it).
    """

    modality: Literal["video", "audio"]
    in_chans: int
    patch_size: tuple[int, ...]
    grid: tuple[int, ...]
    axis_names: tuple[str, ...]
    pos_interp_mode: Literal["trilinear", "bicubic"]
    fixed_axes: tuple[int, ...] = ()

    @property
    def patch_dim(self) -> int:
        """Values per patch: ``prod(patch_size) · in_chans`` (3072 video, 64 audio for ViT-B)."""
        return math.prod(self.patch_size) * self.in_chans

    @property
    def num_patches(self) -> int:
        return math.prod(self.grid)

    @property
    def native_input_shape(self) -> tuple[int, ...]:
        """``C×…`` input size that gives the native grid (without the batch axis)."""
        return (self.in_chans, *(g * p for g, p in zip(self.grid, self.patch_size)))

    def grid_for(self, shape: torch.Size | tuple[int, ...], owner: str = "ViT") -> tuple[int, ...]:
        """Token grid for an input of ``shape`` (with batch axis); clear error if it cannot be patched."""
        layout = "B×C×" + "×".join(name[0].upper() for name in self.axis_names)
        want_ndim = 2 + len(self.patch_size)
        if len(shape) != want_ndim:
            raise ValueError(
                f"{owner}: expected a {want_ndim}-D {self.modality} input {layout}, got shape {tuple(shape)}"
            )
        if shape[1] != self.in_chans:
            raise ValueError(
                f"{owner}: expected {self.in_chans} input channel(s) in {layout}, got shape {tuple(shape)}"
            )
        grid = []
        for axis, (size, patch, name) in enumerate(zip(shape[2:], self.patch_size, self.axis_names)):
            if size % patch != 0 or size == 0:
                raise ValueError(
                    f"{owner}: the {name} axis ({size}) of input {tuple(shape)} is not a positive "
                    f"multiple of the patch size {patch}"
                )
            if axis in self.fixed_axes and size // patch != self.grid[axis]:
                raise ValueError(
                    f"{owner}: the {name} axis must have {self.grid[axis] * patch} values "
                    f"({self.grid[axis]} patches of {patch}); the position embedding is only "
                    f"interpolated along the other axes. Got input {tuple(shape)}"
                )
            grid.append(size // patch)
        return tuple(grid)


def video_cuboids(
    frames: int = 32, size: int = 112, cuboid: tuple[int, int, int] = (4, 16, 16)
) -> PatchGrid:
    """Video tokeniser of XKD: ``t×h×w`` cuboids of RGB ``B×3×T×H×W`` clips (ViT-B: 8×7×7 tokens)."""
    t, h, w = cuboid
    return PatchGrid(
        modality="video",
        in_chans=3,
        patch_size=(t, h, w),
        grid=(frames // t, size // h, size // w),
        axis_names=("time", "height", "width"),
        pos_interp_mode="trilinear",
    )


def audio_patches(mel_bins: int = 80, frames: int = 448, patch: tuple[int, int] = (4, 16)) -> PatchGrid:
    """Audio tokeniser of XKD: ``f×t`` patches of ``B×1×F×T`` log-mel spectrograms (ViT-B: 20×28)."""
    f, t = patch
    return PatchGrid(
        modality="audio",
        in_chans=1,
        patch_size=(f, t),
        grid=(mel_bins // f, frames // t),
        axis_names=("frequency", "time"),
        pos_interp_mode="bicubic",
        fixed_axes=(0,),
    )


class PatchEmbed(nn.Module):
    """Patches → ``Linear(patch_dim, embed_dim)``: ``B×C×…`` → ``B×N×D``.

    The projection is a ``Linear`` named ``proj`` so that XKD's ``*.proj.{weight,bias}`` load as is
    (video ViT-B: 768×3072, audio: 768×64).
    """

    def __init__(self, patch_grid: PatchGrid, embed_dim: int) -> None:
        super().__init__()
        self.patch_grid = patch_grid
        self.proj = nn.Linear(patch_grid.patch_dim, embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(patchify(x, self.patch_grid.patch_size))  # [B, N, D]
