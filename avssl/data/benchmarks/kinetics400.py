"""Kinetics-400 (Kay et al. 2017): ~300 k ten-second YouTube clips, 400 human action classes.

Layout::

    ROOT/annotations/{train,validate,test}.csv   label,youtube_id,time_start,time_end,split
    ROOT/**/<youtube_id>_<start:06d>_<end:06d>.mp4   (any folder structure below ROOT)

The csv files are the official ones (also accepted directly in ROOT, ``val.csv`` for
``validate.csv``, and without the ``label`` column for the unlabelled test set). Files are found
by name anywhere under ROOT: ``<id>_<start:06d>_<end:06d>``, ``<id>_<start>_<end>`` or ``<id>``.
Classes: the sorted labels of the training csv. Evaluation trains on ``train`` and tests on ``val``
(the test labels were never released).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from avssl.data.benchmarks import (
    AnnotationError,
    Annotations,
    Benchmark,
    MediaIndex,
    find_folder,
    read_csv_records,
    register_benchmark,
    relative,
)

CSV_NAMES = {"train": ("train.csv",), "val": ("validate.csv", "val.csv"), "test": ("test.csv",)}
COLUMNS = ("youtube_id", "time_start", "time_end", "split")


def clip_stems(youtube_id: str, start: float, end: float) -> list[str]:
    """File stems a downloaded clip may have, most specific first."""
    s, e = int(round(start)), int(round(end))
    return [f"{youtube_id}_{s:06d}_{e:06d}", f"{youtube_id}_{s}_{e}", youtube_id]


def normalise_class_name(name: str) -> str:
    """Kinetics class names appear with spaces, underscores or quotes; compare them in one form."""
    return name.strip().strip('"').replace("_", " ").lower()


def read_kinetics(
    root: Path, annotations: str | Path | None = None, keep_classes: Collection[str] | None = None
) -> tuple[list[dict[str, str]], list[str], list[str], int]:
    """``(rows, classes, missing, total)`` of the Kinetics csv files under ``root``.

    ``keep_classes`` (normalised names, see :func:`normalise_class_name`) keeps only those classes.
    """
    folder = root / annotations if annotations else find_folder(root, ["annotations"])
    index = MediaIndex(root)
    rows, missing, classes, total = [], [], set(), 0
    found_any = False
    for split, names in CSV_NAMES.items():
        paths = [folder / n for n in names if (folder / n).is_file()]
        if not paths:
            continue
        found_any = True
        for line_no, record in read_csv_records(paths[0], COLUMNS):
            label = record.get("label", "").strip('"')
            if keep_classes is not None and normalise_class_name(label) not in keep_classes:
                continue
            if split != "test" and not label:
                raise AnnotationError(f"{paths[0]}:{line_no}: the {split} split needs a label")
            try:
                start, end = float(record["time_start"]), float(record["time_end"])
            except ValueError:
                raise AnnotationError(f"{paths[0]}:{line_no}: time_start/time_end must be numbers") from None
            total += 1
            if split == "train":
                classes.add(label)
            path = index.find(clip_stems(record["youtube_id"], start, end))
            if path is None:
                missing.append(clip_stems(record["youtube_id"], start, end)[0])
                continue
            rows.append({"path": relative(path, root), "label": label, "split": split,
                         "youtube_id": record["youtube_id"], "start": f"{start:g}", "end": f"{end:g}"})
    if not found_any:
        raise FileNotFoundError(f"Kinetics: none of {[n for v in CSV_NAMES.values() for n in v]} under {folder}")
    return rows, sorted(classes), missing, total


def build(root: Path, annotations: str | Path | None = None) -> Annotations:
    """Read Kinetics-400 under ``root`` (``annotations``: the csv folder, relative to ``root``)."""
    rows, classes, missing, total = read_kinetics(root, annotations)
    return Annotations(rows, classes, missing, total)


KINETICS400 = register_benchmark(Benchmark(
    name="kinetics400", modalities=("video", "audio"), folds=(), multi_label=False,
    source="Kay et al. 2017, Kinetics-400; official csv (label,youtube_id,time_start,time_end,split)",
    build=build, train_split="train", test_split="val",
))
