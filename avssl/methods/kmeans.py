"""k-means for deep clustering (XDC / DeepCluster lineage, spec §1.3; DESIGN.md "Choices": faiss).

:func:`kmeans` clusters ``[N, D]`` features into ``k`` groups with faiss (its GPU index when faiss
sees a GPU and ``device`` allows it), seeded, with ``niter`` Lloyd iterations and ``nredo`` restarts
(the run with the lowest objective is kept). ``spherical=True`` L2-normalises the points and keeps
the centroids on the unit sphere (cosine k-means). It returns the centroids, the assignment of
*every* point (also when faiss trained on a subsample) and the inertia (sum of squared distances of
the points to their centroids).

Empty clusters: faiss repairs clusters that empty *during* training by splitting a large one. The
final assignment of all points can still leave a cluster empty (training on a subsample, duplicate
points), and an empty cluster is a class no pseudo-label ever names. :func:`split_empty_clusters`
applies DeepCluster's remedy to the final assignment: pick the largest cluster, place two centroids
symmetrically around its centroid (relative perturbation ``±1/1024`` alternating over dimensions,
faiss's ``EPS``), hand its points to the nearer of the two, and repeat until no cluster is empty.

:func:`preprocess_features` is DeepCluster's feature preparation (PCA to ``pca_dim`` with whitening,
then L2 normalisation), available to callers that want it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np
import torch
from torch import Tensor

Device = Literal["auto", "cpu", "gpu"]
Init = Literal["kmeans++", "random"]

# Relative perturbation used to split a cluster in two (faiss Clustering.cpp: EPS = 1 / 1024).
SPLIT_EPS = 1.0 / 1024
# k-means++ seeds on at most this many points per centroid (enough to place k seeds well, and
# cheap: the D² sampling costs k passes over the sample).
KMEANSPP_POINTS_PER_CENTROID = 64


@dataclass(frozen=True)
class KMeansResult:
    """Outcome of :func:`kmeans`.

    Attributes:
        centroids: ``[k, D]`` float32 (unit rows when spherical).
        assignments: ``[N]`` int64 cluster of each point, every cluster non-empty when ``N >= k``.
        distances: ``[N]`` float32 squared L2 distance of each point to its centroid (for spherical
            k-means on unit vectors this is ``2 - 2 cos``).
        inertia: ``distances.sum()``, the k-means objective on all points.
        num_split: how many empty clusters :func:`split_empty_clusters` had to fill.
    """

    centroids: Tensor
    assignments: Tensor
    distances: Tensor
    inertia: float
    num_split: int = 0

    @property
    def num_clusters(self) -> int:
        return int(self.centroids.shape[0])

    def cluster_sizes(self) -> Tensor:
        """``[k]`` number of points in each cluster."""
        return torch.bincount(self.assignments, minlength=self.num_clusters)


def _as_float32_matrix(features: Tensor | np.ndarray, what: str) -> np.ndarray:
    array = features.detach().cpu().numpy() if isinstance(features, Tensor) else np.asarray(features)
    if array.ndim != 2:
        raise ValueError(f"{what}: features must be [N, D], got shape {tuple(array.shape)}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{what}: features contain NaN or infinite values")
    return array


def _l2_normalize(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)


def _use_gpu(device: Device) -> bool:
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if device == "gpu" and gpus == 0:
        raise RuntimeError("kmeans(device='gpu'): this faiss build sees no GPU (faiss-cpu installed?)")
    if device not in ("auto", "cpu", "gpu"):
        raise ValueError(f"kmeans: device must be 'auto', 'cpu' or 'gpu', got {device!r}")
    return device != "cpu" and gpus > 0


def preprocess_features(
    features: Tensor | np.ndarray, pca_dim: int | None = None, whiten: bool = True
) -> Tensor:
    """DeepCluster's preparation: PCA to ``pca_dim`` (whitened: eigen power −0.5), then L2-normalise.

    ``features`` ``[N, D]`` -> ``[N, pca_dim or D]`` float32. Without ``pca_dim`` only the L2
    normalisation is applied.
    """
    array = _as_float32_matrix(features, "preprocess_features")
    if pca_dim is not None:
        if not 0 < pca_dim <= array.shape[1]:
            raise ValueError(f"preprocess_features: pca_dim must lie in [1, {array.shape[1]}], got {pca_dim}")
        pca = faiss.PCAMatrix(array.shape[1], pca_dim, -0.5 if whiten else 0.0)
        pca.train(array)
        array = pca.apply_py(array)
    return torch.from_numpy(_l2_normalize(array))


def _squared_distances_to(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    # [n, k] via |x|^2 + |c|^2 - 2 x·c, clamped: rounding can make it slightly negative.
    cross = points @ centroids.T
    sq = (points**2).sum(1, keepdims=True) + (centroids**2).sum(1)[None, :] - 2.0 * cross
    return np.maximum(sq, 0.0)


def kmeans_plus_plus(points: np.ndarray, num_clusters: int, seed: int, spherical: bool = False) -> np.ndarray:
    """Greedy k-means++ seeds ``[k, D]``, drawn from a random subsample of ``points`` ``[N, D]``.

    The first seed is uniform. Each next one: draw ``2 + ⌊ln k⌋`` candidates with probability
    proportional to the squared distance to the nearest seed so far (D² sampling) and keep the
    candidate that lowers the total squared distance most (the greedy variant of Arthur &
    Vassilvitskii 2007, as scikit-learn runs it). Plain D² sampling in high dimension often puts
    two seeds in one true cluster, because within-cluster noise carries much of the D² mass.
    """
    rng = np.random.default_rng(seed)
    limit = KMEANSPP_POINTS_PER_CENTROID * num_clusters
    sample = points[rng.choice(len(points), limit, replace=False)] if len(points) > limit else points
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    sample_sq = (sample.astype(np.float64) ** 2).sum(1)
    trials = 2 + int(np.log(num_clusters))

    def squared_distances(rows: np.ndarray) -> np.ndarray:  # [len(rows), n] to the sample
        cross = (sample[rows] @ sample.T).astype(np.float64)
        return np.maximum(sample_sq[rows][:, None] + sample_sq[None, :] - 2.0 * cross, 0.0)

    chosen = [int(rng.integers(len(sample)))]
    nearest = squared_distances(np.array(chosen))[0]  # [n]
    for _ in range(1, num_clusters):
        total = nearest.sum()
        if total <= 0:  # every point coincides with a seed (duplicates): any point will do
            candidates = rng.integers(len(sample), size=trials)
        else:
            candidates = rng.choice(len(sample), size=trials, p=nearest / total)
        updated = np.minimum(nearest[None, :], squared_distances(candidates))  # [trials, n]
        best = int(np.argmin(updated.sum(1)))
        chosen.append(int(candidates[best]))
        nearest = updated[best]
    seeds = sample[chosen].copy()
    return _l2_normalize(seeds) if spherical else seeds


def _assign(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid ``[N]`` (int64) and squared L2 distance to it ``[N]`` (float32), exact.

    An L2 index whatever faiss trained with (inner product when spherical): on unit vectors the
    nearest in L2 is the most similar in cosine, and distances stay comparable across modes.
    """
    index = faiss.IndexFlatL2(points.shape[1])
    index.add(centroids)
    distances, nearest = index.search(points, 1)
    return nearest[:, 0].astype(np.int64), distances[:, 0].astype(np.float32)


