"""Build a pretraining run from its config and run it (``avssl pretrain``).

:func:`run_pretraining` reads the manifest, builds the encoders and the method by name, the data
module, the LightningModule and a Lightning ``Trainer`` (devices, DDP, precision, loggers), resumes
if asked, trains, and writes the outputs listed in docs/pretraining.md.
"""

from __future__ import annotations

import inspect
import warnings
from datetime import timedelta
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from avssl.data.datasets import SkipCounter
from avssl.data.manifest import Manifest
from avssl.data.recipe_overrides import record_trained_input_specs
from avssl.methods import registry as method_registry
from avssl.methods.memory_contrast import single_visit_warning
from avssl.models.registry import create_encoder
from avssl.train.checkpointing import PeriodicCheckpoint, export_final, resolve_resume
from avssl.train.config import MethodConfig, PretrainConfig, TrainerConfig, config_to_yaml
from avssl.train.data import PretrainingData
from avssl.train.memory_format import convolutions_to_channels_last
from avssl.train.module import NonFiniteLossError, PretrainModule

SKIP_REPORT = "skipped_files.txt"


@dataclass
class PretrainResult:
    """What a finished run leaves: the trained method, where things were written, counters."""

    method: nn.Module
    output_dir: Path
    global_step: int
    epochs: float  # global_step / steps per epoch
    skipped: SkipCounter
    checkpoint: Path | None
    is_global_zero: bool


class PretrainingStopped(RuntimeError):
    """The run stopped early (non-finite loss); the message names the step and the checkpoint kept."""


def _factory_takes(name: str, parameter: str) -> bool:
    return parameter in inspect.signature(method_registry.method_factory(name)).parameters


def build_method(cfg: MethodConfig, num_items: int) -> nn.Module:
    """``create_method(cfg.name, video_encoder=..., audio_encoder=..., **cfg.kwargs)``; a factory
    with a ``num_items`` parameter gets the dataset size unless the config sets it."""
    if cfg.name not in method_registry.list_methods():
        raise KeyError(f"method.name: unknown method {cfg.name!r}; available: {', '.join(method_registry.list_methods())}")
    kwargs = dict(cfg.kwargs)
    for modality, name, encoder_kwargs in (
        ("video", cfg.video_encoder, cfg.video_encoder_kwargs),
        ("audio", cfg.audio_encoder, cfg.audio_encoder_kwargs),
    ):
        if name is not None:
            kwargs[f"{modality}_encoder"] = create_encoder(name, **encoder_kwargs)
        elif encoder_kwargs:
            raise ValueError(f"method.{modality}_encoder_kwargs given but method.{modality}_encoder is not set")
    if "num_items" not in kwargs and _factory_takes(cfg.name, "num_items"):
        kwargs["num_items"] = num_items
    return method_registry.create_method(cfg.name, **kwargs)


def _world_size(cfg: TrainerConfig) -> int | None:
    """Processes the run will have, when the config says it (``devices: auto`` does not)."""
    return cfg.devices * cfg.num_nodes if isinstance(cfg.devices, int) and cfg.devices > 0 else None


def _strategy(cfg: TrainerConfig) -> str | DDPStrategy:
    world = _world_size(cfg)
    if cfg.strategy == "ddp" or (cfg.strategy == "auto" and world is not None and world > 1):
        return DDPStrategy(find_unused_parameters=cfg.find_unused_parameters)
    return cfg.strategy


def _uses_gpu(cfg: TrainerConfig) -> bool:
    return cfg.accelerator in ("gpu", "cuda") or (cfg.accelerator == "auto" and torch.cuda.is_available())


def build_trainer(config: PretrainConfig, callbacks: Sequence[L.Callback] = ()) -> L.Trainer:
    """The Lightning ``Trainer`` of a run: devices, strategy, precision, loggers, clipping, length."""
    cfg, output_dir = config.trainer, Path(config.trainer.output_dir)
    loggers: list[Logger] = []
    if "csv" in cfg.loggers:
        loggers.append(CSVLogger(output_dir / "logs", name="csv"))
    if "tensorboard" in cfg.loggers:
        loggers.append(TensorBoardLogger(output_dir / "logs", name="tensorboard", default_hp_metric=False))
    clip_val = config.optimizer.gradient_clip_val
    return L.Trainer(
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy=_strategy(cfg),
        precision=cfg.precision,
        # torch's SyncBatchNorm runs on CUDA only; CPU ranks keep their own BatchNorm statistics.
        sync_batchnorm=cfg.sync_batchnorm and _uses_gpu(cfg),
        max_epochs=cfg.max_epochs if cfg.max_epochs is not None else -1,
        max_steps=cfg.max_steps,
        max_time=timedelta(minutes=cfg.max_minutes) if cfg.max_minutes is not None else None,
        gradient_clip_val=clip_val,
        gradient_clip_algorithm=config.optimizer.gradient_clip_algorithm if clip_val is not None else None,
        log_every_n_steps=cfg.log_every_n_steps,
        logger=loggers or False,
        callbacks=list(callbacks),
        enable_checkpointing=False,  # avssl.train.checkpointing.PeriodicCheckpoint writes them
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=cfg.progress_bar,
        use_distributed_sampler=False,  # avssl.train.data.EpochSampler shards by rank itself
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=output_dir,
    )


def run_pretraining(config: PretrainConfig, callbacks: Sequence[L.Callback] = ()) -> PretrainResult:
    """Train ``config``; extra Lightning ``callbacks`` are added to the trainer's.

    Raises :class:`PretrainingStopped` when the loss becomes non-finite.
    """
    output_dir = Path(config.trainer.output_dir)
    manifest = Manifest.read(config.data.manifest)
    L.seed_everything(config.seed, verbose=False)  # identical initial weights on every rank
    method = build_method(config.method, num_items=len(manifest))
    advice = single_visit_warning(method, config.data.repeats)
    if advice is not None:
        warnings.warn(advice, stacklevel=2)
    if config.trainer.channels_last:
        convolutions_to_channels_last(method)
    data = PretrainingData(config.data, manifest, weights_fn=getattr(method, "sample_weights", None))
    module = PretrainModule(method, config)
    checkpoints = PeriodicCheckpoint(output_dir / "checkpoints", config.trainer.checkpoint_every_n_steps)
    trainer = build_trainer(config, [checkpoints, *callbacks])
    resume = resolve_resume(config.trainer.resume, output_dir)
    if trainer.is_global_zero:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.yaml").write_text(config_to_yaml(config))
    try:
        trainer.fit(module, datamodule=data, ckpt_path=resume)
    except NonFiniteLossError as error:
        if checkpoints.last_path is not None:
            kept = f"last checkpoint kept: {checkpoints.last_path} (step {checkpoints.last_step})"
        elif resume is not None:
            kept = f"no checkpoint was written since resuming from {resume}"
        else:
            kept = "no checkpoint had been written yet"
        raise PretrainingStopped(f"{error}; {kept}") from error
    epochs = trainer.global_step / max(module.steps_per_epoch, 1)
    if trainer.is_global_zero:
        (output_dir / SKIP_REPORT).write_text(module.run_skips.report() + "\n")
        header = {"method": config.method.name, "global_step": trainer.global_step, "epochs": epochs,
                  "config": config.to_dict()}
        record_trained_input_specs(method, config)
        export_final(method, output_dir / "final", header)
    return PretrainResult(
        method=method,
        output_dir=output_dir,
        global_step=trainer.global_step,
        epochs=epochs,
        skipped=module.run_skips,
        checkpoint=checkpoints.last_path,
        is_global_zero=trainer.is_global_zero,
    )
