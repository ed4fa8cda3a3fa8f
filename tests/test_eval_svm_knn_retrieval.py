"""SVM, kNN, retrieval, AV fusion and metrics: formulas on small arrays, protocols end to end on real media."""

from __future__ import annotations

import numpy as np
import pytest

from avssl.evaluate import svm as svm_module
from avssl.evaluate.features import ExtractedFeatures
from avssl.evaluate.knn import knn_scores
from avssl.evaluate.metrics import (
    average_by_group,
    clip_and_video_accuracy,
    mean_average_precision,
    multilabel_metrics,
    topk_accuracy,
)
from avssl.evaluate.protocols import EncoderChoice, EvaluationContext, load_protocol, run_protocol
from avssl.evaluate.retrieval import check_cross_modal, recall_at_k
from avssl.evaluate.svm import fuse_features, select_c_heldout, svm_probe
from benchmark_layouts import UCF_FROM_VAS, esc50_from_fsdd, kinetics_from_vas, ucf101_from_videos


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blobs(rng, classes=3, groups_per_class=6, clips=4, dim=8, spread=0.3):
    """Clips ``[G·clips, dim]`` around one centre per class; clips of a group share a label."""
    centres = rng.normal(size=(classes, dim)) * 2
    labels = np.repeat(np.arange(classes), groups_per_class)
    x = np.concatenate([centres[c] + spread * rng.normal(size=(clips, dim)) for c in labels])
    return x, np.repeat(labels, clips), np.repeat(np.arange(len(labels)), clips)


# -- metrics ----------------------------------------------------------------------------------------


def test_topk_and_group_averaging():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    labels = np.array([1, 1, 0, 1])
    # rank of the label: higher scores, plus equal scores of lower class index (ties by index)
    ranks = [int((scores[i] > scores[i, labels[i]]).sum() + (scores[i, : labels[i]] == scores[i, labels[i]]).sum())
             for i in range(4)]  # 0, 1, 2, 2
    acc = topk_accuracy(scores, labels, (1, 2, 3))
    assert acc == {k: 100.0 * np.mean([r < k for r in ranks]) for k in (1, 2, 3)}
    ids, mean = average_by_group(scores, np.array([7, 3, 7, 3]), softmax=True)
    soft = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    assert ids.tolist() == [3, 7]
    np.testing.assert_allclose(mean, [(soft[1] + soft[3]) / 2, (soft[0] + soft[2]) / 2])
    clip_labels = np.array([1, 1, 0, 0])
    both = clip_and_video_accuracy(scores, np.array([0, 0, 1, 1]), clip_labels, softmax=False, ks=(1,))
    video_pred = [scores[:2].mean(0).argmax(), scores[2:].mean(0).argmax()]  # 1, 2
    assert both == {"clip_top1": 100 * np.mean(scores.argmax(1) == clip_labels),
                    "video_top1": 100 * np.mean(np.array(video_pred) == [1, 0])}


def test_mean_average_precision_against_definition():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(30, 5))
    targets = (rng.random((30, 5)) < 0.3).astype(int)
    targets[:, 4] = 0  # a class without positives is left out

    def average_precision(score, target):
        order = np.argsort(-score)
        hits = target[order]
        precision_at_hit = np.cumsum(hits)[hits == 1] / (np.flatnonzero(hits) + 1)
        return precision_at_hit.mean()

    expected = 100 * np.mean([average_precision(scores[:, c], targets[:, c]) for c in range(4)])
    assert mean_average_precision(scores, targets) == pytest.approx(expected)
    metrics = multilabel_metrics(scores, targets)
    assert metrics["mAP"] == pytest.approx(expected) and 0 <= metrics["AUC"] <= 100


# -- SVM ----------------------------------------------------------------------------------------------


def test_svm_paper_mode_reports_the_best_c_on_test():
    rng = np.random.default_rng(1)
    x, y, g = blobs(rng)
    tx, ty, tg = blobs(rng, spread=1.5)
    outcome = svm_probe(x, y, g, tx, ty, tg, cs=[1e-4, 1e-2, 1.0], num_classes=3, selection="test")
    assert outcome.top1 == max(outcome.accuracy_by_c.values()) == outcome.accuracy_by_c[outcome.chosen_c]
    assert set(outcome.accuracy_by_c) == {1e-4, 1e-2, 1.0} and outcome.top5 == 100.0


