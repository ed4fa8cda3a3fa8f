"""One train-and-test run of a classifier on a benchmark fold: the part fine-tuning, linear probes,
few-shot and seen/unseen runs share.

A run reads the preset's ``params`` (:class:`ClassifierParams`; clip format as
:func:`avssl.evaluate.features.clip_spec_from_params`: ``clip`` for both modes, ``train`` / ``test``
per mode with ``clips``), builds the training clips (``LabelledClips`` in ``train`` mode: one
random augmented clip per item, the file list repeated ``repeats`` times per epoch — the originals'
``clips_per_video`` multiplier) and the dense test clips, restricts both to a class subset and the
training files to a few-shot subset when asked, trains (:func:`avssl.evaluate.classifier_loop.
fit_classifier`) and tests.

Test passes: ``test.clips`` dense windows (× spatial crops) per video give ``video_top1/5`` (softmax
averaged) and, unless ``clip_level_clips`` asks for a separate pass, ``clip_top1/5`` (every view
scored alone). AVID / AV-SSRL: Clip@1 over 25 clips, Video@1 over 10 (spec §3A.7, §3B.7).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from avssl.data.benchmarks import BenchmarkData, load_benchmark
from avssl.data.labelled import LabelledClips, collate_clips
from avssl.evaluate.classifier_loop import PRECISIONS, LoopSettings, fit_classifier, predict_clips, score_predictions
from avssl.evaluate.features import clip_spec_from_params
from avssl.evaluate.heads import EncoderClassifier, ProbeSpec
from avssl.evaluate.mixup import MixupCutmix
from avssl.evaluate.optim import OptimConfig
from avssl.evaluate.protocols import EvaluationContext, FoldResult, ProtocolPreset

_KNOWN_PARAMS = {
    "modality", "encoder_kwargs", "clip", "train", "test", "clip_level_clips", "repeats", "batch_size",
    "epochs", "warmup_head_epochs", "probes", "bn_train_mode", "optim", "mixup", "precision",
}
# Params only some kinds read (the runner of that kind passes them as ``extra_keys``).
SWEEP_PARAMS = ("few_shot_ratios", "few_shot_seed")
CONCEPT_PARAMS = (*SWEEP_PARAMS, "concepts")
MIXUP_KEYS = {"mixup_alpha", "cutmix_alpha", "prob", "switch_prob", "label_smoothing"}


@dataclass(frozen=True)
class ClassifierParams:
    """The ``params`` of a fine-tune / linear / few-shot / concepts preset, checked."""

    modality: str
    clip: Mapping[str, Any]
    train: Mapping[str, Any]
    test: Mapping[str, Any]
    probes: dict[str, ProbeSpec]
    optim: OptimConfig
    epochs: int
    batch_size: int
    repeats: int = 1
    clip_level_clips: int | None = None
    warmup_head_epochs: int = 0
    bn_train_mode: bool = False
    mixup: Mapping[str, float] | None = None
    precision: str = "fp32"
    encoder_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], where: str, extra_keys: Sequence[str] = ()) -> ClassifierParams:
        """Parse a preset's params; errors name ``where`` (the preset file) and the field.

        ``extra_keys``: further params the calling kind reads itself (few-shot ratios, ...).
        """
        known = _KNOWN_PARAMS | set(extra_keys)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"{where}: unknown params {unknown}; known: {sorted(known)}")
        for key in ("modality", "optim", "epochs", "batch_size", "probes"):
            if key not in params:
                raise ValueError(f"{where}: params.{key} is required")
        if params["modality"] not in ("video", "audio"):
            raise ValueError(f"{where}: params.modality must be 'video' or 'audio', got {params['modality']!r}")
        probes = params["probes"]
        if not isinstance(probes, Mapping) or not probes:
            raise ValueError(f"{where}: params.probes must be a non-empty mapping name -> probe")
        mixup = params.get("mixup")
        if mixup is not None:
            unknown = sorted(set(mixup) - MIXUP_KEYS)
            if unknown:
                raise ValueError(f"{where}: params.mixup has unknown field(s) {unknown}; known: {sorted(MIXUP_KEYS)}")
        if params.get("precision", "fp32") not in PRECISIONS:
            raise ValueError(f"{where}: params.precision must be one of {PRECISIONS}, got {params['precision']!r}")
        return cls(
            modality=params["modality"],
            clip=dict(params.get("clip") or {}),
            train=dict(params.get("train") or {}),
            test=dict(params.get("test") or {}),
            probes={
                name: ProbeSpec.from_mapping(p or {}, f"{where}: params.probes.{name}") for name, p in probes.items()
            },
            optim=OptimConfig.from_mapping(params["optim"], f"{where}: params.optim"),
            epochs=int(params["epochs"]),
            batch_size=int(params["batch_size"]),
            repeats=int(params.get("repeats", 1)),
            clip_level_clips=int(params["clip_level_clips"]) if params.get("clip_level_clips") else None,
            warmup_head_epochs=int(params.get("warmup_head_epochs", 0)),
            bn_train_mode=bool(params.get("bn_train_mode", False)),
            mixup=mixup,
            precision=str(params.get("precision", "fp32")),
            encoder_kwargs=dict(params.get("encoder_kwargs") or {}),
        )


@dataclass(frozen=True)
class RunSettings:
    """Where a run executes (from the evaluation context)."""

    device: str = "cpu"
    seed: int = 0
    test_batch_size: int = 16  # views per forward pass at test time
    num_workers: int = 0
    progress: bool = False


def classifier_batch(
    items: Sequence[dict[str, Any]], modality: str, label_map: Mapping[int, int] | None
) -> dict[str, Any]:
    """Collate ``LabelledClips`` items for the loop: clips, one label and one video index (the
    manifest row) per clip; ``label_map`` re-indexes labels (class subsets)."""
    batch = collate_clips(items)
    labels = [lab[0] for lab in batch["label"]]
    if label_map is not None:
        labels = [label_map[lab] for lab in labels]
    group = batch["group"]  # [ΣV] position of each clip's item in the batch
    return {
        modality: batch["clips"],
        "label": torch.tensor(labels, dtype=torch.long)[group],
        "video_index": torch.tensor(batch["row"], dtype=torch.long)[group],
        "errors": batch["errors"],
    }


class SkippingLoader:
    """A DataLoader whose empty batches (every file failed to decode) are left out, with the
    failures collected in ``errors`` (path → reason)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.errors: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def dataset(self) -> LabelledClips:
        return self.loader.dataset

    def __iter__(self):
        for batch in self.loader:
            self.errors.update(dict(batch.pop("errors")))
            if len(batch["label"]):
                yield batch


