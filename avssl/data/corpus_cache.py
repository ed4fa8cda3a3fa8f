"""A generated corpus folder, reused when it already holds exactly what was asked for.

Shared by the generators of `avssl.data.synthetic` and `avssl.data.avdigits`. A generator writes
`OUT/config.json` holding its version, a fingerprint of everything that decides the content (the
config, and for corpora built from source files a digest of those), whether generation finished,
and the config itself. The index file (a CSV with a `path` column) lists every clip.

- `is_complete_corpus`: same fingerprint, marked complete, and every listed clip present: reuse.
- `clear_previous_corpus`: otherwise delete what an earlier generation wrote (its clips, `.part`
  leftovers of an interrupted run, its index files) and nothing else; a non-empty folder that holds
  no `config.json` is refused rather than touched.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STATE_FILE = "config.json"


def read_state(out_dir: Path) -> dict | None:
    """The generator's state of `out_dir` (its `config.json`), or None when absent or unreadable."""
    try:
        return json.loads((out_dir / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_state(
    out_dir: Path,
    *,
    generator_version: int,
    fingerprint: str,
    complete: bool,
    config: dict[str, Any],
    **details: Any,
) -> None:
    """Write `config.json` atomically (a reader sees the old or the new file, never half of one).

    `details` are further JSON-able entries recorded after the config (e.g. input digests).
    """
    state = {
        "generator_version": generator_version,
        "fingerprint": fingerprint,
        "complete": complete,
        "config": config,
        **details,
    }
    partial = out_dir / (STATE_FILE + ".part")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(partial, out_dir / STATE_FILE)


def is_complete_corpus(out_dir: Path, fingerprint: str, index_file: str, num_clips: int) -> bool:
    """True when `out_dir` holds a finished corpus with `fingerprint` whose `index_file` lists
    exactly `num_clips` clips (its `path` column, relative to `out_dir`), all present."""
    state = read_state(out_dir)
    if not state or state.get("fingerprint") != fingerprint or not state.get("complete"):
        return False
    index = out_dir / index_file
    if not index.is_file():
        return False
    with index.open(newline="") as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    return len(paths) == num_clips and all((out_dir / p).is_file() for p in paths)


def clear_previous_corpus(
    out_dir: Path, *, corpus_name: str, clip_folders: Iterable[str], files: Iterable[str]
) -> None:
    """Make `out_dir` ready for a fresh corpus, deleting only what a previous generation wrote.

    `clip_folders` (relative to `out_dir`, deepest first) lose their `*.mp4` and `*.mp4.part`
    files and are removed once empty; `files` (relative names) are deleted; `config.json` goes last.
    A missing `out_dir` is created. `corpus_name` names the corpus in the error for a foreign folder.
    """
    if not out_dir.exists():
        out_dir.mkdir(parents=True)
        return
    if not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: corpus output path exists and is not a folder")
    if read_state(out_dir) is None:
        if any(out_dir.iterdir()):
            raise FileExistsError(
                f"{out_dir}: folder is not empty and holds no {corpus_name} ({STATE_FILE} missing); "
                "give a new or empty folder"
            )
        return
    for folder in clip_folders:
        clip_dir = out_dir / folder
        if clip_dir.is_dir():
            for clip in [*clip_dir.glob("*.mp4"), *clip_dir.glob("*.mp4.part")]:
                clip.unlink()
            if not any(clip_dir.iterdir()):
                clip_dir.rmdir()
    for name in (*files, STATE_FILE):
        (out_dir / name).unlink(missing_ok=True)
