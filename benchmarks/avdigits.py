"""AV-Digits: does each method learn, on real handwriting and real speech, within a small CPU budget?

Builds the AV-Digits corpus (:mod:`avssl.data.avdigits`: an MNIST digit that appears when its
spoken digit starts, over clutter, with the FSDD recording of that digit in noise; test clips use a
speaker and MNIST images never seen in pretraining), pretrains every method's CPU config
(``configs/pretrain/*/demo_cpu*.yaml``, small encoders) on the train split with the same time budget
each (every method's video crops keep at least ``--crop-scale`` of the frame, 0.4; with the default
``--video-augment crops`` the colour, grayscale, blur and cutout ops are off; the small R(2+1)D pools
by ``--video-pool``, avg: the same for all), and scores frozen features on the test split
(:mod:`avssl.evaluate.frozen_suite`): video and audio linear probe and kNN top-1 (digit; audio from
an unseen speaker), audio→video retrieval R@1 (same digit, in the method's shared space), next to a
random initialisation of each method's own encoders and inputs (``random:<method>``; the gains are
measured against it), the ``random`` row the issue asks for (xID's architecture) and a supervised
reference (the small encoders on XDC's inputs, trained with the labels for the same budget).

    python benchmarks/avdigits.py                                  # every method, 4 min each
    python benchmarks/avdigits.py --methods xid,crisscross --minutes 2
    python benchmarks/avdigits.py --mnist PATH/mnist5k --fsdd PATH/fsdd --test-speakers george
    python benchmarks/avdigits.py --corpus "background_colour=(0.2, 0.8)" --corpus "digit_colour=(0.0, 1.0)"
    python benchmarks/avdigits.py --methods xdc --minutes 15 --max-steps 6000 --no-supervised
    python benchmarks/avdigits.py --methods xid,vicreg --lr xid=3e-3,vicreg=3e-3
    python benchmarks/avdigits.py --methods xid --method-kwargs xid.loss=infonce --no-supervised
    python benchmarks/avdigits.py --methods xdc --audio-augment "freq_masks=2,time_masks=2,resize_crop=True"
    python benchmarks/avdigits.py --methods xid --minutes 20 --max-steps 80000 --no-supervised \
        --video-augment method --audio-augment "noise_snr_db=(10.0,25.0)"   # xID's best (docs/benchmarks.md)
    python benchmarks/avdigits.py --methods xid,xdc --minutes 4 --max-steps 20000 \
        --accelerator gpu --precision bf16-mixed --loader-workers 6 --workers 14      # one GPU, 16 cores

Prints a table, then one line per row and one per method with its probe gains over its own random
initialisation (points)::

    RESULT method=<m> video_probe=<acc> audio_probe=<acc> video_knn=<acc> audio_knn=<acc> a2v_r1=<r>
    GAIN method=<m> video_gain=<points> audio_gain=<points>
    PAIRING method=<m> a2v_pair_r1_train=<r> a2v_pair_r1_test=<r>     # methods with a shared space
    SHARED method=<m> av_cc1=<c> av_cc1_null=<c> video_probe_cca16=<acc> audio_probe_cca16=<acc> a2v_r1_cca16=<r>

(PAIRING: an audio query's nearest video is its own clip, among the training / the held-out clips —
high on the training clips alone means the method memorised its pairs instead of learning the digits.
SHARED: what the audio and video backbone features have in common, by linear CCA on the training
clips — the largest canonical correlation next to its level with the pairs shuffled, and the digit
probes and same-digit audio→video R@1 of the 16 top canonical pairs; see
``benchmarks/avdigits_shared_signal.py``.)

and writes OUT/results.md and OUT/results.json. Runtime: about (minutes + 2) per method on 2 cores
(on one GPU with 16 cores, at most minutes + 2).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import math
import shutil
import time
from pathlib import Path

import torch

from avssl.data.avdigits import AVDigitsConfig, build_avdigits
from avssl.data.manifest import Manifest
from avssl.data.views import get_view_recipe
from avssl.demo.methods import DEMO_CONFIGS
from avssl.demo.run import evaluate_methods, pretraining_config
from avssl.evaluate.cca import shared_signal_scores
from avssl.evaluate.frozen_suite import format_table, pairing_recall
from avssl.train.config import MethodConfig
from avssl.train.runner import build_method, run_pretraining

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULT_KEYS = ("video_probe", "audio_probe", "video_knn", "audio_knn", "a2v_r1")
GAIN_KEYS = ("video_gain", "audio_gain")  # probe accuracy minus that of the method's own random init
PAIRING_KEYS = ("a2v_pair_r1_train", "a2v_pair_r1_test")  # audio finds its own clip's video (memorised or learned)
# What the audio and video backbone features share (avssl.evaluate.cca): the largest canonical
# correlation against its level with shuffled pairs, and the digit probes of the top 16 canonical pairs.
SHARED_KEYS = ("av_cc1", "av_cc1_null", "video_probe_cca16", "audio_probe_cca16", "a2v_r1_cca16")
TABLE_KEYS = (*RESULT_KEYS, *GAIN_KEYS, *PAIRING_KEYS, "av_cc1", "av_cc1_null", "video_purity", "audio_purity")
REFERENCE = "supervised"
RANDOM_ARCHITECTURE_OF = "xid"  # the random row: the small CNN encoders most methods train


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/avdigits"))
    parser.add_argument("--mnist", type=Path, default=SHARED_DATA / "mnist5k", help="folder holding mnist5k.npz")
    parser.add_argument("--fsdd", type=Path, default=SHARED_DATA / "fsdd", help="FSDD folder (MANIFEST.csv, audio/)")
    parser.add_argument("--test-speakers", default="george", help="comma-separated FSDD speakers held out")
    parser.add_argument("--corpus", type=parse_corpus_field, action="append", default=[], metavar="FIELD=VALUE",
                        help="an AVDigitsConfig field to change (repeatable; a Python literal), e.g. "
                             "--corpus 'background_colour=(0.2, 0.8)' --corpus 'digit_colour=(0.0, 1.0)' (the first corpus's colours)")
    parser.add_argument("--methods", default="all", help=f"comma-separated, or all: {', '.join(DEMO_CONFIGS)}")
    parser.add_argument("--minutes", type=float, default=4.0, help="training time per method")
    parser.add_argument("--max-steps", type=int, default=2000, help="step cap (the schedule spans it)")
    parser.add_argument("--crop-scale", type=float, default=0.4,
                        help="smallest area share of the video crops of every method (the configs' own: 0.08-0.2; "
                             "a digit is a small object that such crops mostly cut out)")
    parser.add_argument("--video-augment", choices=("crops", "method"), default="crops",
                        help="crops: crops and flips only, for every method (colour jitter, grayscale, blur and "
                             "cutout kept the small 3-D CNNs at chance in 3-minute runs); method: each "
                             "method's own video augmentation (xID's colour jitter lets its video learn the "
                             "digits in 20 minutes, docs/benchmarks.md)")
    parser.add_argument("--video-pool", choices=("avg", "max", "method"), default="avg",
                        help="global pooling of the small R(2+1)D (avg learns the digits faster than AVID's max)")
    parser.add_argument("--lr", type=parse_learning_rates, default={},
                        help="method=lr,... : learning rates instead of the configs' own (e.g. xid=3e-3)")
    parser.add_argument("--method-kwargs", type=parse_method_kwargs, default={},
                        help="method.key=value,... : method.kwargs entries to change (e.g. xid.loss=infonce)")
    parser.add_argument("--audio-augment", type=parse_audio_augment, default={},
                        help="key=value,... : audio augmentation arguments changed for every method with sound "
                             "(avssl.media.augment.presets.audio_augment), e.g. "
                             "freq_masks=2,time_masks=2,resize_crop=True (CrissCross's spectrogram ops)")
    parser.add_argument("--no-supervised", action="store_true",
                        help="leave out the supervised reference (for experiments on single methods)")
    parser.add_argument("--workers", type=int, default=2, help="processes building the corpus; torch threads")
    parser.add_argument("--loader-workers", type=int, default=1, help="DataLoader workers of each pretraining run")
    parser.add_argument("--accelerator", default=None, help="pretraining accelerator (cpu, gpu; the configs': cpu)")
    parser.add_argument("--precision", default=None, help="pretraining precision, e.g. bf16-mixed on a GPU")
    parser.add_argument("--seed", type=int, default=0, help="builds the corpus; seeds training unless --train-seed")
    parser.add_argument("--train-seed", type=int, default=None,
                        help="seed of the pretraining runs only (the same corpus, another run: run-to-run spread)")
    return parser.parse_args()


def top_level_items(text: str) -> list[str]:
    """'a=1, b=(2, 3)' -> ['a=1', 'b=(2, 3)']: split at the commas outside brackets, items stripped."""
    items, depth, current = [], 0, []
    for char in text:
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def assignments(text: str) -> list[tuple[str, str, str]]:
    """'a=1, b=(2, 3)' -> [('a=1', 'a', '1'), ('b=(2, 3)', 'b', '(2, 3)')] (item, left, right, stripped;
    empty sides for an item without '='), the shared syntax of --lr, --method-kwargs and --audio-augment."""
    return [(item, *(side.strip() for side in item.partition("=")[::2])) for item in top_level_items(text)]


def literal_or_text(raw: str) -> object:
    """A Python literal where ``raw`` parses as one (numbers, True, tuples), else the string itself."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def parse_learning_rates(text: str) -> dict[str, float]:
    """'xid=3e-3,vicreg=1e-3' -> {'xid': 0.003, 'vicreg': 0.001}; a clear error for anything else."""
    rates: dict[str, float] = {}
    for item, method, value in assignments(text):
        try:
            rate = float(value)
        except ValueError:
            rate = float("nan")
        if not method or not rate > 0:
            raise argparse.ArgumentTypeError(f"{item!r} is not method=positive_number")
        rates[method] = rate
    return rates


