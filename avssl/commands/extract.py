"""Extract multi-clip features of every file of a manifest with a (frozen) encoder.

Example::

    avssl extract --encoder r2plus1d_18_avid --checkpoint avid.pth --manifest data/manifest.csv \\
        --out feats/ --clips 10 --per-clip --device cuda

Each file is cut into ``--clips`` dense windows of the encoder's clip (``linspace(0, N − L, n)``),
optionally ``--crops 3`` spatial crops per clip; the feature of a file is the mean over its views.
Writes ``OUT/features.npy`` ``[F, D]``, ``OUT/clip_features.npy`` ``[F, n, D]`` with ``--per-clip``,
``OUT/index.csv`` (position, manifest row, path, label), ``OUT/failed.csv`` (files that could not be
read, with the reason) and ``OUT/extract.json`` (the settings). Per-file results are cached under
``OUT/cache``, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", required=True, help="encoder registry name (avssl zoo list)")
    parser.add_argument("--checkpoint", type=Path, help="weights to load (default: random initialisation)")
    parser.add_argument("--manifest", required=True, type=Path, help="manifest CSV (avssl prepare)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--clips", type=int, default=10, help="dense clips per file (default 10)")
    parser.add_argument("--crops", type=int, choices=(1, 3), default=1, help="spatial crops per video clip")
    parser.add_argument("--per-clip", action="store_true", help="also write per-clip features")
    parser.add_argument("--feature", default="pool", help="'pool' or a forward_features map (e.g. cls)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass")
    parser.add_argument("--workers", type=int, default=0, help="decoding worker processes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from avssl.data.benchmarks import BenchmarkData
    from avssl.data.labelled import ClipSpec, LabelledClips
    from avssl.data.manifest import Manifest
    from avssl.evaluate.features import FeatureOp, cache_folder, extract_features, load_frozen_encoder

    if args.clips < 1:
        raise ValueError(f"--clips must be >= 1, got {args.clips}")
    data = BenchmarkData.from_manifest(Manifest.read(args.manifest))
    encoder = load_frozen_encoder(args.encoder, args.checkpoint, args.device)
    changes = {}
    if args.crops == 3:
        if encoder.modality != "video":
            raise ValueError("--crops 3 applies to video encoders only")
        size = encoder.input_spec.size
        changes = {"transform": "eval_video_three_crop", "transform_overrides": {"size": size, "resize": size}}
    spec = ClipSpec.for_encoder(encoder, "test", **changes)
    dataset = LabelledClips(data, range(len(data.manifest)), spec, "test", args.clips)
    op = FeatureOp.from_params(args.feature)
    args.out.mkdir(parents=True, exist_ok=True)
    features = extract_features(
        encoder, dataset, op, device=args.device, batch_size=args.batch_size, num_workers=args.workers,
        cache_dir=cache_folder(args.out / "cache", encoder, args.checkpoint, dataset, op),
        progress=not args.no_progress, description=f"extract {args.encoder}",
    )
    np.save(args.out / "features.npy", features.mean().astype(np.float32))
    if args.per_clip:
        np.save(args.out / "clip_features.npy", features.per_clip().astype(np.float32))
    with open(args.out / "index.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["position", "row", "path", "label"])
        for position, row in enumerate(features.rows.tolist()):
            writer.writerow([position, row, data.cell(row, "path"), data.cell(row, "label")])
    with open(args.out / "failed.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reason"])
        writer.writerows(features.failed)
    settings = {
        "command": shlex.join(["avssl", *sys.argv[1:]]) if sys.argv[1:2] == ["extract"] else None,
        "encoder": args.encoder, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
        "manifest": str(args.manifest), "clips": args.clips, "crops": args.crops, "feature": args.feature,
        "files": len(features.rows), "failed": len(features.failed), "dim": int(features.views.shape[-1]),
    }
    (args.out / "extract.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    print(f"{len(features.rows)} files -> {args.out / 'features.npy'} {features.mean().shape}; "
          f"{len(features.failed)} could not be read (see failed.csv)")
    return 0