def test_svm_heldout_selection_never_splits_a_video(monkeypatch):
    rng = np.random.default_rng(2)
    x, y, g = blobs(rng, groups_per_class=4)
    x = np.concatenate([g[:, None].astype(float), x], axis=1)  # column 0 carries the video id
    seen: list[tuple[set, set]] = []
    fit, score = svm_module.fit_linear_svm, svm_module.video_decision_scores

    def recording_fit(features, *args, **kwargs):
        seen.append((set(features[:, 0].tolist()), set()))
        return fit(features, *args, **kwargs)

    def recording_score(model, features, groups, num_classes):
        seen[-1][1].update(features[:, 0].tolist())
        return score(model, features, groups, num_classes)

    monkeypatch.setattr(svm_module, "fit_linear_svm", recording_fit)
    monkeypatch.setattr(svm_module, "video_decision_scores", recording_score)
    best, by_c, _ = select_c_heldout(x, y, g, [0.01, 1.0], num_classes=3, n_splits=3)
    assert len(seen) == 6 and best in by_c
    for train_videos, validation_videos in seen:
        assert validation_videos and not train_videos & validation_videos


def test_decision_values_are_averaged_over_clips():
    rng = np.random.default_rng(3)
    x, y, g = blobs(rng, classes=4)
    model, _ = svm_module.fit_linear_svm(x, y, c=1.0)
    ids, scores = svm_module.video_decision_scores(model, x, g, num_classes=5)
    decision = model.decision_function(x)
    np.testing.assert_allclose(scores[:, :4], [decision[g == i].mean(0) for i in ids])
    assert np.isneginf(scores[:, 4]).all()  # a class absent from training is never predicted


# -- kNN, retrieval, fusion ---------------------------------------------------------------------------


def test_knn_against_brute_force():
    rng = np.random.default_rng(4)
    train, labels, test = rng.normal(size=(20, 6)), rng.integers(0, 3, 20), rng.normal(size=(5, 6))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    similarity = unit(test) @ unit(train).T
    for temperature in (None, 0.1):
        expected = np.zeros((5, 3))
        for i in range(5):
            for j in np.argsort(-similarity[i])[:4]:
                expected[i, labels[j]] += 1 if temperature is None else np.exp(similarity[i, j] / temperature)
        got = knn_scores(train, labels, test, 3, k=4, temperature=temperature)
        np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_recall_at_k_against_definition():
    rng = np.random.default_rng(5)
    queries, q_labels = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    gallery, g_labels = rng.normal(size=(15, 4)), rng.integers(0, 3, 15)
    distance = np.linalg.norm(queries[:, None] - gallery[None], axis=2)
    for k in (1, 5):
        hit = [q_labels[i] in g_labels[np.argsort(distance[i], kind="stable")[:k]] for i in range(8)]
        assert recall_at_k(queries, q_labels, gallery, g_labels, ks=(k,))[f"R@{k}"] == pytest.approx(100 * np.mean(hit))
    everything = recall_at_k(queries, q_labels, gallery, g_labels, ks=(15,))["R@15"]
    assert everything == 100 * np.isin(q_labels, g_labels).mean()


def test_cross_modal_needs_a_shared_space():
    with pytest.raises(ValueError, match="share no embedding space"):
        check_cross_modal("r2plus1d_18_avssrl", "audio_conv2d10_avssrl", 512, 512)
    with pytest.warns(UserWarning, match="not meaningful"):
        check_cross_modal("r2plus1d_18_avssrl", "audio_conv2d10_avssrl", 512, 512, force=True)
    with pytest.raises(ValueError, match="cannot be compared"):
        check_cross_modal("r2plus1d_small", "audio_conv2d10_avssrl", 128, 512, force=True)


def test_fusion_concatenates_per_clip_features():
    views = np.arange(3 * 6 * 2, dtype=float).reshape(3, 6, 2)  # 3 files, 2 clips × 3 crops, 2-d
    video = ExtractedFeatures(np.array([4, 5, 6]), views, [[0], [1], [0]], 3)
    audio = ExtractedFeatures(np.array([6, 4]), np.ones((2, 2, 3)), [[0], [0]], 1, [("x.mp4", "no audio")])
    fused = fuse_features(video, audio)
    assert fused.rows.tolist() == [4, 6] and fused.views.shape == (2, 2, 5) and fused.failed == [("x.mp4", "no audio")]
    np.testing.assert_allclose(fused.views[0, 1, :2], video.views[0, 3:6].mean(0))


# -- protocols end to end on real media ---------------------------------------------------------------


@pytest.fixture(scope="module")
def esc50_root(shared_data, tmp_path_factory):
    return esc50_from_fsdd(shared_data, tmp_path_factory.mktemp("esc") / "ESC-50", takes=5,
                           speakers=("george", "jackson", "lucas"))


