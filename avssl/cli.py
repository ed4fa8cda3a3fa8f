"""The `avssl` command line: one sub-command per module of `avssl.commands`.

Each command module defines `add_arguments(parser)` and `run(args) -> int`, and a one-line
module docstring that becomes its help text. Modules are imported only when listed here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module in avssl.commands. Keep in the order a user meets them.
COMMANDS: dict[str, str] = {
    "prepare": "avssl.commands.prepare",
    "pretrain": "avssl.commands.pretrain",
    "evaluate": "avssl.commands.evaluate",
    "extract": "avssl.commands.extract",
    "clusters": "avssl.commands.clusters",
    "zoo": "avssl.commands.zoo",
    "synth": "avssl.commands.synth",
    "concepts": "avssl.commands.concepts",
    "demo": "avssl.commands.demo",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, the other sub-commands' modules are not imported (fast start)."""
    from avssl import __version__

    parser = argparse.ArgumentParser(prog="avssl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"avssl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name)
            continue
        module = importlib.import_module(module_name)
        help_text = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None
        cmd = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
