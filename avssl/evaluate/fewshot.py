"""Few-shot training subsets and class-subset sweeps of the linear protocol (spec §3B.7).

* :func:`few_shot_rows` — AV-SSRL's ``--few-shot-ratio r``: keep ``max(⌊r·n_c⌋, 1)`` random training
  videos of every class ``c`` (seed 42 when ``r < 1``; all videos when ``r = 1``); the test set is
  untouched. The draw uses numpy's ``default_rng(seed)``, classes in index order, so it is
  reproducible here but not the same files as AV-SSRL's own draw.
* :func:`class_subset_sweep` — linear probes on one class subset (labels re-indexed 0..K−1) at
  several few-shot ratios, each from a fresh copy of the encoder (a probe with ``bn_train_mode``
  changes the encoder's BatchNorm statistics). Seen/unseen concept generalisation is two sweeps, one
  per subset, each with its own heads (:mod:`avssl.evaluate.concepts`).

Protocol kind ``fewshot``: the linear preset plus ``few_shot_ratios`` (default 5/10/20/50/100 %) and
``few_shot_seed`` (42); metrics ``r5/clip_top1``, ``r5/video_top1``, ... for every ratio.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from avssl.data.benchmarks import BenchmarkData, load_benchmark
from avssl.evaluate.classifier_run import (
    SWEEP_PARAMS,
    ClassifierParams,
    RunSettings,
    build_encoder,
    run_settings,
    train_and_test,
)
from avssl.evaluate.protocols import EvaluationContext, FoldResult, ProtocolPreset, register_protocol_kind

FEW_SHOT_RATIOS = (0.05, 0.1, 0.2, 0.5, 1.0)
FEW_SHOT_SEED = 42


def few_shot_rows(rows: Sequence[int], labels: Sequence[int], ratio: float, seed: int = FEW_SHOT_SEED) -> list[int]:
    """The rows kept at ``ratio`` (module docstring), in their original order.

    ``rows`` ``[N]`` and ``labels`` ``[N]`` (one class index per row) are the training files.
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"few_shot_rows: ratio must lie in (0, 1], got {ratio}")
    if len(rows) != len(labels):
        raise ValueError(f"few_shot_rows: {len(rows)} rows but {len(labels)} labels")
    if ratio == 1:
        return list(rows)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)  # positions of class c, in row order
        count = max(math.floor(ratio * len(members)), 1)
        keep += members[np.sort(rng.permutation(len(members))[:count])].tolist()
    return [rows[i] for i in sorted(keep)]


def ratio_key(ratio: float) -> str:
    """Metric prefix of a ratio: 0.05 → ``"r5"``, 1.0 → ``"r100"``."""
    return f"r{round(ratio * 100):d}"


def class_subset_sweep(
    encoder: nn.Module,
    data: BenchmarkData,
    fold: int | None,
    params: ClassifierParams,
    settings: RunSettings,
    ratios: Sequence[float],
    seed: int = FEW_SHOT_SEED,
    classes: Sequence[int] | None = None,
    prefix: str = "",
) -> tuple[dict[str, float], dict[str, Any]]:
    """Linear probes on ``classes`` (all when ``None``) at every few-shot ``ratio``.

    ``encoder`` is the pristine template; each run trains on a deep copy. Metrics are named
    ``<prefix><ratio key>/<metric>``; extras record the training files per ratio.
    """
    train_rows = data.split_rows(fold, "train")
    test_rows = data.split_rows(fold, "test")
    if classes is not None:
        wanted = set(classes)
        train_rows = [r for r in train_rows if data.labels_of(r)[0] in wanted]
    labels = [data.labels_of(r)[0] for r in train_rows]
    metrics: dict[str, float] = {}
    extras: dict[str, Any] = {}
    for ratio in ratios:
        rows = few_shot_rows(train_rows, labels, ratio, seed)
        key = f"{prefix}{ratio_key(ratio)}"
        scores, run_extras = train_and_test(
            copy.deepcopy(encoder), data, rows, test_rows, params, settings, train_encoder=False, classes=classes,
        )
        metrics.update({f"{key}/{name}": value for name, value in scores.items()})
        extras[key] = {"train_files": len(rows), "train_loss": run_extras["train_loss"],
                       "failed_files": run_extras["failed_files"]}
    return metrics, extras


def sweep_options(preset: ProtocolPreset) -> tuple[list[float], int]:
    """``few_shot_ratios`` and ``few_shot_seed`` of a preset, checked."""
    ratios = [float(r) for r in preset.param("few_shot_ratios", list(FEW_SHOT_RATIOS))]
    bad = [r for r in ratios if not 0 < r <= 1]
    if bad or not ratios:
        raise ValueError(
            f"{preset.path or preset.name}: params.few_shot_ratios must be non-empty, in (0, 1]; got {ratios}"
        )
    return ratios, int(preset.param("few_shot_seed", FEW_SHOT_SEED))


@register_protocol_kind("fewshot")
def run_fewshot(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]:
    """Linear probe at every few-shot ratio, per fold."""
    params = ClassifierParams.from_params(preset.params, str(preset.path or preset.name), SWEEP_PARAMS)
    ratios, seed = sweep_options(preset)
    choice = context.encoder_for(params.modality)
    template = build_encoder(choice.name, choice.checkpoint, params)
    data = load_benchmark(preset.benchmark, context.data_root)
    results = []
    for fold in context.folds_for(preset):
        metrics, extras = class_subset_sweep(template, data, fold, params, run_settings(context), ratios, seed)
        results.append(FoldResult(fold, metrics, {**extras, "ratios": ratios, "few_shot_seed": seed}))
    return results

