"""Cluster the clips of a manifest with pretrained encoders and write a browsable gallery page.

    avssl clusters --checkpoint runs/pretrain/xdc_demo/final --manifest data/synthetic/manifest.csv \\
        --out gallery/ [--num-clips 6] [--modality both] [--num-clusters 10]
    avssl clusters --checkpoint xdc_audioset.pth --video-encoder r2plus1d_18_vmz --modality video ...
    avssl clusters --video-encoder r2plus1d_small --audio-encoder audio_resnet_small ...  # random init

``--checkpoint`` takes (repeatable) a run's ``final/`` folder, its ``final/method.pt`` (both
encoders), an avssl encoder file, or an official release file (then name its encoder with
``--video-encoder`` / ``--audio-encoder``). Without a checkpoint the named encoders start from a
seeded random initialisation (a baseline). Each file contributes one clip from its middle, cut and
normalised as the encoder's ``input_spec`` says (evaluation crop, spectrogram preset). Clusters are
ordered by purity when the manifest has labels, by size otherwise. Open ``OUT/index.html`` in a browser.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avssl.viz.gallery import GalleryItem

MODALITIES = ("video", "audio")
logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="run folder (final/), method.pt, avssl encoder file or official release; repeatable")
    parser.add_argument("--video-encoder", help="encoder name for an official video checkpoint or a random baseline")
    parser.add_argument("--audio-encoder", help="encoder name for an official audio checkpoint or a random baseline")
    parser.add_argument("--manifest", required=True, type=Path, help="manifest CSV (avssl prepare)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (index.html, clips/)")
    parser.add_argument("--modality", choices=("both", *MODALITIES), default="both")
    parser.add_argument("--num-clusters", type=int, help="k (default: the number of labels, else 10)")
    parser.add_argument("--num-clips", type=int, default=6, help="clips shown per cluster, nearest the centroid")
    parser.add_argument("--clip-seconds", type=float, default=3.0, help="length of the playable excerpts")
    parser.add_argument("--max-files", type=int, help="use only the first N files of the manifest")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass")
    parser.add_argument("--seed", type=int, default=0, help="k-means and random-initialisation seed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------------------- run


def _manifest_items(manifest_path: Path, max_files: int | None) -> list[GalleryItem]:
    from avssl.data.manifest import Manifest
    from avssl.viz.gallery import GalleryItem

    manifest = Manifest.read(manifest_path)
    rows = manifest.rows if max_files is None else manifest.rows[:max_files]
    return [
        GalleryItem(f"row{number:06d}", manifest.resolve(row), row.path, row.label.strip() or None)
        for number, row in enumerate(rows)
    ]


def run(args: argparse.Namespace) -> int:
    from avssl.evaluate.middle_clip import extract_middle_clip_features, load_encoders
    from avssl.viz.gallery import ExcerptSettings, build_clusters, write_gallery

    if args.num_clips < 1 or args.batch_size < 1:
        raise ValueError(f"--num-clips and --batch-size must be >= 1, got {args.num_clips}, {args.batch_size}")
    wanted = MODALITIES if args.modality == "both" else (args.modality,)
    names = {"video": args.video_encoder, "audio": args.audio_encoder}
    encoders = load_encoders(args.checkpoint, names, wanted, args.seed)
    items = _manifest_items(args.manifest, args.max_files)
    features, kept, failed = extract_middle_clip_features(
        [item.path for item in items], encoders, args.device, args.batch_size, progress=not args.no_progress
    )
    for path, reason in failed:
        logger.warning("skipped %s: %s", path, reason)
    items = [items[p] for p in kept]
    labels = [item.label for item in items]
    distinct = {label for label in labels if label}
    k = args.num_clusters or (len(distinct) if len(distinct) >= 2 else 10)
    if len(items) < k:
        raise ValueError(f"{len(items)} files could be read from {args.manifest}, fewer than --num-clusters {k}")

    clusters, scores = {}, {}
    for modality in wanted:
        clusters[modality], scores[modality] = build_clusters(
            features[modality], modality, k, labels if distinct else None, seed=args.seed
        )
    facts = {
        "checkpoint": ", ".join(str(p) for p in args.checkpoint) or "none (random initialisation)",
        "encoders": ", ".join(f"{m}: {getattr(e, 'registry_name', type(e).__name__)}" for m, e in encoders.items()),
        "manifest": str(args.manifest),
        "files": f"{len(items)} clustered" + (f", {len(failed)} unreadable" if failed else ""),
        "clusters": f"k = {k} per modality (cosine k-means, seed {args.seed})",
    }
    page = write_gallery(
        args.out, items, clusters, scores, num_clips=args.num_clips, facts=facts,
        excerpt=ExcerptSettings(seconds=args.clip_seconds),
    )
    for modality in wanted:
        summary = ", ".join(f"{k_}={v:.3f}" for k_, v in scores[modality].items()) or "no labels"
        print(f"{modality}: {k} clusters; {summary}")
    print(f"gallery: {page}")
    return 0
