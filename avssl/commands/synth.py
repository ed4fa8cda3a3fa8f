"""Generate the synthetic demo corpus: labelled, synchronised audio-visual mp4 clips.

Ten classes, each a shape paired with a sound; at every event the shape flashes exactly when its
sound starts. Writes OUT/<class>/<clip>.mp4, OUT/metadata.csv and OUT/classes.txt; a folder
already holding the same corpus is reused. See avssl.data.synthetic.
"""

from __future__ import annotations

import argparse
import sys
import time

from avssl.data.synthetic import SyntheticConfig, write_corpus


def _frame_size(text: str) -> tuple[int, int]:
    """Parse HEIGHTxWIDTH (e.g. 96x128) or a single number for a square frame."""
    parts = text.lower().split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 112x112, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SyntheticConfig()
    parser.add_argument(
        "--out", required=True, help="output folder (created; reused if it holds the same corpus)"
    )
    parser.add_argument(
        "--num-clips",
        type=int,
        default=defaults.num_clips,
        help="number of clips (default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="corpus seed (default %(default)s)"
    )
    parser.add_argument(
        "--size",
        type=_frame_size,
        default=defaults.size,
        metavar="HxW",
        help="frame height x width in pixels, both even (default 112x112)",
    )
    parser.add_argument(
        "--fps", type=int, default=defaults.fps, help="video frame rate (default %(default)s)"
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=defaults.sample_rate,
        help="audio sample rate in Hz (default %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        nargs=2,
        default=defaults.duration_range,
        metavar=("MIN", "MAX"),
        help="clip duration range in seconds (default %(default)s)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="parallel processes (default %(default)s)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    try:
        config = SyntheticConfig(
            num_clips=args.num_clips,
            seed=args.seed,
            size=args.size,
            fps=args.fps,
            sample_rate=args.sample_rate,
            duration_range=tuple(args.duration),
        )
    except ValueError as error:
        print(f"avssl synth: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        out = write_corpus(args.out, config, workers=args.workers, progress=not args.quiet)
    except (FileExistsError, NotADirectoryError) as error:
        print(f"avssl synth: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(f"synthetic corpus: {config.num_clips} clips in {out} ({elapsed:.1f} s)")
    return 0
