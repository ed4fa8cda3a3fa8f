"""Resize a learned absolute position embedding to another token grid (spec §4.1, §4.6).

XKD learns one position vector per token of the native grid (video 8×7×7, audio 20×28) plus one for
CLS. Evaluation at other sizes (224² fine-tuning, 8-frame local views, 2-s spectrograms) resizes the
patch part with ``F.interpolate`` and keeps the CLS slot. XKD follows DINO's "+0.1" trick: the scale
factor passed to ``F.interpolate`` is ``(new + 0.1) / old`` per axis, so the output size
``floor(old · scale)`` is exactly ``new`` despite float rounding, and, because ``scale_factor`` (not
``size``) is given, that same slightly larger scale sets the sampling grid. Reproducing it matters:
passing ``size=new`` instead moves the result by more than the parity tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_patch_pos_embed(
    patch_pos: Tensor,
    native_grid: Sequence[int],
    new_grid: Sequence[int],
    mode: str,
    fixed_axes: Sequence[int] = (),
) -> Tensor:
    """Interpolate the patch position embeddings ``1×prod(native_grid)×D`` → ``1×prod(new_grid)×D``.

    ``mode`` is ``"trilinear"`` (video, all of t, h, w) or ``"bicubic"`` (audio); axes listed in
    ``fixed_axes`` get scale 1 (an exact identity, as XKD's audio ``scale_factor=(1, …)``) and must
    not change size. Returns the input itself when the grid is native, as XKD does.
    """
    native_grid, new_grid = tuple(native_grid), tuple(new_grid)
    if new_grid == native_grid:
        return patch_pos
    if len(new_grid) != len(native_grid):
        raise ValueError(f"token grid {new_grid} has a different number of axes than {native_grid}")
    for axis in fixed_axes:
        if new_grid[axis] != native_grid[axis]:
            raise ValueError(
                f"grid axis {axis} cannot be resized ({native_grid[axis]} -> {new_grid[axis]})"
            )
    dim = patch_pos.shape[-1]
    scale = tuple(
        1.0 if axis in fixed_axes else (new + 0.1) / old
        for axis, (old, new) in enumerate(zip(native_grid, new_grid))
    )
    grid = patch_pos.reshape(1, *native_grid, dim).movedim(-1, 1)  # [1, D, *native_grid]
    resized = F.interpolate(grid, scale_factor=scale, mode=mode, align_corners=False)
    if tuple(resized.shape[2:]) != new_grid:  # the +0.1 margin makes this unreachable; guard anyway
        raise RuntimeError(f"position-embedding resize gave {tuple(resized.shape[2:])}, wanted {new_grid}")
    return resized.movedim(1, -1).reshape(1, -1, dim)  # [1, prod(new_grid), D]


def pos_embed_for_grid(
    pos_embed: Tensor,
    native_grid: Sequence[int],
    new_grid: Sequence[int],
    mode: str,
    fixed_axes: Sequence[int] = (),
) -> Tensor:
    """Full embedding ``1×(1+N)×D`` (CLS first) → ``1×(1+N')×D`` for ``new_grid``; CLS slot kept."""
    if tuple(new_grid) == tuple(native_grid):
        return pos_embed
    patch_pos = resize_patch_pos_embed(pos_embed[:, 1:], native_grid, new_grid, mode, fixed_axes)
    return torch.cat([pos_embed[:, :1], patch_pos], dim=1)
