"""Labelled clip datasets for downstream evaluation (spec §6.1 dataset modes, §6.2 item 8).

One item is one media file of a benchmark (:class:`~avssl.data.benchmarks.BenchmarkData`) cut into
clips of one modality:

* ``mode="train"`` — ``clips_per_video`` windows at random positions, each augmented independently
  with the training pipeline (SVM feature banks draw many augmented clips per file; fine-tuning
  draws one per item and repeats the file list ``repeats`` times per epoch, the originals'
  ``clips_per_video`` dataset multiplier);
* ``mode="test"`` — ``clips_per_video`` dense windows at ``linspace(0, N − L, n)`` through the
  evaluation transform (short side → size/0.875, centre crop, or three spatial crops).

The clips of one item are decoded in one pass and transformed as one batch: video
``[V, 3, T, S, S]`` (normalised float), audio spectrograms ``[V, 1, F, T']``, where ``V`` =
clips × spatial crops (clip-major). Labels are lists of class indices (one for single-label
benchmarks). A file that fails to decode yields an item with ``error`` set and no clips, so a run
never dies on one bad file; the caller reports it.

Randomness is a pure function of ``(seed, epoch, manifest row, repeat)``: the same file gets the same
clips in any subset of rows (a resumed extraction), and the video and audio datasets of one file draw
the same random numbers (synchronous training windows when both streams span the same time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from avssl.data.benchmarks import BenchmarkData
from avssl.data.datasets import DECODE_FAILURES
from avssl.data.views import AudioFrontend
from avssl.media import decode
from avssl.media.augment import get_video_augment
from avssl.media.sampling import Window, dense_windows, random_window

__all__ = ["ClipSpec", "LabelledClips", "collate_clips"]

Mode = Literal["train", "test"]


@dataclass(frozen=True)
class ClipSpec:
    """What one clip of one modality is and how it becomes an encoder input.

    Video: ``frames`` at ``fps`` (``None``: each file's native rate, VMZ), decoded with the short
    side at ``decode_short_side`` and passed through the video pipeline ``transform`` (a preset of
    :mod:`avssl.media.augment`, e.g. ``eval_video``, ``eval_video_three_crop``, ``xkd_svm_video``)
    with ``transform_overrides`` (``size``, ``mean``, ``std``, ...). Audio: ``seconds`` of mono audio
    at ``sample_rate`` through the spectrogram preset ``spectrogram`` and, for training clips, the
    audio pipeline ``transform`` (e.g. ``crisscross_svm_audio``; ``None`` = no augmentation).
    ``span_seconds`` limits the windows to the first seconds of a file (CrissCross's ESC-50 test
    clips all come from the first 2 s, spec §2.7 / §5 row 7); ``None`` uses the whole file.
    """

    modality: Literal["video", "audio"]
    seconds: float | None = None
    frames: int | None = None
    fps: float | None = None
    decode_short_side: int | None = None
    sample_rate: int | None = None
    spectrogram: str | None = None
    transform: str | None = None
    transform_overrides: Mapping[str, Any] = field(default_factory=dict)
    span_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.modality == "video" and not self.frames:
            raise ValueError("ClipSpec: a video clip needs frames")
        if self.modality == "audio" and not (self.seconds and self.sample_rate and self.spectrogram):
            raise ValueError("ClipSpec: an audio clip needs seconds, sample_rate and spectrogram")

    @property
    def spatial_crops(self) -> int:
        return 3 if self.transform and "three_crop" in self.transform else 1

    @classmethod
    def for_encoder(cls, encoder: nn.Module, mode: Mode, **changes: Any) -> ClipSpec:
        """The clip an encoder was built for (``encoder.input_spec``), with ``changes`` applied.

        Defaults: video ``eval_video`` at the encoder's size and normalisation for both modes (set
        ``transform`` for augmented training clips); audio without augmentation.
        """
        spec = encoder.input_spec
        if spec.modality == "video":
            overrides = {"size": spec.size, "mean": tuple(spec.mean), "std": tuple(spec.std)}
            base = cls("video", frames=spec.frames, fps=spec.fps, transform="eval_video",
                       transform_overrides=overrides, decode_short_side=round(spec.size / 0.875))
        else:
            base = cls("audio", seconds=spec.duration, sample_rate=spec.sample_rate, spectrogram=spec.spectrogram)
        if "transform_overrides" in changes:
            changes["transform_overrides"] = {**base.transform_overrides, **changes["transform_overrides"]}
        return replace(base, **changes)

    def video_seconds(self, native_fps: float | None) -> float:
        fps = self.fps or native_fps
        if not fps:
            raise ValueError("ClipSpec: the clip has no fps and the file's frame rate is unknown")
        return self.frames / fps


class LabelledClips(Dataset):
    """Clips of the files ``rows`` of a benchmark, with their labels (see the module docstring).

    Args:
        data: the benchmark (manifest, classes).
        rows: manifest row numbers of the files to use (e.g. ``data.split_rows(fold, "train")``).
        spec: the clip (modality, duration, transform).
        mode: ``"train"`` (random windows, augmentation) or ``"test"`` (dense windows, eval transform).
        clips_per_video: windows per item.
        repeats: the file list is repeated this many times per epoch (item ``i`` reads file ``i % N``).
        seed: base seed; random draws depend on ``(seed, epoch, manifest row, repeat)`` only.
        backend: decoder backend (default: :func:`avssl.media.decode.default_backend`).
    """

    def __init__(
        self,
        data: BenchmarkData,
        rows: Sequence[int],
        spec: ClipSpec,
        mode: Mode,
        clips_per_video: int = 1,
        repeats: int = 1,
        seed: int = 0,
        backend: str | None = None,
    ) -> None:
        if mode not in ("train", "test"):
            raise ValueError(f"LabelledClips: mode must be 'train' or 'test', got {mode!r}")
        if clips_per_video < 1 or repeats < 1:
            raise ValueError(
                f"LabelledClips: clips_per_video and repeats must be >= 1, got {clips_per_video}, {repeats}"
            )
        self.data, self.rows, self.spec, self.mode = data, list(rows), spec, mode
        self.clips_per_video, self.repeats, self.seed, self.backend = clips_per_video, repeats, seed, backend
        self.epoch = 0
        self._transform: Any = None

    def __len__(self) -> int:
        return len(self.rows) * self.repeats

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def views_per_clip(self) -> int:
        return self.spec.spatial_crops

    @property
    def transform(self) -> Any:
        # Built lazily so each DataLoader worker builds its own (filterbanks, random state).
        if self._transform is None:
            s = self.spec
            if s.modality == "video":
                self._transform = get_video_augment(s.transform or "eval_video", **dict(s.transform_overrides))
            else:
                self._transform = AudioFrontend(
                    s.spectrogram, s.transform, s.seconds, tuple(dict(s.transform_overrides).items())
                ).build()
        return self._transform

    def _generators(self, index: int) -> tuple[np.random.Generator, torch.Generator]:
        # Keyed by the manifest row (not the position in this dataset), so a dataset over a subset
        # of rows — a resumed extraction — draws exactly what the full one would have drawn.
        entropy = [self.seed, self.epoch, self.rows[index % len(self.rows)], index // len(self.rows)]
        seed = int(np.random.SeedSequence(entropy).generate_state(1)[0])
        return np.random.default_rng(entropy), torch.Generator().manual_seed(seed)

    def windows(self, info: decode.MediaInfo, rng: np.random.Generator) -> list[Window]:
        """The item's windows on the stream of the spec's modality (dense or random)."""
        if self.spec.modality == "video":
            start, end, seconds = info.video_start, info.video_end, self.spec.video_seconds(info.fps)
        else:
            start, end, seconds = info.audio_start, info.audio_end, self.spec.seconds
        if self.spec.span_seconds is not None:
            end = min(end, start + self.spec.span_seconds)
        if self.mode == "test":
            return dense_windows(start, end, seconds, self.clips_per_video)
        return [random_window(rng, start, end, seconds) for _ in range(self.clips_per_video)]

    def read_clips(self, path: str, info: decode.MediaInfo, windows: list[Window]) -> Tensor:
        """The raw clips of the windows: video uint8 ``[n, 3, T, H, W]``, audio ``[n, samples]``."""
        s = self.spec
        if s.modality == "video":
            frames = decode.read_video(path, windows, s.fps or info.fps, backend=self.backend, info=info,
                                       short_side=s.decode_short_side)
            # Windows at a native rate may round to T ± 1 frames; keep exactly `frames`.
            return torch.stack([_fit_frames(f, s.frames) for f in frames])
        return torch.stack(decode.read_audio(path, windows, s.sample_rate, backend=self.backend, info=info))

    def prepare(self, raw: Tensor, generator: torch.Generator) -> Tensor:
        """Transformed clips ``[V, ...]`` (V = clips × spatial crops) ready for the encoder."""
        out = self.transform(raw, generator)
        if self.spec.modality == "video" and out.ndim == 6:  # three crops: [n, 3, C, T, S, S]
            return out.flatten(0, 1)
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index % len(self.rows)]
        path = str(self.data.path_of(row))
        item: dict[str, Any] = {"row": row, "path": path, "label": self.data.labels_of(row), "error": None,
                                "views_per_clip": self.views_per_clip, "clips": None}
        rng, generator = self._generators(index)
        try:
            info = self.data.media_info(row)  # probed when the benchmark was loaded
            raw = self.read_clips(path, info, self.windows(info, rng))
        except DECODE_FAILURES as exc:  # a bad file; errors of the transform below are not caught
            item["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            return item
        item["clips"] = self.prepare(raw, generator)
        return item


def _fit_frames(clip: Tensor, frames: int) -> Tensor:
    """``[3, T, H, W]`` cut or padded (last frame repeated, as the original loaders) to ``frames``."""
    if clip.shape[1] >= frames:
        return clip[:, :frames]
    return torch.cat([clip, clip[:, -1:].expand(-1, frames - clip.shape[1], -1, -1)], dim=1)


def collate_clips(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch of items: ``clips`` ``[ΣV, ...]``, ``group`` ``[ΣV]`` (item position), ``row``, ``label``
    (lists per item) and ``errors`` (``(path, reason)`` of the items that failed, which carry no clips)."""
    good = [it for it in items if it["error"] is None]
    clips = torch.cat([it["clips"] for it in good]) if good else torch.empty(0)
    group = torch.cat([torch.full((len(it["clips"]),), i, dtype=torch.long) for i, it in enumerate(good)]) \
        if good else torch.empty(0, dtype=torch.long)
    return {
        "clips": clips,
        "group": group,
        "row": [it["row"] for it in good],
        "label": [it["label"] for it in good],
        "errors": [(it["path"], it["error"]) for it in items if it["error"] is not None],
    }
