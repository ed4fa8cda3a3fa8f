"""Linear SVM probe on frozen features (spec §2.7 ESC-50, §4.6 UCF/HMDB/K400/ESC-50/KS, §5 row 23).

The original protocols train sklearn ``LinearSVC(C, max_iter=1000)`` (one-vs-rest, no feature
scaling) on features of *augmented* training clips — every clip one training sample — and score a
test video by the mean of the decision values of its dense test clips. C is swept over a grid and
the **best test accuracy** is reported (``selection: test``, "paper" mode). That selects a model on
the test fold, so avssl adds ``selection: heldout``: C is chosen by cross-validation on the
training data, grouped by video so the clips of one video never sit on both sides of a split, and
the test fold is scored once with that C. Reports label which mode made the number.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GroupKFold
from sklearn.svm import LinearSVC

from avssl.data.benchmarks import BenchmarkData
from avssl.evaluate.features import ExtractedFeatures, load_frozen_encoder, split_features
from avssl.evaluate.metrics import average_by_group, topk_accuracy
from avssl.evaluate.protocols import (
    EvaluationContext,
    FoldResult,
    ProtocolError,
    ProtocolPreset,
    register_protocol_kind,
)

logger = logging.getLogger(__name__)

__all__ = [
    "SVMOutcome", "fit_linear_svm", "fuse_features", "run_av_svm_protocol", "run_svm_protocol", "select_c_heldout",
    "svm_probe", "video_decision_scores",
]


@dataclass
class SVMOutcome:
    """Result of one fold: accuracies (percent) with the chosen C, and what the sweep saw."""

    top1: float
    top5: float
    chosen_c: float
    selection: str
    # test top-1 for every C in "test" mode; cross-validated top-1 for every C in "heldout" mode
    accuracy_by_c: dict[float, float] = field(default_factory=dict)
    convergence_warnings: int = 0


def fit_linear_svm(
    features: np.ndarray, labels: np.ndarray, c: float, seed: int = 0, max_iter: int = 1000, dual: bool | str = "auto"
) -> tuple[LinearSVC, int]:
    """``LinearSVC(C=c)`` fitted on ``features`` ``[N, D]`` / ``labels`` ``[N]``; also returns how
    many ConvergenceWarnings it raised (the originals stop at 1,000 iterations and ignore them)."""
    model = LinearSVC(C=c, max_iter=max_iter, random_state=seed, dual=dual)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(features, labels)
    return model, sum(issubclass(w.category, ConvergenceWarning) for w in caught)


def video_decision_scores(
    model: LinearSVC, features: np.ndarray, groups: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decision values of clips ``[M, D]`` averaged per video (``groups`` ``[M]``).

    Returns ``(video_ids [V], scores [V, num_classes])``; classes absent from the training labels
    get ``-inf`` so they are never predicted.
    """
    decision = model.decision_function(features)  # [M, K]; two classes give [M]
    if decision.ndim == 1:
        decision = np.stack([-decision, decision], axis=1)
    ids, averaged = average_by_group(decision, groups)  # [V, K]
    scores = np.full((len(ids), num_classes), -np.inf)
    scores[:, model.classes_] = averaged
    return ids, scores


