"""AudioSet (Gemmeke et al. 2017): ten-second YouTube segments, 527 classes, multi-label.

Layout::

    ROOT/{balanced_train,unbalanced_train,eval}_segments.csv
        "# YTID, start_seconds, end_seconds, positive_labels" ; rows: id, 30.000, 40.000, "/m/09x0r,/m/05zppz"
    ROOT/class_labels_indices.csv   index,mid,display_name     (or ROOT/ontology.json: [{"id", "name"}, ...])
    ROOT/**/<id>_<start>.mp4        (any folder structure below ROOT)

Lines starting with ``#`` are comments. Labels are ontology ids mapped to display names; classes
follow ``class_labels_indices.csv`` (the 527 evaluated classes) or, without it, the ontology order
restricted to the ids that occur. Files are found by name: ``<id>_<start:.3f>`` (CAV-MAE naming),
``<id>_<start:06d>_<end:06d>``, ``<id>_<start>``, ``Y<id>`` or ``<id>``. Splits are named after the
csv files; evaluation trains on ``balanced_train`` and tests on ``eval``.
"""

from __future__ import annotations

import json
from pathlib import Path

from avssl.data.benchmarks import (
    LABEL_SEPARATOR,
    AnnotationError,
    Annotations,
    Benchmark,
    MediaIndex,
    read_csv_records,
    register_benchmark,
    relative,
)

SEGMENT_FILES = {"balanced_train": "balanced_train_segments.csv", "unbalanced_train": "unbalanced_train_segments.csv",
                 "eval": "eval_segments.csv"}
COLUMNS = ("YTID", "start_seconds", "end_seconds", "positive_labels")


def read_ontology(root: Path) -> tuple[list[str], dict[str, str]]:
    """``(mids in class order, mid -> display name)`` from class_labels_indices.csv or ontology.json."""
    indices = root / "class_labels_indices.csv"
    if indices.is_file():
        records = read_csv_records(indices, ("index", "mid", "display_name"))
        mids = [r["mid"] for _, r in sorted(records, key=lambda lr: int(lr[1]["index"]))]
        return mids, {r["mid"]: r["display_name"] for _, r in records}
    ontology = root / "ontology.json"
    if ontology.is_file():
        entries = json.loads(ontology.read_text(encoding="utf-8"))
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "id" in e and "name" in e for e in entries):
            raise AnnotationError(f"{ontology}: expected a list of objects with 'id' and 'name'")
        return [e["id"] for e in entries], {e["id"]: e["name"] for e in entries}
    raise FileNotFoundError(f"AudioSet: neither class_labels_indices.csv nor ontology.json under {root}")


def clip_stems(youtube_id: str, start: float, end: float) -> list[str]:
    s, e = int(round(start)), int(round(end))
    return [f"{youtube_id}_{start:.3f}", f"{youtube_id}_{s:06d}_{e:06d}", f"{youtube_id}_{s}", f"Y{youtube_id}",
            youtube_id]


def build(root: Path) -> Annotations:
    """Read the AudioSet segment lists and ontology under ``root``."""
    mids, names = read_ontology(root)
    index = MediaIndex(root)
    rows, missing, used, total = [], [], set(), 0
    present_files = {split: root / name for split, name in SEGMENT_FILES.items() if (root / name).is_file()}
    if not present_files:
        raise FileNotFoundError(f"AudioSet: none of {list(SEGMENT_FILES.values())} under {root}")
    for split, csv_path in present_files.items():
        for line_no, record in read_csv_records(csv_path, COLUMNS, fieldnames=COLUMNS):
            labels = [m.strip() for m in record["positive_labels"].split(",") if m.strip()]
            unknown = [m for m in labels if m not in names]
            if unknown or not labels:
                raise AnnotationError(f"{csv_path}:{line_no}: label id(s) {unknown or '(none)'} not in the ontology")
            try:
                start, end = float(record["start_seconds"]), float(record["end_seconds"])
            except ValueError:
                raise AnnotationError(f"{csv_path}:{line_no}: start/end seconds must be numbers") from None
            total += 1
            used.update(labels)
            path = index.find(clip_stems(record["YTID"], start, end))
            if path is None:
                missing.append(clip_stems(record["YTID"], start, end)[0])
                continue
            rows.append({"path": relative(path, root), "label": LABEL_SEPARATOR.join(names[m] for m in labels),
                         "split": split, "youtube_id": record["YTID"], "start": f"{start:g}", "end": f"{end:g}",
                         "mids": LABEL_SEPARATOR.join(labels)})
    restrict = not (root / "class_labels_indices.csv").is_file()
    classes = [names[m] for m in mids if not restrict or m in used]
    return Annotations(rows, classes, missing, total)


AUDIOSET = register_benchmark(Benchmark(
    name="audioset", modalities=("video", "audio"), folds=(), multi_label=True,
    source="Gemmeke et al. 2017, AudioSet; *_segments.csv + class_labels_indices.csv / ontology.json",
    build=build, train_split="balanced_train", test_split="eval",
))
