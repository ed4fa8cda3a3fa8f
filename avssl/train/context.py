"""What the engine tells a method at the start of an epoch (``method.on_train_epoch_start(ctx)``).

:class:`EpochContext` carries the run's counters and :meth:`EpochContext.extract_features`, one
pass over every training file (XDC's re-clustering, DeepCluster style): the files are sharded over
the ranks, the method runs in eval mode without gradients, and the features of every rank are
gathered so that each rank gets the whole ``[N, D]`` table, row ``i`` = instance ``i``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from avssl.data.datasets import collate_views
from avssl.data.views import ViewRecipe
from avssl.train.data import EpochItems, PretrainingData

FeatureFn = Callable[[Mapping[str, Any]], Mapping[str, Tensor]]


@dataclass
class FeaturePass:
    """How to run a feature pass on this rank (built by the LightningModule)."""

    data: PretrainingData
    method: torch.nn.Module
    device: torch.device
    rank: int
    world_size: int
    gather: Callable[[Tensor], Tensor]  # [n, ...] -> [world_size, n, ...] (identity shape when world_size == 1)
    move: Callable[[Any], Any]  # batch -> batch on device
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    batch_size: int = 16
    num_workers: int = 0

    def run(self, fn: FeatureFn, recipe: ViewRecipe | None = None, batch_size: int | None = None) -> dict[str, Tensor]:
        dataset = self.data.make_dataset(recipe or self.data.recipe, clips_per_video=1)
        n = len(dataset)
        per_rank = math.ceil(n / self.world_size)
        # Pad by wrapping around so every rank has the same count (gathers need equal shapes).
        keys = [(0, i % n) for i in range(self.rank, per_rank * self.world_size, self.world_size)]
        loader = DataLoader(
            EpochItems(dataset), batch_size=batch_size or self.batch_size, sampler=keys,
            num_workers=self.num_workers, collate_fn=collate_views,
        )
        outputs: dict[str, list[Tensor]] = {}
        indices: list[Tensor] = []
        was_training = self.method.training
        self.method.eval()
        try:
            with torch.no_grad(), self.autocast():
                for batch in loader:
                    batch.pop("skipped", None)
                    batch = self.move(batch)
                    result = fn(batch)
                    for name, value in result.items():
                        outputs.setdefault(name, []).append(value.detach().float())
                    indices.append(batch["index"])
        finally:
            self.method.train(was_training)
        return self._assemble(outputs, indices, n)

    def _assemble(self, outputs: dict[str, list[Tensor]], indices: list[Tensor], n: int) -> dict[str, Tensor]:
        index = self.gather(torch.cat(indices).to(self.device)).reshape(-1).cpu()
        table: dict[str, Tensor] = {}
        for name, parts in outputs.items():
            local = torch.cat(parts)
            if local.shape[0] != index.shape[0] // self.world_size:
                raise ValueError(f"extract_features: fn returned {local.shape[0]} rows of {name!r} for "
                                 f"{index.shape[0] // self.world_size} samples; expected one row per sample")
            gathered = self.gather(local).reshape(-1, *local.shape[1:]).cpu()
            full = torch.zeros(n, *local.shape[1:], dtype=gathered.dtype)
            full[index] = gathered
            table[name] = full
        # A file that fails to decode is replaced by the next one, so its row may never be filled.
        valid = torch.zeros(n, dtype=torch.bool)
        valid[index] = True
        table["index"] = torch.arange(n)
        table["valid"] = valid
        return table


@dataclass
class EpochContext:
    """Counters of the run at the start of an epoch, and the feature pass.

    Attributes:
        epoch: 0-based epoch about to start. max_epochs: epochs in the run (derived from
        ``max_steps`` when the config gives only that). global_step: optimiser steps taken.
        max_steps: steps in the run. steps_per_epoch: per-rank batches per epoch.
        world_size, rank: processes. num_items: files in the training set (N). device: the
        method's device.
    """

    epoch: int
    max_epochs: int
    global_step: int
    max_steps: int
    steps_per_epoch: int
    world_size: int
    rank: int
    num_items: int
    device: torch.device
    feature_pass: FeaturePass | None = field(default=None, repr=False)

    def extract_features(
        self, fn: FeatureFn, recipe: ViewRecipe | None = None, batch_size: int | None = None
    ) -> dict[str, Tensor]:
        """Run ``fn(batch) -> {name: [B, D]}`` over every training file (one clip each, epoch-0
        draws of the data seed; ``recipe`` replaces the training recipe when given).

        Returns ``{name: [N, D]}`` on every rank (row ``i`` = instance ``i``), plus ``"index"``
        (``arange(N)``) and ``"valid"`` (``[N]`` bool: False for files that could not be decoded,
        whose rows are zeros).
        """
        if self.feature_pass is None:
            raise RuntimeError("extract_features is only available while training")
        return self.feature_pass.run(fn, recipe, batch_size)