def make_loader(
    dataset: LabelledClips, modality: str, batch_size: int, shuffle: bool, settings: RunSettings,
    label_map: Mapping[int, int] | None,
) -> SkippingLoader:
    """Batches of ``batch_size`` items; training loaders shuffle (seeded) and drop an incomplete
    last batch when there is more than one batch (a batch of one breaks BatchNorm in train mode)."""
    generator = torch.Generator().manual_seed(settings.seed)
    return SkippingLoader(DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator if shuffle else None,
        num_workers=settings.num_workers, drop_last=shuffle and len(dataset) > batch_size,
        collate_fn=functools.partial(classifier_batch, modality=modality, label_map=label_map),
    ))


def example_input(encoder: nn.Module, params: ClassifierParams) -> torch.Tensor:
    """A zero batch of two training-sized inputs (probe widths are measured on it)."""
    shape = list(encoder.input_spec.example_shape(2))
    if params.modality == "video":
        spec, _ = clip_spec_from_params(encoder, {"clip": params.clip, "train": params.train}, "train")
        size = spec.transform_overrides.get("size", shape[-1])
        shape[2], shape[3], shape[4] = spec.frames, size, size
    return torch.zeros(shape)


def build_encoder(name: str, checkpoint: Any, params: ClassifierParams) -> nn.Module:
    from avssl.models.registry import create_encoder

    encoder = create_encoder(name, checkpoint_path=checkpoint, **dict(params.encoder_kwargs))
    if encoder.modality != params.modality:
        raise ValueError(f"encoder {name} is a {encoder.modality} encoder; the protocol needs {params.modality}")
    return encoder


