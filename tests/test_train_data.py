"""Epoch-seeded, rank-sharded, resumable data order (avssl/train/data.py) and config-driven recipes."""

from __future__ import annotations

import pytest
import torch

from avssl.data.datasets import SkipCounter
from avssl.train.config import DataConfig
from avssl.train.data import EpochItems, EpochSampler, ResumableLoader, build_recipe


def _batches(sampler: EpochSampler) -> list[list[int]]:
    indices = [index for _, index in sampler]
    size = sampler.files_per_batch
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def test_epoch_order_is_seeded_and_changes_with_the_epoch():
    a, b = EpochSampler(20, 4, seed=3), EpochSampler(20, 4, seed=3)
    assert [i for _, i in a] == [i for _, i in b]
    assert sorted(i for _, i in a) == list(range(20))
    first = [i for _, i in a]
    a.set_epoch(1)
    assert [i for _, i in a] != first and all(e == 1 for e, _ in a)
    assert [i for _, i in EpochSampler(20, 4, seed=4)] != first


def test_ranks_take_disjoint_interleaved_shards_and_drop_the_tail():
    n, per_batch, world = 23, 2, 3
    full_order = EpochSampler(n, per_batch, seed=0).epoch_order(0).tolist()
    shards = [[i for _, i in EpochSampler(n, per_batch, seed=0, rank=r, world_size=world)] for r in range(world)]
    used = (n // (per_batch * world)) * per_batch * world  # 18: the 5 that cannot fill a global batch are dropped
    assert all(len(s) == used // world for s in shards)
    for rank, shard in enumerate(shards):
        assert shard == full_order[:used][rank::world]  # DistributedSampler's rule
    assert len({i for s in shards for i in s}) == used
    assert EpochSampler(n, per_batch, rank=1, world_size=world).batches_per_epoch == 3


def test_resume_position_skips_the_batches_already_done():
    sampler = EpochSampler(12, 3, seed=1)
    sampler.set_epoch(2)
    whole = _batches(sampler)
    loader = ResumableLoader.__new__(ResumableLoader)  # only the position logic, no DataLoader
    loader.sampler, loader.batches_done = sampler, 0
    loader.load_state_dict({"epoch": 2, "batches_done": 1})
    assert (sampler.epoch, sampler.start_batch) == (2, 1)
    assert _batches(sampler) == whole[1:]
    sampler.set_epoch(2)  # Lightning repeats the current epoch: the position stays
    assert _batches(sampler) == whole[1:]
    sampler.set_epoch(3)  # a new epoch starts at its first batch
    assert sampler.start_batch == 0 and len(_batches(sampler)) == 4
    loader.load_state_dict({"epoch": 3, "batches_done": 4})  # saved after the epoch's last batch
    assert (sampler.epoch, sampler.start_batch) == (4, 0)


def test_weighted_epochs_draw_with_replacement_from_the_weights():
    weights = torch.tensor([0.0, 1.0, 0.0, 3.0] * 50)
    sampler = EpochSampler(200, 10, seed=0, weights_fn=lambda: weights)
    drawn = torch.tensor([i for _, i in sampler])
    assert set(drawn.tolist()) <= {i for i in range(200) if weights[i] > 0}
    share = (weights[drawn] == 3.0).float().mean().item()
    assert share == pytest.approx(0.75, abs=0.1)
    bad = EpochSampler(200, 10, weights_fn=lambda: torch.ones(5))
    with pytest.raises(ValueError, match="expected 200 non-negative weights"):
        list(bad)


def test_too_few_files_for_one_global_batch_is_reported():
    with pytest.raises(ValueError, match="fewer than one global batch"):
        EpochSampler(5, 4, rank=0, world_size=2)


class _Draws:
    """A dataset stand-in recording the epoch each item was drawn in."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[int, int]:
        return index, self.epoch


def test_repeated_visits_read_each_file_with_their_own_draws():
    items = EpochItems(_Draws(4), repeats=3)
    assert len(items) == 12
    # Visit v of epoch e reads file v mod 4 with the draws of dataset epoch 3e + v div 4.
    assert [items[(2, v)] for v in (0, 5, 11)] == [(0, 6), (1, 7), (3, 8)]


def test_build_recipe_applies_overrides_and_names_bad_fields():
    cfg = DataConfig(
        manifest="m.csv", recipe="xkd", recipe_overrides={"video_seconds": 2.0},
        video_augment_overrides={"size": 64}, local_video_augment_overrides={"size": 48},
        audio_augment_overrides={"gain": [0.9, 1.1]},
    )
    recipe = build_recipe(cfg)
    assert recipe.video_seconds == 2.0
    assert dict(recipe.video_augment_overrides)["size"] == 64
    assert dict(recipe.local_video_augment_overrides)["size"] == 48
    assert dict(recipe.audio.augment_overrides)["gain"] == (0.9, 1.1)
    with pytest.raises(ValueError, match=r"data.recipe_overrides: unknown ViewRecipe fields \['crop'\]"):
        build_recipe(DataConfig(manifest="m.csv", recipe="avid", recipe_overrides={"crop": 3}))
    with pytest.raises(ValueError, match="recipe 'avid' has no local video views"):
        build_recipe(DataConfig(manifest="m.csv", recipe="avid", local_video_augment_overrides={"size": 3}))


def test_skip_counter_is_fed_from_batches():
    counter = SkipCounter()
    loader = ResumableLoader.__new__(ResumableLoader)
    loader.sampler = EpochSampler(2, 1)
    loader.skips, loader.loader = counter, [{"index": torch.tensor([0]), "skipped": [("bad.mp4", "DecodeError: x")]}]
    batches = list(loader)
    assert "skipped" not in batches[0] and counter.total == 1 and loader.state_dict() == {"epoch": 0, "batches_done": 1}
