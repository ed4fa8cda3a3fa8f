"""VGGSound (Chen et al. 2020): ~200 k ten-second YouTube clips, 309 sound classes.

Layout::

    ROOT/vggsound.csv          (no header) youtube_id,start_seconds,label,split   (split: train | test)
    ROOT/**/<youtube_id>_<start:06d>.mp4   (any folder structure below ROOT)

Files are found by name anywhere under ROOT: ``<id>_<start:06d>``, ``<id>_<start_ms>_<end_ms>``
(the SpecVQGAN naming, 10 s clips) or ``<id>_<start>``. Classes: sorted labels of the csv. A clip
listed twice with different labels keeps its first label (the csv has a few such duplicates).
"""

from __future__ import annotations

import logging
from pathlib import Path

from avssl.data.benchmarks import (
    AnnotationError,
    Annotations,
    Benchmark,
    MediaIndex,
    find_annotation_file,
    read_csv_records,
    register_benchmark,
    relative,
)

logger = logging.getLogger(__name__)
COLUMNS = ("youtube_id", "start", "label", "split")
CLIP_SECONDS = 10


def clip_stems(youtube_id: str, start: int) -> list[str]:
    return [f"{youtube_id}_{start:06d}", f"{youtube_id}_{start * 1000}_{(start + CLIP_SECONDS) * 1000}",
            f"{youtube_id}_{start}"]


def build(root: Path, csv_file: str | Path | None = None) -> Annotations:
    """Read VGGSound under ``root`` (``csv_file``: another csv path relative to ``root``)."""
    csv_path = root / csv_file if csv_file else find_annotation_file(root, ["vggsound.csv"], "VGGSound vggsound.csv")
    index = MediaIndex(root)
    rows, missing, seen, conflicts = [], [], {}, 0
    for line_no, record in read_csv_records(csv_path, COLUMNS, fieldnames=COLUMNS):
        if not record["start"].isdigit():
            raise AnnotationError(f"{csv_path}:{line_no}: start must be whole seconds, got {record['start']!r}")
        if record["split"] not in ("train", "test"):
            raise AnnotationError(f"{csv_path}:{line_no}: split must be train or test, got {record['split']!r}")
        key = (record["youtube_id"], int(record["start"]))
        if key in seen:
            conflicts += seen[key] != record["label"]
            continue
        seen[key] = record["label"]
        path = index.find(clip_stems(*key))
        if path is None:
            missing.append(clip_stems(*key)[0])
            continue
        rows.append({"path": relative(path, root), "label": record["label"], "split": record["split"],
                     "youtube_id": key[0], "start": str(key[1])})
    if conflicts:
        logger.warning("vggsound: %d clips are listed again with another label in %s; the first label is kept",
                       conflicts, csv_path)
    classes = sorted(set(seen.values()))
    return Annotations(rows, classes, missing, len(seen))


VGGSOUND = register_benchmark(Benchmark(
    name="vggsound", modalities=("video", "audio"), folds=(), multi_label=False,
    source="Chen et al. 2020, VGGSound; vggsound.csv (youtube_id,start,label,split)", build=build,
))