def train_and_test(
    encoder: nn.Module,
    data: BenchmarkData,
    train_rows: Sequence[int],
    test_rows: Sequence[int],
    params: ClassifierParams,
    settings: RunSettings,
    train_encoder: bool,
    classes: Sequence[int] | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Train a classifier on ``train_rows`` and test it on ``test_rows`` of ``data``.

    ``classes``: global class indices to keep (labels re-indexed 0..K−1 in this order); rows of
    other classes are dropped from both sides. Returns ``(metrics, extras)``: metrics in percent
    (``clip_top1``, ``clip_top5``, ``video_top1``, ``video_top5``; prefixed by the probe name when
    there are several probes), extras with the loss history and files that failed to decode.
    """
    if data.multi_label:
        raise ValueError(f"{data.name} is multi-label; classifier protocols here are single-label")
    label_map = None
    num_classes = len(data.classes)
    if classes is not None:
        label_map = {c: i for i, c in enumerate(classes)}
        keep = set(label_map)
        train_rows = [r for r in train_rows if data.labels_of(r)[0] in keep]
        test_rows = [r for r in test_rows if data.labels_of(r)[0] in keep]
        num_classes = len(classes)
    if not train_rows or not test_rows:
        raise ValueError(f"{data.name}: {len(train_rows)} training and {len(test_rows)} test files; both must be > 0")
    loop = LoopSettings(params.modality, settings.device, params.precision, settings.progress)
    spec_params = {"clip": params.clip, "train": params.train, "test": params.test}
    train_spec, train_clips = clip_spec_from_params(encoder, spec_params, "train")
    train_set = LabelledClips(data, train_rows, train_spec, "train", train_clips, params.repeats, seed=settings.seed)
    train_loader = make_loader(train_set, params.modality, params.batch_size, True, settings, label_map)

    torch.manual_seed(settings.seed)  # head initialisation
    encoder.to(settings.device)  # probe widths are measured with one forward pass on the device
    example = example_input(encoder, params).to(settings.device)
    model = EncoderClassifier(encoder, params.probes, num_classes, example)
    mixer = MixupCutmix(num_classes, **dict(params.mixup)) if params.mixup else None
    history = fit_classifier(
        model, train_loader, params.optim, params.epochs, loop, train_encoder, params.bn_train_mode,
        params.warmup_head_epochs, mixer, seed=settings.seed,
    )
    failed = dict(train_loader.errors)
    metrics = _test(model, data, test_rows, encoder, spec_params, params, settings, loop, label_map, failed)
    extras = {
        "num_train_files": len(train_rows), "num_test_files": len(test_rows), "num_classes": num_classes,
        "train_loss": history.losses, "warmup_loss": history.warmup_losses, "failed_files": failed,
    }
    return metrics, extras


def _test(
    model: EncoderClassifier, data: BenchmarkData, rows: Sequence[int], encoder: nn.Module,
    spec_params: Mapping[str, Any], params: ClassifierParams, settings: RunSettings, loop: LoopSettings,
    label_map: Mapping[int, int] | None,
    failed: dict[str, str],
) -> dict[str, float]:
    """Test passes (module docstring); files that fail to decode are added to ``failed``."""
    spec, clips = clip_spec_from_params(encoder, spec_params, "test")
    passes = {"video": clips}
    if params.clip_level_clips and params.clip_level_clips != clips:
        passes["clip"] = int(params.clip_level_clips)
    prefix = len(params.probes) > 1
    metrics: dict[str, float] = {}
    for level, count in passes.items():
        dataset = LabelledClips(data, rows, spec, "test", count, seed=settings.seed)
        # test_batch_size counts views (clips × crops) per forward pass, not videos
        videos_per_batch = max(1, settings.test_batch_size // (count * dataset.views_per_clip))
        loader = make_loader(dataset, params.modality, videos_per_batch, False, settings, label_map)
        scores = score_predictions(predict_clips(model, loader, loop), prefix)
        failed.update(loader.errors)
        wanted = scores if len(passes) == 1 else {k: v for k, v in scores.items() if f"{level}_top" in k}
        metrics.update(wanted)
    return metrics


def run_settings(context: EvaluationContext) -> RunSettings:
    return RunSettings(context.device, context.seed, context.batch_size, context.num_workers, context.progress)


def run_classifier_protocol(
    preset: ProtocolPreset, context: EvaluationContext, train_encoder: bool
) -> list[FoldResult]:
    """Runner body of the ``finetune`` and ``linear`` kinds: one :func:`train_and_test` per fold,
    every fold from the checkpoint."""
    params = ClassifierParams.from_params(preset.params, str(preset.path or preset.name))
    choice = context.encoder_for(params.modality)
    data = load_benchmark(preset.benchmark, context.data_root)
    settings = run_settings(context)
    results = []
    for fold in context.folds_for(preset):
        encoder = build_encoder(choice.name, choice.checkpoint, params)
        metrics, extras = train_and_test(
            encoder, data, data.split_rows(fold, "train"), data.split_rows(fold, "test"), params, settings,
            train_encoder,
        )
        results.append(FoldResult(fold, metrics, extras))
    return results
