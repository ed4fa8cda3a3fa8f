"""Do a method's randomly initialised audio and video encoders share anything on AV-Digits?

A cross-modal objective can only amplify what the two encoders' features already have in common:
the digit, faintly, in both. This script measures that common part directly, at random
initialisation: it builds each method's encoders (its CPU config, as ``benchmarks/avdigits.py``
does, small R(2+1)D with average pooling), takes the frozen features of the middle window of every
clip, fits linear CCA (:mod:`avssl.evaluate.cca`) between the audio and the video features of the
training clips and prints, per method::

    SHARED method=xid view=colour video_probe=.. audio_probe=.. av_cc1=.. av_cc1_null=..
        video_probe_cca16=.. audio_probe_cca16=.. a2v_r1_cca16=..

``av_cc1`` is the largest canonical correlation, ``av_cc1_null`` the same with the training pairs
shuffled (what 2,500 clips show when nothing is shared); the ``_cca{k}`` scores ask whether the top
``k`` canonical directions carry the digit (probe on the test split, chance 10 %) and pair audio
with video of the same digit. When ``av_cc1`` sits at its null and the ``cca`` probes are below the
raw ones, the digit signal of the random features is too weak for the cross-modal objective to
find: the methods have nothing to start from.

    python benchmarks/avdigits_shared_signal.py                          # outputs/avdigits/corpus
    python benchmarks/avdigits_shared_signal.py --methods xid,xdc --video-view ink --components 9,32
    python benchmarks/avdigits_shared_signal.py --manifest OUT/corpus/manifest.csv

About 2 minutes per method on 2 cores (decoding the 3,000 clips and encoding them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from avdigits_random_features import VIEWS, InputView  # noqa: E402

from avssl.data.manifest import Manifest  # noqa: E402
from avssl.demo.run import evaluate_methods, pretraining_config  # noqa: E402
from avssl.evaluate.cca import shared_signal_scores  # noqa: E402
from avssl.train.runner import build_method  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=REPO_ROOT / "outputs/avdigits/corpus/manifest.csv",
                        help="the corpus manifest (train and test splits) that benchmarks/avdigits.py wrote")
    parser.add_argument("--methods", default="xid,xdc",
                        help="comma-separated methods with both encoders (their random initialisations)")
    parser.add_argument("--video-view", choices=VIEWS, default="colour",
                        help="what the video encoder reads (benchmarks/avdigits_random_features.py)")
    parser.add_argument("--components", type=lambda text: [int(k) for k in text.split(",")], default=[16],
                        help="numbers of canonical directions whose digit content is scored")
    parser.add_argument("--seed", type=int, default=0, help="the encoders' initialisation and the null's shuffle")
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def random_method(name: str, manifest_path: Path, num_items: int, video_view: str, seed: int):
    """``(method, config)``: ``name``'s encoders at random initialisation, the video one reading ``video_view``."""
    cfg = pretraining_config(name, manifest_path, Path("unused"), seed=seed, progress=False)
    if cfg.method.video_encoder == "r2plus1d_small":
        cfg.method.video_encoder_kwargs["pool"] = "avg"  # as benchmarks/avdigits.py's default
    torch.manual_seed(seed)
    method = build_method(cfg.method, num_items)
    if not hasattr(method, "audio_encoder"):
        raise SystemExit(f"--methods: {name} has no audio encoder; name methods with both modalities")
    if video_view != "colour":
        method.video_encoder = InputView(method.video_encoder, video_view)
    return method, cfg


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    manifest = Manifest.read(args.manifest)
    num_train = sum(row.split == "train" for row in manifest)
    for name in args.methods.split(","):
        model = random_method(name, args.manifest, num_train, args.video_view, args.seed)
        features, scores = evaluate_methods(manifest, {name: model}, seed=args.seed, progress=False)[name]
        scores = {**scores, **shared_signal_scores(features, args.components, seed=args.seed)}
        keys = ["video_probe", "audio_probe", "av_cc1", "av_cc1_null"]
        keys += [f"{score}_cca{k}" for k in args.components for score in ("video_probe", "audio_probe", "a2v_r1")]
        print(f"SHARED method={name} view={args.video_view} "
              + " ".join(f"{key}={scores[key]:.{3 if key.startswith('av_cc') else 1}f}" for key in keys), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
