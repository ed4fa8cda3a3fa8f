"""Linear probes on a frozen encoder (spec §3A.7, §3B.7, §4.6; pitfall §5 row 11).

The encoder's weights never change; one or several probes learn on its features from augmented
training clips, and dense test clips are scored as in fine-tuning (Clip@1, Video@1, top-5).

* **BatchNorm**: frozen by default — the encoder stays in eval mode and its running statistics are
  the pretrained ones. ``bn_train_mode: true`` reproduces AVID / AV-SSRL, whose loops call
  ``model.train(True)`` on the whole model: the frozen backbone normalises training batches with
  their own statistics and its running statistics drift to the downstream data, and the test then
  uses the drifted statistics. The paper-reproduction presets set it; ``avssl-v1`` does not.
* **Probes** (:class:`~avssl.evaluate.heads.ProbeSpec`): AV-SSRL and XKD train one ``Linear`` on the
  pooled feature (no BN, no dropout); AVID's Kinetics protocol trains one probe per stage at once —
  ``conv2x`` → AdaptiveMaxPool3d(1,12,12), ``conv3x`` → (1,8,8), ``conv4x`` → (1,6,6), ``conv5x`` →
  (1,4,4), each flattened into BatchNorm1d and a Linear layer (metrics ``conv2x/video_top1``, ...).
* **Recipes** (presets in ``configs/evaluate``): AV-SSRL Adam 1e-4, 50 epochs, ×0.3 at epochs 20,
  30, 40, batch 32; AVID Kinetics Adam 1e-4, 12 epochs, ×0.1 at 6, 9, batch 128; XKD Kinetics AdamW
  lr 0.01, 10 warm-up epochs, cosine to 0, wd 0, 100 epochs, batch 256.

Python use::

    metrics, extras = linear_probe(encoder, data, fold=1, params=ClassifierParams.from_params(p, "mine"))
"""

from __future__ import annotations

from typing import Any

from torch import nn

from avssl.data.benchmarks import BenchmarkData
from avssl.evaluate.classifier_run import ClassifierParams, RunSettings, run_classifier_protocol, train_and_test
from avssl.evaluate.protocols import EvaluationContext, FoldResult, ProtocolPreset, register_protocol_kind


def linear_probe(
    encoder: nn.Module,
    data: BenchmarkData,
    fold: int | None,
    params: ClassifierParams,
    settings: RunSettings | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Train ``params.probes`` on the frozen ``encoder`` with the training files of ``fold`` and
    test on its test files; returns ``(metrics, extras)`` (see :func:`~avssl.evaluate.
    classifier_run.train_and_test`). The encoder's BatchNorm statistics change only with
    ``params.bn_train_mode``."""
    return train_and_test(
        encoder, data, data.split_rows(fold, "train"), data.split_rows(fold, "test"), params,
        settings or RunSettings(), train_encoder=False,
    )


@register_protocol_kind("linear")
def run_linear(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]:
    """Linear probe per fold (runner of preset kind ``linear``)."""
    return run_classifier_protocol(preset, context, train_encoder=False)
