"""Optimisers and learning-rate schedules of the downstream protocols (spec §2.7, §3A.7, §3B.7, §4.6).

* :class:`OptimConfig` — the optimiser (``sgd`` with momentum, ``adam``, ``adamw``), base LR,
  weight decay, schedule (``multistep`` per epoch with ``gamma``/``milestones``; ``cosine`` with a
  linear warm-up from 0 over ``warmup_epochs`` then a half cosine to ``min_lr``, per iteration;
  ``constant``) and XKD's layer-wise LR decay for ViTs.
* :func:`parameter_groups` — weight decay off for biases, 1-D parameters, ``pos_embed`` and
  ``cls_token`` (XKD, §4.6) and, for a ViT encoder, LR scaled by ``decay ** (L + 1 − layer)`` where
  the patch embedding, position embedding and CLS token are layer 0, block ``i`` is layer ``i + 1``
  and everything after the blocks (final norm, heads) is layer ``L + 1`` (scale 1).
* :func:`build_optimizer` / :func:`build_scheduler` — a torch optimiser and a per-iteration
  ``LambdaLR`` over the pretraining engine's pure schedules (:mod:`avssl.train.schedules`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import torch
from torch import nn

from avssl.train.schedules import Constant, MultiStep, Schedule, WarmupCosine, epochs_to_steps, milestone_steps

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("multistep", "cosine", "constant")
_NO_DECAY_NAMES = ("pos_embed", "cls_token")
_BLOCK_INDEX = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


@dataclass(frozen=True)
class OptimConfig:
    """One protocol's optimisation recipe; every field can be set from a preset's ``optim`` mapping."""

    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "multistep"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    layer_decay: float = 1.0
    exclude_bias_and_norm: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optim.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lr <= 0 or not 0 < self.layer_decay <= 1:
            raise ValueError(f"optim: lr must be > 0 and layer_decay in (0, 1], got {self.lr}, {self.layer_decay}")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"optim.milestones must be increasing, got {list(self.milestones)}")

    @classmethod
    def from_mapping(cls, raw: Mapping, where: str = "optim") -> OptimConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")
        values = dict(raw)
        for key in ("milestones", "betas"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _layer_id(name: str, num_blocks: int) -> int:
    """ViT depth index of an encoder parameter (module docstring); ``name`` relative to the encoder."""
    if name.startswith(("cls_token", "pos_embed", "patch_embed")):
        return 0
    match = _BLOCK_INDEX.search(name)
    if match:
        return int(match.group(1)) + 1
    return num_blocks + 1


def _is_no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or name.split(".")[-1] in _NO_DECAY_NAMES


def parameter_groups(
    encoder: nn.Module | None, head_params: Iterable[nn.Parameter], config: OptimConfig
) -> list[dict]:
    """Optimiser groups for the trainable parameters of ``encoder`` (may be ``None`` or frozen) and
    the head. Each group carries ``lr`` (already scaled) and ``weight_decay``."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}

    def add(param: nn.Parameter, scale: float, no_decay: bool) -> None:
        decay = 0.0 if (no_decay and config.exclude_bias_and_norm) else config.weight_decay
        groups.setdefault((scale, decay), []).append(param)

    blocks = getattr(encoder, "blocks", None) if encoder is not None else None
    num_blocks = len(blocks) if isinstance(blocks, nn.ModuleList) else 0
    if encoder is not None:
        for name, param in encoder.named_parameters():
            if not param.requires_grad:
                continue
            scale = config.layer_decay ** (num_blocks + 1 - _layer_id(name, num_blocks)) if num_blocks else 1.0
            add(param, scale, _is_no_decay(name, param))
    for param in head_params:
        if param.requires_grad:
            add(param, 1.0, param.ndim <= 1)
    if not groups:
        raise ValueError("parameter_groups: no trainable parameter")
    return [
        {"params": params, "lr": config.lr * scale, "weight_decay": decay, "lr_scale": scale}
        for (scale, decay), params in sorted(groups.items(), key=lambda kv: kv[0], reverse=True)
    ]


def build_optimizer(groups: list[dict], config: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, no Nesterov), Adam or AdamW over ``groups``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def lr_schedule(config: OptimConfig, steps_per_epoch: int, epochs: int) -> Schedule:
    """Multiplier of every group's base LR as a function of the optimiser step (0-based).

    The pure schedules of :mod:`avssl.train.schedules` with base 1: ``multistep`` milestones are
    epochs (the originals step ``MultiStepLR`` once per epoch); ``cosine`` warms up linearly from 0
    over ``warmup_epochs`` and decays to ``min_lr / lr`` at the last step.
    """
    if config.schedule == "constant":
        return Constant(1.0)
    if config.schedule == "multistep":
        return MultiStep(1.0, milestone_steps(config.milestones, steps_per_epoch), config.gamma)
    total = max(epochs * steps_per_epoch, 1)
    warmup = min(epochs_to_steps(config.warmup_epochs, steps_per_epoch), total)
    return WarmupCosine(1.0, config.min_lr / config.lr, total, warmup)


def build_scheduler(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int, config: OptimConfig
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration scheduler following :func:`lr_schedule` (``step()`` after every optimiser step)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(config, steps_per_epoch, epochs))
