"""Pretrain a self-supervised audio-visual method from a YAML config (docs/pretraining.md).

    avssl pretrain --config configs/pretrain/crisscross/demo_cpu.yaml [--trainer.max_steps 20 ...]
    avssl pretrain --config CONFIG --print_config      # the resolved config, nothing is run
    avssl pretrain --help                              # every option, its type and default
"""

from __future__ import annotations

import argparse
import sys

from jsonargparse import ArgumentError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The options are typed and parsed by jsonargparse (YAML files plus dotted overrides), which
    # argparse cannot describe. This sub-parser therefore treats no argument as an option and
    # hands all of them, --help included, to jsonargparse.
    parser.prefix_chars = "\0"
    parser.add_argument("options", nargs=argparse.REMAINDER, help="--config FILE and --section.field VALUE overrides")


def run(args: argparse.Namespace) -> int:
    from avssl.train.config import build_parser, namespace_to_config
    from avssl.train.runner import PretrainingStopped, run_pretraining

    parser = build_parser()
    namespace = parser.parse_args(args.options)  # prints usage and exits on a bad option
    try:
        config = namespace_to_config(parser, namespace)
    except (ValueError, ArgumentError) as error:
        print(f"avssl pretrain: invalid config: {error}", file=sys.stderr)
        return 2
    try:
        result = run_pretraining(config)
    except PretrainingStopped as error:
        print(f"avssl pretrain: {error}", file=sys.stderr)
        return 1
    if result.is_global_zero:
        print(f"trained {result.global_step} steps ({result.epochs:.2f} epochs); outputs in {result.output_dir}")
        print(f"checkpoint: {result.checkpoint}")
        print(result.skipped.report())
    return 0
