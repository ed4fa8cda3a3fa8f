"""Per-iteration schedules: linear warm-up + cosine, multi-step, constant (spec §6.2 item 6).

A schedule is a pure function ``step -> value`` where ``step`` is the number of optimiser steps
already taken (0 for the first batch). Being pure, it needs no state in a checkpoint: a resumed run
recomputes the same value from the restored step. The same functions serve the learning rate
(CrissCross §2.6, AVID §3A.5, AV-SSRL §3B.6, XKD §4.4), XKD's weight decay and EMA momentum.

Nothing here imports Lightning, so methods may use these too.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Schedule(Protocol):
    def __call__(self, step: int) -> float: ...


def _check_step(step: int) -> None:
    if step < 0:
        raise ValueError(f"schedule step must be >= 0, got {step}")


@dataclass(frozen=True)
class Constant:
    """``value`` at every step, after an optional linear warm-up from ``warmup_start``."""

    value: float
    warmup_steps: int = 0
    warmup_start: float = 0.0

    def __call__(self, step: int) -> float:
        _check_step(step)
        if step < self.warmup_steps:
            return linear_warmup(step, self.warmup_steps, self.warmup_start, self.value)
        return self.value


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up ``warmup_start -> base`` over ``warmup_steps``, then cosine ``base -> final``.

    ``v(s) = start + (base - start)·s/W`` for ``s < W``;
    ``v(s) = final + (base - final)·(1 + cos(π·(s - W)/(T - W)))/2`` for ``W <= s <= T``; ``final``
    after ``T = total_steps``. CrissCross: 2 warm-up epochs, 2e-4 -> 1e-4; XKD: 30 warm-up epochs,
    1e-4 -> 0 over 800 epochs; XKD weight decay 0.3 -> 0.3 (no warm-up).
    """

    base: float
    final: float
    total_steps: int
    warmup_steps: int = 0
    warmup_start: float = 0.0

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"WarmupCosine: total_steps must be >= 1, got {self.total_steps}")
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(
                f"WarmupCosine: warmup_steps must be in [0, total_steps={self.total_steps}], got {self.warmup_steps}"
            )

    def __call__(self, step: int) -> float:
        _check_step(step)
        if step < self.warmup_steps:
            return linear_warmup(step, self.warmup_steps, self.warmup_start, self.base)
        return cosine_decay(step - self.warmup_steps, self.total_steps - self.warmup_steps, self.base, self.final)


@dataclass(frozen=True)
class MultiStep:
    """``base · gamma^k`` with ``k`` the number of milestones ``<= step`` (milestones in steps).

    AVID: gamma 1 (constant); AV-SSRL: ×0.9 at epochs 10, 20, ..., 90 (epoch milestones are
    converted to steps with :func:`epochs_to_steps`).
    """

    base: float
    milestones: tuple[int, ...]
    gamma: float = 0.1
    warmup_steps: int = 0
    warmup_start: float = 0.0

    def __post_init__(self) -> None:
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"MultiStep: milestones must be increasing, got {list(self.milestones)}")

    def __call__(self, step: int) -> float:
        _check_step(step)
        if step < self.warmup_steps:
            return linear_warmup(step, self.warmup_steps, self.warmup_start, self.base)
        return self.base * self.gamma ** bisect.bisect_right(self.milestones, step)


def linear_warmup(step: int, warmup_steps: int, start: float, end: float) -> float:
    """``start + (end - start)·step/warmup_steps`` (reaches ``end`` at ``step = warmup_steps``)."""
    return start + (end - start) * step / warmup_steps


def cosine_decay(step: int, total_steps: int, start: float, end: float) -> float:
    """Half-cosine from ``start`` (step 0) to ``end`` (step ``total_steps`` and after)."""
    if total_steps <= 0 or step >= total_steps:
        return end
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def epochs_to_steps(epochs: float, steps_per_epoch: int) -> int:
    """Whole optimiser steps in ``epochs`` epochs (fractions allowed: 0.5 epoch of warm-up)."""
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    return int(round(epochs * steps_per_epoch))


def milestone_steps(epochs: Sequence[float], steps_per_epoch: int) -> tuple[int, ...]:
    return tuple(epochs_to_steps(e, steps_per_epoch) for e in epochs)
