"""Speed and quality of avssl's k-means (faiss) at XDC's scale: Kinetics-400 ≈ 240k clips × 512-d, k = 256.

    python benchmarks/kmeans.py                          # the full-size run plus the recovery check
    python benchmarks/kmeans.py --points 20000 --quick   # a smaller run

Two measurements, each printed as a Markdown table:

1. **Speed at full size**: ``N`` points in ``D`` dimensions drawn from a mixture of ``k`` Gaussians
   (the shape of one XDC re-clustering of Kinetics-400 features), clustered into ``k`` groups with
   the settings XDC uses (``niter`` Lloyd iterations on all points). Reports the wall time split into
   k-means++ seeding, faiss training and the final assignment, and the agreement (ARI / NMI) with
   the mixture components.
2. **Mixture recovery**: a small well-separated mixture (``--recovery-components`` components),
   clustered with both initialisations (``kmeans++`` and faiss's ``random``), with one and with five
   restarts, over several seeds; reports how often the components are recovered exactly (ARI = 1).

Timing uses every core faiss sees (``faiss.omp_get_max_threads()``), printed with the results.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import faiss  # noqa: E402

from avssl.evaluate.cluster_metrics import adjusted_rand_index, normalized_mutual_info  # noqa: E402
from avssl.methods import kmeans as km  # noqa: E402


def gaussian_mixture(
    num_points: int, dim: int, num_components: int, separation: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``[N, D]`` float32 points and their component ``[N]``: unit-variance noise around means drawn
    N(0, separation² / D) per coordinate, so mean-to-mean distances are about ``separation × √2``."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=separation / np.sqrt(dim), size=(num_components, dim)).astype(np.float32)
    labels = rng.integers(0, num_components, size=num_points)
    points = means[labels] + rng.standard_normal(size=(num_points, dim), dtype=np.float32)
    return points, labels


def time_full_size(args: argparse.Namespace) -> list[str]:
    points, labels = gaussian_mixture(args.points, args.dim, args.clusters, args.separation, seed=0)
    started = time.perf_counter()
    seeds = km.kmeans_plus_plus(points, args.clusters, seed=0)
    seeding = time.perf_counter() - started

    started = time.perf_counter()
    result = km.kmeans(points, args.clusters, niter=args.niter, nredo=1, seed=0)
    total = time.perf_counter() - started

    # faiss alone, from the same seeds, so the table can say where the time goes.
    started = time.perf_counter()
    clustering = faiss.Kmeans(args.dim, args.clusters, niter=args.niter, seed=0,
                              max_points_per_centroid=args.points, min_points_per_centroid=1)
    clustering.train(points, init_centroids=seeds)
    training = time.perf_counter() - started
    return [
        f"| {args.points:,} × {args.dim} | {args.clusters} | {args.niter} | {total:.1f} | {seeding:.1f} "
        f"| {training:.1f} | {result.inertia / args.points:.1f} "
        f"| {adjusted_rand_index(result.assignments, labels):.3f} "
        f"| {normalized_mutual_info(result.assignments, labels):.3f} | {result.num_split} |",
    ]


def recovery(args: argparse.Namespace) -> list[str]:
    points, labels = gaussian_mixture(
        args.recovery_points, 32, args.recovery_components, separation=12.0, seed=1
    )
    rows = []
    for init in ("kmeans++", "random"):
        for nredo in (1, 5):
            scores = [
                adjusted_rand_index(
                    km.kmeans(points, args.recovery_components, seed=s, nredo=nredo, init=init).assignments, labels
                )
                for s in range(args.recovery_seeds)
            ]
            exact = sum(score > 0.999 for score in scores)
            rows.append(f"| {init} | {nredo} | {exact} / {len(scores)} | {np.mean(scores):.3f} | {min(scores):.3f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=240_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=256)
    parser.add_argument("--niter", type=int, default=20)
    parser.add_argument("--separation", type=float, default=8.0,
                        help="mixture mean scale (≈ distance between means / √2), in noise std units")
    parser.add_argument("--recovery-points", type=int, default=5000)
    parser.add_argument("--recovery-components", type=int, default=20)
    parser.add_argument("--recovery-seeds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="skip the full-size timing")
    args = parser.parse_args(argv)

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, GPUs seen: "
          f"{faiss.get_num_gpus() if hasattr(faiss, 'get_num_gpus') else 0}\n")
    if not args.quick:
        print("| points | k | niter | total s | k-means++ s | faiss train s | inertia / point | ARI | NMI | split |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(time_full_size(args)), end="\n\n")
    print(f"Recovery of a {args.recovery_components}-component mixture "
          f"({args.recovery_points} points, 32-d), {args.recovery_seeds} seeds:\n")
    print("| init | nredo | exact recoveries | mean ARI | worst ARI |")
    print("|---|---|---|---|---|")
    print("\n".join(recovery(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
