"""The pretraining config: typed dataclasses, read by jsonargparse from YAML and the command line.

Schema and meaning of every field: docs/pretraining.md. jsonargparse derives the parser from these
type hints, so a misspelt key or a value of the wrong type fails when the config is read, naming
the key; the checks in ``__post_init__`` catch what types cannot say (a batch that is not a
multiple of ``clips_per_video``, a run with no length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

PRECISIONS = ("32", "32-true", "bf16-mixed", "16-mixed")


@dataclass
class DataConfig:
    """Where the clips come from and how they are cut into views (avssl/data/views.py).

    Attributes:
        manifest: manifest.csv written by ``avssl prepare``.
        recipe: view recipe: avid, avssrl, avssrl_video_pair, crisscross or xkd.
        recipe_overrides: ViewRecipe fields to change (decode_short_side, video_seconds, ...).
        video_augment_overrides: keyword arguments of the video augmentation preset (size, ...).
        local_video_augment_overrides: the same for XKD's local video views.
        audio_augment_overrides: keyword arguments of the audio augmentation preset.
        local_audio_augment_overrides: the same for XKD's local audio view.
        clips_per_video: samples drawn from one decoded file per visit (they share a batch).
        repeats: visits of every file per epoch (the original loaders' clips_per_video).
        batch_size: samples per device per step (a multiple of clips_per_video).
        num_workers: DataLoader worker processes per device.
        seed: data order and augmentation seed.
        decoder_backend: torchcodec, pyav or null (library default).
        max_skips: consecutive undecodable files an item may skip before the run stops.
        cache_decoded: decode every file once before training and hold the clips in memory
            (:mod:`avssl.data.clip_store`); for small corpora (the demo corpus: ~0.75 GB).
    """

    manifest: str
    recipe: str
    recipe_overrides: dict[str, Any] = field(default_factory=dict)
    video_augment_overrides: dict[str, Any] = field(default_factory=dict)
    local_video_augment_overrides: dict[str, Any] = field(default_factory=dict)
    audio_augment_overrides: dict[str, Any] = field(default_factory=dict)
    local_audio_augment_overrides: dict[str, Any] = field(default_factory=dict)
    clips_per_video: int = 1
    repeats: int = 1
    batch_size: int = 8
    num_workers: int = 2
    seed: int = 0
    decoder_backend: str | None = None
    max_skips: int = 50
    cache_decoded: bool = False

    def __post_init__(self) -> None:
        if self.clips_per_video < 1:
            raise ValueError(f"data.clips_per_video must be >= 1, got {self.clips_per_video}")
        if self.batch_size < 1 or self.batch_size % self.clips_per_video:
            raise ValueError(
                f"data.batch_size ({self.batch_size}) must be a positive multiple of data.clips_per_video "
                f"({self.clips_per_video}): the clips of one file travel in the same batch"
            )
        if self.repeats < 1:
            raise ValueError(f"data.repeats must be >= 1, got {self.repeats}")
        if self.num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {self.num_workers}")

    @property
    def files_per_batch(self) -> int:
        return self.batch_size // self.clips_per_video


@dataclass
class MethodConfig:
    """A registered method (avssl.methods.registry) and the encoders it is built from.

    Attributes:
        name: registered method name (crisscross, xid, vicreg, vicreg_video, xkd, xdc, ...).
        video_encoder: avssl.create_encoder name of the video encoder, or null.
        video_encoder_kwargs: create_encoder keyword arguments (pool, checkpoint_path, ...).
        audio_encoder: avssl.create_encoder name of the audio encoder, or null.
        audio_encoder_kwargs: create_encoder keyword arguments.
        kwargs: the method's hyperparameters.
    """

    name: str
    video_encoder: str | None = None
    video_encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    audio_encoder: str | None = None
    audio_encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    """Optimiser, LARC wrapper and gradient clipping (avssl/train/optim.py).

    Attributes:
        name: adam, adamw or sgd.
        lr: base learning rate (the schedule's peak).
        betas: Adam/AdamW betas.
        eps: Adam/AdamW epsilon.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum.
        weight_decay: base weight decay.
        exclude_bias_and_norm: no weight decay on biases and 1-D parameters.
        larc: wrap the optimiser in LARC (CrissCross).
        larc_trust_coefficient: LARC trust coefficient.
        larc_clip: LARC clip mode (min(rate / lr, 1)).
        larc_eps: LARC epsilon.
        gradient_clip_val: clip gradients to this value (null: no clipping).
        gradient_clip_algorithm: norm or value.
    """

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    exclude_bias_and_norm: bool = False
    larc: bool = False
    larc_trust_coefficient: float = 1e-3
    larc_clip: bool = True
    larc_eps: float = 1e-8
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: Literal["norm", "value"] = "norm"

    def __post_init__(self) -> None:
        if self.lr < 0 or self.weight_decay < 0:
            raise ValueError(f"optimizer.lr and optimizer.weight_decay must be >= 0, got {self.lr}, {self.weight_decay}")
        if self.gradient_clip_val is not None and self.gradient_clip_val <= 0:
            raise ValueError(f"optimizer.gradient_clip_val must be > 0 or null, got {self.gradient_clip_val}")


@dataclass
class ScheduleConfig:
    """Learning-rate (and weight-decay) schedule, per iteration (avssl/train/schedules.py).

    Attributes:
        kind: constant, warmup_cosine or multistep.
        warmup_epochs: linear warm-up length in epochs.
        warmup_steps: linear warm-up length in steps (wins over warmup_epochs).
        warmup_start_lr: learning rate at step 0 of the warm-up.
        final_lr: warmup_cosine: learning rate at the last step.
        milestones: multistep: epochs at which the learning rate is multiplied by gamma.
        gamma: multistep factor.
        final_weight_decay: cosine weight decay from optimizer.weight_decay to this (null: constant).
    """

    kind: Literal["constant", "warmup_cosine", "multistep"] = "constant"
    warmup_epochs: float = 0.0
    warmup_steps: int | None = None
    warmup_start_lr: float = 0.0
    final_lr: float = 0.0
    milestones: list[float] = field(default_factory=list)
    gamma: float = 0.1
    final_weight_decay: float | None = None


@dataclass
class TrainerConfig:
    """Run length, hardware, precision, outputs and resume (Lightning Trainer settings).

    Attributes:
        max_epochs: epochs to train (null: max_steps decides).
        max_steps: optimiser steps to train (-1: max_epochs decides).
        max_minutes: also stop after this much training time (wall clock; null: no limit). The
            schedule still spans max_steps / max_epochs; benchmarks use it to give every method
            the same compute budget.
        precision: 32, bf16-mixed or 16-mixed.
        accelerator: cpu, gpu or auto.
        devices: devices per node, or auto.
        num_nodes: number of nodes.
        strategy: auto (ddp when several devices), ddp, ...
        find_unused_parameters: DDP find_unused_parameters.
        sync_batchnorm: SyncBatchNorm when distributed on GPUs.
        output_dir: folder of checkpoints, logs and final weights.
        checkpoint_every_n_steps: checkpoint interval in optimiser steps.
        resume: null, auto (OUTPUT_DIR/checkpoints/last.ckpt if present) or a checkpoint path.
        log_every_n_steps: logging interval in steps.
        loggers: csv and/or tensorboard.
        progress_bar: show the progress bar and model summary.
        channels_last: store convolution weights channels-last (faster convolutions on GPU and
            CPU: :mod:`avssl.train.memory_format`); false keeps PyTorch's default layout.
    """

    max_epochs: int | None = None
    max_steps: int = -1
    max_minutes: float | None = None
    precision: int | str = "32"  # YAML reads an unquoted 32 as a number
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    find_unused_parameters: bool = False
    sync_batchnorm: bool = True
    output_dir: str = "runs/pretrain"
    checkpoint_every_n_steps: int = 1000
    resume: str | None = None
    log_every_n_steps: int = 10
    loggers: list[Literal["csv", "tensorboard"]] = field(default_factory=lambda: ["csv", "tensorboard"])
    progress_bar: bool = True
    channels_last: bool = True

    def __post_init__(self) -> None:
        self.precision = str(self.precision)
        if self.precision not in PRECISIONS:
            raise ValueError(f"trainer.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise ValueError(f"trainer.max_epochs must be >= 1, got {self.max_epochs}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"trainer.max_minutes must be positive, got {self.max_minutes}")
        if self.checkpoint_every_n_steps < 1 or self.log_every_n_steps < 1:
            raise ValueError("trainer.checkpoint_every_n_steps and trainer.log_every_n_steps must be >= 1")


@dataclass
class PretrainConfig:
    """A whole pretraining run; see docs/pretraining.md."""

    data: DataConfig
    method: MethodConfig
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        # Here rather than in TrainerConfig: the parser builds a default TrainerConfig, which has no length.
        if self.trainer.max_epochs is None and self.trainer.max_steps < 0:
            raise ValueError("give trainer.max_epochs or trainer.max_steps (the run needs a length)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_parser(prog: str = "avssl pretrain", exit_on_error: bool = True) -> ArgumentParser:
    """The jsonargparse parser of :class:`PretrainConfig` (``--config FILE``, dotted overrides).

    ``exit_on_error=False`` raises ``jsonargparse.ArgumentError`` instead of printing usage and
    exiting (library use).
    """
    parser = ArgumentParser(
        prog=prog,
        description="Pretrain a self-supervised audio-visual method (docs/pretraining.md).",
        allow_abbrev=False,
        exit_on_error=exit_on_error,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file (may be repeated)")
    parser.add_class_arguments(PretrainConfig, nested_key=None, as_group=False, fail_untyped=True)
    return parser


def namespace_to_config(parser: ArgumentParser, namespace: Namespace) -> PretrainConfig:
    """Instantiate the dataclasses (running their checks) from a parsed namespace."""
    namespace = namespace.clone()
    namespace.pop("config", None)
    init = parser.instantiate(namespace)
    return PretrainConfig(**{key: init[key] for key in ("data", "method", "optimizer", "schedule", "trainer", "seed")})


def parse_config(argv: Sequence[str]) -> PretrainConfig:
    """Parse command-line style arguments (``["--config", "x.yaml", "--trainer.max_steps", "5"]``)."""
    parser = build_parser(exit_on_error=False)
    return namespace_to_config(parser, parser.parse_args(list(argv)))


def config_to_yaml(config: PretrainConfig) -> str:
    """The config as YAML, loadable again with ``--config`` (written to OUTPUT_DIR/config.yaml)."""
    import yaml

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return yaml.safe_dump(plain(config.to_dict()), sort_keys=False)
