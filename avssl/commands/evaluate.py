"""Evaluate encoders on a benchmark with a versioned protocol and write a report.

Examples::

    avssl evaluate --protocol esc50/crisscross_svm_2s --encoder audio_resnet18_crisscross \\
        --checkpoint ckpt/audio.pth --data ~/data/ESC-50
    avssl evaluate --protocol kinetics_sound/xkd_av_svm --encoder vit_b_video_xkd \\
        --encoder vit_b_audio_xkd --checkpoint video.pth --checkpoint audio.pth --data ~/data/k400
    avssl evaluate --list

The report (JSON + Markdown: per fold and mean ± std, protocol name and version, seed, the exact
command) is written next to the first checkpoint, or into ``--out``. ``--set key=value`` changes a
protocol parameter (dotted keys reach nested ones, values are YAML); reports list every change.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", help="preset <benchmark>/<name> (see --list) or a YAML file")
    parser.add_argument("--encoder", action="append", default=[], metavar="NAME",
                        help="encoder registry name; repeat for audio-visual protocols")
    parser.add_argument("--checkpoint", action="append", default=[], type=Path, metavar="PATH",
                        help="weights: one per --encoder (same order) or one for all; none = random init")
    parser.add_argument("--data", type=Path, help="benchmark folder in its official layout")
    parser.add_argument("--folds", help="comma-separated folds to run (default: the protocol's)")
    parser.add_argument("--out", type=Path, help="report folder (default: beside the checkpoint)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="feature cache folder (resumable runs)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per forward pass")
    parser.add_argument("--workers", type=int, default=0, help="decoding worker processes")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override a protocol parameter (e.g. train.clips=10)")
    parser.add_argument("--force", action="store_true",
                        help="run what the protocol refuses by default (cross-modal retrieval without a shared space)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--list", action="store_true", help="list the protocol presets and kinds, then exit")


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``["train.clips=10", ...]`` -> ``{"train.clips": 10}`` (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def encoder_choices(names: list[str], checkpoints: list[Path]):
    from avssl.evaluate.protocols import EncoderChoice

    if not names:
        raise ValueError("give at least one --encoder")
    if checkpoints and len(checkpoints) not in (1, len(names)):
        raise ValueError(
            f"{len(checkpoints)} --checkpoint for {len(names)} --encoder: give one per encoder or one for all"
        )
    for checkpoint in checkpoints:
        if not checkpoint.is_file():
            raise FileNotFoundError(f"--checkpoint {checkpoint} does not exist")
    paired = checkpoints * len(names) if len(checkpoints) == 1 else checkpoints or [None] * len(names)
    return [EncoderChoice(n, c) for n, c in zip(names, paired)]


def command_line(args: argparse.Namespace) -> str:
    """The command as typed when this process is ``avssl evaluate``; otherwise (called from Python)
    the equivalent command rebuilt from the parsed arguments, with every option spelled out."""
    if len(sys.argv) > 1 and sys.argv[1] == "evaluate":
        return shlex.join(["avssl", *sys.argv[1:]])
    parts = ["avssl", "evaluate", "--protocol", str(args.protocol), "--data", str(args.data)]
    parts += [x for name in args.encoder for x in ("--encoder", name)]
    parts += [x for path in args.checkpoint for x in ("--checkpoint", str(path))]
    for flag, value in (("--folds", args.folds), ("--out", args.out), ("--cache", args.cache)):
        if value is not None:
            parts += [flag, str(value)]
    parts += ["--device", args.device, "--seed", str(args.seed), "--batch-size", str(args.batch_size),
              "--workers", str(args.workers)]
    parts += [x for item in args.overrides for x in ("--set", item)]
    parts += ["--force"] if args.force else []
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from avssl.evaluate.protocols import (
        EvaluationContext,
        list_protocol_kinds,
        list_protocols,
        load_protocol,
        run_protocol,
    )
    from avssl.evaluate.report import render_markdown, write_report

    if args.list:
        print("protocol kinds: " + ", ".join(list_protocol_kinds()))
        for name in list_protocols():
            preset = load_protocol(name)
            print(f"{name:40s} v{preset.version}  {preset.kind:10s} selection={preset.selection}")
        return 0
    if not args.protocol or not args.data:
        print("avssl evaluate: --protocol and --data are required (or --list)", file=sys.stderr)
        return 2
    preset = load_protocol(args.protocol)
    overrides = parse_overrides(args.overrides)
    if overrides:
        preset = preset.with_overrides(overrides)
    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    context = EvaluationContext(
        encoders=encoder_choices(args.encoder, args.checkpoint), data_root=args.data, folds=folds,
        device=args.device, seed=args.seed, cache_dir=args.cache, batch_size=args.batch_size,
        num_workers=args.workers, progress=not args.no_progress, force=args.force,
        command_line=command_line(args),
    )
    result = run_protocol(preset, context)
    json_path, md_path = write_report(result, args.out)
    print(render_markdown(result))
    print(f"report: {md_path} and {json_path}")
    return 0
