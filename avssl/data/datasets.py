"""Pretraining dataset: the views of one method, drawn from the files of a manifest.

One item is one file: ``clips_per_video`` samples are drawn from it, the decoder reads all their
windows in one pass, and the views come back as tensors with ``clips_per_video`` rows (see
:mod:`avssl.data.views`). :func:`collate_views` concatenates items into a batch.

A file that fails to decode never stops a run: the item moves on to the next file (as the
original loaders do) and records what it skipped and why in ``skipped``; :class:`SkipCounter`
adds these up over a run so the trainer can report them at the end.

Randomness is a pure function of ``(seed, epoch, index)``, so an epoch's data is the same whatever
the number of workers and a resumed run sees exactly the data it would have seen.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from avssl.data.clip_store import DecodedClipStore
from avssl.data.manifest import Manifest
from avssl.data.views import RecipeRunner, ViewRecipe
from avssl.media import decode

# Decoding can fail in many ways on real files (corrupt streams, odd codecs, missing streams);
# all of them mean "skip this file". Programming errors (TypeError, ...) are not caught.
DECODE_FAILURES = (decode.DecodeError, RuntimeError, ValueError, OSError, EOFError, IndexError)


class PretrainingDataset(Dataset):
    """Views of ``recipe`` from every file of ``manifest``.

    Args:
        manifest: the corpus (rows with at least ``path``); files are resolved against its folder.
        recipe: what to read and how to augment it (``avssl.data.views.get_view_recipe``).
        clips_per_video: samples drawn from one decoded file per item (they share one decode pass).
        seed: base seed; draws depend on ``(seed, epoch, index)`` only.
        max_skips: how many following files an item may try before giving up with an error.
        backend: decoder backend (default: :func:`avssl.media.decode.default_backend`).
        store: decoded clips held in memory (:class:`avssl.data.clip_store.DecodedClipStore`);
            files it holds are not decoded again.

    Each item also has ``label`` ``[k]``: the row's class index in ``manifest.labels()`` (sorted),
    -1 for a row with no label or several (methods that log clustering metrics use it; no
    pretext loss reads it).
    """

    def __init__(
        self,
        manifest: Manifest,
        recipe: ViewRecipe,
        clips_per_video: int = 1,
        seed: int = 0,
        max_skips: int = 50,
        backend: str | None = None,
        store: DecodedClipStore | None = None,
    ) -> None:
        if clips_per_video < 1:
            raise ValueError(f"PretrainingDataset: clips_per_video must be >= 1, got {clips_per_video}")
        if len(manifest) == 0:
            raise ValueError(f"PretrainingDataset: manifest {manifest.path} has no rows")
        self.manifest = manifest
        self.recipe = recipe
        self.clips_per_video = clips_per_video
        self.seed = seed
        self.max_skips = max_skips
        self.backend = backend
        self.store = store
        classes = {name: number for number, name in enumerate(manifest.labels())}
        self.labels = torch.tensor(
            [classes[row.labels[0]] if len(row.labels) == 1 else -1 for row in manifest], dtype=torch.long
        )
        self.epoch = 0
        self._runner: RecipeRunner | None = None
        self._info_cache: dict[str, decode.MediaInfo] = {}

    def __len__(self) -> int:
        return len(self.manifest)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def runner(self) -> RecipeRunner:
        # Built lazily so each DataLoader worker builds its own (filterbanks, augment modules).
        if self._runner is None:
            self._runner = self.recipe.build(self.store)
        return self._runner

    def media_info(self, index: int) -> decode.MediaInfo:
        """Facts of row ``index``: as recorded when the manifest has the stream timings (``avssl
        prepare`` writes them), else from a probe of the file (cached)."""
        row = self.manifest[index]
        path = self.manifest.resolve(row)
        key = str(path)
        if key not in self._info_cache:
            recorded = (row.fps and row.width and row.height and row.video_duration is not None
                        and (row.audio_duration is not None or not row.has_audio))
            self._info_cache[key] = (
                row.media_info(path) if recorded else decode.probe(path, count_frames=False, backend=self.backend)
            )
        return self._info_cache[key]

    def _generators(self, index: int) -> tuple[np.random.Generator, torch.Generator]:
        entropy = [self.seed, self.epoch, index]
        rng = np.random.default_rng(entropy)
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))
        return rng, generator

    def __getitem__(self, index: int) -> dict[str, Any]:
        skipped: list[tuple[str, str]] = []
        for attempt in range(self.max_skips + 1):
            current = (index + attempt) % len(self.manifest)
            path = self.manifest.resolve(self.manifest[current])
            rng, generator = self._generators(current)
            try:
                views = self.runner(path, self.media_info(current), self.clips_per_video, rng, generator, self.backend)
            except DECODE_FAILURES as exc:
                skipped.append((str(path), f"{type(exc).__name__}: {exc}".splitlines()[0]))
                continue
            k = self.clips_per_video
            return {
                **views,
                "index": torch.full((k,), current, dtype=torch.long),
                "label": self.labels[current].repeat(k),
                "skipped": skipped,
            }
        raise RuntimeError(
            f"PretrainingDataset: {len(skipped)} files in a row from index {index} failed to decode; "
            f"last: {skipped[-1][0]}: {skipped[-1][1]}"
        )


def collate_views(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate items along the sample axis; views stay lists, ``skipped`` lists are joined."""
    batch: dict[str, Any] = {}
    for key in ("video", "audio"):
        num_views = len(items[0][key])
        batch[key] = [torch.cat([item[key][v] for item in items]) for v in range(num_views)]
    for key in ("index", "label"):
        batch[key] = torch.cat([item[key] for item in items])
    batch["skipped"] = [entry for item in items for entry in item["skipped"]]
    return batch


@dataclass
class SkipCounter:
    """Counts the files skipped over a run, with one reason each, for the end-of-run report."""

    reasons: dict[str, str] = field(default_factory=dict)
    counts: collections.Counter = field(default_factory=collections.Counter)

    def update(self, skipped: Sequence[tuple[str, str]]) -> None:
        for path, reason in skipped:
            self.counts[path] += 1
            self.reasons.setdefault(path, reason)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self) -> str:
        if not self.counts:
            return "no file was skipped"
        lines = [f"{len(self.counts)} file(s) skipped ({self.total} time(s)):"]
        lines += [f"  {path}: {self.reasons[path]}" for path in sorted(self.counts)]
        return "\n".join(lines)
