"""HMDB51 (Kuehne et al. 2011): 51 action classes, 6,766 clips, 3 official 70/30 splits.

Layout (as downloaded and unpacked)::

    ROOT/hmdb51_org/<class>/<video>.avi
    ROOT/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt    "<video>.avi <code>"

Codes: 1 = training, 2 = testing, 0 = not used in that split. Classes are taken from the split
file names and sorted alphabetically (the order every codebase uses).
"""

from __future__ import annotations

import re
from pathlib import Path

from avssl.data.benchmarks import (
    AnnotationError,
    Annotations,
    Benchmark,
    find_folder,
    register_benchmark,
    relative,
)

SPLITS = (1, 2, 3)
CODES = {"0": "", "1": "train", "2": "test"}
SPLIT_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<split>[123])\.txt$")


def build(root: Path, splits: str | Path | None = None, videos: str | Path | None = None) -> Annotations:
    """Read HMDB51 under ``root`` (``splits``/``videos``: other folders, relative to ``root``)."""
    split_dir = root / splits if splits else find_folder(root, ["testTrainMulti_7030_splits", "splits"])
    video_dir = root / videos if videos else find_folder(root, ["hmdb51_org", "videos"])
    split_files = sorted(p for p in split_dir.glob("*_test_split*.txt") if SPLIT_FILE.match(p.name))
    if not split_files:
        raise FileNotFoundError(f"HMDB51: no <class>_test_split<k>.txt files under {split_dir}")
    rows: dict[tuple[str, str], dict[str, str]] = {}
    folds: set[int] = set()
    for file in split_files:
        match = SPLIT_FILE.match(file.name)
        label, k = match["label"], int(match["split"])
        folds.add(k)
        for line_no, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in CODES:
                raise AnnotationError(f"{file}:{line_no}: expected '<video> <0|1|2>', got {line!r}")
            row = rows.setdefault((label, parts[0]), {})
            if f"split_{k}" in row:
                raise AnnotationError(f"{file}:{line_no}: {parts[0]} is listed twice in split {k}")
            row[f"split_{k}"] = CODES[parts[1]]
    classes = sorted({label for label, _ in rows})
    present, missing = [], []
    for (label, video), splits_of in rows.items():
        path = video_dir / label / video
        if path.is_file():
            present.append({"path": relative(path, root), "label": label,
                            **{f"split_{k}": splits_of.get(f"split_{k}", "") for k in sorted(folds)}})
        else:
            missing.append(f"{label}/{video}")
    return Annotations(present, classes, missing, len(rows), folds=tuple(sorted(folds)))


HMDB51 = register_benchmark(Benchmark(
    name="hmdb51", modalities=("video",), folds=SPLITS, multi_label=False,
    source="Kuehne et al. 2011, HMDB51; official testTrainMulti_7030_splits (3 splits)", build=build,
))
