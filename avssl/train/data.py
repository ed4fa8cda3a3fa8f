"""Pretraining data for the engine: epoch-seeded, rank-sharded, resumable mid-epoch.

* :class:`EpochSampler` — this rank's ``(epoch, index)`` pairs of one epoch. The epoch's order is a
  seeded permutation of the files (or, when the method asks for it, a weighted draw); rank ``r`` of
  ``W`` takes positions ``r, r + W, ...`` as ``DistributedSampler`` does, and the tail that cannot
  fill a whole global batch is dropped, so every rank runs the same number of steps.
* :class:`ResumableLoader` — iterates a ``DataLoader`` over that sampler, counts the batches
  consumed and the files the dataset skipped, and has ``state_dict``/``load_state_dict``, which
  Lightning stores in its checkpoint and restores before the first batch of a resumed run: the run
  continues at the batch where it stopped.
* :class:`PretrainingData` — the LightningDataModule that builds both for the trainer's rank.

Why the epoch travels with each index: DataLoader workers hold copies of the dataset made when an
iterator starts, and Lightning starts the first iterator of a run before its epoch hooks. Handing
``(epoch, index)`` to the workers makes every draw a function of ``(seed, epoch, index)`` alone
(:class:`avssl.data.datasets.PretrainingDataset`), whatever the timing and with persistent workers.
The loader's ``__iter__`` is lazy for the same reason: nothing is drawn before the first batch is
requested, which comes after ``on_train_epoch_start`` (where XDC re-clusters and may change the
sampling weights).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from avssl.data.clip_store import DecodedClipStore
from avssl.data.datasets import PretrainingDataset, SkipCounter, collate_views
from avssl.data.manifest import Manifest
from avssl.data.recipe_overrides import build_recipe
from avssl.data.views import ViewRecipe
from avssl.train.config import DataConfig

WeightsFn = Callable[[], "Tensor | None"]


def seeded_generator(*entropy: int) -> torch.Generator:
    """A torch generator seeded from integers (independent streams for different tuples)."""
    seed = int(np.random.SeedSequence(list(entropy)).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(seed)


class EpochItems(Dataset):
    """``items[(epoch, visit)]``: visit ``visit`` of an epoch that sees every file ``repeats`` times.

    Visit ``v`` reads file ``v mod N``; its draws are those of ``dataset`` at epoch
    ``epoch · repeats + v div N``, so the repeats of a file within an epoch differ (the original
    loaders' ``clips_per_video``: a dataset ``clips_per_video`` times longer than the file list).
    """

    def __init__(self, dataset: PretrainingDataset, repeats: int = 1) -> None:
        self.dataset = dataset
        self.repeats = repeats

    def __len__(self) -> int:
        return len(self.dataset) * self.repeats

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any]:
        epoch, visit = key
        repeat, index = divmod(visit, len(self.dataset))
        self.dataset.set_epoch(epoch * self.repeats + repeat)
        return self.dataset[index]


class EpochSampler(Sampler):
    """This rank's ``(epoch, visit)`` pairs for the current epoch, from batch ``start_batch`` on.

    Args:
        num_items: visits per epoch (files N × repeats, see :class:`EpochItems`).
        files_per_batch: dataset items per batch on one rank.
        seed: data seed; the order of epoch ``e`` depends on ``(seed, e)`` only.
        rank, world_size: this process and the number of processes.
        weights_fn: returns ``None`` (uniform permutation) or non-negative weights ``[N]``: the
            epoch's N indices are then drawn with replacement proportionally to them (XDC's
            balanced sampling). Called once per epoch when the order is drawn.
    """

    def __init__(
        self,
        num_items: int,
        files_per_batch: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        weights_fn: WeightsFn | None = None,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"EpochSampler: rank {rank} outside world size {world_size}")
        self.num_items = num_items
        self.files_per_batch = files_per_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.weights_fn = weights_fn
        self.epoch = 0
        self.start_batch = 0
        if self.batches_per_epoch < 1:
            raise ValueError(
                f"an epoch has {num_items} file visits, fewer than one global batch of {files_per_batch} files "
                f"x {world_size} rank(s): lower data.batch_size or add files"
            )

    @property
    def batches_per_epoch(self) -> int:
        return self.num_items // (self.files_per_batch * self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch; a new epoch starts from its first batch."""
        if epoch != self.epoch:
            self.epoch = epoch
            self.start_batch = 0

    def epoch_order(self, epoch: int) -> Tensor:
        """All ranks' order of epoch ``epoch``: ``[N]`` indices."""
        generator = seeded_generator(self.seed, epoch)
        weights = self.weights_fn() if self.weights_fn is not None else None
        if weights is None:
            return torch.randperm(self.num_items, generator=generator)
        weights = torch.as_tensor(weights, dtype=torch.float64).flatten()
        if weights.numel() != self.num_items or bool((weights < 0).any()) or not float(weights.sum()) > 0:
            raise ValueError(
                f"sample_weights(): expected {self.num_items} non-negative weights with a positive sum, "
                f"got shape {tuple(weights.shape)}"
            )
        return torch.multinomial(weights, self.num_items, replacement=True, generator=generator)

    def rank_indices(self, epoch: int) -> list[int]:
        used = self.batches_per_epoch * self.files_per_batch * self.world_size
        return self.epoch_order(epoch)[:used][self.rank :: self.world_size].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        indices = self.rank_indices(epoch)[self.start_batch * self.files_per_batch :]
        return iter([(epoch, index) for index in indices])

    def __len__(self) -> int:
        return self.batches_per_epoch * self.files_per_batch


