"""View recipes and the pretraining dataset on real mp4 files of the embedded corpus."""

from __future__ import annotations

import shutil

import pytest
import torch

from avssl.data.datasets import PretrainingDataset, SkipCounter, collate_views
from avssl.data.manifest import Manifest
from avssl.data.views import get_view_recipe, list_view_recipes

SMALL = (("size", 64),)
# (recipe, video view shapes [3, T, S, S] per view, audio view shapes [1, F, T] per view)
EXPECTED = {
    "avid": ([(3, 8, 64, 64)], [(1, 257, 200)]),
    "avssrl": ([(3, 16, 64, 64)], [(1, 128, 125)]),
    "avssrl_video_pair": ([(3, 16, 64, 64)] * 2, []),
    "crisscross": ([(3, 8, 64, 64)] * 2, [(1, 80, 201)] * 2),
    "xkd": ([(3, 32, 64, 64), (3, 8, 96, 96)], [(1, 80, 448), (1, 80, 112)]),
    "xdc": ([(3, 8, 64, 64)], [(1, 80, 201)]),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_recipe_is_covered():
    assert sorted(EXPECTED) == list_view_recipes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_views_have_the_method_shapes(tiny_corpus, name):
    manifest = Manifest.read(tiny_corpus)
    dataset = PretrainingDataset(manifest, get_view_recipe(name, video_augment_overrides=SMALL), clips_per_video=2)
    batch = collate_views([dataset[0], dataset[3]])
    video_shapes, audio_shapes = EXPECTED[name]
    assert [tuple(v.shape) for v in batch["video"]] == [(4, *s) for s in video_shapes]
    assert [tuple(a.shape) for a in batch["audio"]] == [(4, *s) for s in audio_shapes]
    assert batch["index"].tolist() == [0, 0, 3, 3]
    assert batch["skipped"] == []
    for view in batch["video"] + batch["audio"]:
        assert view.dtype == torch.float32 and torch.isfinite(view).all()
    # ImageNet-normalised frames are centred near zero, not in [0, 1].
    assert batch["video"][0].min() < 0


def test_draws_depend_only_on_seed_epoch_and_index(tiny_corpus):
    manifest = Manifest.read(tiny_corpus)
    recipe = get_view_recipe("crisscross", video_augment_overrides=SMALL)
    first, second = PretrainingDataset(manifest, recipe, seed=3), PretrainingDataset(manifest, recipe, seed=3)
    second[5]  # consuming another item first must not change item 2
    a, b = first[2], second[2]
    for x, y in zip(a["video"] + a["audio"], b["video"] + b["audio"]):
        assert torch.equal(x, y)
    second.set_epoch(1)
    assert not torch.equal(second[2]["video"][0], a["video"][0])


def test_two_clips_of_one_file_differ(tiny_corpus):
    manifest = Manifest.read(tiny_corpus)
    dataset = PretrainingDataset(manifest, get_view_recipe("avid", video_augment_overrides=SMALL), clips_per_video=2)
    item = dataset[1]
    assert not torch.equal(item["video"][0][0], item["video"][0][1])


def test_undecodable_files_are_skipped_counted_and_reported(tiny_corpus, tmp_path):
    manifest = Manifest.read(tiny_corpus)
    folder = tmp_path / "corpus"
    shutil.copytree(manifest.root, folder)
    good = folder / manifest[1].path
    (folder / manifest[0].path).write_bytes(b"not a video at all")
    good.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 50])  # truncated to 2%
    broken = Manifest(manifest.rows, folder)
    dataset = PretrainingDataset(broken, get_view_recipe("avid", video_augment_overrides=SMALL))
    item = dataset[0]
    # Item 0 moves on past the two broken files and returns the next good one.
    assert item["index"].tolist() == [2]
    assert [path for path, _ in item["skipped"]] == [str(folder / manifest[0].path), str(good)]
    counter = SkipCounter()
    counter.update(collate_views([item, dataset[1]])["skipped"])
    assert counter.total == 3 and len(counter.counts) == 2
    report = counter.report()
    assert "2 file(s) skipped (3 time(s))" in report and manifest[0].path.split("/")[-1] in report


def test_too_many_failures_in_a_row_raise_a_clear_error(tiny_corpus, tmp_path):
    manifest = Manifest.read(tiny_corpus)
    folder = tmp_path / "corpus"
    shutil.copytree(manifest.root, folder)
    for row in manifest:
        (folder / row.path).write_bytes(b"")
    dataset = PretrainingDataset(Manifest(manifest.rows, folder), get_view_recipe("avid"), max_skips=3)
    with pytest.raises(RuntimeError, match="4 files in a row from index 0 failed to decode"):
        dataset[0]


def test_audio_window_length_follows_the_recipe(tiny_corpus):
    # Changing the audio window in a config changes the spectrogram with it (XKD local view = 1/4).
    manifest = Manifest.read(tiny_corpus)
    recipe = get_view_recipe("xkd", video_seconds=2.0, audio_seconds=2.0, video_augment_overrides=SMALL)
    item = PretrainingDataset(manifest, recipe)[0]
    assert [tuple(a.shape) for a in item["audio"]] == [(1, 1, 80, 224), (1, 1, 80, 56)]
    assert tuple(item["video"][0].shape) == (1, 3, 16, 64, 64) and tuple(item["video"][1].shape) == (1, 3, 4, 96, 96)