def parse_method_kwargs(text: str) -> dict[str, dict[str, object]]:
    """'xid.loss=infonce,xdc.num_clusters_audio=20' -> {'xid': {'loss': 'infonce'}, 'xdc': {...: 20}};
    values are Python literals where they parse as one (numbers, True, lists), else strings."""
    changes: dict[str, dict[str, object]] = {}
    for item, target, raw in assignments(text):
        method, dot, key = target.partition(".")
        if not (dot and method and key.strip() and raw):
            raise argparse.ArgumentTypeError(f"{item!r} is not method.key=value")
        changes.setdefault(method, {})[key.strip()] = literal_or_text(raw)
    return changes


def parse_audio_augment(text: str) -> dict[str, object]:
    """'freq_masks=2,resize_crop=True' -> {'freq_masks': 2, 'resize_crop': True}: keyword arguments of
    :func:`avssl.media.augment.presets.audio_augment` (whether they exist is the preset's to say)."""
    changes: dict[str, object] = {}
    for item, key, raw in assignments(text):
        if not (key and raw):
            raise argparse.ArgumentTypeError(f"{item!r} is not key=value")
        changes[key] = literal_or_text(raw)
    return changes


def parse_corpus_field(text: str) -> tuple[str, object]:
    """'digit_colour=(0.65, 1.0)' -> ('digit_colour', (0.65, 1.0)); the value must be a Python literal.
    (Whether the field exists and the value is valid is AVDigitsConfig's to say.)"""
    name, equals, raw = (part.strip() for part in text.partition("="))
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{text!r}: the value {raw!r} is not a Python literal") from None
    if not (name and equals):
        raise argparse.ArgumentTypeError(f"{text!r} is not field=value")
    return name, value


