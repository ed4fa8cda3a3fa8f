"""Classification metrics of the downstream protocols (spec §6.1 "Evaluation metrics", §4.6).

* top-k accuracy of score matrices ``[N, C]`` (percent);
* clip-level vs video-level accuracy: video scores are the mean over a video's clips of the softmax
  (fine-tuning and linear heads) or of the raw scores (SVM decision values, spec §2.7 / §4.6);
* multi-label mAP: mean over the classes with at least one positive of sklearn's
  ``average_precision_score`` (FSD50K, spec §4.6), plus mean ROC-AUC and class-frequency-weighted AP.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = [
    "average_by_group",
    "clip_and_video_accuracy",
    "mean_auc",
    "mean_average_precision",
    "multilabel_metrics",
    "topk_accuracy",
]


def _as_numpy(x: np.ndarray | torch.Tensor | Sequence) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def topk_accuracy(scores, labels, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Percent of rows whose label is among the ``k`` highest scores, for each ``k``.

    ``scores``: ``[N, C]``; ``labels``: ``[N]`` integer class indices. ``k`` larger than ``C`` is
    clipped to ``C`` (always 100 %). Ties are broken by class index (stable sort).
    """
    scores, labels = _as_numpy(scores), _as_numpy(labels).astype(np.int64)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(f"topk_accuracy: expected scores [N, C] and labels [N], got {scores.shape} and {labels.shape}")
    if len(labels) == 0:
        raise ValueError("topk_accuracy: no rows to score")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(
            f"topk_accuracy: labels must lie in [0, {scores.shape[1]}), got [{labels.min()}, {labels.max()}]"
        )
    order = np.argsort(-scores, axis=1, kind="stable")  # [N, C], best first
    rank_of_label = np.argmax(order == labels[:, None], axis=1)  # [N]
    return {k: float(100.0 * np.mean(rank_of_label < min(k, scores.shape[1]))) for k in ks}


def average_by_group(scores, groups, softmax: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``scores`` ``[M, C]`` over rows sharing a group id ``[M]``.

    Returns ``(group_ids [G], averaged [G, C])`` with groups in sorted order. ``softmax`` turns each
    row into probabilities first (softmax averaging of logits; SVM decision values are averaged raw).
    """
    scores, groups = _as_numpy(scores).astype(np.float64), _as_numpy(groups)
    if scores.ndim != 2 or groups.shape != (scores.shape[0],):
        raise ValueError(
            f"average_by_group: expected scores [M, C] and groups [M], got {scores.shape} and {groups.shape}"
        )
    if softmax:
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores = shifted / shifted.sum(axis=1, keepdims=True)
    ids, inverse = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(ids), scores.shape[1]))
    np.add.at(sums, inverse, scores)
    counts = np.bincount(inverse, minlength=len(ids))[:, None]
    return ids, sums / counts


def clip_and_video_accuracy(
    clip_scores, clip_groups, clip_labels, softmax: bool, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """``clip_top{k}`` (each clip scored alone) and ``video_top{k}`` (scores averaged per video).

    ``clip_scores`` ``[M, C]``, ``clip_groups`` ``[M]`` (video id of each clip), ``clip_labels`` ``[M]``
    (the clip's video label; all clips of one video must agree).
    """
    clip_labels = _as_numpy(clip_labels).astype(np.int64)
    ids, video_scores = average_by_group(clip_scores, clip_groups, softmax=softmax)
    _, first_row = np.unique(_as_numpy(clip_groups), return_index=True)
    video_labels = clip_labels[first_row]
    groups = _as_numpy(clip_groups)
    for gid, label in zip(ids, video_labels):
        if np.any(clip_labels[groups == gid] != label):
            raise ValueError(f"clip_and_video_accuracy: clips of video {gid} carry different labels")
    out = {f"clip_top{k}": v for k, v in topk_accuracy(clip_scores, clip_labels, ks).items()}
    out.update({f"video_top{k}": v for k, v in topk_accuracy(video_scores, video_labels, ks).items()})
    return out


def _scored_classes(targets: np.ndarray, need_negative: bool) -> np.ndarray:
    positives = targets.sum(axis=0)
    keep = positives > 0
    if need_negative:
        keep &= positives < targets.shape[0]
    return np.flatnonzero(keep)


def _check_multilabel(scores, targets) -> tuple[np.ndarray, np.ndarray]:
    scores, targets = _as_numpy(scores).astype(np.float64), _as_numpy(targets)
    if scores.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(
            f"expected scores and targets of the same shape [N, C], got {scores.shape} and {targets.shape}"
        )
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("targets must be a 0/1 matrix")
    return scores, targets.astype(np.int64)


def mean_average_precision(scores, targets) -> float:
    """Mean over classes with ≥ 1 positive of ``average_precision_score`` (percent), spec §4.6."""
    scores, targets = _check_multilabel(scores, targets)
    classes = _scored_classes(targets, need_negative=False)
    if len(classes) == 0:
        raise ValueError("mean_average_precision: no class has a positive example")
    return float(100.0 * np.mean([average_precision_score(targets[:, c], scores[:, c]) for c in classes]))


def mean_auc(scores, targets) -> float:
    """Mean ROC-AUC (percent) over classes with both a positive and a negative example."""
    scores, targets = _check_multilabel(scores, targets)
    classes = _scored_classes(targets, need_negative=True)
    if len(classes) == 0:
        return float("nan")
    return float(100.0 * np.mean([roc_auc_score(targets[:, c], scores[:, c]) for c in classes]))


def multilabel_metrics(scores, targets) -> dict[str, float]:
    """``mAP``, ``AUC`` and ``weighted_AP`` (classes weighted by their number of positives), percent."""
    scores, targets = _check_multilabel(scores, targets)
    classes = _scored_classes(targets, need_negative=False)
    per_class = np.array([average_precision_score(targets[:, c], scores[:, c]) for c in classes])
    weights = targets[:, classes].sum(axis=0)
    return {
        "mAP": mean_average_precision(scores, targets),
        "AUC": mean_auc(scores, targets),
        "weighted_AP": float(100.0 * np.sum(per_class * weights) / weights.sum()),
    }
