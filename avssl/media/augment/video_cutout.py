"""Cutout: one square per clip at the same place in every frame (spec §2.5, §2.7; pitfall §5 #6).

CrissCross's implementation builds a mask that holds the clip mean inside the square and 1 elsewhere
and *multiplies* it into the (normalised) clip, so the square is scaled by the mean rather than replaced
by it. ``mode="mean_multiply"`` reproduces that for parity; ``mode="fill"`` is a true cutout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from .random_params import coin_flips, random_index, random_integers
from .transform import VideoTransform, check_positive_int, check_probability

CUTOUT_MODES = ("mean_multiply", "fill")


@dataclass(frozen=True)
class CutoutParams:
    """Per-clip draws (CPU ``[B]``): square ``side``, centre ``(row, col)``, ``applied`` (the p coin)."""

    side: Tensor
    row: Tensor
    col: Tensor
    applied: Tensor


class Cutout(VideoTransform):
    """Cut one square of side L ~ U{1..``max_size``} centred at a uniform pixel, with probability ``p``.

    The square spans rows ``[row − L//2, row − L//2 + L)`` (and likewise columns), clipped to the frame.
    ``mode="mean_multiply"``: multiply the square by the clip's mean over ``C, T, H, W`` (CrissCross).
    ``mode="fill"``: set the square to ``fill_value`` (0 = the dataset mean after normalisation).
    """

    def __init__(
        self,
        max_size: int = 20,
        p: float = 1.0,
        mode: Literal["mean_multiply", "fill"] = "mean_multiply",
        fill_value: float = 0.0,
    ):
        self.max_size = check_positive_int("Cutout", "max_size", max_size)
        self.p = check_probability("Cutout", "p", p)
        if mode not in CUTOUT_MODES:
            raise ValueError(f"Cutout: mode must be one of {CUTOUT_MODES}, got {mode!r}")
        self.mode = mode
        self.fill_value = float(fill_value)

    def sample_params(self, shape: torch.Size, generator: torch.Generator | None) -> CutoutParams:
        batch, height, width = shape[0], shape[-2], shape[-1]
        return CutoutParams(
            side=random_integers(batch, 1, self.max_size, generator),
            row=random_index(torch.full((batch,), height), generator),
            col=random_index(torch.full((batch,), width), generator),
            applied=coin_flips(batch, self.p, generator),
        )

    def square_masks(self, params: CutoutParams, height: int, width: int, device: torch.device) -> Tensor:
        """Bool ``[B, 1, 1, H, W]``: True inside each applied clip's square."""
        start_row = (params.row - params.side // 2).to(device)
        start_col = (params.col - params.side // 2).to(device)
        side = params.side.to(device)
        rows = torch.arange(height, device=device)
        cols = torch.arange(width, device=device)
        in_rows = (rows >= start_row[:, None]) & (rows < (start_row + side)[:, None])  # [B, H]
        in_cols = (cols >= start_col[:, None]) & (cols < (start_col + side)[:, None])  # [B, W]
        square = in_rows[:, :, None] & in_cols[:, None, :] & params.applied.to(device)[:, None, None]
        return square[:, None, None]

    def apply_params(self, clips: Tensor, params: CutoutParams) -> Tensor:
        square = self.square_masks(params, clips.shape[-2], clips.shape[-1], clips.device)
        if self.mode == "fill":
            return clips.masked_fill(square, self.fill_value)
        mean = clips.mean(dim=(1, 2, 3, 4)).view(-1, 1, 1, 1, 1)
        return clips * torch.where(square, mean, torch.ones_like(mean))

    def forward_batch(self, clips: Tensor, generator: torch.Generator | None) -> Tensor:
        return self.apply_params(clips, self.sample_params(clips.shape, generator))
