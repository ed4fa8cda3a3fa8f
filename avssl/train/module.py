"""One LightningModule that trains any method (DESIGN.md "train/": Lightning glue).

The method (an ``nn.Module`` from :mod:`avssl.methods`) computes the loss; this module adds what a
training loop needs around it: optimiser and parameter groups (:mod:`avssl.train.optim`), the
per-iteration schedules, the method's hooks at the right moments, logging, the non-finite-loss stop,
and the extra checkpoint content (every rank's RNG states, skipped-file counts).

At the start of an epoch: ``method.on_train_epoch_start(ctx)``, then the optimiser state of the
parameters ``method.take_reset_parameters()`` returns is dropped (optional hook; XDC's fresh heads).

Hook order within one step (Lightning's automatic optimisation)::

    on_train_batch_start   set every group's lr / weight decay for this step
    training_step          method(batch) -> loss (+ scalars logged), finiteness check on all ranks
    backward, unscale      (Lightning; mixed precision)
    on_before_optimizer_step   method.on_before_optimizer_step()  (XKD per-tensor clipping)
    clip, optimizer.step   (Lightning; LARC inside the optimiser)
    optimizer_step (after) method.on_after_optimizer_step(step, max_steps)  (EMA, centres)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.fabric.utilities.apply_func import move_data_to_device
from torch import Tensor, nn
from torch.optim import Optimizer

from avssl.data.datasets import SkipCounter
from avssl.train.checkpointing import capture_rng_state, restore_rng_state, seed_process
from avssl.train.config import PretrainConfig
from avssl.train.context import EpochContext, FeaturePass
from avssl.train.data import PretrainingData
from avssl.train.optim import (
    GroupScheduler,
    build_lr_schedule,
    build_optimizer,
    build_param_groups,
    build_weight_decay_schedule,
)

EXTRA_KEY = "avssl"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; raised before the optimiser step, so weights are intact."""

    def __init__(self, step: int, epoch: int, batch_idx: int, value: float, logs: Mapping[str, float]) -> None:
        self.step, self.epoch, self.batch_idx, self.value = step, epoch, batch_idx, value
        shown = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
        super().__init__(
            f"non-finite loss ({value}) at step {step} (epoch {epoch}, batch {batch_idx}) on at least one "
            f"rank; stopping before the optimiser step" + (f" [{shown}]" if shown else "")
        )


