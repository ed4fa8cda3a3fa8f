"""The in-memory decoded clip store reads the same frames and samples as the decoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avssl.data.clip_store import DecodedClipStore
from avssl.data.datasets import PretrainingDataset, collate_views
from avssl.data.manifest import Manifest
from avssl.data.views import get_view_recipe
from avssl.media import decode


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    manifest = Manifest.read(tiny_corpus)
    return manifest, [(manifest.resolve(row), decode.probe(manifest.resolve(row), count_frames=False))
                      for row in list(manifest)[:4]]


def test_store_reads_the_decoders_frames_and_samples(corpus):
    _, items = corpus
    store = DecodedClipStore().fill(items, short_side=72, sample_rate=24000, progress=False)
    assert len(store) == 4 and not store.failures
    rng = np.random.default_rng(0)
    for path, info in items:
        # Windows inside, straddling the start and running past the end of the streams.
        windows = [(float(s), float(d)) for s, d in zip(rng.uniform(-0.4, info.duration, 6), rng.uniform(0.1, 1.5, 6))]
        for fps in (16.0, 8.0, 30.0):
            direct = decode.read_video(path, windows, fps, info=info, short_side=72)
            stored = store.read_video(path, windows, fps, info=info, short_side=72)
            for a, b in zip(direct, stored):
                assert a.shape == b.shape and torch.equal(a, b)
        direct = decode.read_audio(path, windows, 24000, info=info)
        stored = store.read_audio(path, windows, 24000, info=info)
        for (start, _), a, b in zip(windows, direct, stored):
            assert a.shape == b.shape
            # Identical except in the resampler's tail at the very end of the stream, where a read
            # that stops there and the whole-stream read flush the filter differently.
            times = start + torch.arange(a.shape[0]) / 24000
            inside = times < info.audio_end - 0.02
            assert not inside.any() or float((a - b)[inside].abs().max()) < 1e-5
            assert float((a - b).abs().max()) < 0.02


def test_store_refuses_another_size_or_rate_and_records_failures(corpus, tmp_path):
    _, items = corpus
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    path, info = items[0]
    store = DecodedClipStore().fill([items[0], (bad, info)], short_side=72, sample_rate=16000, progress=False)
    assert str(bad) in store.failures and bad not in store
    with pytest.raises(ValueError, match="short side 72"):
        store.read_video(path, [(0.0, 0.5)], 16.0, short_side=128)
    with pytest.raises(ValueError, match="16000 Hz"):
        store.read_audio(path, [(0.0, 0.5)], 24000)


def test_dataset_views_are_the_same_from_memory_and_labels_are_class_indices(corpus):
    manifest, items = corpus
    subset = manifest.with_rows(list(manifest)[:4])
    recipe = get_view_recipe("crisscross", decode_short_side=72, video_augment_overrides=(("size", 64),))
    store = DecodedClipStore().fill(items, short_side=72, sample_rate=recipe.sample_rate, progress=False)
    from_disk = PretrainingDataset(subset, recipe, clips_per_video=2, seed=3)
    from_memory = PretrainingDataset(subset, recipe, clips_per_video=2, seed=3, store=store)
    batch_disk = collate_views([from_disk[i] for i in range(4)])
    batch_memory = collate_views([from_memory[i] for i in range(4)])
    for a, b in zip(batch_disk["video"], batch_memory["video"]):
        assert torch.allclose(a, b, atol=1e-6)
    for a, b in zip(batch_disk["audio"], batch_memory["audio"]):
        # Only spectrogram frames that reach the last ~20 ms of a stream may differ (see above).
        assert float(((a - b).abs() > 1e-4).float().mean()) < 0.02
    classes = manifest.labels()
    expected = [classes.index(subset[i].label) for i in range(4) for _ in range(2)]
    assert batch_memory["label"].tolist() == expected
