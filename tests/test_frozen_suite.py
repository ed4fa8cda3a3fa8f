"""Frozen-feature suite (probe, kNN, retrieval), shared-space heads, and the demo's figures."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from avssl.evaluate.frozen_suite import (
    FrozenFeatures,
    format_table,
    knn_accuracy,
    pairing_recall,
    probe_accuracy,
    shared_space_heads,
    suite_scores,
)
from avssl.methods.registry import create_method
from avssl.models.registry import create_encoder
from avssl.viz.plots import plot_embeddings, plot_loss_curve, read_metric_curves


def _blobs(n_per_class: int, num_classes: int, dim: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, dim)) * 5
    labels = np.repeat(np.arange(num_classes), n_per_class)
    return centres[labels] + spread * rng.normal(size=(len(labels), dim)), labels


def test_probe_and_knn_separate_blobs_and_fall_to_chance_on_noise():
    x, y = _blobs(30, 5, 16, spread=0.3)
    train = np.arange(len(y)) % 3 != 0
    assert probe_accuracy(x[train], y[train], x[~train], y[~train]) == 100.0
    assert knn_accuracy(x[train], y[train], x[~train], y[~train]) == 100.0
    noise = np.random.default_rng(1).normal(size=x.shape)
    assert probe_accuracy(noise[train], y[train], noise[~train], y[~train]) < 50.0
    assert knn_accuracy(noise[train], y[train], noise[~train], y[~train]) < 50.0


def test_suite_scores_cross_modal_retrieval_only_with_a_shared_space():
    x, y = _blobs(20, 4, 8, spread=0.2)
    train = np.arange(len(y)) % 2 == 0
    video = torch.tensor(x, dtype=torch.float32)
    audio = video + 0.01 * torch.randn_like(video)
    features = {"video": video, "audio": torch.tensor(np.random.default_rng(2).normal(size=x.shape), dtype=torch.float32)}
    shared = FrozenFeatures(features, {"video": video, "audio": audio}, y, train, np.arange(len(y)))
    scores = suite_scores(shared)
    assert scores["video_probe"] == 100.0 and scores["audio_probe"] < 60.0
    assert scores["a2v_r1"] == 100.0 and scores["v2a_r1"] == 100.0
    unshared = suite_scores(FrozenFeatures(features, {}, y, train, np.arange(len(y))))
    assert math.isnan(unshared["a2v_r1"]) and unshared["video_knn"] == scores["video_knn"]
    table = format_table({"m": scores, "none": unshared}, ("video_probe", "a2v_r1"))
    assert "| m | 100.0 | 100.0 |" in table and "| none | 100.0 | — |" in table
    with pytest.raises(ValueError, match="held-out"):
        suite_scores(FrozenFeatures(features, {}, y, np.ones(len(y), bool), np.arange(len(y))))


def test_pairing_recall_tells_memorised_training_pairs_from_learned_ones():
    rng = np.random.default_rng(3)
    n, dim = 40, 16
    train = np.arange(n) % 4 != 0  # 30 training clips, 10 held out
    video = torch.tensor(rng.normal(size=(n, dim)), dtype=torch.float32)
    audio = video + 0.05 * torch.randn_like(video)  # every audio next to its own clip's video
    held_out = np.flatnonzero(~train)
    memorised = audio.clone()
    memorised[held_out] = audio[np.roll(held_out, 1)]  # held-out audio lands on another clip
    labels, positions = np.zeros(n, int), np.arange(n)
    learned = pairing_recall(FrozenFeatures({}, {"video": video, "audio": audio}, labels, train, positions))
    assert learned == {"a2v_pair_r1_train": 100.0, "a2v_pair_r1_test": 100.0}
    scores = pairing_recall(FrozenFeatures({}, {"video": video, "audio": memorised}, labels, train, positions))
    assert scores == {"a2v_pair_r1_train": 100.0, "a2v_pair_r1_test": 0.0}
    none = pairing_recall(FrozenFeatures({}, {}, labels, train, positions))
    assert all(math.isnan(v) for v in none.values())


def test_shared_space_heads_name_the_projection_heads():
    video, audio = create_encoder("r2plus1d_small"), create_encoder("audio_resnet_small")
    xid = create_method("xid", video_encoder=video, audio_encoder=audio, num_items=8, proj_dims=[16, 8],
                        num_negatives=4)
    heads = shared_space_heads(xid)
    assert heads == {"video": xid.video_proj, "audio": xid.audio_proj}
    vicreg_v = create_method("vicreg_video", video_encoder=create_encoder("r2plus1d_small"), expander_dims=[8, 8])
    assert shared_space_heads(vicreg_v) is None  # no audio head: no shared space


def test_loss_curve_and_embedding_plots(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("epoch,step,train/loss,train/loss/a2v,lr\n0,4,2.0,1.0,\n0,9,1.5,0.7,\n0,9,,,0.1\n")
    curves = read_metric_curves(metrics)
    assert list(curves["train/loss"][0]) == [4, 9] and list(curves["train/loss/a2v"][1]) == [1.0, 0.7]
    assert plot_loss_curve(metrics, tmp_path / "loss.png", "t").stat().st_size > 1000
    x, y = _blobs(10, 3, 6, spread=0.5)
    out = plot_embeddings({"a": x, "b": -x}, y, ["c0", "c1", "c2"], tmp_path / "emb.png")
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="no 'train/loss'"):
        bad = tmp_path / "bad.csv"
        bad.write_text("epoch,step,lr\n0,1,0.1\n")
        read_metric_curves(bad)


def test_encoder_sets_that_read_alike_share_one_decoding_pass(tiny_corpus, monkeypatch, one_torch_thread):
    from avssl.data.manifest import Manifest
    from avssl.evaluate import frozen_suite
    from avssl.evaluate.middle_clip import ClipReader

    manifest = Manifest.read(tiny_corpus)
    paths = [manifest.resolve(row) for row in manifest][:6]
    labels, train = [0, 1, 0, 1, 0, 1], [True, True, True, False, False, False]
    torch.manual_seed(0)
    first = {"video": create_encoder("r2plus1d_small").eval(), "audio": create_encoder("audio_resnet_small").eval()}
    second = {"video": create_encoder("r2plus1d_small").eval(), "audio": create_encoder("audio_resnet_small").eval()}
    reads = []
    original_call = ClipReader.__call__
    monkeypatch.setattr(ClipReader, "__call__", lambda self, path: reads.append(path) or original_call(self, path))

    together, failed = frozen_suite.encode_files_together(paths, labels, train, [(first, None), (second, None)],
                                                          batch_size=4)
    assert failed == [] and len(reads) == len(paths)  # one read per file for both sets
    for encoders, frozen in zip((first, second), together):
        (alone,), _ = frozen_suite.encode_files_together(paths, labels, train, [(encoders, None)], batch_size=4)
        for modality in ("video", "audio"):
            torch.testing.assert_close(frozen.features[modality], alone.features[modality])
    assert not torch.allclose(together[0].features["video"], together[1].features["video"])

    other_audio = create_encoder("audio_resnet_small")
    other_audio.input_spec = dataclasses.replace(other_audio.input_spec, duration=other_audio.input_spec.duration + 1.0)
    with pytest.raises(ValueError, match="share modalities and input specs"):
        frozen_suite.encode_files_together(paths, labels, train, [(first, None), ({**first, "audio": other_audio}, None)])