def corpus_config(args: argparse.Namespace) -> AVDigitsConfig:
    """The corpus settings: the defaults, the seed, the held-out speakers and every --corpus change."""
    fields = {"seed": args.seed, "test_speakers": tuple(args.test_speakers.split(",")), **dict(args.corpus)}
    try:
        return AVDigitsConfig.from_dict(fields)
    except (TypeError, ValueError) as error:
        raise SystemExit(f"--corpus: {error}") from None


def rerun_command(args: argparse.Namespace) -> str:
    """The command line that repeats this run (data paths and output folder left out)."""
    parts = ["python benchmarks/avdigits.py"]
    for key, value in vars(args).items():
        flag = "--" + key.replace("_", "-")
        if key in ("mnist", "fsdd", "out") or value is False or value is None or value in ({}, []):
            continue
        if value is True:
            parts.append(flag)
        elif key == "corpus":
            parts.extend(f'{flag} "{name}={value!r}"' for name, value in value)
        elif key == "method_kwargs":
            parts.append(f"{flag} " + ",".join(f"{m}.{k}={v}" for m, kv in value.items() for k, v in kv.items()))
        elif key == "audio_augment":
            parts.append(f'{flag} "' + ",".join(f"{k}={v!r}" for k, v in value.items()) + '"')
        elif isinstance(value, dict):
            parts.append(f"{flag} " + ",".join(f"{k}={v:g}" for k, v in value.items()))
        else:
            parts.append(f"{flag} {value}")
    return " ".join(parts)


