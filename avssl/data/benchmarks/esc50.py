"""ESC-50 (Piczak 2015): 2,000 five-second recordings, 50 classes, 5 official folds.

Layout (the GitHub release)::

    ROOT/meta/esc50.csv    filename,fold,target,category,esc10,src_file,take
    ROOT/audio/<filename>  1-100032-A-0.wav ...

Fold ``k`` tests on the recordings of fold ``k`` and trains on the other four (spec §2.7, §4.6).
Classes are ordered by ``target``.
"""

from __future__ import annotations

from pathlib import Path

from avssl.data.benchmarks import (
    AnnotationError,
    Annotations,
    Benchmark,
    find_annotation_file,
    read_csv_records,
    register_benchmark,
    relative,
)

FOLDS = (1, 2, 3, 4, 5)
COLUMNS = ("filename", "fold", "target", "category")


def build(root: Path, meta: str | Path | None = None, audio: str | Path = "audio") -> Annotations:
    """Read ESC-50 under ``root`` (``meta``: another csv path relative to ``root``)."""
    csv_path = root / meta if meta else find_annotation_file(root, ["meta/esc50.csv", "esc50.csv"], "ESC-50 esc50.csv")
    records = read_csv_records(csv_path, COLUMNS)
    names: dict[int, str] = {}
    present, missing = [], []
    for line_no, record in records:
        try:
            fold, target = int(record["fold"]), int(record["target"])
        except ValueError:
            raise AnnotationError(f"{csv_path}:{line_no}: fold and target must be integers, got "
                                  f"{record['fold']!r}, {record['target']!r}") from None
        if fold not in FOLDS:
            raise AnnotationError(f"{csv_path}:{line_no}: fold {fold} is not one of {list(FOLDS)}")
        if names.setdefault(target, record["category"]) != record["category"]:
            raise AnnotationError(f"{csv_path}:{line_no}: target {target} is {record['category']!r} here "
                                  f"but {names[target]!r} earlier")
        path = root / audio / record["filename"]
        if not path.is_file():
            missing.append(record["filename"])
            continue
        present.append({
            "path": relative(path, root), "label": record["category"], "fold": str(fold),
            **{f"split_{k}": "test" if k == fold else "train" for k in FOLDS},
            **{k: record[k] for k in ("esc10", "src_file", "take") if k in record},
        })
    if sorted(names) != list(range(len(names))):
        raise AnnotationError(f"{csv_path}: targets must be 0..N-1, got {sorted(names)}")
    classes = [names[t] for t in range(len(names))]
    return Annotations(present, classes, missing, len(records))


ESC50 = register_benchmark(Benchmark(
    name="esc50", modalities=("audio",), folds=FOLDS, multi_label=False,
    source="Piczak 2015, ESC-50; meta/esc50.csv (5 folds)", build=build,
))