def _gathered(value: Any) -> list[Any]:
    """``value`` from every rank (a one-element list when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def merge_skips(counters: list[dict[str, Any]]) -> SkipCounter:
    total = SkipCounter()
    for counter in counters:
        for path, count in counter["counts"].items():
            total.counts[path] += count
            total.reasons.setdefault(path, counter["reasons"][path])
    return total


def skip_state(counter: SkipCounter) -> dict[str, Any]:
    return {"counts": dict(counter.counts), "reasons": dict(counter.reasons)}


class PretrainModule(L.LightningModule):
    """Runs ``method`` under the settings of ``config`` (see docs/pretraining.md).

    After ``trainer.fit``: ``run_skips`` holds the skipped files summed over all ranks.
    """

    def __init__(self, method: nn.Module, config: PretrainConfig) -> None:
        super().__init__()
        self.method = method
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        self.group_scheduler: GroupScheduler | None = None
        self.total_steps = 0
        self.steps_per_epoch = 0
        self.run_skips = SkipCounter()
        self._restored: dict[str, Any] | None = None
        self._last_batch_start: float | None = None

    # -- setup ---------------------------------------------------------------------------------

    def configure_optimizers(self) -> Optimizer:
        return build_optimizer(build_param_groups(self.method, self.config.optimizer), self.config.optimizer)

    @property
    def data(self) -> PretrainingData:
        return self.trainer.datamodule

    def on_train_start(self) -> None:
        # Before the first on_train_epoch_start; the loader (and so the epoch length) exists now.
        self.steps_per_epoch = int(self.trainer.num_training_batches)
        self.total_steps = int(self.trainer.estimated_stepping_batches)
        opt, sched = self.config.optimizer, self.config.schedule
        self.group_scheduler = GroupScheduler(
            build_lr_schedule(sched, opt.lr, self.steps_per_epoch, self.total_steps),
            build_weight_decay_schedule(sched, opt.weight_decay, self.total_steps),
            opt.lr,
            opt.weight_decay,
        )
        self._restore_run_state(self._restored or {})
        self._restored = None

    def _restore_run_state(self, restored: Mapping[str, Any]) -> None:
        """RNG streams and skip counts from a checkpoint (empty for a fresh run)."""
        trainer = self.trainer
        rng_states = restored.get("rng_states") or []
        if len(rng_states) == trainer.world_size:
            restore_rng_state(rng_states[trainer.global_rank])
        else:
            # Fresh run (or another number of ranks): an independent stream per rank.
            seed_process(self.config.seed, trainer.global_rank)
        if "skips" in restored and trainer.is_global_zero:
            # The saved counts are already summed over ranks: rank 0 alone carries them on.
            saved = merge_skips([restored["skips"]])
            self.data.skips.counts.update(saved.counts)
            self.data.skips.reasons.update(saved.reasons)

    @property
    def max_epochs(self) -> int:
        configured = self.config.trainer.max_epochs
        from_steps = math.ceil(self.total_steps / max(self.steps_per_epoch, 1))
        return configured if configured is not None and self.config.trainer.max_steps < 0 else from_steps

    def epoch_context(self) -> EpochContext:
        trainer = self.trainer
        feature_pass = FeaturePass(
            data=self.data,
            method=self.method,
            device=self.device,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
            gather=lambda t: self.all_gather(t),
            move=lambda batch: move_data_to_device(batch, self.device),
            autocast=trainer.precision_plugin.forward_context,
            batch_size=self.config.data.batch_size,
            num_workers=self.config.data.num_workers,
        )
        return EpochContext(
            epoch=self.current_epoch,
            max_epochs=self.max_epochs,
            global_step=self.global_step,
            max_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            world_size=trainer.world_size,
            rank=trainer.global_rank,
            num_items=self.data.num_items,
            device=self.device,
            feature_pass=feature_pass,
        )

    # -- per epoch / per step ------------------------------------------------------------------

    def on_train_epoch_start(self) -> None:
        # The dataset's epoch travels with every index (avssl.train.data.EpochItems), not set here.
        hook = getattr(self.method, "on_train_epoch_start", None)
        if hook is not None:
            hook(self.epoch_context())
        self._drop_optimizer_state_of_reset_parameters()

    def _drop_optimizer_state_of_reset_parameters(self) -> None:
        """Forget the optimiser state of the parameters the method re-initialised.

        Optional method hook ``take_reset_parameters() -> list[Parameter]`` (XDC's heads after a
        re-clustering): their momentum / Adam moments belong to the weights they replaced, so the
        optimiser starts them afresh, as DeepCluster's new optimiser for its new top layer does.
        """
        take = getattr(self.method, "take_reset_parameters", None)
        if take is None:
            return
        state = self.optimizer.state  # LARC shares its inner optimiser's state
        for parameter in take():
            state.pop(parameter, None)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.group_scheduler.apply(self.optimizer, self.global_step)

    @property
    def optimizer(self) -> Optimizer:
        return self.trainer.optimizers[0]

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        outputs = self.method(batch)
        if "loss" not in outputs:
            raise KeyError(f"{type(self.method).__name__}.forward must return a dict with 'loss', got {sorted(outputs)}")
        loss = outputs["loss"]
        finite = bool(torch.isfinite(loss.detach()).all())
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            logs = {k: float(v.detach()) for k, v in outputs.items() if isinstance(v, Tensor) and v.numel() == 1}
            raise NonFiniteLossError(self.global_step, self.current_epoch, batch_idx, float(loss.detach()), logs)
        batch_size = int(batch["index"].shape[0])
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        for name, value in outputs.items():
            if name != "loss" and isinstance(value, Tensor) and value.numel() == 1:
                self.log(f"train/{name}", value.detach().float(), batch_size=batch_size)
        for group in self.optimizer.param_groups:
            self.log(f"lr/{group['name']}", float(group["lr"]), batch_size=batch_size)
        self._log_throughput(batch_size)
        return loss

    def _log_throughput(self, batch_size: int) -> None:
        # Time between consecutive batch starts: data loading + forward + backward + step.
        now = time.perf_counter()
        if self._last_batch_start is not None:
            elapsed = now - self._last_batch_start
            self.log("perf/samples_per_s", batch_size * self.trainer.world_size / elapsed, batch_size=batch_size)
        self._last_batch_start = now

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        hook = getattr(self.method, "on_before_optimizer_step", None)
        if hook is not None:
            hook()

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None) -> None:
        step = self.global_step  # 0-based index of the step about to be taken
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        hook = getattr(self.method, "on_after_optimizer_step", None)
        if hook is not None:
            hook(step, self.total_steps)

    def on_train_end(self) -> None:
        self.run_skips = merge_skips(_gathered(skip_state(self.data.skips)))

    # -- checkpoint content --------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Called on every rank by trainer.save_checkpoint (avssl.train.checkpointing), so the
        # gathers below are matched on all ranks.
        checkpoint[EXTRA_KEY] = {
            "rng_states": _gathered(capture_rng_state()),
            "skips": skip_state(merge_skips(_gathered(skip_state(self.data.skips)))),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Applied in on_train_start: RNG states must be set right before the first resumed step.
        self._restored = checkpoint.get(EXTRA_KEY)
