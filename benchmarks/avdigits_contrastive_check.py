"""Can xID's small encoders learn to pair AV-Digits clips at all? A batch-contrastive check.

The AV-Digits methods (benchmarks/avdigits.py) stay at their random initialisation, and their
shared spaces do not even pair the training clips (PAIRING lines at chance). This check takes the
memory banks, clustering and schedules out of the question: it trains xID's encoders and projection
heads (``configs/pretrain/avid/demo_cpu.yaml`` with the benchmark's video settings) with a plain
in-batch symmetric InfoNCE (CLIP-style: each clip's two embeddings are positives, the batch's other
clips negatives), on the training pipeline's own samples, for one pairing:

* ``av`` — audio with video of the same clip (the cross-modal task every method needs);
* ``vv`` — two video views of a clip (other crops and times); ``aa`` — two audio views.

Every ``--every`` steps it prints the loss (ln B = no pairing learnt) and the held-out-view pairing
R@1 over ``--held`` training clips (chance 1 / held)::

    python benchmarks/avdigits_contrastive_check.py --pair av --steps 400
    python benchmarks/avdigits_contrastive_check.py --pair vv --steps 100
    python benchmarks/avdigits_contrastive_check.py --pair av --video-view ink --manifest OUT/corpus/train.csv
    python benchmarks/avdigits_contrastive_check.py --pair av --also vv,aa   # with intra-modal terms
    python benchmarks/avdigits_contrastive_check.py --pair av --label-warmup 300   # oracle: video knows digits
    python benchmarks/avdigits_contrastive_check.py --pair vv --video-augment strong --probe   # digits learnt?

``--probe`` adds the digit linear probe of both encoders' frozen features (the frozen suite of
``benchmarks/avdigits.py``: middle window of every clip of the corpus, fit on the train split, scored
on the test split) before the first step and after the last (``PROBE`` lines): learning to pair views
is not learning the digit.

It reads the training split that ``benchmarks/avdigits.py`` wrote (``outputs/avdigits/corpus/train.csv``).
About 0.6 (av) to 0.8 (vv) s per step on 2 cores, after about 45 s of decoding.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from avdigits import COLOUR_AND_OCCLUSION_OFF  # noqa: E402
from avdigits_random_features import VIEWS, InputView  # noqa: E402

from avssl.data.datasets import collate_views  # noqa: E402
from avssl.data.manifest import Manifest  # noqa: E402
from avssl.demo.run import evaluate_methods, pretraining_config  # noqa: E402
from avssl.evaluate.retrieval import recall_at_k  # noqa: E402
from avssl.train.data import PretrainingData  # noqa: E402
from avssl.train.runner import build_method  # noqa: E402

# The view each side of a pairing reads: (modality, draw offset); a second view of the same modality
# comes from another epoch's draws (other crop, other window).
PAIRINGS = {"av": (("audio", 0), ("video", 0)), "vv": (("video", 0), ("video", 1)), "aa": (("audio", 0), ("audio", 1))}
SECOND_DRAW = 1_000_003  # epoch offset of the second view's draws
LABEL_WARMUP_EPOCH = 3_000_017  # first draws of --label-warmup's steps
HELD_EPOCH = 2_000_003  # the draws the held-out pairing is measured on (never a training step's)
# --video-augment: the video ops of the views (crop scale aside). crops: as benchmarks/avdigits.py's
# default; method: xID's own; strong: SimCLR's colour distortion (strength 0.8 with p 0.8, grayscale
# p 0.2), which makes two views of a clip differ in colour so that colour alone cannot pair them.
VIDEO_AUGMENTS = {
    "crops": COLOUR_AND_OCCLUSION_OFF,
    "method": {},
    "strong": {**COLOUR_AND_OCCLUSION_OFF, "jitter": (0.8, 0.8, 0.8, 0.2), "jitter_p": 0.8, "grayscale_p": 0.2},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=REPO_ROOT / "outputs/avdigits/corpus/train.csv")
    parser.add_argument("--pair", choices=sorted(PAIRINGS), default="av")
    parser.add_argument("--also", type=lambda text: [p for p in text.split(",") if p], default=[],
                        help="pairings whose losses are added to --pair's (e.g. vv,aa: CrissCross-like intra-modal terms)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--label-warmup", type=int, default=0,
                        help="oracle: first train the video encoder this many steps on the digit labels (linear head, "
                             "cross-entropy), to see whether the pairing learns once the video carries the digit")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--video-view", choices=VIEWS, default="colour",
                        help="what the video encoder reads (benchmarks/avdigits_random_features.py): colour as "
                             "decoded, grey (channel mean) or ink (colour distance to the clip's median colour)")
    parser.add_argument("--crop-scale", type=float, default=0.4, help="as benchmarks/avdigits.py")
    parser.add_argument("--video-augment", choices=sorted(VIDEO_AUGMENTS), default="crops",
                        help="crops: crops and flips (the benchmark's default); method: xID's own ops; strong: "
                             "SimCLR's colour distortion")
    parser.add_argument("--probe", action="store_true",
                        help="digit linear probe of both encoders before the first step and after the last (on the "
                             "corpus manifest.csv beside --manifest: train and test splits)")
    parser.add_argument("--held", type=int, default=96, help="training clips whose pairing is measured")
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


class PairEmbedder:
    """Embeds one side of a pairing: the method's encoder (the video one reading ``video_view``)
    and projection head of that modality."""

    def __init__(self, method: nn.Module, video_view: str) -> None:
        self.method = method
        self.encoders = {"video": InputView(method.video_encoder, video_view), "audio": method.audio_encoder}

    def __call__(self, batch: dict, modality: str) -> Tensor:
        """``[B, D]`` L2-normalised embeddings of the batch's first ``modality`` view."""
        head = getattr(self.method, f"{modality}_proj")
        return F.normalize(head(self.encoders[modality](batch[modality][0])), dim=1)


