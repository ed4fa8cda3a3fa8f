"""Per-sample separable resampling as two batched matrix products.

The BYOL-A spectrogram crop and time warp map each output row/column to a weighted sum
of input rows/columns, with weights that differ per sample. Writing those weights as matrices
``[B, out, in]`` and applying ``rows @ x @ colsᵀ`` gives one batched kernel for the whole batch on any
device, exact crop-then-resize semantics (a window never reads pixels outside itself), and the same
frame-independent weights for every frame of a clip (temporal consistency by construction). (Video clips
are larger: the random resized crop slices its window out and resizes it with ``F.interpolate``,
video_geometry.py; the blur is a depthwise convolution, video_blur.py.)

Conventions: point-sampling weights use index coordinates (pixel ``j`` at position ``j``), as
``align_corners=True`` resizing does.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

# Keys' cubic convolution coefficient used by PyTorch's bicubic resize and grid_sample.
CUBIC_A = -0.75


def apply_separable(x: Tensor, row_weights: Tensor | None, col_weights: Tensor | None) -> Tensor:
    """Resample the last two axes of ``x`` ``[B, M, R, C]`` sample by sample.

    ``row_weights`` ``[B, R', R]`` and ``col_weights`` ``[B, C', C]`` (either may be ``None`` to leave that
    axis alone); returns ``[B, M, R', C']``. ``M`` stacks channels and frames, which all share the weights.
    """
    batch, planes, rows, cols = x.shape
    out_rows = rows if row_weights is None else row_weights.shape[1]
    out_cols = cols if col_weights is None else col_weights.shape[1]
    # Resample first along the axis that leaves less work for the second product.
    cols_first = rows * cols * out_cols + out_rows * rows * out_cols
    rows_first = out_rows * rows * cols + out_rows * cols * out_cols
    if cols_first <= rows_first:
        return _resample_rows(_resample_cols(x, col_weights), row_weights)
    return _resample_cols(_resample_rows(x, row_weights), col_weights)


def _resample_cols(x: Tensor, col_weights: Tensor | None) -> Tensor:
    if col_weights is None:
        return x
    batch, planes, rows, cols = x.shape
    # [B, M·R, C] @ [B, C, C'] -> [B, M, R, C']
    out = torch.bmm(x.reshape(batch, planes * rows, cols), col_weights.transpose(1, 2).to(x.dtype))
    return out.reshape(batch, planes, rows, col_weights.shape[1])


def _resample_rows(x: Tensor, row_weights: Tensor | None) -> Tensor:
    if row_weights is None:
        return x
    batch, planes, rows, cols = x.shape
    # [B, R', R] @ [B, R, M·C] -> [B, R', M, C] -> [B, M, R', C]
    stacked = x.permute(0, 2, 1, 3).reshape(batch, rows, planes * cols)
    out = torch.bmm(row_weights.to(x.dtype), stacked).reshape(batch, row_weights.shape[1], planes, cols)
    return out.permute(0, 2, 1, 3).contiguous()


def _kernel(distance: Tensor, kind: Literal["linear", "cubic"]) -> Tensor:
    d = distance.abs()
    if kind == "linear":
        return (1.0 - d).clamp(min=0.0)
    near = ((CUBIC_A + 2.0) * d - (CUBIC_A + 3.0)) * d * d + 1.0  # |d| <= 1
    far = ((CUBIC_A * d - 5.0 * CUBIC_A) * d + 8.0 * CUBIC_A) * d - 4.0 * CUBIC_A  # 1 < |d| < 2
    return torch.where(d <= 1.0, near, torch.where(d < 2.0, far, torch.zeros_like(d)))


def point_sample_weights(
    positions: Tensor,
    low: Tensor,
    high: Tensor,
    in_size: int,
    kind: Literal["linear", "cubic"] = "cubic",
    offset: Tensor | int = 0,
) -> Tensor:
    """Weights ``[B, O, in_size]`` interpolating at ``positions`` ``[B, O]`` (index coordinates).

    Taps are clamped to ``[low, high]`` (broadcastable to ``[B, O]``): the window being resized behaves
    as if it were cut out first, edge values repeated, as ``F.interpolate`` and ``grid_sample`` with
    border padding do. ``offset`` (``[B]`` or int) shifts window coordinates to input indices: window
    index ``k`` is input index ``k - offset``, and taps that land outside ``[0, in_size)`` read zeros —
    this is how a zero canvas around the input is represented without building it.
    """
    positions = positions.to(torch.float64)
    device = positions.device
    base = positions.floor()
    taps = base[..., None] + torch.arange(-1, 3, device=device, dtype=torch.float64)  # [B, O, 4]
    weights = _kernel(positions[..., None] - taps, kind)
    low = torch.as_tensor(low, device=device, dtype=torch.float64)
    high = torch.as_tensor(high, device=device, dtype=torch.float64)
    taps = torch.maximum(torch.minimum(taps, high[..., None]), low[..., None])
    offset = torch.as_tensor(offset, device=device, dtype=torch.float64)
    if offset.ndim == 1:
        offset = offset[:, None, None]
    taps = taps - offset
    on_input = (taps >= 0) & (taps < in_size)
    weights = weights * on_input
    index = taps.clamp(0, in_size - 1).to(torch.int64)
    out = torch.zeros(*positions.shape, in_size, device=device, dtype=torch.float64)
    return out.scatter_add_(-1, index, weights)
