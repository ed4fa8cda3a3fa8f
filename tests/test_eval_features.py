"""Multi-clip feature extraction on real media: dense windows, feature ops, cache, bad files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avssl.data.benchmarks import load_benchmark
from avssl.data.labelled import ClipSpec, LabelledClips, collate_clips
from avssl.evaluate import features as features_module
from avssl.evaluate.features import FeatureOp, extract_features, load_frozen_encoder
from avssl.media import decode
from avssl.media.spectrogram import Spectrogram, get_preset
from benchmark_layouts import esc50_from_fsdd, ucf101_from_videos


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def esc50(shared_data, tmp_path_factory):
    root = esc50_from_fsdd(shared_data, tmp_path_factory.mktemp("esc") / "ESC-50", takes=1,
                           speakers=("george", "jackson"))
    return load_benchmark("esc50", root)


@pytest.fixture(scope="module")
def audio_encoder():
    return load_frozen_encoder("audio_resnet_small", None, seed=0)


def test_feature_op_conv5x_as_crisscross(audio_encoder):
    x = torch.randn(3, 1, 80, 201)
    op = FeatureOp.from_params({"map": "conv5x", "max_pool": [[1, 3], [1, 2]], "normalize": "last_axis"})
    with torch.no_grad():
        got = op(audio_encoder, x)
        conv5x = audio_encoder.forward_features(x)["conv5x"]  # [3, 128, 3, 7]
    pooled = F.max_pool2d(conv5x, kernel_size=(1, 3), stride=(1, 2))  # [3, 128, 3, 3]
    # L2 along the last (time) axis of each row; all-zero rows (ReLU) stay zero as in F.normalize
    expected = (pooled / pooled.norm(dim=-1, keepdim=True).clamp_min(1e-12)).reshape(3, -1)
    assert got.shape == (3, 128 * 3 * 3)
    torch.testing.assert_close(got, expected)
    with torch.no_grad():
        torch.testing.assert_close(FeatureOp()(audio_encoder, x), audio_encoder(x))
        assert torch.allclose(FeatureOp(normalize="vector")(audio_encoder, x).norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="unknown key"):
        FeatureOp.from_params({"map": "conv5x", "pool": 2})
    with pytest.raises(KeyError, match="no map 'conv9x'"):
        FeatureOp("conv9x")(audio_encoder, x)


def test_dense_test_clips_match_the_formula(esc50, audio_encoder):
    spec = ClipSpec.for_encoder(audio_encoder, "test", seconds=0.1)  # every FSDD clip is longer
    dataset = LabelledClips(esc50, [0, 1], spec, "test", clips_per_video=4)
    path = str(esc50.path_of(0))
    info = decode.probe(path, count_frames=False)
    windows = dataset.windows(info, np.random.default_rng(0))
    last = info.audio_end - info.audio_start - 0.1
    assert [round(w.start, 9) for w in windows] == [round(info.audio_start + last * i / 3, 9) for i in range(4)]
    item = dataset[0]
    waves = torch.stack(decode.read_audio(path, windows, 16000))
    expected = Spectrogram(get_preset("crisscross", clip_seconds=0.1))(waves)
    assert item["error"] is None and item["label"] == esc50.labels_of(0)
    torch.testing.assert_close(item["clips"], expected)
    truncated = LabelledClips(esc50, [0], ClipSpec.for_encoder(audio_encoder, "test", seconds=0.1, span_seconds=0.12),
                              "test", clips_per_video=3)
    starts = [w.start for w in truncated.windows(info, np.random.default_rng(0))]
    np.testing.assert_allclose(starts, info.audio_start + np.linspace(0.0, 0.02, 3), atol=1e-12)


def test_training_clips_depend_on_seed_epoch_and_row_only(esc50, audio_encoder):
    # 0.5 s: CrissCross's time warp needs at least 41 spectrogram frames; short clips are zero-padded
    spec = ClipSpec.for_encoder(audio_encoder, "train", seconds=0.5, transform="crisscross_svm_audio")
    full = LabelledClips(esc50, [0, 1, 2], spec, "train", clips_per_video=2, seed=3)
    subset = LabelledClips(esc50, [2], spec, "train", clips_per_video=2, seed=3)
    torch.testing.assert_close(full[2]["clips"], subset[0]["clips"])
    other_seed = LabelledClips(esc50, [2], spec, "train", clips_per_video=2, seed=4)
    assert not torch.allclose(subset[0]["clips"], other_seed[0]["clips"])
    subset.set_epoch(1)
    assert not torch.allclose(full[2]["clips"], subset[0]["clips"])


def test_video_clips_single_and_three_crops(shared_data, tmp_path):
    data = load_benchmark("ucf101", ucf101_from_videos(shared_data, tmp_path / "UCF101"))
    encoder = load_frozen_encoder("r2plus1d_small", None)
    one = LabelledClips(data, [0], ClipSpec.for_encoder(encoder, "test"), "test", clips_per_video=2)
    three = LabelledClips(data, [0], ClipSpec.for_encoder(encoder, "test", transform="eval_video_three_crop",
                                                            transform_overrides={"size": 64, "resize": 64}),
                          "test", clips_per_video=2)
    a, b = one[0]["clips"], three[0]["clips"]
    assert a.shape == (2, 3, 8, 64, 64) and b.shape == (6, 3, 8, 64, 64) and three.views_per_clip == 3
    batch = collate_clips([one[0], three[0]])
    assert batch["clips"].shape[0] == 8 and batch["group"].tolist() == [0, 0, 1, 1, 1, 1, 1, 1]
    features = extract_features(encoder, three, progress=False)
    assert features.views.shape == (1, 6, 128) and features.per_clip().shape == (1, 2, 128)
    np.testing.assert_allclose(features.per_clip()[0, 1], features.views[0, 3:6].mean(0), rtol=1e-6)


def test_batching_does_not_change_features(esc50, audio_encoder):
    dataset = LabelledClips(esc50, list(range(6)), ClipSpec.for_encoder(audio_encoder, "test", seconds=0.5),
                            "test", clips_per_video=3)
    small = extract_features(audio_encoder, dataset, batch_size=1, progress=False)
    large = extract_features(audio_encoder, dataset, batch_size=64, progress=False)
    np.testing.assert_allclose(small.views, large.views, rtol=1e-5, atol=1e-6)
    assert small.views.shape == (6, 3, 128) and small.mean().shape == (6, 128)
    flat, group = small.flat()
    assert flat.shape == (18, 128) and group.tolist() == [g for g in range(6) for _ in range(3)]
    assert small.rows.tolist() == list(range(6)) and small.labels == [esc50.labels_of(r) for r in range(6)]


def test_cache_resumes_without_decoding(esc50, audio_encoder, tmp_path, monkeypatch):
    dataset = LabelledClips(esc50, list(range(5)), ClipSpec.for_encoder(audio_encoder, "train", seconds=0.5,
                            transform="crisscross_svm_audio"), "train", clips_per_video=2, seed=1)
    first = extract_features(audio_encoder, dataset, cache_dir=tmp_path / "cache", progress=False)
    (tmp_path / "cache" / "3.npy").unlink()  # as if the run had stopped before file 3
    decoded = []
    real_read_audio = decode.read_audio
    def counting_read_audio(path, *args, **kwargs):
        decoded.append(path)
        return real_read_audio(path, *args, **kwargs)

    monkeypatch.setattr(decode, "read_audio", counting_read_audio)
    second = extract_features(audio_encoder, dataset, cache_dir=tmp_path / "cache", progress=False)
    assert decoded == [str(esc50.path_of(3))]  # only the missing file was read again
    np.testing.assert_allclose(first.views, second.views, rtol=1e-6)


def test_file_without_the_stream_is_skipped_and_reported(shared_data, tmp_path, audio_encoder, caplog):
    # The UCF101-format layout of videos/: most clips have no sound; audio features skip them.
    data = load_benchmark("ucf101", ucf101_from_videos(shared_data, tmp_path / "UCF101"))
    silent = [r for r in range(len(data.manifest)) if not data.manifest[r].has_audio]
    assert silent and len(silent) < len(data.manifest)
    dataset = LabelledClips(data, list(range(len(data.manifest))), ClipSpec.for_encoder(audio_encoder, "test"),
                            "test", clips_per_video=1)
    with caplog.at_level(logging.WARNING):
        features = extract_features(audio_encoder, dataset, progress=False, description="sound test")
    assert sorted(set(range(len(data.manifest))) - set(features.rows.tolist())) == silent
    assert sorted(p for p, _ in features.failed) == sorted(str(data.path_of(r)) for r in silent)
    assert all("no audio stream" in why for _, why in features.failed)
    assert f"sound test: {len(silent)} of {len(data.manifest)} files could not be read" in caplog.text


def test_clip_spec_for_encoder_reads_input_spec(audio_encoder):
    video = load_frozen_encoder("r2plus1d_small", None)
    spec = ClipSpec.for_encoder(video, "test")
    assert (spec.frames, spec.fps, spec.transform_overrides["size"]) == (8, 16.0, 64)
    assert spec.video_seconds(None) == 0.5
    audio = ClipSpec.for_encoder(audio_encoder, "train", transform="crisscross_svm_audio")
    assert (audio.seconds, audio.sample_rate, audio.spectrogram) == (1.0, 16000, "crisscross")
    with pytest.raises(ValueError, match="unknown key"):
        features_module.clip_spec_from_params(audio_encoder, {"clip": {"secs": 2}}, "test")