def context(encoders, root, folds=None, **kwargs):
    return EvaluationContext([EncoderChoice(e) for e in encoders], root, folds=folds, progress=False,
                             batch_size=64, **kwargs)


ESC_SMALL = {"clip.seconds": 1.0, "train.clips": 2, "test.clips": 2, "svm.c": [1e-4, 1e-2, 1.0]}


def test_esc50_crisscross_svm_paper_mode(esc50_root):
    preset = load_protocol("esc50/crisscross_svm_2s").with_overrides(ESC_SMALL)
    result = run_protocol(preset, context(["audio_resnet_small"], esc50_root, folds=[1, 2]))
    assert [f.fold for f in result.folds] == [1, 2] and result.preset.selection == "test"
    for fold in result.folds:
        extras = fold.extras
        assert fold.metrics["top1"] == max(extras["top1_by_C"].values())
        assert extras["feature_dim"] == 128 * 3 * 1  # conv5x [128, 3, 4] -> max-pool (1,3)/(1,2) -> [128, 3, 1]
        assert extras["test_files"] == 30 and extras["train_clips"] == 2 * 120
        assert 0 <= fold.metrics["top1"] <= fold.metrics["top5"] <= 100


def test_esc50_heldout_svm_and_knn(esc50_root):
    small = {"train.clips": 2, "test.clips": 2, "svm.c": [0.01, 1.0]}
    heldout = load_protocol("esc50/avssl-v1_svm").with_overrides(small)
    result = run_protocol(heldout, context(["audio_resnet_small"], esc50_root, folds=[3]))
    fold = result.folds[0]
    assert fold.extras["selection"] == "heldout" and fold.extras["C"] in (0.01, 1.0)
    assert set(fold.extras["top1_by_C"]) == {0.01, 1.0}  # cross-validated, not test, accuracies
    knn = run_protocol(load_protocol("esc50/avssl-v1_knn").with_overrides({"test.clips": 2}),
                       context(["audio_resnet_small"], esc50_root, folds=[1, 2]))
    assert [f.extras["test_files"] for f in knn.folds] == [30, 30]
    assert all(0 <= f.metrics["top1"] <= 100 for f in knn.folds)


def test_kinetics_sound_av_fusion(shared_data, tmp_path):
    root = kinetics_from_vas(shared_data, tmp_path / "k400")
    small_video = {"video.clip.frames": 8, "video.clip.fps": 16.0, "video.clip.decode_short_side": 73,
                   "video.clip.transform_overrides.size": 64, "video.train.clips": 2, "video.test.clips": 2}
    small_audio = {"audio.clip.seconds": 1.0, "audio.train.clips": 2, "audio.test.clips": 2}
    preset = load_protocol("kinetics_sound/xkd_av_svm").with_overrides({**small_video, **small_audio})
    result = run_protocol(preset, context(["r2plus1d_small", "audio_resnet_small"], root))
    fold = result.folds[0]
    assert fold.fold is None and fold.extras["feature_dim"] == 128 + 128
    assert fold.extras["test_files"] == 3 and fold.extras["train_clips"] == 2 * 7
    assert 0 <= fold.metrics["top1"] <= 100


def test_ucf101_retrieval_refuses_cross_modal_unless_forced(shared_data, tmp_path):
    root = ucf101_from_videos(shared_data, tmp_path / "UCF101", clips=UCF_FROM_VAS, folder="vas")
    small = {"video.clip.frames": 8, "video.clip.decode_short_side": 73, "video.clip.transform_overrides.size": 64,
             "video.test.clips": 2, "audio.test.clips": 2, "modes": ["v2v", "a2a", "v2a"]}
    preset = load_protocol("ucf101/avssrl_retrieval").with_overrides(small)
    encoders = ["r2plus1d_small", "audio_resnet_small"]
    with pytest.raises(ValueError, match="share no embedding space"):
        run_protocol(preset, context(encoders, root))
    with pytest.warns(UserWarning, match="not meaningful"):
        result = run_protocol(preset.with_overrides({"audio.clip.seconds": 1.0}), context(encoders, root, force=True))
    fold = result.folds[0]
    assert fold.extras["queries"] == 3 and fold.extras["gallery"] == 7  # split 1: groups 1–7 test
    for mode in ("v2v", "a2a", "v2a"):
        assert fold.metrics[f"{mode}_R@1"] <= fold.metrics[f"{mode}_R@5"] <= 100
