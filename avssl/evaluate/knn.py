"""Cosine k-nearest-neighbour classification of frozen features.

Not one of the five papers' protocols, but the cheapest sanity check of a representation (no
training, no hyper-parameter sweep) and the standard monitor of self-supervised training. Each
test video's feature (mean over its dense clips) votes with its ``k`` most cosine-similar training
videos; votes are uniform or, with a ``temperature`` τ, weighted by ``exp(similarity / τ)`` (the
weighting of Wu et al. 2018, "Unsupervised feature learning via non-parametric instance
discrimination", also used by DINO's kNN monitor).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from avssl.evaluate.features import load_frozen_encoder, split_features
from avssl.evaluate.metrics import topk_accuracy
from avssl.evaluate.protocols import (
    EvaluationContext,
    FoldResult,
    ProtocolError,
    ProtocolPreset,
    register_protocol_kind,
)

__all__ = ["knn_scores", "run_knn_protocol"]


def knn_scores(
    train_features: np.ndarray | torch.Tensor,
    train_labels: np.ndarray | torch.Tensor,
    test_features: np.ndarray | torch.Tensor,
    num_classes: int,
    k: int = 20,
    temperature: float | None = None,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Class scores ``[M, num_classes]`` of test features ``[M, D]`` from training ``[N, D]`` / ``[N]``.

    A class's score is the sum of the votes of the neighbours carrying it (uniform 1, or
    ``exp(cos / temperature)``); rows sum to the total vote. ``k`` larger than ``N`` uses all
    training rows. Computed in chunks of ``chunk_size`` test rows to bound memory.
    """
    train = F.normalize(torch.as_tensor(np.asarray(train_features), dtype=torch.float32), dim=1)  # [N, D]
    test = F.normalize(torch.as_tensor(np.asarray(test_features), dtype=torch.float32), dim=1)  # [M, D]
    labels = torch.as_tensor(np.asarray(train_labels), dtype=torch.int64)  # [N]
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1] or labels.shape != (train.shape[0],):
        raise ValueError(
            f"knn_scores: expected train [N, D], labels [N], test [M, D]; got {tuple(train.shape)}, "
            f"{tuple(labels.shape)}, {tuple(test.shape)}"
        )
    if k < 1:
        raise ValueError(f"knn_scores: k must be >= 1, got {k}")
    if temperature is not None and temperature <= 0:
        raise ValueError(f"knn_scores: temperature must be > 0, got {temperature}")
    k = min(k, train.shape[0])
    out = torch.zeros(test.shape[0], num_classes)
    for start in range(0, test.shape[0], chunk_size):
        similarity = test[start : start + chunk_size] @ train.T  # [m, N]
        top_sim, top_idx = similarity.topk(k, dim=1)  # [m, k]
        votes = torch.ones_like(top_sim) if temperature is None else (top_sim / temperature).exp()
        out[start : start + chunk_size].scatter_add_(1, labels[top_idx], votes)
    return out.numpy()


@register_protocol_kind("knn")
def run_knn_protocol(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]:
    """Cosine kNN on video-level features (mean over dense clips) of the training and test files.

    Params: ``modality``, ``clip``, ``test: {clips}`` (used for both sides: no augmentation),
    ``feature``, ``knn: {k, temperature}`` (temperature ``null`` = uniform votes).
    """
    data = context.load_benchmark(preset)
    if data.multi_label:
        raise ProtocolError(f"protocol {preset.name}: kNN classification is single-label; {data.name} is multi-label")
    choice = context.encoder_for(preset.param("modality"))
    encoder = load_frozen_encoder(choice.name, choice.checkpoint, context.device, context.seed)
    folds = context.folds_for(preset)
    rows = sorted({r for fold in folds for split in ("train", "test") for r in data.split_rows(fold, split)})
    features = split_features(context, data, encoder, choice.checkpoint, preset.params, rows, "test")
    knn = dict(preset.param("knn", {}))
    results = []
    for fold in folds:
        train, test = features.select(data.split_rows(fold, "train")), features.select(data.split_rows(fold, "test"))
        scores = knn_scores(train.mean(), train.first_labels(), test.mean(), len(data.classes),
                            k=knn.get("k", 20), temperature=knn.get("temperature"))
        accuracy = topk_accuracy(scores, test.first_labels(), (1, 5))
        results.append(FoldResult(fold, {"top1": accuracy[1], "top5": accuracy[5]}, {
            "k": knn.get("k", 20), "temperature": knn.get("temperature"), "train_files": len(train.rows),
            "test_files": len(test.rows), "skipped_files": [p for p, _ in features.failed],
        }))
    return results
