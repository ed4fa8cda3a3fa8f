"""Loader benchmark: clip samples per second, avssl vs the original repositories' way of loading.

For each sample type — AVID (8 frames at 16 fps, 112², 2 s log-mel), CrissCross (two video views
of 8 frames, two 2 s log-mels) and XKD (global 32 frames at 8 fps 112² + local 8×96², 4 s + 1 s
log-mels) — and for two file sets — the real files of ../shared/data/videos (those with sound)
as they are, and the same files after `avssl prepare --short-side 256 --gop 16` — it times:

* **baseline**: `benchmarks/baseline_loader.py`, the per-item loader of AVID-CMA / CrissCross / XKD
  (PyAV open + seek + decode per clip, PIL per-frame augmentation, librosa log-mel);
* **avssl**: `PretrainingDataset` with the same sample (video through PyAV, all windows of a file in
  one decoder pass that leaves undecoded the non-reference frames no window picks, resize inside the
  decoder, crop-first batched tensor augmentation, torch.stft front end), drawing
  `--clips-per-video` samples per decoded file.

Both run in this process with one thread (`torch.set_num_threads(1)`, one decoder thread, one
swscale thread on both sides), so the ratio compares the work per sample, not parallelism. The table is followed by one machine-readable line per sample
and file set: `RATIO sample=<avid|crisscross|xkd> files=<original|prepared> avssl_over_baseline=<x>`.

Each measurement makes one item per file for `--passes` whole passes over the file list (per-file
costs differ tenfold, so both loaders must see the same files equally often).

Usage: python benchmarks/loader.py [--data ../shared/data/videos] [--passes 3] [--clips-per-video 4]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline_loader  # noqa: E402

from avssl.data.datasets import PretrainingDataset  # noqa: E402
from avssl.data.manifest import Manifest  # noqa: E402
from avssl.data.prepare import PrepareOptions, prepare_corpus  # noqa: E402
from avssl.data.throughput import Throughput, measure_dataset, time_calls  # noqa: E402
from avssl.data.views import AudioFrontend, ViewRecipe, get_view_recipe  # noqa: E402
from avssl.media import decode  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def benchmark_recipes() -> dict[str, ViewRecipe]:
    """The three samples, configured exactly as the baseline builds them."""
    return {
        # AVID pairing, at the benchmark's 112² and 16 kHz 80-mel log-mel.
        "avid": get_view_recipe(
            "avid",
            decode_short_side=128,
            video_augment_overrides=(("size", 112),),
            audio=AudioFrontend("crisscross", "avid_pretrain_audio"),
        ),
        "crisscross": get_view_recipe("crisscross"),
        "xkd": get_view_recipe("xkd"),
    }


def prepared_sets(data: Path, work: Path) -> dict[str, Manifest]:
    """Manifests of the original files (with sound) and of their re-encoded copies (cached in work/)."""
    sets = {}
    for name, options in (
        ("original", PrepareOptions(require_audio=True, require_video=True)),
        ("prepared", PrepareOptions(require_audio=True, require_video=True, short_side=256, gop=16)),
    ):
        out = work / name
        if not (out / "manifest.csv").is_file():
            prepare_corpus(data, out, options)
        sets[name] = Manifest.read(out / "manifest.csv")
    return sets


def time_baseline(sample: str, paths: list[str], passes: int) -> Throughput:
    """One baseline item per file, `passes` times over the file list (whole passes, so that both
    loaders are timed on the same files: their costs differ tenfold between files)."""
    item = baseline_loader.BASELINE_ITEMS[sample]
    return time_calls(lambda i: (item(paths[i % len(paths)]), 1)[1], passes * len(paths), warmup=2)


def time_avssl(recipe: ViewRecipe, manifest: Manifest, clips_per_video: int, passes: int) -> Throughput:
    """One dataset item (`clips_per_video` samples) per file, `passes` times over the manifest."""
    dataset = PretrainingDataset(manifest, recipe, clips_per_video=clips_per_video, seed=0)
    return measure_dataset(dataset, passes * len(dataset), warmup=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "videos")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "loader-benchmark")
    parser.add_argument("--passes", type=int, default=3,
                        help="whole passes over the files per measurement (each file once per pass)")
    parser.add_argument("--clips-per-video", type=int, default=4)
    parser.add_argument("--samples", default="avid,crisscross,xkd")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no media at {args.data}; pass --data", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    random.seed(0)
    np.random.seed(0)
    sets = prepared_sets(args.data, args.work)
    recipes = benchmark_recipes()
    print(f"decoder backend: video {decode.video_backend()}, audio {decode.default_backend()}; one thread; "
          f"clips per decoded video: {args.clips_per_video}")
    rows = []
    for files, manifest in sets.items():
        paths = [str(manifest.resolve(row)) for row in manifest]
        print(f"{files}: {len(paths)} files with video and sound")
        for sample in args.samples.split(","):
            base = time_baseline(sample, paths, args.passes)
            ours_one = time_avssl(recipes[sample], manifest, 1, args.passes)
            ours = time_avssl(recipes[sample], manifest, args.clips_per_video, args.passes)
            rows.append((sample, files, base.per_second, ours_one.per_second, ours.per_second))
    print()
    header = f"| sample | files | baseline samples/s | avssl k=1 | avssl k={args.clips_per_video} | ratio k=1 | ratio k={args.clips_per_video} |"
    print(header)
    print("|---" * 7 + "|")
    for sample, files, base, one, many in rows:
        print(f"| {sample} | {files} | {base:.1f} | {one:.1f} | {many:.1f} | {one / base:.2f} | {many / base:.2f} |")
    print()
    for sample, files, base, _, many in rows:
        print(f"RATIO sample={sample} files={files} avssl_over_baseline={many / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