def draw(dataset, indices: np.ndarray, epoch: int) -> dict:
    dataset.set_epoch(epoch)
    return collate_views([dataset[int(i)] for i in indices])


def embed_views(embed: PairEmbedder, dataset, indices: np.ndarray, epoch: int, pairs: list[str]) -> dict:
    """``{(modality, draw): [B, D]}`` for every view the ``pairs`` read, of the clips ``indices``: each
    draw's batch is read once and each view embedded once, however many pairings share it."""
    views = {view for pair in pairs for view in PAIRINGS[pair]}
    batches = {offset: draw(dataset, indices, epoch + offset * SECOND_DRAW) for offset in {o for _, o in views}}
    return {(modality, offset): embed(batches[offset], modality) for modality, offset in views}


def symmetric_infonce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Mean of the a→b and b→a cross-entropies over the batch's similarity matrix ``[B, B]``."""
    logits = a @ b.T / temperature
    target = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def pairing_r1(a: Tensor, b: Tensor) -> float:
    """Share of rows of ``a`` whose most similar row of ``b`` (cosine) is their own."""
    clips = np.arange(len(a))  # each clip its own class
    return recall_at_k(a.numpy(), clips, b.numpy(), clips, ks=(1,), metric="cosine")["R@1"] / 100.0


def warm_video_with_labels(embed: PairEmbedder, dataset, num_items: int, steps: int, batch_size: int, lr: float,
                           rng: np.random.Generator) -> float:
    """Train the method's video encoder, reading the pairing's video view, (plus a throwaway linear
    head) on the clips' digit labels for ``steps`` steps; returns the training accuracy over the last
    50 batches."""
    encoder, trunk = embed.encoders["video"], embed.method.video_encoder
    head = nn.Linear(trunk.out_dim, 10)
    optimizer = torch.optim.Adam([*trunk.parameters(), *head.parameters()], lr=lr)
    hits: list[float] = []
    for step in range(steps):
        batch = draw(dataset, rng.choice(num_items, batch_size, replace=False), LABEL_WARMUP_EPOCH + step)
        logits = head(encoder(batch["video"][0]))
        loss = F.cross_entropy(logits, batch["label"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hits.append(float((logits.argmax(1) == batch["label"]).float().mean()))
    return float(np.mean(hits[-50:]))


def digit_probe(method: nn.Module, cfg, manifest: Manifest) -> dict[str, float]:
    """Linear-probe and kNN accuracy (%) of the digit from the method's frozen video and audio
    encoders on ``manifest`` (train split fit, test split scored), as ``benchmarks/avdigits.py`` scores."""
    scores = evaluate_methods(manifest, {"check": (method, cfg)}, progress=False)["check"][1]
    method.train()  # evaluate_methods left the encoders in eval mode
    return {key: scores[key] for key in ("video_probe", "audio_probe", "video_knn", "audio_knn")}


def print_probe(method: nn.Module, cfg, manifest: Manifest, step: int) -> None:
    scores = digit_probe(method, cfg, manifest)
    print(f"PROBE step={step} " + " ".join(f"{k}={v:.1f}" for k, v in scores.items()), flush=True)


def main() -> int:
    args = parse_args()
    unknown = sorted(set(args.also) - set(PAIRINGS))
    if unknown:
        raise SystemExit(f"--also: unknown pairings {unknown}; available: {', '.join(PAIRINGS)}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = pretraining_config("xid", args.manifest, Path("unused"), seed=args.seed, progress=False)
    cfg.data.video_augment_overrides.update({"scale": (args.crop_scale, 1.0), **VIDEO_AUGMENTS[args.video_augment]})
    cfg.method.video_encoder_kwargs["pool"] = "avg"
    manifest = Manifest.read(args.manifest)
    method = build_method(cfg.method, len(manifest))
    data = PretrainingData(cfg.data, manifest)
    data.setup("fit")  # decode every clip once into memory
    embed = PairEmbedder(method, args.video_view)
    optimizer = torch.optim.Adam(method.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    held = np.linspace(0, len(manifest) - 1, args.held).round().astype(int)
    print(f"[check] pair={args.pair} clips={len(manifest)} batch={args.batch_size} lr={args.lr:g} "
          f"temperature={args.temperature:g} video_view={args.video_view} also={','.join(args.also) or '-'} "
          f"video_augment={args.video_augment}; "
          f"ln(batch) = {math.log(args.batch_size):.3f}, held-out pairing chance = {1 / args.held:.3f}")
    if args.label_warmup:
        accuracy = warm_video_with_labels(embed, data.dataset, len(manifest), args.label_warmup, args.batch_size,
                                          args.lr, rng)
        print(f"[check] video encoder trained {args.label_warmup} steps on the labels (accuracy over its last 50 batches "
              f"{accuracy:.2f})", flush=True)
    corpus = Manifest.read(args.manifest.with_name("manifest.csv")) if args.probe else None
    if corpus is not None:
        print_probe(method, cfg, corpus, 0)
    start = time.perf_counter()
    for step in range(args.steps):
        indices = rng.choice(len(manifest), args.batch_size, replace=False)
        pairs = [args.pair, *args.also]
        views = embed_views(embed, data.dataset, indices, step, pairs)
        losses = [symmetric_infonce(*(views[view] for view in PAIRINGS[pair]), args.temperature) for pair in pairs]
        loss = losses[0]  # the printed loss is --pair's alone
        optimizer.zero_grad()
        sum(losses).backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps - 1:
            method.eval()
            with torch.no_grad():
                views = embed_views(embed, data.dataset, held, HELD_EPOCH, [args.pair])
                r1 = pairing_r1(*(views[view] for view in PAIRINGS[args.pair]))
            method.train()
            print(f"CHECK pair={args.pair} step={step} loss={float(loss.detach()):.3f} held_pair_r1={r1:.3f} "
                  f"seconds={time.perf_counter() - start:.0f}", flush=True)
    if corpus is not None:
        print_probe(method, cfg, corpus, args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