def random_initialisation(spec: MethodConfig, num_items: int, *, seed: int) -> torch.nn.Module:
    """The method ``spec`` builds, at random initialisation: a method started from another's weights
    (AVID-CMA's ``init_from``, a trained xID) is compared with its architecture untrained, not with
    the weights it started from."""
    untrained = copy.deepcopy(spec)
    untrained.kwargs.pop("init_from", None)
    torch.manual_seed(seed)
    return build_method(untrained, num_items)


def probe_gains(trained: dict[str, float], random: dict[str, float]) -> dict[str, float]:
    """Linear-probe points gained over the same architecture at random initialisation (nan: no such modality)."""
    return {gain: trained[f"{modality}_probe"] - random[f"{modality}_probe"]
            for gain, modality in zip(GAIN_KEYS, ("video", "audio"))}


def shared_signal(features) -> dict[str, float]:
    """:func:`~avssl.evaluate.cca.shared_signal_scores` of the 16 top canonical pairs, or NaN for
    every key when the features hold one modality only (VICReg-V)."""
    if {"video", "audio"} <= set(features.features):
        return shared_signal_scores(features, components=(16,))
    return dict.fromkeys(SHARED_KEYS, math.nan)


def result_line(name: str, scores: dict[str, float], tag: str = "RESULT", keys: tuple[str, ...] = RESULT_KEYS) -> str:
    def value(key: str) -> str:
        return "nan" if math.isnan(scores[key]) else f"{scores[key]:.2f}"

    return f"{tag} method={name} " + " ".join(f"{key}={value(key)}" for key in keys)


# Video ops that --video-augment crops switches off (video_training_augment parameters).
COLOUR_AND_OCCLUSION_OFF = {"jitter": (0.0, 0.0, 0.0, 0.0), "grayscale_p": 0.0, "blur_p": 0.0, "cutout_p": 0.0}


def apply_benchmark_video_settings(cfg, args: argparse.Namespace) -> None:
    """The video settings every method shares in this benchmark (crop scale, augmentation, pooling)."""
    cfg.data.video_augment_overrides["scale"] = (args.crop_scale, 1.0)
    if args.video_augment == "crops":
        cfg.data.video_augment_overrides.update(COLOUR_AND_OCCLUSION_OFF)
        if get_view_recipe(cfg.data.recipe).local_video_augment is not None:  # local views (XKD): own pipeline
            cfg.data.local_video_augment_overrides.update(COLOUR_AND_OCCLUSION_OFF)
    if args.video_pool != "method" and cfg.method.video_encoder == "r2plus1d_small":
        cfg.method.video_encoder_kwargs["pool"] = args.video_pool


def apply_benchmark_audio_settings(cfg, args: argparse.Namespace) -> None:
    """--audio-augment on the main audio view of every method that has one (not VICReg-V)."""
    if args.audio_augment and get_view_recipe(cfg.data.recipe).audio is not None:
        cfg.data.audio_augment_overrides.update(args.audio_augment)


