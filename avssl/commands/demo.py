"""Run the demo on the embedded corpus: generate it, index it with prepare, measure the loaders.

No download: the corpus is generated (and cached) in OUT/corpus, indexed into OUT/prepared, and
each method's view recipe is timed on it (samples per second in this process, one thread, and with
DataLoader workers). Training, evaluation and plots join the demo as those parts land.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from avssl.data.datasets import PretrainingDataset
from avssl.data.prepare import PrepareOptions, prepare_corpus
from avssl.data.synthetic import generate_corpus
from avssl.data.throughput import measure_dataset
from avssl.data.views import get_view_recipe, list_view_recipes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default: outputs/demo)")
    parser.add_argument("--num-clips", type=int, default=1000, help="clips in the embedded corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes for generation, prepare and loading")
    parser.add_argument("--items", type=int, default=12, help="files timed per view recipe")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    start = time.perf_counter()
    print(f"[demo] embedded corpus ({args.num_clips} clips) in {out / 'corpus'}")
    corpus = generate_corpus(out / "corpus", num_clips=args.num_clips, seed=args.seed, workers=args.workers)
    print(f"[demo] prepare -> {out / 'prepared'}")
    manifest, rejected = prepare_corpus(
        corpus, out / "prepared", PrepareOptions(labels_from_folders=True, require_audio=True,
                                                 require_video=True, workers=args.workers),
    )
    print(f"[demo] manifest: {len(manifest)} files, {len(manifest.labels())} classes, {len(rejected)} rejected")

    torch.set_num_threads(1)
    print("\n| view recipe | samples/s, 1 process | samples/s, "
          f"{args.workers} workers | views |")
    print("|---|---|---|---|")
    for name in list_view_recipes():
        dataset = PretrainingDataset(manifest, get_view_recipe(name), clips_per_video=2, seed=args.seed)
        shapes = ", ".join("×".join(map(str, v.shape[1:])) for v in dataset[0]["video"] + dataset[0]["audio"])
        single = measure_dataset(dataset, args.items, warmup=1)
        parallel = measure_dataset(dataset, args.items, warmup=1, num_workers=args.workers)
        print(f"| {name} | {single.per_second:.1f} | {parallel.per_second:.1f} | {shapes} |")
    print(f"\n[demo] done in {time.perf_counter() - start:.0f} s; outputs in {out}")
    return 0
