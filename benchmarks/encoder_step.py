"""Forward + backward speed of one encoder on random input, across precision, cuDNN autotuning and memory format.

    python benchmarks/encoder_step.py --encoder r2plus1d_18_avid --batch 32          # GPU: every combination
    python benchmarks/encoder_step.py --encoder audio_resnet_small --batch 16 --steps 5   # CPU: fp32 only

Each row trains the encoder (SGD, loss = mean of the features squared) for ``--warmup`` untimed and
``--steps`` timed steps at its standard input shape (``docs/models.md``; ``--shape`` replaces it,
without batch). Settings: ``fp32`` (cuDNN may use TF32 for convolutions, PyTorch's default; matmuls
stay fp32), ``bf16`` (autocast); ``benchmark`` = ``torch.backends.cudnn.benchmark`` (autotuned
convolution algorithms); ``cl`` = channels-last memory format for model and input. FLOPs are counted
once with ``FlopCounterMode`` (2 per multiply-add). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from avssl.models.encoder import standard_input_shape  # noqa: E402
from avssl.models.registry import create_encoder  # noqa: E402


def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, dtype: torch.dtype | None) -> None:
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        loss = model(x).float().pow(2).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def measure(name: str, shape: tuple[int, ...], batch: int, device: torch.device, dtype: torch.dtype | None,
            benchmark: bool, channels_last: bool, steps: int, warmup: int) -> tuple[float, float, float]:
    """(ms per step, TFLOP/s, peak GiB) of one setting."""
    torch.backends.cudnn.benchmark = benchmark
    torch.manual_seed(0)
    model = create_encoder(name).to(device).train()
    x = torch.randn(batch, *shape, device=device)
    if channels_last:
        fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
        model = model.to(memory_format=fmt)
        x = x.contiguous(memory_format=fmt)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    with FlopCounterMode(display=False) as counter:
        step(model, optimizer, x, dtype)
    for _ in range(warmup):
        step(model, optimizer, x, dtype)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(steps):
        step(model, optimizer, x, dtype)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - started) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return 1000 * seconds, counter.get_total_flops() / seconds / 1e12, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", nargs="+", default=["r2plus1d_18_avid"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--shape", type=int, nargs="+", help="input shape without batch (default: the standard one)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    settings = (list(itertools.product((None, torch.bfloat16), (False, True), (False, True)))
                if device.type == "cuda" else [(None, False, False)])
    print("| encoder | input | batch | precision | cudnn benchmark | memory format | ms/step | TFLOP/s | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.encoder:
        shape = tuple(args.shape) if args.shape else standard_input_shape(create_encoder(name), batch=1)[1:]
        for dtype, benchmark, channels_last in settings:
            ms, tflops, peak = measure(name, shape, args.batch, device, dtype, benchmark, channels_last,
                                       args.steps, args.warmup)
            print(f"| {name} | {'×'.join(map(str, shape))} | {args.batch} | {'bf16' if dtype else 'fp32'} | "
                  f"{'on' if benchmark else 'off'} | {'channels-last' if channels_last else 'contiguous'} | "
                  f"{ms:.1f} | {tflops:.1f} | {peak:.2f} |", flush=True)
    print(f"\n{torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'}; torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
