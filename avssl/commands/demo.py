"""Run the demo: pretrain on the embedded corpus, evaluate next to random init, write figures and a gallery.

    avssl demo                       # the default method (xid), ~4 min on 2 CPU cores
    avssl demo --method crisscross   # any method with a CPU config: see --help
    avssl demo --steps 400 --out outputs/demo_long
    avssl demo --accelerator gpu --precision bf16-mixed   # pretrain on one GPU

No download: the corpus is generated (and cached) in OUT/corpus. The table compares the pretrained
encoders with randomly initialised ones of the same architecture on held-out clips (linear probe,
kNN, cross-modal retrieval, cluster purity); OUT holds results.md, loss_curve.png, embeddings.png
and gallery/index.html (open it in a browser). See docs/demo.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from avssl.demo.methods import DEFAULT_METHOD, DEMO_CONFIGS

    parser.add_argument("--method", default=DEFAULT_METHOD, choices=sorted(DEMO_CONFIGS),
                        help=f"pretraining method (default: {DEFAULT_METHOD})")
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default: outputs/demo)")
    parser.add_argument("--num-clips", type=int, default=1000, help="clips in the embedded corpus")
    parser.add_argument("--steps", type=int, help="pretraining steps (default: the method's demo config)")
    parser.add_argument("--batch-size", type=int, help="pretraining batch size (default: the method's demo config)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes for corpus generation and preparation")
    parser.add_argument("--accelerator", choices=("cpu", "gpu", "auto"),
                        help="where to pretrain (default: the demo config's, cpu); evaluation runs on the CPU")
    parser.add_argument("--precision", choices=("32", "bf16-mixed", "16-mixed"),
                        help="training precision (default: the demo config's, 32)")
    parser.add_argument("--no-gallery", action="store_true", help="skip the cluster gallery")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import sys

    from avssl.demo.run import DemoOptions, run_demo

    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear as they happen, also in a log file

    if args.num_clips < 20:
        raise ValueError(f"--num-clips must be at least 20 (every class needs held-out clips), got {args.num_clips}")
    run_demo(DemoOptions(
        out=args.out, method=args.method, num_clips=args.num_clips, seed=args.seed, workers=args.workers,
        steps=args.steps, batch_size=args.batch_size, gallery=not args.no_gallery, progress=not args.no_progress,
        accelerator=args.accelerator, precision=args.precision,
    ))
    return 0