def split_empty_clusters(
    points: np.ndarray, centroids: np.ndarray, assignments: np.ndarray, spherical: bool = False
) -> tuple[np.ndarray, np.ndarray, int]:
    """Fill every empty cluster by splitting the currently largest one (DeepCluster / faiss).

    ``points`` ``[N, D]``, ``centroids`` ``[k, D]``, ``assignments`` ``[N]``; returns new copies of
    centroids and assignments and the number of clusters filled. Needs ``N >= k``. When the two
    perturbed centroids do not separate the points (identical points), the second half of the
    largest cluster's members (by index) goes to the empty cluster, so each split always succeeds.
    """
    k = centroids.shape[0]
    if points.shape[0] < k:
        raise ValueError(f"split_empty_clusters: {points.shape[0]} points cannot fill {k} clusters")
    centroids, assignments = centroids.copy(), assignments.copy()
    sizes = np.bincount(assignments, minlength=k)
    filled = 0
    for empty in np.flatnonzero(sizes == 0):
        largest = int(np.argmax(sizes))
        members = np.flatnonzero(assignments == largest)
        sign = np.where(np.arange(points.shape[1]) % 2 == 0, 1.0, -1.0).astype(np.float32)
        base = centroids[largest].copy()
        centroids[largest] = base * (1 + sign * SPLIT_EPS)
        centroids[empty] = base * (1 - sign * SPLIT_EPS)
        if spherical:
            centroids[[largest, empty]] = _l2_normalize(centroids[[largest, empty]])
        pair = _squared_distances_to(points[members], centroids[[largest, empty]])
        to_empty = pair[:, 1] < pair[:, 0]
        if to_empty.all() or not to_empty.any():
            to_empty = np.arange(len(members)) >= len(members) // 2
        assignments[members[to_empty]] = empty
        sizes[empty], sizes[largest] = int(to_empty.sum()), int((~to_empty).sum())
        # The two halves get their own means, so the split centroids describe what they hold.
        for cluster in (largest, empty):
            mean = points[assignments == cluster].mean(0)
            centroids[cluster] = _l2_normalize(mean[None])[0] if spherical else mean
        filled += 1
    return centroids, assignments, filled