class ResumableLoader:
    """Batches of one epoch for this rank; knows how many it has handed out (its data position).

    ``len()`` is the whole epoch's batch count, also when resuming mid-epoch: Lightning counts the
    batches already done itself. ``batch["skipped"]`` is removed here and added to ``skips``.
    """

    def __init__(
        self,
        dataset: PretrainingDataset,
        sampler: EpochSampler,
        num_workers: int,
        skips: SkipCounter,
        seed: int = 0,
        repeats: int = 1,
    ) -> None:
        self.sampler = sampler
        self.skips = skips
        self.batches_done = 0
        self.loader = DataLoader(
            EpochItems(dataset, repeats),
            batch_size=sampler.files_per_batch,
            sampler=sampler,
            num_workers=num_workers,
            collate_fn=collate_views,
            persistent_workers=num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            # Its own generator: starting an iterator must not consume the global RNG, or a
            # resumed run would draw different random numbers from an uninterrupted one.
            generator=seeded_generator(seed, 1),
        )

    def __len__(self) -> int:
        return self.sampler.batches_per_epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # A generator: the sampler draws the epoch's order only when the first batch is requested.
        self.batches_done = self.sampler.start_batch
        for batch in self.loader:
            self.skips.update(batch.pop("skipped", []))
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        if done >= self.sampler.batches_per_epoch:  # saved after the epoch's last batch
            epoch, done = epoch + 1, 0
        self.sampler.epoch, self.sampler.start_batch = epoch, done
        self.batches_done = done


class PretrainingData(L.LightningDataModule):
    """The training set of a run: a :class:`PretrainingDataset` and this rank's loader.

    Args:
        cfg: the ``data`` section of the config.
        manifest: the corpus.
        weights_fn: optional per-epoch sampling weights (``method.sample_weights``).
    """

    def __init__(self, cfg: DataConfig, manifest: Manifest, weights_fn: WeightsFn | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.manifest = manifest
        self.recipe = build_recipe(cfg)
        self.weights_fn = weights_fn
        self.skips = SkipCounter()
        self.store = DecodedClipStore() if cfg.cache_decoded else None
        self.dataset = self.make_dataset(self.recipe, cfg.clips_per_video)
        self.loader: ResumableLoader | None = None

    def make_dataset(self, recipe: ViewRecipe, clips_per_video: int) -> PretrainingDataset:
        return PretrainingDataset(
            self.manifest, recipe, clips_per_video, seed=self.cfg.seed, max_skips=self.cfg.max_skips,
            backend=self.cfg.decoder_backend, store=self.store,
        )

    def setup(self, stage: str) -> None:
        """Fill the decoded-clip store once per process, before any DataLoader worker forks."""
        if self.store is None or len(self.store) or self.store.failures:
            return
        recipe = self.recipe
        self.store.fill(
            ((self.manifest.resolve(row), self.dataset.media_info(i)) for i, row in enumerate(self.manifest)),
            short_side=recipe.decode_short_side,
            sample_rate=recipe.sample_rate if recipe.needs_audio else None,
            workers=max(self.cfg.num_workers, 1), backend=self.cfg.decoder_backend,
        )

    @property
    def num_items(self) -> int:
        return len(self.dataset)

    def _repeated(self, weights_fn: WeightsFn) -> WeightsFn:
        # Per-file weights [N] -> per-visit weights [N x repeats].
        def per_visit() -> Tensor | None:
            weights = weights_fn()
            return None if weights is None else torch.as_tensor(weights).flatten().repeat(self.cfg.repeats)

        return per_visit

    def train_dataloader(self) -> ResumableLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        visits = self.num_items * self.cfg.repeats
        weights_fn = self._repeated(self.weights_fn) if self.weights_fn is not None else None
        sampler = EpochSampler(visits, self.cfg.files_per_batch, self.cfg.seed, rank, world, weights_fn)
        self.loader = ResumableLoader(
            self.dataset, sampler, self.cfg.num_workers, self.skips, self.cfg.seed, self.cfg.repeats
        )
        return self.loader
