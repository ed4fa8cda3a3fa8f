"""End-to-end pretraining speed of a config on a manifest: real decoding, augmentation and training steps.

    python benchmarks/pretrain_throughput.py --config configs/pretrain/avid/kinetics400.yaml \\
        --manifest outputs/demo/prepared/train.csv --precision 32 bf16-mixed --steps 60 --workers 12
    python benchmarks/pretrain_throughput.py --config configs/pretrain/avid/demo_cpu.yaml \\
        --manifest outputs/demo/prepared/train.csv --accelerator cpu --steps 30 --workers 2

The config runs on one device (``devices 1``, no DDP, no SyncBN) for ``--steps`` steps, once per
precision given, through the same engine as ``avssl pretrain`` (a fresh output folder, no resume;
memory-bank and cluster sizes shrunk to the manifest as ``avssl demo`` does). A callback times every
step from the end of the previous one: the first ``--warmup`` steps (worker start, cuDNN autotuning,
first allocations) are left out, and each step's time is split into *waiting for the batch* (the
loader) and *the step itself* (forward, backward, optimiser; the GPU is synchronised at its end).
A mean wait far above its median means the loader cannot keep up (add workers, prepare the files).
Prints one Markdown row per precision, then ``THROUGHPUT config=<stem> precision=<p> steps_per_s=<x>
clips_per_s=<x>`` lines.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import lightning as L  # noqa: E402
import torch  # noqa: E402

from avssl.demo.run import fit_to_corpus  # noqa: E402
from avssl.data.manifest import Manifest  # noqa: E402
from avssl.train.config import parse_config  # noqa: E402
from avssl.train.runner import run_pretraining  # noqa: E402


class StepTimer(L.Callback):
    """Wall-clock time of each training step, split into the wait for its batch and the step itself."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.steps: list[float] = []
        self.losses: list[float] = []
        self._last_end: float | None = None
        self._start = 0.0

    def _now(self, trainer: L.Trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)
        return time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self._start = self._now(trainer)
        if self._last_end is not None:
            self.waits.append(self._start - self._last_end)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self._last_end = self._now(trainer)
        self.steps.append(self._last_end - self._start)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self.losses.append(float(loss.detach()))


def measure(args: argparse.Namespace, precision: str) -> dict[str, float | str]:
    """Train ``args.config`` for ``args.steps`` steps at ``precision``; the timings after warm-up."""
    output_dir = Path(tempfile.mkdtemp(prefix="avssl_throughput_"))
    overrides = [
        "--config", str(args.config), "--data.manifest", str(args.manifest), "--trainer.output_dir", str(output_dir),
        "--trainer.resume", "null", "--trainer.max_steps", str(args.steps), "--trainer.devices", "1",
        "--trainer.num_nodes", "1", "--trainer.strategy", "auto", "--trainer.sync_batchnorm", "false",
        "--trainer.accelerator", args.accelerator, "--trainer.precision", precision,
        "--trainer.progress_bar", "false", "--trainer.checkpoint_every_n_steps", str(10 * args.steps),
        "--data.num_workers", str(args.workers), *args.extra,
    ]
    if args.batch_size is not None:
        overrides += ["--data.batch_size", str(args.batch_size)]
    config = parse_config(overrides)
    for note in fit_to_corpus(config, len(Manifest.read(args.manifest))):
        print(f"[throughput] {note}")
    timer = StepTimer()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    run_pretraining(config, callbacks=[timer])
    waits, steps = timer.waits[args.warmup:], timer.steps[args.warmup + 1:]
    if not steps:
        raise SystemExit(f"--steps {args.steps} leaves no step after --warmup {args.warmup}")
    per_step = statistics.fmean(steps) + statistics.fmean(waits or [0.0])
    return {
        "precision": precision, "batch": config.data.batch_size, "steps_per_s": 1.0 / per_step,
        "clips_per_s": config.data.batch_size / per_step, "step_ms": 1000 * statistics.median(steps),
        "step_mean_ms": 1000 * statistics.fmean(steps), "wait_ms": 1000 * statistics.median(waits or [0.0]),
        "wait_mean_ms": 1000 * statistics.fmean(waits or [0.0]),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else math.nan,
        "final_loss": timer.losses[-1] if timer.losses else math.nan,
        "losses_finite": all(math.isfinite(x) for x in timer.losses),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--precision", nargs="+", default=["32"])
    parser.add_argument("--accelerator", default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("extra", nargs="*", help="further config overrides after --, e.g. -- --data.recipe avid")
    args = parser.parse_args(argv)

    device = torch.cuda.get_device_name() if args.accelerator != "cpu" else f"CPU ({torch.get_num_threads()} threads)"
    rows = [measure(args, precision) for precision in args.precision]
    print(f"\n{args.config} on {args.manifest} ({device}, {args.workers} loader workers, "
          f"{args.steps} steps, first {args.warmup} left out)\n")
    print("| precision | batch | steps/s | clips/s | step ms (median / mean) | wait for batch ms (median / mean) "
          "| peak GPU GiB | final loss |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['batch']} | {r['steps_per_s']:.2f} | {r['clips_per_s']:.1f} | "
              f"{r['step_ms']:.1f} / {r['step_mean_ms']:.1f} | {r['wait_ms']:.1f} / {r['wait_mean_ms']:.1f} | "
              f"{r['peak_gib']:.2f} | {r['final_loss']:.4f} |")
    for r in rows:
        print(f"THROUGHPUT config={args.config.stem} precision={r['precision']} steps_per_s={r['steps_per_s']:.3f} "
              f"clips_per_s={r['clips_per_s']:.2f} losses_finite={r['losses_finite']}")
    return 0 if all(r["losses_finite"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
