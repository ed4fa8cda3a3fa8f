"""Canonical correlation analysis between two frozen feature sets (e.g. a clip's audio and video).

A cross-modal objective (xID, XDC, CrissCross, VICReg) can only amplify what the two encoders'
features already share. Linear CCA (Hotelling 1936) measures that share directly: it finds the
pairs of directions ``(u_i, w_i)`` along which the two views of the same items are most correlated,
``rho_i = corr(x u_i, y w_i)``, in decreasing order. Fitted on ``n`` items, independent features of
``p`` and ``q`` dimensions still show correlations of about ``sqrt(p / n) + sqrt(q / n)``
(finite-sample bias), so :func:`null_correlations` refits on mismatched pairs to give the level
that means "nothing shared".

Features are whitened with a ridge of ``ridge`` times the largest eigenvalue of each covariance,
which keeps near-constant directions (common in ReLU features) from producing spurious
correlations of 1. :func:`shared_signal_scores` applies it to a method's frozen features: how
strongly its audio and video features co-vary, and whether what they share is the class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avssl.evaluate.frozen_suite import FrozenFeatures, probe_accuracy
from avssl.evaluate.retrieval import recall_at_k


@dataclass(frozen=True)
class CanonicalPairs:
    """A fitted CCA: ``correlations [K]`` (descending, on the fitting items) and what maps new
    items onto the canonical directions (``project_x``, ``project_y``)."""

    correlations: np.ndarray
    mean_x: np.ndarray
    mean_y: np.ndarray
    directions_x: np.ndarray  # [p, K]: whitening times the left singular vectors
    directions_y: np.ndarray  # [q, K]

    def project_x(self, x: np.ndarray, k: int | None = None) -> np.ndarray:
        """``[N, k]`` canonical variates of ``x [N, p]`` (all K when ``k`` is None)."""
        return (x - self.mean_x) @ self.directions_x[:, :k]

    def project_y(self, y: np.ndarray, k: int | None = None) -> np.ndarray:
        return (y - self.mean_y) @ self.directions_y[:, :k]


def _whitener(centred: np.ndarray, ridge: float) -> np.ndarray:
    """``W [D, D]`` with ``W^T (C + ridge * max_eig * I) W = I`` for the covariance ``C`` of ``centred [N, D]``."""
    covariance = centred.T @ centred / max(len(centred) - 1, 1)
    eigenvalues, vectors = np.linalg.eigh(covariance)
    floor = ridge * max(float(eigenvalues.max()), np.finfo(np.float64).tiny)
    return vectors / np.sqrt(np.clip(eigenvalues, 0.0, None) + floor)


def fit_cca(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3) -> CanonicalPairs:
    """Canonical pairs of ``x [N, p]`` and ``y [N, q]`` (row i of each: the same item).

    Returns ``min(p, q)`` pairs; ``correlations`` are the singular values of the whitened
    cross-covariance, in [0, 1] up to the ridge's shrinkage.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"fit_cca: x and y must be [N, p] and [N, q] with the same N, got {x.shape} and {y.shape}")
    if len(x) < 3:
        raise ValueError(f"fit_cca: needs at least 3 items, got {len(x)}")
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    whiten_x, whiten_y = _whitener(x - mean_x, ridge), _whitener(y - mean_y, ridge)
    white_x, white_y = (x - mean_x) @ whiten_x, (y - mean_y) @ whiten_y
    cross = white_x.T @ white_y / (len(x) - 1)  # [p, q]
    left, singular, right_t = np.linalg.svd(cross, full_matrices=False)
    return CanonicalPairs(singular, mean_x, mean_y, whiten_x @ left, whiten_y @ right_t.T)


def null_correlations(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3, seed: int = 0) -> np.ndarray:
    """The canonical correlations of ``x`` against ``y`` with its rows shuffled (each item paired
    with another's): what :func:`fit_cca` reports when the two views share nothing."""
    order = np.random.default_rng(seed).permutation(len(y))
    return fit_cca(x, np.asarray(y)[order], ridge).correlations


def shared_signal_scores(frozen: FrozenFeatures, components: Sequence[int] = (16,), ridge: float = 1e-3,
                         seed: int = 0) -> dict[str, float]:
    """How much the audio and video backbone features of ``frozen`` share, and whether it is the class.

    CCA is fitted on the training split. Returns ``av_cc1`` (the largest canonical correlation),
    ``av_cc1_null`` (the same with the training clips' pairs shuffled: the level of nothing shared)
    and, for each ``k`` of ``components``, the linear-probe accuracy (%) of the class from the top
    ``k`` canonical variates of each modality (``video_probe_cca{k}``, ``audio_probe_cca{k}``; fit on
    the training split, scored on the rest) and the audio→video R@1 (%, same class, cosine) between
    them on the held-out clips (``a2v_r1_cca{k}``). Needs both modalities' features.
    """
    if not {"video", "audio"} <= set(frozen.features):
        raise ValueError(f"shared_signal_scores: needs video and audio features, got {sorted(frozen.features)}")
    train, test = frozen.train, ~frozen.train
    video, audio = frozen.features["video"].numpy(), frozen.features["audio"].numpy()
    pairs = fit_cca(video[train], audio[train], ridge)
    scores = {"av_cc1": float(pairs.correlations[0]),
              "av_cc1_null": float(null_correlations(video[train], audio[train], ridge, seed)[0])}
    y_train, y_test = frozen.labels[train], frozen.labels[test]
    for k in components:
        video_k, audio_k = pairs.project_x(video, k), pairs.project_y(audio, k)
        scores[f"video_probe_cca{k}"] = probe_accuracy(video_k[train], y_train, video_k[test], y_test)
        scores[f"audio_probe_cca{k}"] = probe_accuracy(audio_k[train], y_train, audio_k[test], y_test)
        scores[f"a2v_r1_cca{k}"] = recall_at_k(audio_k[test], y_test, video_k[test], y_test, ks=(1,),
                                               metric="cosine")["R@1"]
    return scores
