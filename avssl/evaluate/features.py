"""Multi-clip feature extraction from frozen encoders, batched, cached and resumable.

For every file of a :class:`~avssl.data.labelled.LabelledClips` dataset the encoder sees all its
views (clips × spatial crops; dense test windows or augmented training clips) and a feature op turns
each view into a vector. The result keeps every view (``[F, V, D]``), so callers take what their
protocol needs: the mean over views (video-level feature, kNN / retrieval), per-clip features
(crops averaged), or all views with their file as group (SVM training banks and decision averaging).

Feature ops (spec §2.7, §4.6):

* ``pool`` — ``encoder(x)``, the pooled ``[B, D]`` representation (XKD ``feat_op: pool``);
* a named map of ``encoder.forward_features(x)`` (``conv5x``, ``cls``, ...), optionally max-pooled
  over its last two axes, L2-normalised along its last axis (``last_axis``, CrissCross ESC-50) or as a
  whole vector (``vector``), then flattened. CrissCross's ESC-50 feature is ``conv5x`` →
  MaxPool2d((1, 3), stride (1, 2)) → L2 along time → flatten (4,608-d for 2 s); its untrained
  eval-mode BatchNorm1d afterwards only scales by 1/√(1+1e-5) and is left out.

The cache (``cache_dir``) holds one ``.npy`` of ``[V, D]`` per file plus ``index.csv`` (row, path,
file) and ``failed.csv`` (path, reason); files already there are skipped, so an interrupted run
resumes. A cache folder belongs to one configuration: :func:`cache_folder` names it by a hash of
everything that changes the numbers (encoder, checkpoint, clip spec, op, mode, clip count, seed).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from avssl.data.benchmarks import BenchmarkData
from avssl.data.labelled import ClipSpec, LabelledClips

__all__ = ["ExtractedFeatures", "FeatureCache", "FeatureOp", "cache_folder", "extract_features"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureOp:
    """How a view becomes a vector (see the module docstring). ``name="pool"`` is ``encoder(x)``."""

    name: str = "pool"
    max_pool: tuple[tuple[int, int], tuple[int, int]] | None = None  # (kernel, stride) on the last two axes
    normalize: Literal["none", "last_axis", "vector"] = "none"

    def __post_init__(self) -> None:
        if self.normalize not in ("none", "last_axis", "vector"):
            raise ValueError(f"FeatureOp: normalize must be none, last_axis or vector, got {self.normalize!r}")
        if self.max_pool is not None:
            object.__setattr__(self, "max_pool", tuple(tuple(int(v) for v in pair) for pair in self.max_pool))

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | str | None) -> FeatureOp:
        """From a preset's ``feature`` entry: ``"pool"`` or ``{map, max_pool: [[k], [s]], normalize}``."""
        if params is None or params == "pool":
            return cls()
        if isinstance(params, str):
            return cls(name=params)
        unknown = set(params) - {"map", "max_pool", "normalize"}
        if unknown:
            raise ValueError(f"feature op: unknown key(s) {sorted(unknown)}; allowed: map, max_pool, normalize")
        return cls(params.get("map", "pool"), params.get("max_pool"), params.get("normalize", "none"))

    def __call__(self, encoder: nn.Module, x: Tensor) -> Tensor:
        if self.name == "pool":
            out = encoder(x)  # [B, D]
        else:
            maps = encoder.forward_features(x)
            if self.name not in maps:
                raise KeyError(f"feature op: {type(encoder).__name__} has no map {self.name!r}; it has {sorted(maps)}")
            out = maps[self.name]
        if self.max_pool is not None:
            if out.ndim != 4:
                raise ValueError(f"feature op: max_pool needs a [B, C, H, W] map, {self.name} is {tuple(out.shape)}")
            kernel, stride = self.max_pool
            out = F.max_pool2d(out, kernel_size=kernel, stride=stride)
        if self.normalize == "last_axis":
            out = F.normalize(out, dim=-1)
        out = out.flatten(1)  # [B, D]
        return F.normalize(out, dim=1) if self.normalize == "vector" else out


