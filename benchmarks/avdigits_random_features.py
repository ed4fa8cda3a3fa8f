"""How much of the digit do randomly initialised video encoders see on AV-Digits?

The cross-modal methods start from random encoders: whatever sound and picture share must be
visible, however faintly, in the random features for the objective to pull on it. This script
measures that starting point for the video side. It builds AVID-style small R(2+1)D encoders
(``avssl.models.r2plus1d.R2Plus1dAVID``, one block per stage, stage widths ``W/8, W/4, W/2, W``
for each ``--widths`` W; ``r2plus1d_small`` is W = 128), leaves them at their random
initialisation, and scores their frozen features of the middle window of every clip (evaluation
crop, as the AV-Digits benchmark) with the frozen suite's linear probe and kNN (digit; fit on the
train split, scored on the test split). Each encoder reads one of three views of the same input:

* ``colour`` — the frames as decoded (what every method sees);
* ``grey`` — the mean of the three colour channels;
* ``ink`` — per clip, each pixel's colour distance to the clip's median colour (the background's),
  which leaves the digit bright on a dark ground: the colour nuisance taken out by hand.

One decoding pass serves every encoder. It prints one line per encoder::

    RANDOM_VIDEO width=128 pool=avg view=colour seed=0 probe=<acc> knn=<acc>

    python benchmarks/avdigits_random_features.py                       # reads outputs/avdigits/corpus
    python benchmarks/avdigits_random_features.py --widths 128,256,512 --pools avg,max --seeds 0,1

It reads the corpus that ``benchmarks/avdigits.py`` wrote (``outputs/avdigits/corpus/manifest.csv``).
The 12-encoder grid of docs/benchmarks.md (``--widths 128,512 --pools avg,max``) took 404 s on 2 cores,
decoding included; the defaults encode half of it (the 512-wide encoders cost most).
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import product
from pathlib import Path

import torch
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from avssl.data.manifest import Manifest  # noqa: E402
from avssl.evaluate.frozen_suite import encode_files_together, suite_scores  # noqa: E402
from avssl.models.r2plus1d import SMALL_VIDEO_SPEC, R2Plus1dAVID  # noqa: E402

VIEWS = ("colour", "grey", "ink")


class InputView(nn.Module):
    """Runs ``encoder`` on one view (:data:`VIEWS`) of its normalised video input ``[B, 3, T, H, W]``.

    ``grey`` and ``ink`` are single-channel images in [0, 1] (ink: Euclidean RGB distance to the
    clip's per-channel median over time and space, clipped at 1), normalised with the mean of the
    spec's per-channel mean and std and repeated over the three input channels."""

    def __init__(self, encoder: nn.Module, view: str) -> None:
        super().__init__()
        if view not in VIEWS:
            raise ValueError(f"InputView: view must be one of {VIEWS}, got {view!r}")
        self.encoder, self.view, self.input_spec = encoder, view, encoder.input_spec
        self.out_dim = encoder.out_dim  # read by the evaluation and the heads, as the wrapped encoder's
        spec = encoder.input_spec
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1, 1))

    def single_channel(self, x: Tensor) -> Tensor:
        """The ``grey`` or ``ink`` image ``[B, 1, T, H, W]`` in [0, 1] of normalised ``x``."""
        rgb = x * self.std + self.mean
        if self.view == "grey":
            return rgb.mean(1, keepdim=True)
        background = rgb.flatten(2).median(dim=2).values[..., None, None, None]  # [B, 3, 1, 1, 1]
        return (rgb - background).norm(dim=1, keepdim=True).clamp(max=1.0)

    def forward(self, x: Tensor) -> Tensor:
        if self.view == "colour":
            return self.encoder(x)
        image = (self.single_channel(x) - self.mean.mean()) / self.std.mean()
        return self.encoder(image.expand(-1, 3, -1, -1, -1))


def random_video_encoder(width: int, pool: str, view: str, seed: int) -> InputView:
    """A randomly initialised small R(2+1)D (stage widths ``width / 8 … width``) reading ``view``."""
    if width % 8:
        raise ValueError(f"--widths: {width} is not a multiple of 8")
    torch.manual_seed(seed)
    encoder = R2Plus1dAVID(pool, widths=(width // 8, width // 4, width // 2, width), blocks=(1, 1, 1, 1),
                           input_spec=SMALL_VIDEO_SPEC)
    return InputView(encoder, view).eval()


def parse_list(kind):
    return lambda text: [kind(item) for item in text.split(",") if item.strip()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=REPO_ROOT / "outputs/avdigits/corpus/manifest.csv",
                        help="an AV-Digits manifest with train and test splits")
    parser.add_argument("--widths", type=parse_list(int), default=[128, 512], help="last-stage widths W")
    parser.add_argument("--pools", type=parse_list(str), default=["avg"], help="avg and/or max")
    parser.add_argument("--views", type=parse_list(str), default=list(VIEWS), help=f"any of {', '.join(VIEWS)}")
    parser.add_argument("--seeds", type=parse_list(int), default=[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    unknown = sorted(set(args.views) - set(VIEWS))
    if unknown:
        parser.error(f"--views: unknown {unknown}; available: {', '.join(VIEWS)}")
    return args


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    manifest = Manifest.read(args.manifest)
    classes = manifest.labels()
    grid = list(product(args.widths, args.pools, args.views, args.seeds))
    models = [({"video": random_video_encoder(*point)}, None) for point in grid]
    start = time.perf_counter()
    frozen, failed = encode_files_together([manifest.resolve(row) for row in manifest],
                                           [classes.index(row.label) for row in manifest],
                                           [row.split == "train" for row in manifest], models)
    for path, reason in failed:
        print(f"[random-features] skipped {path}: {reason}")
    print(f"[random-features] {len(manifest) - len(failed)} clips encoded by {len(models)} encoders in "
          f"{time.perf_counter() - start:.0f} s")
    for (width, pool, view, seed), features in zip(grid, frozen):
        scores = suite_scores(features)
        print(f"RANDOM_VIDEO width={width} pool={pool} view={view} seed={seed} "
              f"probe={scores['video_probe']:.1f} knn={scores['video_knn']:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
