"""The plain PyTorch loop shared by fine-tuning and linear probes: train on clips, score dense clips.

Batches are mappings with the encoder's modality (``"video"`` ``[B, 3, T, H, W]`` or ``"audio"``
``[B, 1, F, T]``, normalised float), ``"label"`` ``[B]`` and, for testing, ``"video_index"`` ``[B]``.
In a test batch every view (n clips × m spatial crops of a video) is one row, and rows of one video
share its ``video_index``.

Training modes (spec §3A.7, §5 row 11):

* ``train_encoder=True`` — full fine-tuning, the whole model in training mode;
* ``train_encoder=False`` — frozen encoder: its features are computed without a graph, only the
  probes learn. Its BatchNorm layers stay in eval mode (running statistics frozen) unless
  ``bn_train_mode=True``, which reproduces AVID / AV-SSRL: ``model.train(True)`` on the whole model,
  so the frozen backbone normalises with batch statistics and its running statistics drift to the
  downstream training clips (and are used at test time).

``fit_classifier`` runs an optional head-only warm-up (AVID: 5 epochs at the base LR, encoder
frozen in eval mode) and then the main epochs under the protocol's optimiser and schedule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from avssl.evaluate.heads import EncoderClassifier
from avssl.evaluate.metrics import clip_and_video_accuracy
from avssl.evaluate.mixup import MixupCutmix, soft_target_cross_entropy
from avssl.evaluate.optim import OptimConfig, build_optimizer, build_scheduler, parameter_groups

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class LoopSettings:
    """Where and how the loop runs: input key, device, autocast precision, progress bar."""

    modality: str
    device: str = "cpu"
    precision: str = "fp32"
    progress: bool = False

    def __post_init__(self) -> None:
        if self.modality not in ("video", "audio"):
            raise ValueError(f"LoopSettings: modality must be 'video' or 'audio', got {self.modality!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"LoopSettings: precision must be one of {PRECISIONS}, got {self.precision!r}")

    def autocast(self) -> contextlib.AbstractContextManager:
        # bf16 needs no loss scaling (CrissCross's fp16 autocast without its GradScaler could underflow).
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)

    def batches(self, loader: Iterable, description: str) -> Iterable:
        if not self.progress:
            return loader
        from tqdm.auto import tqdm

        return tqdm(loader, desc=description, leave=False, dynamic_ncols=True)


@dataclass
class FitHistory:
    """Mean training loss per epoch of the head warm-up and of the main phase."""

    warmup_losses: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def set_training_modes(model: EncoderClassifier, train_encoder: bool, bn_train_mode: bool) -> None:
    """Training mode for the probes; for the encoder as the module docstring describes."""
    model.train()
    if not train_encoder:
        model.encoder.train(bn_train_mode)


def _inputs(batch: Mapping, settings: LoopSettings) -> Tensor:
    if settings.modality not in batch:
        raise KeyError(f"batch has no {settings.modality!r} entry; keys: {sorted(batch)}")
    return batch[settings.modality].to(settings.device, non_blocking=True)


def _logits(model: EncoderClassifier, x: Tensor, train_encoder: bool) -> dict[str, Tensor]:
    if train_encoder:
        features = model.features(x)
    else:
        with torch.no_grad():
            features = model.features(x)
    # Probes see float32 features: the BatchNorm1d of AVID's layer probes is unstable in bf16.
    return model.classify({k: v.float() for k, v in features.items()})


def train_one_epoch(
    model: EncoderClassifier,
    loader: Iterable[Mapping],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    settings: LoopSettings,
    train_encoder: bool,
    bn_train_mode: bool = False,
    mixer: MixupCutmix | None = None,
    generator: torch.Generator | None = None,
    description: str = "train",
) -> float:
    """One pass over ``loader``; returns the mean loss (summed over probes) per batch."""
    set_training_modes(model, train_encoder, bn_train_mode)
    total, count = 0.0, 0
    for batch in settings.batches(loader, description):
        x = _inputs(batch, settings)
        labels = batch["label"].to(settings.device, non_blocking=True)
        targets = None
        if mixer is not None:
            x, targets = mixer(x, labels, generator)
        with settings.autocast():
            logits = _logits(model, x, train_encoder)
        losses = [
            soft_target_cross_entropy(out, targets) if targets is not None else F.cross_entropy(out.float(), labels)
            for out in logits.values()
        ]
        loss = torch.stack(losses).sum()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{description}: the loss is {loss.item()} at batch {count}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += float(loss.detach())
        count += 1
    if count == 0:
        raise ValueError(f"{description}: the training loader gave no batch")
    return total / count


@dataclass
class ClipPredictions:
    """Logits of every test view ``[M, C]`` per probe, with each view's label and video index."""

    logits: dict[str, np.ndarray]
    labels: np.ndarray
    video_index: np.ndarray