def _video_labels(groups: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    first = {g: l for g, l in zip(groups[::-1], labels[::-1])}  # any clip's label (they agree)
    return np.array([first[g] for g in ids])


def select_c_heldout(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    cs: Sequence[float],
    num_classes: int,
    n_splits: int = 3,
    seed: int = 0,
    max_iter: int = 1000,
    dual: bool | str = "auto",
) -> tuple[float, dict[float, float], int]:
    """C with the best video-level top-1 under ``n_splits``-fold cross-validation grouped by video.

    Returns ``(best_c, mean cv top-1 per C, convergence warnings)``; ties go to the smaller C
    (stronger regularisation).
    """
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise ValueError(f"select_c_heldout: {n_groups} training videos cannot make {n_splits} cross-validation folds")
    splits = list(GroupKFold(n_splits=n_splits).split(features, labels, groups))
    accuracy: dict[float, float] = {}
    warned = 0
    for c in sorted(cs):
        fold_acc = []
        for train_idx, val_idx in splits:
            model, w = fit_linear_svm(features[train_idx], labels[train_idx], c, seed, max_iter, dual)
            warned += w
            ids, scores = video_decision_scores(model, features[val_idx], groups[val_idx], num_classes)
            fold_acc.append(topk_accuracy(scores, _video_labels(groups[val_idx], labels[val_idx], ids), (1,))[1])
        accuracy[c] = float(np.mean(fold_acc))
    best = max(sorted(accuracy), key=lambda c: (accuracy[c], -c))
    return best, accuracy, warned


def svm_probe(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    train_groups: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    test_groups: np.ndarray,
    cs: Sequence[float],
    num_classes: int,
    selection: str,
    seed: int = 0,
    cv_splits: int = 3,
    max_iter: int = 1000,
    dual: bool | str = "auto",
) -> SVMOutcome:
    """Train on clip features, score videos by averaged decision values, pick C by ``selection``.

    Train: ``[N, D]`` features of augmented clips, ``[N]`` labels, ``[N]`` video ids. Test: ``[M, D]``
    features of dense clips, their ``[M]`` labels and ``[M]`` video ids. ``selection``: ``"test"``
    (best C on the test fold, as the papers) or ``"heldout"`` (grouped cross-validation on train).
    """
    if selection not in ("test", "heldout"):
        raise ValueError(f"svm_probe: selection must be 'test' or 'heldout', got {selection!r}")
    if not cs:
        raise ValueError("svm_probe: the C grid is empty")

    def score(c: float) -> tuple[float, float, int]:
        model, w = fit_linear_svm(train_features, train_labels, c, seed, max_iter, dual)
        ids, scores = video_decision_scores(model, test_features, test_groups, num_classes)
        acc = topk_accuracy(scores, _video_labels(test_groups, test_labels, ids), (1, 5))
        return acc[1], acc[5], w

    if selection == "heldout" and len(cs) > 1:
        best_c, by_c, warned = select_c_heldout(
            train_features, train_labels, train_groups, cs, num_classes, cv_splits, seed, max_iter, dual
        )
        top1, top5, w = score(best_c)
        return SVMOutcome(top1, top5, best_c, selection, by_c, warned + w)
    results = {c: score(c) for c in sorted(cs)}
    best_c = max(results, key=lambda c: (results[c][0], -c))
    top1, top5, _ = results[best_c]
    return SVMOutcome(
        top1, top5, best_c, selection, {c: r[0] for c, r in results.items()}, sum(r[2] for r in results.values())
    )


# -- protocol runners: "svm" (one modality) and "av_svm" (audio-visual fusion, spec §4.6) ---------

DEFAULT_C_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0)


def _features_over_folds(
    preset: ProtocolPreset, context: EvaluationContext, data: BenchmarkData, modality: str, folds: list[int | None]
) -> tuple[ExtractedFeatures, ExtractedFeatures]:
    """Training-clip and test-clip features of every file used by any of ``folds``, extracted once
    (each file's clips depend on the seed and its row only, so folds share them)."""
    choice = context.encoder_for(modality)
    encoder = load_frozen_encoder(choice.name, choice.checkpoint, context.device, context.seed)
    params = preset.param(modality) if modality in preset.params else preset.params
    out = []
    for mode in ("train", "test"):
        rows = sorted({r for fold in folds for r in data.split_rows(fold, mode)})
        out.append(split_features(context, data, encoder, choice.checkpoint, params, rows, mode))
    return out[0], out[1]


