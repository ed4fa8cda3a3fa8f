"""The demo's figures and gallery, made from the features the evaluation already computed.

* :func:`cluster_purities` — purity of cosine k-means clusters (k = number of classes) of the held-out
  clips, per modality: XDC's measure (spec §1), reported for every method next to random init.
* :func:`write_figures_and_gallery` — ``loss_curve.png``, ``embeddings.png`` (t-SNE) and
  ``gallery/index.html`` (:mod:`avssl.viz.gallery`, clusters of the trained encoders' features).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from avssl.data.manifest import Manifest
from avssl.evaluate.cluster_metrics import purity
from avssl.evaluate.frozen_suite import FrozenFeatures
from avssl.methods.kmeans import kmeans

if TYPE_CHECKING:
    from avssl.demo.run import DemoOptions


def cluster_purities(frozen: FrozenFeatures, num_clusters: int, seed: int = 0) -> dict[str, float]:
    """``{"<modality>_purity": %}`` of cosine k-means on the held-out clips' features."""
    mask = ~frozen.train
    scores = {}
    for modality, values in frozen.features.items():
        result = kmeans(values[mask], num_clusters, spherical=True, nredo=3, seed=seed)
        scores[f"{modality}_purity"] = 100.0 * purity(result.assignments.numpy(), frozen.labels[mask])
    return scores


def _metrics_csv(run_dir: Path) -> Path | None:
    logs = sorted((run_dir / "logs" / "csv").glob("version_*/metrics.csv"))
    return logs[-1] if logs else None


def write_figures_and_gallery(
    out: Path,
    run_dir: Path,
    frozen: Mapping[str, FrozenFeatures],
    options: DemoOptions,
    manifest: Manifest,
    classes: Sequence[str],
) -> None:
    """Loss curve, t-SNE maps (trained and random, each modality) and the trained model's gallery."""
    from avssl.viz.gallery import ExcerptSettings, GalleryItem, build_clusters, write_gallery
    from avssl.viz.plots import plot_embeddings, plot_loss_curve

    metrics = _metrics_csv(run_dir)
    if metrics is not None:
        plot_loss_curve(metrics, out / "loss_curve.png", f"{options.method} pretraining on the embedded corpus")
        print(f"[demo] loss curve: {out / 'loss_curve.png'}")
    trained = frozen[options.method]
    mask = ~trained.train
    panels = {
        f"{name} · {modality}": features.features[modality].numpy()[~features.train]
        for name, features in frozen.items() for modality in features.features
    }
    plot_embeddings(panels, trained.labels[mask], classes, out / "embeddings.png", seed=options.seed)
    print(f"[demo] embeddings (t-SNE of held-out clips): {out / 'embeddings.png'}")
    if not options.gallery:
        return
    items = [GalleryItem(f"clip{p:05d}", manifest.resolve(manifest[p]), manifest[p].path, manifest[p].label)
             for p in trained.positions[mask].tolist()]
    labels = [item.label for item in items]
    clusters, scores = {}, {}
    for modality, values in trained.features.items():
        clusters[modality], scores[modality] = build_clusters(
            values[mask], modality, len(classes), labels, seed=options.seed
        )
    facts = {"method": options.method, "clips": f"{len(items)} held-out clips of the embedded corpus",
             "clusters": f"k = {len(classes)} per modality (cosine k-means)"}
    page = write_gallery(out / "gallery", items, clusters, scores, num_clips=4, facts=facts,
                         title=f"avssl demo: {options.method} clusters", excerpt=ExcerptSettings(seconds=2.0))
    print(f"[demo] cluster gallery: {page}")
