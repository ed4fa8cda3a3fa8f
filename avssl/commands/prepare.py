"""Verify a folder of media files and write its manifest (optionally re-encoded for fast loading).

Example::

    avssl prepare ~/data/kinetics --out data/k400 --labels-from-folders --require-audio \\
        --short-side 256 --gop 16 --extract-audio --workers 8

Scans SRC recursively for media (mp4 avi mkv mov webm mpg mpeg m4v flv wav flac mp3 ogg m4a opus), or
reads the files named in --file-list, decodes every one of them in full (a process pool) and writes
OUT/manifest.csv (one row per usable file) and OUT/rejected.csv (path,reason: one line per file left
out). --short-side/--gop re-encode the video to H.264 under OUT/media/ (short side, keyframe interval;
AAC audio), --extract-audio writes 16 kHz mono FLAC beside each file. Exits 0 when it ran, whatever
the number of rejected files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, metavar="SRC", help="folder of media files")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    parser.add_argument("--file-list", type=Path, metavar="LIST",
                        help="text file of paths to use (one per line, relative to SRC or absolute)")
    parser.add_argument("--labels-from-folders", action="store_true",
                        help="label each file with the name of its parent folder")
    parser.add_argument("--require-audio", action="store_true", help="reject files without an audio stream")
    parser.add_argument("--require-video", action="store_true", help="reject files without a video stream")
    parser.add_argument("--short-side", type=_positive_int, metavar="PIXELS",
                        help="re-encode the video with this short side (e.g. 256)")
    parser.add_argument("--gop", type=_positive_int, metavar="FRAMES",
                        help="re-encode the video with a keyframe every FRAMES frames (e.g. 16)")
    parser.add_argument("--no-fast-decode", action="store_true",
                        help="re-encode without x264 tune=fastdecode (smaller files, ~1.7x slower to decode)")
    parser.add_argument("--extract-audio", action="store_true", help="also write 16 kHz mono FLAC audio")
    parser.add_argument("--workers", type=_positive_int, default=max(1, min(8, os.cpu_count() or 1)),
                        help="parallel processes (default: the CPU count, at most 8)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    from avssl.data.prepare import PrepareOptions, prepare_corpus, read_file_list

    if not args.src.is_dir():
        print(f"avssl prepare: SRC {args.src} is not a folder", file=sys.stderr)
        return 2
    files = None
    if args.file_list is not None:
        if not args.file_list.is_file():
            print(f"avssl prepare: --file-list {args.file_list} does not exist", file=sys.stderr)
            return 2
        files = read_file_list(args.file_list, args.src)
    options = PrepareOptions(
        labels_from_folders=args.labels_from_folders, require_audio=args.require_audio,
        require_video=args.require_video, short_side=args.short_side, gop=args.gop,
        fast_decode=not args.no_fast_decode,
        extract_audio=args.extract_audio, workers=args.workers,
    )
    manifest, rejected = prepare_corpus(args.src, args.out, options, files, progress=not args.no_progress)
    print(f"avssl prepare: {len(manifest)} file(s) in {args.out / 'manifest.csv'}, "
          f"{len(rejected)} rejected (see {args.out / 'rejected.csv'})", file=sys.stderr)
    return 0
