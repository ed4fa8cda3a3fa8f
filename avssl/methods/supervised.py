"""Supervised training of the encoders on the corpus labels: the upper reference of a benchmark.

Not a self-supervised method: each encoder gets a linear classifier on its pooled feature and both
are trained with cross-entropy on ``batch["label"]`` (the manifest's class index, -1 = unlabelled,
ignored), so that a benchmark can put "what labels buy with the same encoders, views and budget"
next to the pretext methods (the AV-Digits benchmark's ``supervised`` row). It reads the views of
any recipe with at least one video and one audio view (e.g. ``avid``), or video only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from avssl.methods.batch import take_views
from avssl.methods.registry import register_method


class SupervisedClassifier(nn.Module):
    """Cross-entropy on the labels for each encoder given.

    Args:
        video_encoder, audio_encoder: avssl encoders (either may be None, not both).
        num_classes: number of classes of the corpus (``len(manifest.labels())``).
        label_smoothing: cross-entropy label smoothing (0).

    Batch: ``video`` / ``audio`` views (the first of each is used) and ``label`` ``[B]``.
    Returns ``{"loss", "loss/video", "loss/audio", "acc/video", "acc/audio"}`` (accuracy in [0, 1]).
    """

    def __init__(
        self,
        video_encoder: nn.Module | None,
        audio_encoder: nn.Module | None,
        num_classes: int,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if video_encoder is None and audio_encoder is None:
            raise ValueError("supervised: give a video_encoder, an audio_encoder or both")
        if num_classes < 2:
            raise ValueError(f"supervised: num_classes must be >= 2, got {num_classes}")
        if video_encoder is not None:
            self.video_encoder = video_encoder
            self.video_classifier = nn.Linear(video_encoder.out_dim, num_classes)
        if audio_encoder is not None:
            self.audio_encoder = audio_encoder
            self.audio_classifier = nn.Linear(audio_encoder.out_dim, num_classes)
        self.label_smoothing = label_smoothing

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        if "label" not in batch:
            raise KeyError("supervised: the batch has no 'label' entry (the manifest needs a label column)")
        labels: Tensor = batch["label"]
        out: dict[str, Tensor] = {}
        total = 0.0
        for modality in ("video", "audio"):
            if not hasattr(self, f"{modality}_encoder"):
                continue
            (view,) = take_views(batch, modality, 1, "supervised")
            logits = getattr(self, f"{modality}_classifier")(getattr(self, f"{modality}_encoder")(view))
            loss = F.cross_entropy(logits, labels, ignore_index=-1, label_smoothing=self.label_smoothing)
            known = labels >= 0
            out[f"loss/{modality}"] = loss
            out[f"acc/{modality}"] = (logits.argmax(dim=1)[known] == labels[known]).float().mean().detach()
            total = total + loss
        out["loss"] = total
        return out


@register_method("supervised")
def supervised(
    video_encoder: nn.Module | None = None, audio_encoder: nn.Module | None = None, num_classes: int = 10,
    label_smoothing: float = 0.0,
) -> SupervisedClassifier:
    """Supervised reference: linear classifiers on both encoders, cross-entropy on the labels."""
    return SupervisedClassifier(video_encoder, audio_encoder, num_classes, label_smoothing)
