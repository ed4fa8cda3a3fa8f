"""Clustering metrics against values worked out by hand on small label vectors."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from avssl.evaluate.cluster_metrics import (
    adjusted_rand_index,
    cluster_summaries,
    clustering_scores,
    contingency_table,
    hungarian_accuracy,
    normalized_mutual_info,
    purity,
)

# Three clusters over eight points; contingency (rows = clusters 0, 1, 2; columns = a, b, c):
#   cluster 0: a a b   -> [2, 1, 0]
#   cluster 1: b b b   -> [0, 3, 0]
#   cluster 2: c a     -> [1, 0, 1]
CLUSTERS = [0, 0, 0, 1, 1, 1, 2, 2]
LABELS = ["a", "a", "b", "b", "b", "b", "c", "a"]


def _entropy(counts: list[int]) -> float:
    n = sum(counts)
    return -sum(c / n * math.log(c / n) for c in counts if c)


def _nmi_by_formula(clusters, labels) -> float:
    n = len(clusters)
    joint = Counter(zip(clusters, labels))
    pc, py = Counter(clusters), Counter(labels)
    mutual = sum(m / n * math.log(n * m / (pc[c] * py[y])) for (c, y), m in joint.items())
    return mutual / ((_entropy(list(pc.values())) + _entropy(list(py.values()))) / 2)


def _ari_by_formula(clusters, labels) -> float:
    n = len(clusters)
    pairs = lambda counts: sum(math.comb(c, 2) for c in counts)  # noqa: E731
    index = pairs(Counter(zip(clusters, labels)).values())
    a, b = pairs(Counter(clusters).values()), pairs(Counter(labels).values())
    expected = a * b / math.comb(n, 2)
    return (index - expected) / ((a + b) / 2 - expected)


def test_contingency_table_counts_each_pair():
    table, ids, values = contingency_table(CLUSTERS, LABELS)
    assert ids.tolist() == [0, 1, 2] and values.tolist() == ["a", "b", "c"]
    assert table.tolist() == [[2, 1, 0], [0, 3, 0], [1, 0, 1]]


def test_purity_and_hungarian_on_hand_example():
    # purity: (2 + 3 + 1) / 8; matching 0->a, 1->b, 2->c also gives 6 / 8.
    assert purity(CLUSTERS, LABELS) == pytest.approx(6 / 8)
    assert hungarian_accuracy(CLUSTERS, LABELS) == pytest.approx(6 / 8)


def test_hungarian_is_one_to_one_where_purity_is_not():
    # Both clusters are mostly "a": purity lets both count "a" (3 + 2), a matching cannot (3 + 1).
    clusters, labels = [0, 0, 0, 1, 1, 1], ["a", "a", "a", "a", "a", "b"]
    assert purity(clusters, labels) == pytest.approx(5 / 6)
    assert hungarian_accuracy(clusters, labels) == pytest.approx(4 / 6)


def test_more_clusters_than_labels_leaves_clusters_unmatched():
    clusters, labels = [0, 1, 2, 3], [0, 0, 1, 1]
    assert purity(clusters, labels) == 1.0
    assert hungarian_accuracy(clusters, labels) == pytest.approx(2 / 4)


def test_nmi_and_ari_match_their_formulas():
    assert normalized_mutual_info(CLUSTERS, LABELS) == pytest.approx(_nmi_by_formula(CLUSTERS, LABELS), abs=1e-12)
    assert adjusted_rand_index(CLUSTERS, LABELS) == pytest.approx(_ari_by_formula(CLUSTERS, LABELS), abs=1e-12)


def test_identical_partitions_up_to_renaming_score_one():
    clusters = torch.tensor([2, 2, 0, 0, 1, 1])
    labels = ["x", "x", "y", "y", "z", "z"]
    assert clustering_scores(clusters, labels) == pytest.approx(
        {"nmi": 1.0, "ari": 1.0, "purity": 1.0, "hungarian_accuracy": 1.0}
    )


def test_cluster_summaries_give_dominant_label_purity_and_size():
    summaries = cluster_summaries(CLUSTERS, LABELS)
    assert [(s.cluster, s.size, s.dominant_label) for s in summaries] == [(0, 3, "a"), (1, 3, "b"), (2, 2, "a")]
    assert [s.purity for s in summaries] == pytest.approx([2 / 3, 1.0, 1 / 2])


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="same length"):
        purity([0, 1], [0])
    with pytest.raises(ValueError, match="1-D"):
        purity([[0, 1]], [[0, 1]])
    with pytest.raises(ValueError, match="empty"):
        purity([], [])
