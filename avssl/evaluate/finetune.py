"""Full fine-tuning of a video or audio encoder on a labelled benchmark (spec §2.7, §3A.7, §4.6).

The encoder and a classifier head (:class:`~avssl.evaluate.heads.ClassifierHead`: dropout →
Linear, orthogonal or N(0, 0.01) init) train together on one random augmented clip per item, the
file list repeated ``repeats`` times per epoch; the test scores dense clips: ``test.clips`` windows
at ``linspace(0, N − L, n)`` × 1 centre or 3 spatial crops, softmax averaged per video (Video@1),
and each view alone (Clip@1; AVID's separate 25-clip pass with ``clip_level_clips``).

What each paper's preset sets (``configs/evaluate/{ucf101,hmdb51}/``):

* **CrissCross** (§2.7): SGD momentum 0.9, wd 0, MultiStep per epoch, 20 epochs; the encoder's
  pooling replaced by max-pooling (``encoder_kwargs: {pool: max}``); 10 test clips; the configs'
  ``warmup_epochs: 2`` is ignored by the original code and so here (pitfall §5 row 9); autocast
  without loss scaling there, fp32 or bf16 (no scaling needed) here.
* **AVID / AV-SSRL** (§3A.7, §3B.7): Adam 1e-4, wd 0, ×0.3 MultiStep, dropout 0.5, 5 head-only
  warm-up epochs at the base LR (``warmup_head_epochs``; the encoder is frozen and in eval mode
  meanwhile), Clip@1 over 25 clips and Video@1 over 10.
* **XKD** (§4.6): AdamW, wd 0.05 (none on 1-D parameters, ``pos_embed``, ``cls_token``),
  layer-wise LR decay (0.45 UCF / K400, 0.75 HMDB), linear warm-up then cosine to 1e-6,
  Mixup/CutMix + label smoothing 0.1 (:mod:`avssl.evaluate.mixup`), dropout 0.5, 3 temporal × 3
  spatial test views. Not reproduced: RandAugment ``rand-m7-n4-mstd0.5-inc1`` and random erasing
  (no such op in :mod:`avssl.media.augment`; the preset keeps the random-resized crop
  (0.2–0.766) and flip) and "best epoch over test" reporting (we report the final epoch).

Python use::

    metrics, extras = finetune(encoder, data, fold=1, params=ClassifierParams.from_params(p, "mine"))
"""

from __future__ import annotations

from typing import Any

from torch import nn

from avssl.data.benchmarks import BenchmarkData
from avssl.evaluate.classifier_run import ClassifierParams, RunSettings, run_classifier_protocol, train_and_test
from avssl.evaluate.protocols import EvaluationContext, FoldResult, ProtocolPreset, register_protocol_kind


def finetune(
    encoder: nn.Module,
    data: BenchmarkData,
    fold: int | None,
    params: ClassifierParams,
    settings: RunSettings | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Fine-tune ``encoder`` (changed in place) with a head on the training files of ``fold`` and
    test on its test files; returns ``(metrics, extras)`` (see :func:`~avssl.evaluate.
    classifier_run.train_and_test`)."""
    return train_and_test(
        encoder, data, data.split_rows(fold, "train"), data.split_rows(fold, "test"), params,
        settings or RunSettings(), train_encoder=True,
    )


@register_protocol_kind("finetune")
def run_finetune(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]:
    """Full fine-tuning per fold (runner of preset kind ``finetune``)."""
    return run_classifier_protocol(preset, context, train_encoder=True)
