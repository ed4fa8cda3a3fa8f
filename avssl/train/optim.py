"""Optimisers, parameter groups and their per-iteration LR / weight-decay control.

* :func:`build_param_groups` turns ``method.param_groups()`` (or all trainable parameters) into
  optimiser groups, each with its own LR rule (``lr_mode`` "schedule" or "constant") and weight
  decay, splitting off biases and 1-D parameters when asked (spec §4.4).
* :func:`build_optimizer` makes Adam / AdamW / SGD, wrapped in :class:`~avssl.train.larc.LARC`
  when configured (CrissCross, §2.6).
* :class:`GroupScheduler` sets every group's ``lr`` and ``weight_decay`` for a given step from the
  run's schedules (schedules are pure functions of the step, so nothing here needs saving).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from avssl.train.config import OptimizerConfig, ScheduleConfig
from avssl.train.larc import LARC
from avssl.train.schedules import Constant, MultiStep, Schedule, WarmupCosine, epochs_to_steps, milestone_steps

GROUP_KEYS = {"name", "params", "lr_mode", "lr", "weight_decay", "exclude_bias_and_norm"}
LR_MODES = ("schedule", "constant")


def _method_name(method: nn.Module) -> str:
    return getattr(method, "registry_name", type(method).__name__)


def _declared_groups(method: nn.Module) -> list[dict[str, Any]]:
    declare = getattr(method, "param_groups", None)
    if declare is None:
        return [{"name": "all", "params": [p for p in method.parameters() if p.requires_grad]}]
    groups = list(declare())
    if not groups:
        raise ValueError(f"{_method_name(method)}.param_groups() returned no group")
    return groups


def _takes_weight_decay(name: str, param: nn.Parameter) -> bool:
    # XKD's rule (§4.4): biases and 1-D tensors (norm scales) are exempt; cls/pos/mask tokens decay.
    return param.ndim > 1 and not name.endswith(".bias")


def build_param_groups(method: nn.Module, cfg: OptimizerConfig) -> list[dict[str, Any]]:
    """Optimiser groups: ``{"params", "lr", "weight_decay", "name", "lr_mode", "base_lr",
    "base_weight_decay"}`` (torch keeps the extra keys in the group dicts).

    Every trainable parameter must be in exactly one group; frozen ones (EMA teachers) are dropped.
    A group with ``exclude_bias_and_norm`` (or ``cfg.exclude_bias_and_norm``) is split into
    ``<name>`` and ``<name>_no_decay`` (biases and 1-D tensors, weight decay 0).
    """
    where = f"{_method_name(method)}.param_groups()"
    names = {id(p): n for n, p in method.named_parameters(remove_duplicate=False)}
    seen: dict[int, str] = {}
    groups: list[dict[str, Any]] = []
    for position, declared in enumerate(_declared_groups(method)):
        unknown = set(declared) - GROUP_KEYS
        group_name = str(declared.get("name", f"group{position}"))
        if unknown:
            raise ValueError(f"{where}: group {group_name!r} has unknown keys {sorted(unknown)}; allowed: {sorted(GROUP_KEYS)}")
        lr_mode = declared.get("lr_mode", "schedule")
        if lr_mode not in LR_MODES:
            raise ValueError(f"{where}: group {group_name!r} has lr_mode {lr_mode!r}; expected one of {LR_MODES}")
        params = []
        for p in declared["params"]:
            if not p.requires_grad:
                continue
            if id(p) in seen:
                raise ValueError(
                    f"{where}: parameter {names.get(id(p), '?')} is in groups {seen[id(p)]!r} and {group_name!r}"
                )
            seen[id(p)] = group_name
            params.append(p)
        base_lr = float(declared.get("lr", cfg.lr))
        base_wd = float(declared.get("weight_decay", cfg.weight_decay))
        exclude = declared.get("exclude_bias_and_norm", cfg.exclude_bias_and_norm)
        split = [(group_name, params, base_wd)]
        if exclude:
            decays = [_takes_weight_decay(names.get(id(p), ""), p) for p in params]
            decay = [p for p, keep in zip(params, decays) if keep]
            no_decay = [p for p, keep in zip(params, decays) if not keep]
            split = [(group_name, decay, base_wd), (f"{group_name}_no_decay", no_decay, 0.0)]
        for name, members, weight_decay in split:
            if members:
                groups.append(
                    {"params": members, "lr": base_lr, "weight_decay": weight_decay, "name": name,
                     "lr_mode": lr_mode, "base_lr": base_lr, "base_weight_decay": weight_decay}
                )
    missing = [n for n, p in method.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(f"{where}: trainable parameters in no group: {shown}")
    if not groups:
        raise ValueError(f"{where}: the method has no trainable parameter")
    return groups


def build_optimizer(groups: Iterable[dict[str, Any]], cfg: OptimizerConfig) -> Optimizer:
    """Adam / AdamW / SGD over ``groups``, wrapped in LARC when ``cfg.larc``."""
    groups = list(groups)
    if cfg.name == "adam":
        optimizer: Optimizer = torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    elif cfg.name == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)
    elif cfg.name == "sgd":
        optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    else:
        raise ValueError(f"optimizer.name must be adam, adamw or sgd, got {cfg.name!r}")
    if cfg.larc:
        optimizer = LARC(optimizer, cfg.larc_trust_coefficient, cfg.larc_clip, cfg.larc_eps)
    return optimizer


def build_lr_schedule(cfg: ScheduleConfig, base_lr: float, steps_per_epoch: int, total_steps: int) -> Schedule:
    """The global LR schedule of a run (``steps_per_epoch`` converts the epoch fields)."""
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else epochs_to_steps(cfg.warmup_epochs, steps_per_epoch)
    if cfg.kind == "constant":
        return Constant(base_lr, warmup, cfg.warmup_start_lr)
    if cfg.kind == "warmup_cosine":
        return WarmupCosine(base_lr, cfg.final_lr, total_steps, min(warmup, total_steps), cfg.warmup_start_lr)
    if cfg.kind == "multistep":
        return MultiStep(base_lr, milestone_steps(cfg.milestones, steps_per_epoch), cfg.gamma, warmup, cfg.warmup_start_lr)
    raise ValueError(f"schedule.kind must be constant, warmup_cosine or multistep, got {cfg.kind!r}")


def build_weight_decay_schedule(cfg: ScheduleConfig, base_weight_decay: float, total_steps: int) -> Schedule:
    """Cosine from ``optimizer.weight_decay`` to ``schedule.final_weight_decay`` (XKD), else constant."""
    if cfg.final_weight_decay is None:
        return Constant(base_weight_decay)
    return WarmupCosine(base_weight_decay, cfg.final_weight_decay, total_steps)


@dataclass(frozen=True)
class GroupScheduler:
    """Sets each group's ``lr`` / ``weight_decay`` at a step.

    Scheduled groups follow ``lr_schedule`` scaled by ``group base_lr / global base_lr``; constant
    groups keep their ``base_lr``; weight decay follows ``wd_schedule`` scaled the same way.
    """

    lr_schedule: Schedule
    wd_schedule: Schedule
    base_lr: float
    base_weight_decay: float

    def apply(self, optimizer: Optimizer, step: int) -> None:
        lr, wd = self.lr_schedule(step), self.wd_schedule(step)
        for group in optimizer.param_groups:
            if group["lr_mode"] == "constant":
                group["lr"] = group["base_lr"]
            else:
                group["lr"] = lr * group["base_lr"] / self.base_lr if self.base_lr > 0 else 0.0
            scale = wd / self.base_weight_decay if self.base_weight_decay > 0 else 1.0
            group["weight_decay"] = group["base_weight_decay"] * scale
