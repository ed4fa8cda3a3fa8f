"""Speed of one XKD training step: forward + backward + clipping + AdamW + EMA teachers (spec §4).

    python benchmarks/train_step.py                         # the CPU demo size; ViT-B too if a GPU is present
    python benchmarks/train_step.py --sizes base --variants xkd xkd_mats --steps 20
    python benchmarks/train_step.py --peak-tflops 989       # MFU reference (H100 SXM dense bf16)
    python benchmarks/train_step.py --sizes base --variants xkd --profile 25   # where the time goes

Two sizes, on random tensors (no decoding: this measures the model step only):

* ``demo`` (CPU, float32): the encoders, heads and decoders of ``configs/pretrain/xkd/demo_cpu.yaml``
  (``vit_small_video`` / ``vit_small_audio``, dim 192, depth 3) at the view shapes its recipe gives —
  video ``[3×8×64², 3×2×48²]``, audio ``[1×80×448, 1×80×112]`` — and its batch (8).
* ``base`` (GPU, bf16 autocast): ``vit_b_video_xkd`` / ``vit_b_audio_xkd`` with the released heads
  and decoders at the released per-GPU batch (32) and view shapes (spec §4.2): video
  ``[3×32×112², 3×8×96²]``, audio ``[1×80×448, 1×80×112]``. Without a GPU only its FLOPs per step
  are counted, on the meta device.

XKD has one local video view, MAS and MATS three. The optimiser is the engine's
(``avssl.train.optim``: AdamW β (0.9, 0.95), weight decay 0.3 with the §4.4 exclusions). FLOPs are
counted with ``torch.utils.flop_counter.FlopCounterMode`` over the forward and backward of one step
(matmuls and attention; the optimiser and element-wise ops are not counted), so achieved TFLOP/s and
MFU are lower bounds of the work really done. MFU = achieved TFLOP/s / ``--peak-tflops``. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from avssl.methods.registry import create_method  # noqa: E402
from avssl.models.registry import create_encoder  # noqa: E402
from avssl.train.config import OptimizerConfig, parse_config  # noqa: E402
from avssl.train.optim import build_optimizer, build_param_groups  # noqa: E402

DEMO_CONFIG = REPO_ROOT / "configs" / "pretrain" / "xkd" / "demo_cpu.yaml"
LOCAL_VIDEO_VIEWS = {"xkd": 1, "xkd_mas": 3, "xkd_mats": 3}


@dataclass(frozen=True)
class Size:
    """Encoders, method kwargs, view shapes (without batch) and batch of one benchmark size."""

    encoders: tuple[str, str]
    method_kwargs: dict
    video_views: tuple[tuple[int, ...], tuple[int, ...]]  # global, local
    audio_views: tuple[tuple[int, ...], tuple[int, ...]]
    batch: int


def sizes() -> dict[str, Size]:
    demo = parse_config(["--config", str(DEMO_CONFIG)])
    return {
        # shapes produced by demo_cpu.yaml's recipe overrides (2 s at 4 fps, crops 64 and 48)
        "demo": Size((demo.method.video_encoder, demo.method.audio_encoder), dict(demo.method.kwargs),
                     ((3, 8, 64, 64), (3, 2, 48, 48)), ((1, 80, 448), (1, 80, 112)), demo.data.batch_size),
        "base": Size(("vit_b_video_xkd", "vit_b_audio_xkd"), {},
                     ((3, 32, 112, 112), (3, 8, 96, 96)), ((1, 80, 448), (1, 80, 112)), 32),
    }


def random_batch(size: Size, batch: int, num_local_video: int, device: torch.device) -> dict:
    """Random views of the given shapes: video [global, local × n], audio [global, local]."""
    (video_global, video_local), (audio_global, audio_local) = size.video_views, size.audio_views
    video = [torch.randn(batch, *video_global, device=device)]
    video += [torch.randn(batch, *video_local, device=device) for _ in range(num_local_video)]
    audio = [torch.randn(batch, *audio_global, device=device), torch.randn(batch, *audio_local, device=device)]
    return {"video": video, "audio": audio, "index": torch.arange(batch, device=device)}


def build(variant: str, size: Size, device: torch.device):
    video_name, audio_name = size.encoders
    method = create_method(variant, video_encoder=create_encoder(video_name),
                           audio_encoder=create_encoder(audio_name), **size.method_kwargs)
    method.to(device).train()
    config = OptimizerConfig(name="adamw", lr=1e-4, betas=(0.9, 0.95), weight_decay=0.3)
    return method, build_optimizer(build_param_groups(method, config), config)


def one_step(method, optimizer, batch: dict, step: int, max_steps: int, dtype: torch.dtype | None) -> torch.Tensor:
    device_type = batch["index"].device.type
    with torch.autocast(device_type, dtype=dtype, enabled=dtype is not None):
        out = method(batch)
    optimizer.zero_grad(set_to_none=True)
    out["loss"].backward()
    method.on_before_optimizer_step()
    optimizer.step()
    method.on_after_optimizer_step(step, max_steps)
    return out["loss"].detach()  # no .item() here: it would wait for the GPU every step


def count_only(variant: str, size_name: str, size: Size, batch_size: int) -> str:
    """FLOPs of one forward + backward on the meta device (no memory, no time): the row of a
    size that cannot run here."""
    with torch.device("meta"):
        method, _ = build(variant, size, torch.device("meta"))
        batch = random_batch(size, batch_size, LOCAL_VIDEO_VIEWS[variant], torch.device("meta"))
        with FlopCounterMode(display=False) as counter:
            method(batch)["loss"].backward()
    flops = counter.get_total_flops()
    return (f"| {variant} | {size_name} | (meta: FLOPs only) | {batch_size} | – | – | – | {flops / 1e12:.3f} "
            "| – | – | – | – |")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def print_profile(method, optimizer, batch: dict, step: int, max_steps: int, dtype: torch.dtype | None,
                  device: torch.device, rows: int) -> None:
    """The operators that take the most device (or CPU) time over three steps, and how busy the
    device was: device time well under wall time means the step waits on the host (launches, syncs)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    synchronize(device)
    started = time.perf_counter()
    with profile(activities=activities) as prof:
        for offset in range(3):
            one_step(method, optimizer, batch, step + offset, max_steps, dtype)
        synchronize(device)
    wall = (time.perf_counter() - started) / 3
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = prof.key_averages()
    if device.type == "cuda":
        busy = sum(e.self_device_time_total for e in events) / 3 / 1e6
        print(f"profile: {1000 * wall:.0f} ms wall per step, device busy {1000 * busy:.0f} ms "
              f"({100 * busy / wall:.0f} %)")
    print(events.table(sort_by=sort, row_limit=rows, max_name_column_width=60))