def kmeans(
    features: Tensor | np.ndarray,
    num_clusters: int,
    *,
    niter: int = 20,
    nredo: int = 1,
    seed: int = 0,
    spherical: bool = False,
    init: Init = "kmeans++",
    max_points_per_centroid: int | None = None,
    device: Device = "auto",
    verbose: bool = False,
) -> KMeansResult:
    """Cluster ``features`` ``[N, D]`` into ``num_clusters`` groups with faiss.

    Args:
        features: points, any float dtype, on any device (copied to CPU float32).
        num_clusters: ``k``; needs ``N >= k``.
        niter: Lloyd iterations per run (DeepCluster uses 20).
        nredo: independent runs with different seeds; the one with the lowest inertia wins.
        seed: seeds the initialisation and faiss's subsampling; same seed, same result.
        spherical: cosine k-means: points and centroids are L2-normalised.
        init: ``"kmeans++"`` seeds each run with greedy k-means++ (:func:`kmeans_plus_plus`) on a
            random subsample of at most ``KMEANSPP_POINTS_PER_CENTROID × k`` points; ``"random"``
            is faiss's own initialisation (k random points, as DeepCluster ran it). Random
            initialisation often merges two true clusters and splits another; k-means++ rarely does.
        max_points_per_centroid: train on at most ``k ×`` this many points (a random subsample,
            as faiss does by default with 256); ``None`` trains on all points, as DeepCluster does.
            The final assignment always covers all points.
        device: ``"auto"`` uses faiss's GPU k-means when faiss sees a GPU, else the CPU.
        verbose: let faiss print its per-iteration objective.
    """
    points = _as_float32_matrix(features, "kmeans")
    n, dim = points.shape
    if num_clusters < 1:
        raise ValueError(f"kmeans: num_clusters must be >= 1, got {num_clusters}")
    if n < num_clusters:
        raise ValueError(f"kmeans: {n} points are fewer than num_clusters = {num_clusters}")
    if niter < 1 or nredo < 1:
        raise ValueError(f"kmeans: niter and nredo must be >= 1, got niter={niter}, nredo={nredo}")
    if init not in ("kmeans++", "random"):
        raise ValueError(f"kmeans: init must be 'kmeans++' or 'random', got {init!r}")
    if spherical:
        points = _l2_normalize(points)
    use_gpu = _use_gpu(device)

    best: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
    # Each restart is one faiss run with its own seed, judged by the L2 inertia of *all* points
    # (faiss's own objective is on its training subsample, and an inner product when spherical).
    for run in range(nredo):
        run_seed = seed + 1_000_003 * run
        clustering = faiss.Kmeans(
            dim,
            num_clusters,
            niter=niter,
            seed=run_seed,
            spherical=spherical,
            gpu=use_gpu,
            verbose=verbose,
            # faiss subsamples above max_points_per_centroid; "all points" = N per centroid.
            max_points_per_centroid=max_points_per_centroid or n,
            min_points_per_centroid=1,
        )
        start = kmeans_plus_plus(points, num_clusters, run_seed, spherical) if init == "kmeans++" else None
        clustering.train(points, init_centroids=start)
        centroids = np.ascontiguousarray(clustering.centroids, dtype=np.float32)
        assignments, distances = _assign(points, centroids)
        inertia = float(distances.astype(np.float64).sum())
        if best is None or inertia < best[0]:
            best = (inertia, centroids, assignments, distances)
    _, centroids, assignments, distances = best

    num_split = 0
    if np.bincount(assignments, minlength=num_clusters).min() == 0:
        centroids, assignments, num_split = split_empty_clusters(points, centroids, assignments, spherical)
        distances = ((points - centroids[assignments]) ** 2).sum(1).astype(np.float32)
    sq = np.maximum(distances, 0.0)
    return KMeansResult(
        centroids=torch.from_numpy(centroids),
        assignments=torch.from_numpy(assignments),
        distances=torch.from_numpy(sq),
        inertia=float(sq.astype(np.float64).sum()),
        num_split=num_split,
    )
