"""Class-based video retrieval, R@k, as AV-SSRL defines it (spec §3B.7 "Retrieval", §5 row 15).

Queries are the test videos, the gallery the training videos (UCF101 fold 1 in AV-SSRL, videos
without audio removed). Each video is one feature: the mean over its dense clips. **R@k is the
percentage of queries for which at least one of the k nearest gallery items has the query's
class.** AV-SSRL ranks by Euclidean distance on unnormalised backbone features; ``metric="cosine"``
is offered too.

Modes: ``v2v`` (video query, video gallery), ``a2a``, and the cross-modal ``v2a`` / ``a2v``. Cross-
modal retrieval compares two feature spaces, which is only meaningful when both encoders embed into
a *shared* space; AV-SSRL compared backbone features of two independently shaped encoders (§5 row
15). :func:`check_cross_modal` therefore refuses two different backbones unless forced.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from avssl.evaluate.features import load_frozen_encoder, split_features
from avssl.evaluate.protocols import (
    EvaluationContext,
    FoldResult,
    ProtocolError,
    ProtocolPreset,
    register_protocol_kind,
)

__all__ = ["RETRIEVAL_MODES", "check_cross_modal", "recall_at_k", "run_retrieval_protocol"]

RETRIEVAL_MODES: dict[str, tuple[str, str]] = {
    "v2v": ("video", "video"),
    "a2a": ("audio", "audio"),
    "v2a": ("video", "audio"),
    "a2v": ("audio", "video"),
}


def recall_at_k(
    query_features: np.ndarray,
    query_labels: np.ndarray,
    gallery_features: np.ndarray,
    gallery_labels: np.ndarray,
    ks: Sequence[int] = (1, 5, 10, 20),
    metric: str = "euclidean",
) -> dict[str, float]:
    """``{"R@k": percent}``: share of queries ``[Q, D]`` with a same-class item among their ``k``
    nearest gallery items ``[G, D]`` (``metric``: ``"euclidean"`` or ``"cosine"``). Ties in distance
    are broken by gallery order."""
    query = torch.as_tensor(np.asarray(query_features), dtype=torch.float64)
    gallery = torch.as_tensor(np.asarray(gallery_features), dtype=torch.float64)
    q_labels, g_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"recall_at_k: queries [Q, D] and gallery [G, D] must share D; "
            f"got {tuple(query.shape)} and {tuple(gallery.shape)}"
        )
    if q_labels.shape != (query.shape[0],) or g_labels.shape != (gallery.shape[0],):
        raise ValueError("recall_at_k: one label per query and per gallery item is required")
    if metric == "euclidean":
        distance = torch.cdist(query, gallery)  # [Q, G]
    elif metric == "cosine":
        distance = -torch.nn.functional.normalize(query, dim=1) @ torch.nn.functional.normalize(gallery, dim=1).T
    else:
        raise ValueError(f"recall_at_k: metric must be 'euclidean' or 'cosine', got {metric!r}")
    order = np.argsort(distance.numpy(), axis=1, kind="stable")  # [Q, G], nearest first
    hit = g_labels[order] == q_labels[:, None]  # [Q, G]
    first_hit = np.where(hit.any(axis=1), hit.argmax(axis=1), np.iinfo(np.int64).max)  # [Q]
    return {f"R@{k}": float(100.0 * np.mean(first_hit < k)) for k in ks}


def check_cross_modal(
    query_encoder: str, gallery_encoder: str, query_dim: int | None = None, gallery_dim: int | None = None,
    force: bool = False,
) -> None:
    """Refuse cross-modal retrieval between features that do not share a space.

    Two different encoders' backbone features are unrelated coordinate systems (§5 row 15); ranking
    one against the other measures nothing. ``force=True`` runs it anyway with a warning (to
    reproduce AV-SSRL's v2a / a2v numbers); different dimensions (when given) are always an error.
    """
    if query_dim is not None and gallery_dim is not None and query_dim != gallery_dim:
        raise ValueError(
            f"cross-modal retrieval: {query_encoder} gives {query_dim}-d features and {gallery_encoder} "
            f"{gallery_dim}-d; they cannot be compared"
        )
    message = (
        f"cross-modal retrieval between backbone features of {query_encoder} and {gallery_encoder}: "
        "they share no embedding space, so the numbers are not meaningful (spec §5 row 15)"
    )
    if not force:
        raise ValueError(message + "; pass force=True (avssl evaluate --force) to reproduce AV-SSRL anyway")
    warnings.warn(message, stacklevel=2)


@register_protocol_kind("retrieval")
def run_retrieval_protocol(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]:
    """Test files query the training files (spec §3B.7), for each of ``params.modes``.

    Params: ``modes`` (subset of v2v, a2a, v2a, a2v), ``ks``, ``metric``, and per modality
    (``video``, ``audio``) ``clip`` / ``test: {clips}`` / ``feature``. Only files every needed
    modality could read are used (AV-SSRL drops videos without an audio stream).
    """
    modes = list(preset.param("modes"))
    unknown = sorted(set(modes) - set(RETRIEVAL_MODES))
    if unknown:
        raise ProtocolError(
            f"{preset.path or preset.name}: unknown retrieval mode(s) {unknown}; known: {list(RETRIEVAL_MODES)}"
        )
    data = context.load_benchmark(preset)
    folds = context.folds_for(preset)
    rows = sorted({r for fold in folds for split in ("train", "test") for r in data.split_rows(fold, split)})
    modalities = sorted({m for mode in modes for m in RETRIEVAL_MODES[mode]})
    choices = {m: context.encoder_for(m) for m in modalities}
    for mode in modes:  # refuse before spending time on features
        query_modality, gallery_modality = RETRIEVAL_MODES[mode]
        if query_modality != gallery_modality and not context.force:
            check_cross_modal(choices[query_modality].name, choices[gallery_modality].name)
    features = {}
    for modality, choice in choices.items():
        encoder = load_frozen_encoder(choice.name, choice.checkpoint, context.device, context.seed)
        params = preset.param(modality)
        features[modality] = split_features(context, data, encoder, choice.checkpoint, params, rows, "test")
    readable = set.intersection(*(set(f.rows.tolist()) for f in features.values()))
    ks, metric = preset.param("ks", [1, 5, 10, 20]), preset.param("metric", "euclidean")
    results = []
    for fold in folds:
        queries = [r for r in data.split_rows(fold, "test") if r in readable]
        gallery = [r for r in data.split_rows(fold, "train") if r in readable]
        metrics: dict[str, float] = {}
        for mode in modes:
            query_modality, gallery_modality = RETRIEVAL_MODES[mode]
            q, g = features[query_modality].select(queries), features[gallery_modality].select(gallery)
            if query_modality != gallery_modality:
                check_cross_modal(choices[query_modality].name, choices[gallery_modality].name,
                                  q.views.shape[-1], g.views.shape[-1], force=True)
            recalls = recall_at_k(q.mean(), q.first_labels(), g.mean(), g.first_labels(), ks, metric)
            metrics.update({f"{mode}_{name}": value for name, value in recalls.items()})
        results.append(FoldResult(fold, metrics, {
            "queries": len(queries), "gallery": len(gallery), "metric": metric,
            "skipped_files": sorted({p for f in features.values() for p, _ in f.failed}),
        }))
    return results