def measure(variant: str, size_name: str, size: Size, batch_size: int, device: torch.device,
            dtype: torch.dtype | None, steps: int, warmup: int, peak_tflops: float, profile_rows: int = 0) -> str:
    torch.manual_seed(0)
    method, optimizer = build(variant, size, device)
    batch = random_batch(size, batch_size, LOCAL_VIDEO_VIEWS[variant], device)
    max_steps = warmup + steps + 1
    with FlopCounterMode(display=False) as counter:  # also the first warm-up step
        one_step(method, optimizer, batch, 0, max_steps, dtype)
    flops = counter.get_total_flops()
    for step in range(1, warmup):
        one_step(method, optimizer, batch, step, max_steps, dtype)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    started = time.perf_counter()
    for step in range(warmup, warmup + steps):
        loss = one_step(method, optimizer, batch, step, max_steps, dtype)
    synchronize(device)
    seconds = (time.perf_counter() - started) / steps
    if profile_rows:
        print_profile(method, optimizer, batch, warmup + steps, max_steps, dtype, device, profile_rows)
    achieved = flops / seconds / 1e12
    memory = f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}" if device.type == "cuda" else "–"
    mfu = f"{100 * achieved / peak_tflops:.1f} %" if device.type == "cuda" else "–"
    precision = "bf16 autocast" if dtype is torch.bfloat16 else "fp32"
    return (f"| {variant} | {size_name} | {device.type} | {batch_size} | {precision} | {1 / seconds:.2f} | "
            f"{1000 * seconds:.0f} | {flops / 1e12:.3f} | {achieved:.2f} | {mfu} | {memory} | {float(loss):.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["xkd", "xkd_mas", "xkd_mats"],
                        choices=sorted(LOCAL_VIDEO_VIEWS))
    parser.add_argument("--sizes", nargs="+", default=["demo", "base"], choices=["demo", "base"])
    parser.add_argument("--batch", type=int, default=None, help="override the size's batch")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (the first one counts FLOPs)")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="accelerator peak for MFU (H100 bf16 dense: 989)")
    parser.add_argument("--profile", type=int, default=0, metavar="ROWS",
                        help="after timing, profile three steps and print the ROWS costliest operators")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    has_gpu = torch.cuda.is_available()
    if has_gpu:  # TF32 matmuls for the fp32 parts, as a real run would use
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    table = sizes()
    rows = []
    for size_name in args.sizes:
        size = table[size_name]
        if size_name == "base" and not has_gpu:
            print("(no GPU: the ViT-B rows give the FLOPs of a step only, counted on the meta device)")
            for variant in args.variants:
                rows.append(count_only(variant, size_name, size, args.batch or size.batch))
            continue
        device = torch.device("cuda" if size_name == "base" else "cpu")
        dtype = torch.bfloat16 if size_name == "base" else None
        for variant in args.variants:
            rows.append(measure(variant, size_name, size, args.batch or size.batch, device, dtype,
                                args.steps, args.warmup, args.peak_tflops, args.profile))
            print(rows[-1], flush=True)
    device_name = torch.cuda.get_device_name() if has_gpu else "no GPU"
    print(f"\nXKD training step (forward + backward + clip + AdamW + EMA); "
          f"CPU threads {torch.get_num_threads()}, {device_name}\n")
    print("| variant | size | device | batch | precision | steps/s | ms/step | TFLOP/step | TFLOP/s | MFU "
          "| peak GiB | loss |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
