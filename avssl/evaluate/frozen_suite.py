"""A quick frozen-feature report of a pretrained encoder pair: linear probe, kNN, cross-modal retrieval.

What the demo and the AV-Digits benchmark print for every method next to a random initialisation:
one clip from the middle of each labelled file goes through the frozen encoders
(:mod:`avssl.evaluate.middle_clip`); the classifiers are fit on the files of the training split and
scored on the others.

* ``<modality>_probe`` — top-1 (%) of a multinomial logistic regression on standardised features
  (scikit-learn ``LogisticRegression``, L2, C = 1): the linear probe of the papers in its simplest form;
* ``<modality>_knn`` — top-1 (%) of a k-nearest-neighbour vote (cosine, k = 10; :mod:`avssl.evaluate.knn`);
* ``a2v_r1`` / ``v2a_r1`` — cross-modal retrieval R@1 (%) among the held-out clips: an audio query
  retrieves the video clip nearest to it in the method's shared embedding space, a hit when it shows the
  same class. Only methods whose heads map both modalities into one space have it (xID, AVID-CMA,
  CrissCross, AV-VICReg); backbone features of two encoders share no space (spec §5 row 15), so for the
  others it is not reported (NaN).

:func:`pairing_recall` asks a narrower question of the shared space: does an audio query find the
video of its *own* clip (R@1 over the training clips and over the held-out clips)? A method that
learned what sound and picture share finds it on both; one that memorised its training pairs finds it
on the training clips alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from avssl.evaluate.knn import knn_scores
from avssl.evaluate.middle_clip import extract_features_together
from avssl.evaluate.retrieval import recall_at_k

MODALITIES = ("video", "audio")
SCORE_NAMES = ("video_probe", "audio_probe", "video_knn", "audio_knn", "a2v_r1", "v2a_r1")
KNN_NEIGHBOURS = 10


def shared_space_heads(method: nn.Module) -> dict[str, nn.Module] | None:
    """The heads that map each modality's backbone feature into the method's shared space, as named
    by the method's ``shared_space_heads`` attribute (``{"video": attr, "audio": attr}``); None when
    the method has no such space (or lacks one of the two heads, e.g. VICReg-V)."""
    names = getattr(method, "shared_space_heads", None)
    if not names:
        return None
    heads = {modality: getattr(method, name, None) for modality, name in names.items()}
    return heads if all(isinstance(h, nn.Module) for h in heads.values()) else None


@dataclass
class FrozenFeatures:
    """Backbone features ``{modality: [n, D]}``, shared-space embeddings ``{modality: [n, E]}`` (empty
    when the method has none), class indices ``[n]``, the training-split mask ``[n]`` and each row's
    position in the file list given to :func:`encode_files_together` ``[n]`` (files that failed are left out)."""

    features: dict[str, Tensor]
    shared: dict[str, Tensor]
    labels: np.ndarray
    train: np.ndarray
    positions: np.ndarray


def encode_files_together(
    paths: Sequence[Path], labels: Sequence[int], train: Sequence[bool],
    models: Sequence[tuple[Mapping[str, nn.Module], Mapping[str, nn.Module] | None]], device: str = "cpu",
    batch_size: int = 32, progress: bool = False,
) -> tuple[list[FrozenFeatures], list[tuple[str, str]]]:
    """Frozen features of several ``(encoders, shared-space heads or None)`` whose encoders read
    alike (:func:`~avssl.evaluate.middle_clip.reads_alike`; every file is decoded once for all),
    in their order, and ``(path, reason)`` for the files that do not decode (skipped)."""
    sets, kept, failed = extract_features_together(paths, [e for e, _ in models], device, batch_size, progress)
    keep = np.asarray(kept, dtype=np.int64)
    kept_labels, kept_train = np.asarray(labels)[keep], np.asarray(train, dtype=bool)[keep]
    frozen = []
    for features, (_, heads) in zip(sets, models):
        shared: dict[str, Tensor] = {}
        if heads:
            with torch.no_grad():
                for modality, head in heads.items():
                    shared[modality] = head.to(device).eval()(features[modality].to(device)).float().cpu()
        frozen.append(FrozenFeatures(features, shared, kept_labels, kept_train, keep))
    return frozen, failed


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Top-1 (%) of a logistic regression fit on standardised ``x_train [N, D]``."""
    scaler = StandardScaler().fit(x_train)
    classifier = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x_train), y_train)
    return float(100.0 * np.mean(classifier.predict(scaler.transform(x_test)) == y_test))


def knn_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Top-1 (%) of a cosine k-nearest-neighbour vote (k = 10)."""
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    scores = knn_scores(x_train, y_train, x_test, num_classes, k=KNN_NEIGHBOURS)
    return float(100.0 * np.mean(scores.argmax(axis=1) == y_test))


def suite_scores(frozen: FrozenFeatures) -> dict[str, float]:
    """Every score of :data:`SCORE_NAMES` (NaN for what the features cannot give)."""
    train, test = frozen.train, ~frozen.train
    if not train.any() or not test.any():
        raise ValueError("frozen suite: both the training split and the held-out split need files")
    y_train, y_test = frozen.labels[train], frozen.labels[test]
    scores = dict.fromkeys(SCORE_NAMES, math.nan)
    for modality, values in frozen.features.items():
        x = values.numpy()
        scores[f"{modality}_probe"] = probe_accuracy(x[train], y_train, x[test], y_test)
        scores[f"{modality}_knn"] = knn_accuracy(x[train], y_train, x[test], y_test)
    if set(frozen.shared) == set(MODALITIES):
        video, audio = frozen.shared["video"].numpy()[test], frozen.shared["audio"].numpy()[test]
        scores["a2v_r1"] = recall_at_k(audio, y_test, video, y_test, ks=(1,), metric="cosine")["R@1"]
        scores["v2a_r1"] = recall_at_k(video, y_test, audio, y_test, ks=(1,), metric="cosine")["R@1"]
    return scores


def pairing_recall(frozen: FrozenFeatures) -> dict[str, float]:
    """``{"a2v_pair_r1_train", "a2v_pair_r1_test"}``: share (%) of audio queries whose nearest video
    (cosine, shared space) is the query's own clip, among the clips of each split (chance: one over
    the split's size); NaN without a shared space."""
    if set(frozen.shared) != set(MODALITIES):
        return {"a2v_pair_r1_train": math.nan, "a2v_pair_r1_test": math.nan}
    scores = {}
    for split, mask in (("train", frozen.train), ("test", ~frozen.train)):
        video, audio = frozen.shared["video"].numpy()[mask], frozen.shared["audio"].numpy()[mask]
        clips = np.arange(len(video))  # each clip its own class
        scores[f"a2v_pair_r1_{split}"] = recall_at_k(audio, clips, video, clips, ks=(1,), metric="cosine")["R@1"]
    return scores


def format_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = SCORE_NAMES) -> str:
    """A Markdown table, one row per encoder set (e.g. ``xid``, ``random``), scores in %."""
    lines = ["| encoders | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, scores in rows.items():
        cells = ["—" if math.isnan(scores.get(c, math.nan)) else f"{scores[c]:.1f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
