"""faiss k-means: recovers a known Gaussian mixture, is seeded, fills empty clusters."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from avssl.evaluate.cluster_metrics import adjusted_rand_index
from avssl.methods.kmeans import kmeans, preprocess_features, split_empty_clusters


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """faiss's OpenMP threads wait on each other when other processes share the two cores; these
    problems are small enough for one thread."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(previous)


def _mixture(num_components: int = 6, dim: int = 16, per_component: int = 200, spread: float = 8.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(num_components, dim)) * spread
    labels = np.repeat(np.arange(num_components), per_component)
    points = means[labels] + rng.normal(size=(len(labels), dim))
    return points.astype(np.float32), labels, means


def test_recovers_a_gaussian_mixture():
    points, labels, means = _mixture()
    result = kmeans(torch.from_numpy(points), 6, niter=25, nredo=3, seed=0)
    assert adjusted_rand_index(result.assignments, labels) == pytest.approx(1.0)
    # Each centroid lies near one true mean (unit noise, 200 points: the mean is off by ~0.3).
    gaps = np.linalg.norm(result.centroids.numpy()[:, None] - means[None], axis=-1).min(axis=1)
    assert gaps.max() < 1.0
    # Inertia is the sum of squared distances to the assigned centroid.
    direct = ((points - result.centroids.numpy()[result.assignments.numpy()]) ** 2).sum()
    assert result.inertia == pytest.approx(float(direct), rel=1e-4)
    assert result.distances.shape == (len(points),)


def test_same_seed_same_result_and_subsampled_training_assigns_all_points():
    points, labels, _ = _mixture(seed=1)
    first = kmeans(points, 6, seed=3, nredo=5)
    again = kmeans(points, 6, seed=3, nredo=5)
    assert torch.equal(first.assignments, again.assignments)
    assert torch.equal(first.centroids, again.centroids)
    sub = kmeans(points, 6, seed=3, nredo=5, max_points_per_centroid=50)  # trains on 300 of 1200 points
    assert sub.assignments.shape == (len(points),)
    assert adjusted_rand_index(sub.assignments, labels) > 0.95


def test_spherical_kmeans_has_unit_centroids_and_groups_directions():
    rng = np.random.default_rng(0)
    directions = np.eye(4, dtype=np.float32)
    labels = np.repeat(np.arange(4), 50)
    # Same direction, very different lengths: cosine k-means must ignore the length.
    scale = rng.uniform(0.1, 10.0, size=(len(labels), 1)).astype(np.float32)
    points = scale * (directions[labels] + 0.05 * rng.normal(size=(len(labels), 4)).astype(np.float32))
    result = kmeans(points, 4, spherical=True, nredo=2)
    assert torch.allclose(result.centroids.norm(dim=1), torch.ones(4), atol=1e-5)
    assert adjusted_rand_index(result.assignments, labels) == pytest.approx(1.0)


def test_duplicate_points_never_leave_a_cluster_empty():
    # Two distinct points repeated: k-means alone can only fill two of four clusters.
    points = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]], dtype=np.float32), 6, axis=0)
    result = kmeans(points, 4)
    assert result.num_split == 2
    assert (result.cluster_sizes() > 0).all()


def test_split_empty_clusters_separates_the_largest_cluster():
    points = np.array([[0.0], [0.1], [9.9], [10.0]], dtype=np.float32)
    centroids = np.array([[5.0], [100.0]], dtype=np.float32)  # cluster 1 is empty
    assignments = np.zeros(4, dtype=np.int64)
    new_centroids, new_assignments, filled = split_empty_clusters(points, centroids, assignments)
    assert filled == 1
    # The split of cluster 0 around 5.0 separates the two pairs; centroids become their means.
    assert sorted(np.bincount(new_assignments).tolist()) == [2, 2]
    assert new_assignments[0] == new_assignments[1] != new_assignments[2] == new_assignments[3]
    assert sorted(new_centroids[:, 0].tolist()) == pytest.approx([0.05, 9.95])


def test_preprocess_features_whitens_and_normalises():
    points, _, _ = _mixture(dim=32)
    out = preprocess_features(points, pca_dim=8)
    assert out.shape == (len(points), 8)
    assert torch.allclose(out.norm(dim=1), torch.ones(len(points)), atol=1e-5)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="fewer than num_clusters"):
        kmeans(np.zeros((3, 2), dtype=np.float32), 4)
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        kmeans(np.zeros(5, dtype=np.float32), 2)
    with pytest.raises(ValueError, match="NaN"):
        kmeans(np.full((5, 2), np.nan, dtype=np.float32), 2)