def main() -> int:
    args = parse_args()
    torch.set_num_threads(max(args.workers, 1))
    methods = [m for m in DEMO_CONFIGS if m != REFERENCE] if args.methods == "all" else args.methods.split(",")
    unknown = sorted(set(methods) - set(DEMO_CONFIGS))
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; available: {', '.join(DEMO_CONFIGS)}")
    # The supervised reference runs right after the first method: the ceiling is known early.
    methods = [m for m in methods if m != REFERENCE]
    if not args.no_supervised:
        methods = [*methods[:1], REFERENCE, *methods[1:]]
    for flag, named in (("--lr", args.lr), ("--method-kwargs", args.method_kwargs)):
        stray = sorted(set(named) - set(methods))
        if stray:
            raise SystemExit(f"{flag}: {stray} not among the methods of this run ({', '.join(methods)})")
    mnist = args.mnist / "mnist5k.npz" if args.mnist.is_dir() else args.mnist
    config = corpus_config(args)
    start = time.perf_counter()
    manifest = Manifest.read(build_avdigits(args.out / "corpus", mnist=mnist, fsdd=args.fsdd, config=config,
                                            workers=args.workers))
    train = manifest.with_rows([row for row in manifest if row.split == "train"])
    train_path = train.write(args.out / "corpus" / "train.csv")
    print(f"[avdigits] {len(manifest)} clips ({len(train)} train) in {time.perf_counter() - start:.0f} s")

    rows: dict[str, dict[str, float]] = {}
    facts: dict[str, dict[str, object]] = {}
    train_seed = args.seed if args.train_seed is None else args.train_seed
    for method in methods:
        run_dir = args.out / "runs" / method
        shutil.rmtree(run_dir, ignore_errors=True)
        cfg = pretraining_config(method, train_path, run_dir, seed=train_seed, steps=args.max_steps,
                                 max_minutes=args.minutes, progress=False, accelerator=args.accelerator,
                                 precision=args.precision)
        cfg.data.num_workers = args.loader_workers
        apply_benchmark_video_settings(cfg, args)
        apply_benchmark_audio_settings(cfg, args)
        # The budget alone ends every run: the configs' max_epochs (5 for XKD, 6 for XDC, 20 for the
        # others) would otherwise stop some methods early once --minutes is longer than a few minutes.
        cfg.trainer.max_epochs = None
        if method in args.lr:
            cfg.optimizer.lr = args.lr[method]
        cfg.method.kwargs.update(args.method_kwargs.get(method, {}))
        began = time.perf_counter()
        result = run_pretraining(cfg)
        trained = time.perf_counter() - began
        facts[method] = {"steps": result.global_step, "epochs": round(result.epochs, 2), "train_seconds": round(trained),
                         "lr": cfg.optimizer.lr, "method_kwargs": args.method_kwargs.get(method, {})}

        def random_init() -> torch.nn.Module:
            return random_initialisation(cfg.method, len(train), seed=args.seed + 1)

        # The trained encoders and the random initialisations of the same architecture read the same
        # inputs: one evaluation decodes the corpus once for all of them.
        models = {method: result.method}
        if method != REFERENCE:
            # Each method against a random initialisation of its own encoders and inputs: random
            # features differ by architecture and front end (audio probe 27 % for xID's, 39 % for XDC's).
            models[f"random:{method}"] = random_init()
        wants_random_row = "random" not in rows and (method == RANDOM_ARCHITECTURE_OF or method == methods[-1])
        if wants_random_row and method == REFERENCE:
            models["random"] = random_init()
        evaluated = evaluate_methods(manifest, {name: (model, cfg) for name, model in models.items()},
                                     seed=args.seed, progress=False)
        scored = {name: {**scores, **pairing_recall(features), **shared_signal(features)}
                  for name, (features, scores) in evaluated.items()}
        rows[method] = scored[method]
        print(result_line(method, rows[method]), f"# {result.global_step} steps in {trained:.0f} s", flush=True)
        print(result_line(method, rows[method], "PAIRING", PAIRING_KEYS), flush=True)
        print(result_line(method, rows[method], "SHARED", SHARED_KEYS), flush=True)
        if method != REFERENCE:
            own = f"random:{method}"
            rows[own] = scored[own]
            rows[method].update(probe_gains(rows[method], rows[own]))
            print(result_line(own, rows[own]), flush=True)
        if wants_random_row:
            rows["random"] = scored.get(f"random:{method}") or scored["random"]
            facts["random"] = {"architecture_of": method}
            print(result_line("random", rows["random"]), flush=True)

    table = format_table(rows, TABLE_KEYS)
    command = rerun_command(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(f"# AV-Digits\n\n`{command}`\n\n{table}\n", encoding="utf-8")
    plain = {n: {k: (None if math.isnan(v) else v) for k, v in s.items()} for n, s in rows.items()}
    (args.out / "results.json").write_text(json.dumps({"scores": plain, "runs": facts, "command": command}, indent=1))
    print("\n" + table + "\n")
    for name, scores in rows.items():
        print(result_line(name, scores))
    for name, scores in rows.items():
        if "video_gain" in scores:
            print(f"GAIN method={name} " + " ".join(f"{k}={scores[k]:+.2f}" for k in GAIN_KEYS))
    for name, scores in rows.items():
        if not math.isnan(scores.get(PAIRING_KEYS[0], math.nan)):
            print(result_line(name, scores, "PAIRING", PAIRING_KEYS))
    for name, scores in rows.items():
        if not math.isnan(scores["av_cc1"]):
            print(result_line(name, scores, "SHARED", SHARED_KEYS))
    print(f"[avdigits] done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