@torch.no_grad()
def predict_clips(model: EncoderClassifier, loader: Iterable[Mapping], settings: LoopSettings) -> ClipPredictions:
    """Eval-mode logits of every view (row) of every test batch."""
    model.eval()
    per_probe: dict[str, list[Tensor]] = {name: [] for name in model.probe_names()}
    labels, groups = [], []
    for batch in settings.batches(loader, "test"):
        x = _inputs(batch, settings)
        with settings.autocast():
            logits = _logits(model, x, train_encoder=False)
        for name, out in logits.items():
            per_probe[name].append(out.float().cpu())
        labels.append(batch["label"])
        groups.append(batch["video_index"])
    if not labels:
        raise ValueError("predict_clips: the test loader gave no batch")
    return ClipPredictions(
        logits={name: torch.cat(chunks).numpy() for name, chunks in per_probe.items()},
        labels=torch.cat(labels).numpy(),
        video_index=torch.cat(groups).numpy(),
    )


def score_predictions(predictions: ClipPredictions, prefix_probes: bool) -> dict[str, float]:
    """``clip_top1/5`` and ``video_top1/5`` (softmax averaged per video), percent; keys become
    ``<probe>/clip_top1`` ... when ``prefix_probes`` (several probes)."""
    metrics: dict[str, float] = {}
    for name, logits in predictions.logits.items():
        scores = clip_and_video_accuracy(logits, predictions.video_index, predictions.labels, softmax=True)
        metrics.update({(f"{name}/{k}" if prefix_probes else k): v for k, v in scores.items()})
    return metrics


def fit_classifier(
    model: EncoderClassifier,
    train_loader: Iterable[Mapping],
    optim: OptimConfig,
    epochs: int,
    settings: LoopSettings,
    train_encoder: bool,
    bn_train_mode: bool = False,
    warmup_head_epochs: int = 0,
    mixer: MixupCutmix | None = None,
    seed: int = 0,
) -> FitHistory:
    """Train ``model`` for ``warmup_head_epochs`` (head only) + ``epochs`` (see module docstring);
    ``seed`` drives the Mixup/CutMix draws."""
    if epochs < 1:
        raise ValueError(f"fit_classifier: epochs must be >= 1, got {epochs}")
    model.to(settings.device)
    generator = torch.Generator().manual_seed(seed)
    history = FitHistory()
    steps = _length(train_loader)
    if warmup_head_epochs > 0:
        warm = build_optimizer(parameter_groups(None, model.head_parameters(), optim), optim)
        for epoch in range(warmup_head_epochs):
            _set_epoch(train_loader, epoch)
            history.warmup_losses.append(train_one_epoch(
                model, train_loader, warm, None, settings, train_encoder=False, bn_train_mode=False,
                mixer=mixer, generator=generator, description=f"head warm-up {epoch + 1}/{warmup_head_epochs}",
            ))
    encoder = model.encoder if train_encoder else None
    for p in model.encoder.parameters():
        p.requires_grad_(train_encoder)
    optimizer = build_optimizer(parameter_groups(encoder, model.head_parameters(), optim), optim)
    scheduler = build_scheduler(optimizer, steps, epochs, optim)
    for epoch in range(epochs):
        _set_epoch(train_loader, warmup_head_epochs + epoch)
        loss = train_one_epoch(
            model, train_loader, optimizer, scheduler, settings, train_encoder, bn_train_mode,
            mixer, generator, description=f"epoch {epoch + 1}/{epochs}",
        )
        history.losses.append(loss)
    return history


def _set_epoch(loader: Iterable, epoch: int) -> None:
    # New random windows and augmentations every epoch (LabelledClips draws from (seed, epoch, index)).
    dataset = getattr(loader, "dataset", None)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)


def _length(loader: Iterable) -> int:
    # The schedule is per iteration, so it must know how many batches an epoch has.
    try:
        return max(len(loader), 1)  # type: ignore[arg-type]
    except TypeError as exc:
        raise TypeError(f"fit_classifier: the training loader must have a length, got {type(loader).__name__}") from exc
