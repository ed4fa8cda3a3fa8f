"""Reading a pretraining batch (``avssl.data.datasets.collate_views``) with clear errors.

A batch maps ``"video"`` and ``"audio"`` to lists of view tensors (``[B, 3, T, H, W]`` and
``[B, 1, F, T]``) and ``"index"`` to the instance ids ``[B]``. Each method says how many views of
each modality it needs; a batch built for another recipe is reported by name instead of failing
deep inside an encoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

__all__ = ["take_views", "take_av_views", "take_index"]


def take_views(batch: Mapping[str, Any], modality: str, count: int, method: str) -> list[Tensor]:
    """The first ``count`` views of ``batch[modality]``, all with the same batch size."""
    if modality not in batch:
        raise KeyError(f"{method}: the batch has no {modality!r} entry (keys: {sorted(batch)})")
    views = batch[modality]
    if isinstance(views, Tensor):
        views = [views]
    if len(views) < count:
        raise ValueError(
            f"{method}: needs {count} {modality} view(s) per sample, the batch has {len(views)} "
            "(check the view recipe of the data config)"
        )
    views = list(views[:count])
    sizes = {int(v.shape[0]) for v in views}
    if len(sizes) > 1:
        raise ValueError(f"{method}: {modality} views have different batch sizes {sorted(sizes)}")
    return views


def take_av_views(batch: Mapping[str, Any], count: int, method: str) -> tuple[list[Tensor], list[Tensor]]:
    """The first ``count`` video and ``count`` audio views (:func:`take_views`), checked to hold the
    same samples: one batch size across both modalities."""
    videos = take_views(batch, "video", count, method)
    audios = take_views(batch, "audio", count, method)
    if videos[0].shape[0] != audios[0].shape[0]:
        raise ValueError(
            f"{method}: video and audio views have different batch sizes "
            f"({videos[0].shape[0]} vs {audios[0].shape[0]})"
        )
    return videos, audios


def take_index(batch: Mapping[str, Any], batch_size: int, method: str) -> Tensor:
    """``batch["index"]``, checked to be ``[batch_size]`` integers (the memory-bank instance ids)."""
    if "index" not in batch:
        raise KeyError(f"{method}: the batch has no 'index' entry (instance ids for the memory banks)")
    index = batch["index"]
    is_ids = isinstance(index, Tensor) and index.ndim == 1 and not index.is_floating_point()
    if not is_ids or index.shape[0] != batch_size:
        got = f"{index.dtype} {tuple(index.shape)}" if isinstance(index, Tensor) else type(index)
        raise ValueError(f"{method}: 'index' must be an integer tensor [{batch_size}], got {got}")
    return index