@dataclass
class ExtractedFeatures:
    """Features of the files that decoded: ``views`` ``[F, V, D]`` in dataset order, their manifest
    ``rows`` ``[F]`` and ``labels`` (class-index lists), and the files that ``failed`` (path, reason)."""

    rows: np.ndarray
    views: np.ndarray
    labels: list[list[int]]
    views_per_clip: int = 1
    failed: list[tuple[str, str]] = field(default_factory=list)

    def mean(self) -> np.ndarray:
        """``[F, D]``: mean over all views of each file (the video-level feature)."""
        return self.views.mean(axis=1)

    def per_clip(self) -> np.ndarray:
        """``[F, n, D]``: spatial crops averaged within each clip."""
        f, v, d = self.views.shape
        return self.views.reshape(f, v // self.views_per_clip, self.views_per_clip, d).mean(axis=2)

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """``(features [F·V, D], group [F·V])``: every view as a row, grouped by file position."""
        f, v, d = self.views.shape
        return self.views.reshape(f * v, d), np.repeat(np.arange(f), v)

    def select(self, rows: Sequence[int]) -> ExtractedFeatures:
        """The files of manifest ``rows`` that are present, in the order of ``rows``."""
        position = {int(r): i for i, r in enumerate(self.rows)}
        keep = [position[int(r)] for r in rows if int(r) in position]
        return ExtractedFeatures(self.rows[keep], self.views[keep], [self.labels[i] for i in keep],
                                 self.views_per_clip, self.failed)

    def first_labels(self) -> np.ndarray:
        """``[F]`` single labels (error if a file has none)."""
        return np.array([lab[0] for lab in self.labels], dtype=np.int64)

    def multi_hot(self, num_classes: int) -> np.ndarray:
        out = np.zeros((len(self.labels), num_classes), dtype=np.int64)
        for i, lab in enumerate(self.labels):
            out[i, lab] = 1
        return out


class FeatureCache:
    """Per-file feature arrays in a folder, with an index, for resumable extraction."""

    INDEX, FAILED = "index.csv", "failed.csv"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.done: dict[int, str] = {}
        self.failed: dict[int, tuple[str, str]] = {}
        if (self.folder / self.INDEX).is_file():
            with open(self.folder / self.INDEX, newline="", encoding="utf-8") as f:
                for rec in csv.DictReader(f):
                    if (self.folder / rec["file"]).is_file():
                        self.done[int(rec["row"])] = rec["file"]
        if (self.folder / self.FAILED).is_file():
            with open(self.folder / self.FAILED, newline="", encoding="utf-8") as f:
                for rec in csv.DictReader(f):
                    self.failed[int(rec["row"])] = (rec["path"], rec["reason"])

    def has(self, row: int) -> bool:
        return row in self.done or row in self.failed

    def load(self, row: int) -> np.ndarray:
        return np.load(self.folder / self.done[row])

    def store(self, row: int, path: str, views: np.ndarray) -> None:
        name = f"{row}.npy"
        np.save(self.folder / name, views)
        self._append(self.INDEX, ("row", "path", "file"), (row, path, name))
        self.done[row] = name

    def store_failure(self, row: int, path: str, reason: str) -> None:
        self._append(self.FAILED, ("row", "path", "reason"), (row, path, reason))
        self.failed[row] = (path, reason)

    def _append(self, name: str, header: Sequence[str], values: Sequence[Any]) -> None:
        target = self.folder / name
        new = not target.is_file()
        with open(target, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(header)
            writer.writerow(values)


def cache_folder(root: str | Path, encoder: nn.Module, checkpoint: str | Path | None, dataset: LabelledClips,
                 op: FeatureOp) -> Path:
    """``root/<benchmark>-<mode>-<hash>``: a folder per configuration (see the module docstring)."""
    checkpoint_id = None
    if checkpoint is not None:
        stat = Path(checkpoint).stat()
        checkpoint_id = [str(Path(checkpoint).resolve()), stat.st_size, stat.st_mtime_ns]
    signature = {
        "encoder": getattr(encoder, "registry_name", type(encoder).__name__),
        "encoder_kwargs": getattr(encoder, "registry_kwargs", {}), "checkpoint": checkpoint_id,
        "benchmark": dataset.data.name, "root": str(dataset.data.root.resolve()), "spec": asdict(dataset.spec),
        "op": asdict(op), "mode": dataset.mode, "clips": dataset.clips_per_video, "seed": dataset.seed,
    }
    text = json.dumps(signature, sort_keys=True, default=str)
    folder = Path(root) / f"{dataset.data.name}-{dataset.mode}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "signature.json").write_text(json.dumps(signature, indent=2, default=str) + "\n", encoding="utf-8")
    return folder


def _batches(loader: Iterator[dict[str, Any]], batch_size: int) -> Iterator[list[dict[str, Any]]]:
    """Group items so that each group holds at least ``batch_size`` views (or is the last)."""
    group, views = [], 0
    for item in loader:
        group.append(item)
        views += 0 if item["clips"] is None else len(item["clips"])
        if views >= batch_size:
            yield group
            group, views = [], 0
    if group:
        yield group


@torch.inference_mode()
def extract_features(
    encoder: nn.Module,
    dataset: LabelledClips,
    op: FeatureOp | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    num_workers: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    description: str = "features",
) -> ExtractedFeatures:
    """Features of every file of ``dataset`` (see :class:`ExtractedFeatures`).

    ``batch_size`` views go through the encoder at a time, on ``device``, in eval mode. Files in the
    cache folder ``cache_dir`` (a :class:`FeatureCache`) are loaded instead of decoded.
    """
    op = op or FeatureOp()
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    encoder = encoder.to(device).eval()
    todo = [r for r in dataset.rows if cache is None or not cache.has(r)]
    computed: dict[int, np.ndarray] = {}
    failed: dict[int, tuple[str, str]] = {}
    if todo:
        subset = LabelledClips(dataset.data, todo, dataset.spec, dataset.mode, dataset.clips_per_video,
                               seed=dataset.seed, backend=dataset.backend)
        subset.set_epoch(dataset.epoch)
        loader = DataLoader(subset, batch_size=None, num_workers=num_workers)
        bar = tqdm(total=len(todo), desc=description, disable=not progress, unit="file")
        for group in _batches(iter(loader), batch_size):
            for item in group:
                if item["error"] is not None:
                    failed[item["row"]] = (item["path"], item["error"])
                    if cache is not None:
                        cache.store_failure(item["row"], item["path"], item["error"])
            good = [it for it in group if it["error"] is None]
            if good:
                clips = torch.cat([it["clips"] for it in good])
                outs = [op(encoder, chunk.to(device)).float().cpu() for chunk in clips.split(batch_size)]
                views = torch.cat(outs).numpy()
                offset = 0
                for it in good:
                    n = len(it["clips"])
                    computed[it["row"]] = views[offset : offset + n]
                    offset += n
                    if cache is not None:
                        cache.store(it["row"], it["path"], computed[it["row"]])
            bar.update(len(group))
        bar.close()
    if cache is not None:
        failed.update({r: cache.failed[r] for r in dataset.rows if r in cache.failed})
    rows = [r for r in dataset.rows if r not in failed]
    if failed:
        shown = "; ".join(f"{p}: {why}" for p, why in list(failed.values())[:3])
        logger.warning("%s: %d of %d files could not be read and are skipped (%s%s)", description, len(failed),
                       len(dataset.rows), shown, "; ..." if len(failed) > 3 else "")
    if not rows:
        raise RuntimeError(f"{description}: no file of {len(dataset.rows)} could be read")
    views = np.stack([computed[r] if r in computed else cache.load(r) for r in rows])
    return ExtractedFeatures(
        rows=np.array(rows), views=views, labels=[dataset.data.labels_of(r) for r in rows],
        views_per_clip=dataset.views_per_clip, failed=list(failed.values()),
    )


# -- helpers for protocol runners ------------------------------------------------------------------

CLIP_KEYS = ("seconds", "frames", "fps", "decode_short_side", "sample_rate", "spectrogram", "transform",
             "transform_overrides", "span_seconds")


def load_frozen_encoder(
    name: str, checkpoint: str | Path | None, device: str | torch.device = "cpu", seed: int = 0
) -> nn.Module:
    """``create_encoder(name, checkpoint_path=checkpoint)`` on ``device``, in eval mode, no gradients.

    The initialisation is seeded with ``seed`` (without touching the global RNG), so a randomly
    initialised baseline is the same network on every run.
    """
    from avssl.models.registry import create_encoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = create_encoder(name, checkpoint_path=checkpoint)
    encoder = encoder.to(device).eval()
    encoder.requires_grad_(False)
    return encoder


def clip_spec_from_params(encoder: nn.Module, params: Mapping[str, Any], mode: str) -> tuple[ClipSpec, int]:
    """``(ClipSpec, clips per file)`` for ``mode`` from a preset's modality parameters.

    ``params["clip"]`` changes the encoder's default clip for both modes; ``params[mode]`` holds
    ``clips`` (windows per file) and changes for that mode only (``transform``, ``span_seconds``, ...).
    """
    per_mode = dict(params.get(mode) or {})
    clips = int(per_mode.pop("clips", 1))
    changes = {**dict(params.get("clip") or {}), **per_mode}
    unknown = sorted(set(changes) - set(CLIP_KEYS))
    if unknown:
        raise ValueError(f"clip parameters: unknown key(s) {unknown}; allowed: {', '.join(CLIP_KEYS)}")
    for key in ("transform_overrides",):
        if key in changes:
            changes[key] = {k: tuple(v) if isinstance(v, list) else v for k, v in changes[key].items()}
    return ClipSpec.for_encoder(encoder, mode, **changes), clips


def split_features(
    context: Any,
    data: BenchmarkData,
    encoder: nn.Module,
    checkpoint: str | Path | None,
    params: Mapping[str, Any],
    rows: Sequence[int],
    mode: str,
) -> ExtractedFeatures:
    """Features of ``rows`` for a protocol run (``context``: an
    :class:`~avssl.evaluate.protocols.EvaluationContext`; ``params``: ``clip``, ``train``/``test``,
    ``feature``), cached under ``context.cache_dir`` when set."""
    spec, clips = clip_spec_from_params(encoder, params, mode)
    dataset = LabelledClips(data, rows, spec, mode, clips, seed=context.seed)
    op = FeatureOp.from_params(params.get("feature"))
    cache = cache_folder(context.cache_dir, encoder, checkpoint, dataset, op) if context.cache_dir else None
    return extract_features(
        encoder, dataset, op, device=context.device, batch_size=context.batch_size,
        num_workers=context.num_workers, cache_dir=cache, progress=context.progress,
        description=f"{data.name} {spec.modality} {mode}",
    )
