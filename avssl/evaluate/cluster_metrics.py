"""How well a clustering agrees with labels (or with another clustering): NMI, ARI, purity, accuracy.

Used at every XDC re-clustering (spec §1.3; DeepCluster reports NMI against ImageNet labels and
between consecutive assignments) and by the cluster gallery (:mod:`avssl.viz.gallery`).

Both arguments are 1-D sequences of the same length ``N``; values may be ints or strings (labels
are mapped to integer codes internally). Definitions:

* **NMI** (sklearn, arithmetic normalisation): ``I(C; Y) / ((H(C) + H(Y)) / 2)``, symmetric, in [0, 1].
* **ARI** (sklearn): the Rand index corrected for chance; 0 for random, 1 for identical partitions.
* **purity**: ``(1/N) Σ_c max_y |c ∩ y|`` — each cluster counts its most frequent label. Grows with
  the number of clusters (N singleton clusters have purity 1), so compare at equal ``k``.
* **Hungarian accuracy**: the best one-to-one matching of clusters to labels (scipy
  ``linear_sum_assignment`` on the contingency table), matched points / N. With more clusters than
  labels the unmatched clusters count as wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

ArrayLike = Sequence | np.ndarray | torch.Tensor


def _as_array(values: ArrayLike, what: str) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence, got shape {tuple(array.shape)}")
    return array


def _pair(clusters: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    c, y = _as_array(clusters, "clusters"), _as_array(labels, "labels")
    if len(c) != len(y):
        raise ValueError(f"clusters and labels must have the same length, got {len(c)} and {len(y)}")
    if len(c) == 0:
        raise ValueError("clusters and labels are empty")
    return c, y


def contingency_table(clusters: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(table, cluster_ids, label_values)``: ``table[i, j]`` = points of cluster ``cluster_ids[i]``
    with label ``label_values[j]`` (both sorted ascending)."""
    c, y = _pair(clusters, labels)
    cluster_ids, c_codes = np.unique(c, return_inverse=True)
    label_values, y_codes = np.unique(y, return_inverse=True)
    table = np.zeros((len(cluster_ids), len(label_values)), dtype=np.int64)
    np.add.at(table, (c_codes, y_codes), 1)
    return table, cluster_ids, label_values


def normalized_mutual_info(clusters: ArrayLike, labels: ArrayLike) -> float:
    """NMI with arithmetic-mean normalisation (sklearn's default), in [0, 1]."""
    c, y = _pair(clusters, labels)
    return float(normalized_mutual_info_score(y, c))


def adjusted_rand_index(clusters: ArrayLike, labels: ArrayLike) -> float:
    """Adjusted Rand index (sklearn), 1 for identical partitions, ~0 for independent ones."""
    c, y = _pair(clusters, labels)
    return float(adjusted_rand_score(y, c))


def purity(clusters: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of points whose label is their cluster's most frequent label."""
    table, _, _ = contingency_table(clusters, labels)
    return float(table.max(axis=1).sum() / table.sum())


def hungarian_accuracy(clusters: ArrayLike, labels: ArrayLike) -> float:
    """Accuracy under the best one-to-one cluster→label matching (unmatched points are wrong)."""
    table, _, _ = contingency_table(clusters, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def clustering_scores(clusters: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """``{"nmi", "ari", "purity", "hungarian_accuracy"}`` of ``clusters`` against ``labels``."""
    return {
        "nmi": normalized_mutual_info(clusters, labels),
        "ari": adjusted_rand_index(clusters, labels),
        "purity": purity(clusters, labels),
        "hungarian_accuracy": hungarian_accuracy(clusters, labels),
    }


@dataclass(frozen=True)
class ClusterSummary:
    """One cluster seen through the labels of its members.

    ``dominant_label`` is the most frequent label (ties: the smallest label value), ``purity`` its
    share of the cluster, ``size`` the number of members.
    """

    cluster: int
    size: int
    dominant_label: object
    purity: float


def cluster_summaries(clusters: ArrayLike, labels: ArrayLike) -> list[ClusterSummary]:
    """One :class:`ClusterSummary` per non-empty cluster, in ascending cluster id."""
    table, cluster_ids, label_values = contingency_table(clusters, labels)
    sizes = table.sum(axis=1)
    dominant = table.argmax(axis=1)  # argmax takes the first maximum: the smallest label value
    return [
        ClusterSummary(
            cluster=int(cluster_ids[i]),
            size=int(sizes[i]),
            dominant_label=label_values[dominant[i]].item(),
            purity=float(table[i, dominant[i]] / sizes[i]),
        )
        for i in range(len(cluster_ids))
    ]
