"""Media facts of a benchmark's files for its manifest: probed in parallel, reused from a cache.

The adapters read annotation files only; the manifest also holds what each file is (duration,
streams, frame rate, size, sample rate). :func:`probe_records` probes the files (header only, no
frame counting: a few ms each) in a thread pool — the decoders release the GIL — and reuses the
facts of a previously written manifest for files whose path and size are unchanged, so a benchmark
of 300 k clips is probed once.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from avssl.data.manifest import Manifest, ManifestRow
from avssl.media import decode
from avssl.media.decode import MediaInfo

__all__ = ["probe_records"]

# Probing can fail in many ways on a damaged file; all of them mean "skip it and say why".
PROBE_FAILURES = (decode.DecodeError, RuntimeError, ValueError, OSError, EOFError, IndexError)
SIZE_COLUMN = "size_bytes"


def _facts(path: Path) -> MediaInfo:
    info = decode.probe(path, count_frames=False)
    if not (info.has_video or info.has_audio):  # e.g. a truncated or foreign file
        raise decode.DecodeError(path, "no video or audio stream could be read")
    return info


def probe_records(
    records: list[dict[str, str]], root: Path, workers: int = 8, known: Manifest | None = None
) -> tuple[list[ManifestRow], list[tuple[str, str]]]:
    """Manifest rows of annotation ``records`` (``path`` relative to ``root``, ``label``, ``split``,
    other keys kept as extra columns), and ``(path, reason)`` of the files that could not be probed.

    ``known``: a manifest whose rows (same relative path and ``size_bytes``) are reused unprobed.
    """
    cached = {row.path: row for row in known} if known is not None else {}
    sizes = [os.stat(root / r["path"]).st_size for r in records]
    todo = [i for i, (r, size) in enumerate(zip(records, sizes))
            if r["path"] not in cached or cached[r["path"]].extra.get(SIZE_COLUMN) != str(size)]

    def probe(i: int) -> MediaInfo | str:
        try:
            return _facts(root / records[i]["path"])
        except PROBE_FAILURES as exc:
            return f"{type(exc).__name__}: {exc}".splitlines()[0]

    with ThreadPoolExecutor(max(1, workers)) as pool:
        probed = dict(zip(todo, pool.map(probe, todo)))
    rows, unreadable = [], []
    for i, (record, size) in enumerate(zip(records, sizes)):
        path, label, split = record["path"], record.get("label", ""), record.get("split", "")
        extra = {k: v for k, v in record.items() if k not in ("path", "label", "split") and v}
        extra[SIZE_COLUMN] = str(size)
        if i not in probed:
            rows.append(dataclasses.replace(cached[path], label=label, split=split, extra=extra))
        elif isinstance(probed[i], str):
            unreadable.append((path, probed[i]))
        else:
            rows.append(ManifestRow.from_media_info(path, probed[i], label, split, **extra))
    return rows, unreadable