def fuse_features(video: ExtractedFeatures, audio: ExtractedFeatures) -> ExtractedFeatures:
    """Per-clip video ‖ audio features of the files both modalities could read (spec §4.6 KS).

    Each modality's per-clip feature (spatial crops averaged) is concatenated, clip by clip; the
    L2 normalisation of each modality is the feature op's (``normalize: vector``).
    """
    audio_rows = set(audio.rows.tolist())
    shared = [r for r in video.rows.tolist() if r in audio_rows]
    v, a = video.select(shared), audio.select(shared)
    if v.views.shape[1] // v.views_per_clip != a.views.shape[1] // a.views_per_clip:
        raise ValueError("fuse_features: video and audio must have the same number of clips per file")
    views = np.concatenate([v.per_clip(), a.per_clip()], axis=-1)  # [F, n, Dv + Da]
    return ExtractedFeatures(v.rows, views, v.labels, 1, video.failed + audio.failed)


def _svm_folds(
    preset: ProtocolPreset, context: EvaluationContext, data: BenchmarkData, folds: list[int | None],
    train_all: ExtractedFeatures, test_all: ExtractedFeatures,
) -> list[FoldResult]:
    svm = dict(preset.param("svm", {}))
    results = []
    for fold in folds:
        train = train_all.select(data.split_rows(fold, "train"))
        test = test_all.select(data.split_rows(fold, "test"))
        x, groups = train.flat()
        test_x, test_groups = test.flat()
        outcome = svm_probe(
            x, train.first_labels()[groups], groups, test_x, test.first_labels()[test_groups], test_groups,
            cs=svm.get("c", DEFAULT_C_GRID), num_classes=len(data.classes), selection=preset.selection,
            seed=context.seed, cv_splits=svm.get("cv_splits", 3), max_iter=svm.get("max_iter", 1000),
            dual=svm.get("dual", "auto"),
        )
        logger.info("%s fold %s: C=%g, top-1 %.2f (%d training clips, %d-d)", preset.name, fold, outcome.chosen_c,
                    outcome.top1, len(x), x.shape[1])
        results.append(FoldResult(fold, {"top1": outcome.top1, "top5": outcome.top5}, {
            "C": outcome.chosen_c, "selection": outcome.selection, "top1_by_C": outcome.accuracy_by_c,
            "train_files": len(train.rows), "train_clips": len(x), "test_files": len(test.rows),
            "feature_dim": int(x.shape[1]), "convergence_warnings": outcome.convergence_warnings,
            "skipped_files": [p for p, _ in train_all.failed + test_all.failed],
        }))
    return results


def _single_label_benchmark(preset: ProtocolPreset, context: EvaluationContext) -> BenchmarkData:
    data = context.load_benchmark(preset)
    if data.multi_label:
        raise ProtocolError(f"protocol {preset.name}: the SVM protocol is single-label; {data.name} is multi-label")
    return data


@register_protocol_kind("svm")
def run_svm_protocol(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]:
    """Linear SVM on one modality's features (params: ``modality``, ``clip``, ``train``, ``test``,
    ``feature``, ``svm: {c, max_iter, dual, cv_splits}``)."""
    data = _single_label_benchmark(preset, context)
    folds = context.folds_for(preset)
    train_all, test_all = _features_over_folds(preset, context, data, preset.param("modality"), folds)
    return _svm_folds(preset, context, data, folds, train_all, test_all)


@register_protocol_kind("av_svm")
def run_av_svm_protocol(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]:
    """Linear SVM on concatenated per-clip video and audio features (params: ``video`` and ``audio``
    each with ``clip``/``train``/``test``/``feature``, and ``svm``)."""
    data = _single_label_benchmark(preset, context)
    folds = context.folds_for(preset)
    video_train, video_test = _features_over_folds(preset, context, data, "video", folds)
    audio_train, audio_test = _features_over_folds(preset, context, data, "audio", folds)
    return _svm_folds(preset, context, data, folds, fuse_features(video_train, audio_train),
                      fuse_features(video_test, audio_test))
