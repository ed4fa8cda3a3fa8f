"""Canonical correlation analysis (avssl.evaluate.cca): known shared signals are found, noise is not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avssl.evaluate.cca import fit_cca, null_correlations, shared_signal_scores
from avssl.evaluate.frozen_suite import FrozenFeatures


def _views(n: int, shared_strength: float, items_seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two feature sets that share one latent ``z [n]`` (in one mixed direction each), plus noise;
    the mixing is the same for every ``items_seed``."""
    structure = np.random.default_rng(100)
    mixing, direction = 0.3 * structure.normal(size=(8, 8)), structure.normal(size=6)
    rng = np.random.default_rng(items_seed)
    z = rng.normal(size=n)
    x = rng.normal(size=(n, 8)) @ mixing  # correlated noise dimensions
    y = rng.normal(size=(n, 6))
    x[:, 2] += shared_strength * z
    y += shared_strength * np.outer(z, direction) / 2
    return x, y, z


def test_cca_recovers_the_shared_latent_and_its_correlation():
    x, y, z = _views(4000, shared_strength=3.0)
    pairs = fit_cca(x, y)
    assert pairs.correlations.shape == (6,)
    assert np.all(np.diff(pairs.correlations) <= 1e-12)  # descending
    assert pairs.correlations[0] > 0.9 and pairs.correlations[1] < 0.1
    # The first canonical variates of new items follow the latent, on both sides.
    x_new, y_new, z_new = _views(500, shared_strength=3.0, items_seed=1)
    for variate in (pairs.project_x(x_new, 1)[:, 0], pairs.project_y(y_new, 1)[:, 0]):
        assert abs(np.corrcoef(variate, z_new)[0, 1]) > 0.9
    # Fitting items: the variates are unit-variance and their correlation is the reported one.
    u, w = pairs.project_x(x, 1)[:, 0], pairs.project_y(y, 1)[:, 0]
    assert np.std(u, ddof=1) == pytest.approx(1.0, abs=0.01)
    assert np.corrcoef(u, w)[0, 1] == pytest.approx(pairs.correlations[0], abs=0.01)


def test_null_level_matches_independent_views_and_sits_below_a_real_share():
    x, y, _ = _views(600, shared_strength=0.0)
    independent = fit_cca(x, y).correlations
    null = null_correlations(x, y)
    expected = np.sqrt(8 / 600) + np.sqrt(6 / 600)  # finite-sample level of the largest correlation
    assert independent[0] < 1.5 * expected and null[0] < 1.5 * expected
    x, y, _ = _views(600, shared_strength=1.0)
    assert fit_cca(x, y).correlations[0] > 2 * null_correlations(x, y)[0]


def test_constant_dimensions_do_not_fake_a_correlation_and_bad_shapes_are_refused():
    x, y, _ = _views(300, shared_strength=0.0)
    x[:, 0], y[:, 0] = 1.0, 1.0  # dead ReLU units: the same value for every item
    assert fit_cca(x, y).correlations[0] < 0.5
    with pytest.raises(ValueError, match="same N"):
        fit_cca(x, y[:10])
    with pytest.raises(ValueError, match="at least 3 items"):
        fit_cca(x[:2], y[:2])


def _frozen(video: np.ndarray, audio: np.ndarray, labels: np.ndarray) -> FrozenFeatures:
    train = np.arange(len(labels)) % 4 != 0
    tensors = {"video": torch.from_numpy(video).float(), "audio": torch.from_numpy(audio).float()}
    return FrozenFeatures(tensors, {}, labels, train, np.arange(len(labels)))


def test_shared_signal_scores_find_a_shared_class_and_not_a_private_one():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 120)
    centres_video, centres_audio = rng.normal(size=(5, 12)), rng.normal(size=(5, 10))
    video = 2 * centres_video[labels] + rng.normal(size=(600, 12))
    audio = 2 * centres_audio[labels] + rng.normal(size=(600, 10))
    shared = shared_signal_scores(_frozen(video, audio, labels), components=(4,))
    assert shared["av_cc1"] > 0.8 > 0.4 > shared["av_cc1_null"]
    assert shared["video_probe_cca4"] > 90 and shared["audio_probe_cca4"] > 90 and shared["a2v_r1_cca4"] > 80
    # The audio's classes drawn independently of the video's: each modality knows a class, but
    # not the same one, so CCA finds nothing and the canonical variates carry no class.
    private = shared_signal_scores(_frozen(video, audio[rng.permutation(600)], labels), components=(4,))
    assert private["av_cc1"] < 0.4 and private["a2v_r1_cca4"] < 40
    with pytest.raises(ValueError, match="needs video and audio"):
        shared_signal_scores(FrozenFeatures({"video": torch.zeros(4, 2)}, {}, labels[:4], np.ones(4, bool), np.arange(4)))
