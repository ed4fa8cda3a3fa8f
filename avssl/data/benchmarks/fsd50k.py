"""FSD50K (Fonseca et al. 2022): 51,197 clips, 200 AudioSet-ontology classes, multi-label.

Layout (the Zenodo release)::

    ROOT/FSD50K.ground_truth/vocabulary.csv  (no header) index,label,mid
    ROOT/FSD50K.ground_truth/dev.csv         fname,labels,mids,split      (split: train | val)
    ROOT/FSD50K.ground_truth/eval.csv        fname,labels,mids
    ROOT/FSD50K.dev_audio/<fname>.wav
    ROOT/FSD50K.eval_audio/<fname>.wav

``labels`` holds several class names joined by ``,`` (the release) or ``|``. Splits: ``train`` and
``val`` from dev.csv, ``test`` = eval.csv. Metric: mAP (spec §4.6).
"""

from __future__ import annotations

from pathlib import Path

from avssl.data.benchmarks import (
    LABEL_SEPARATOR,
    AnnotationError,
    Annotations,
    Benchmark,
    find_annotation_file,
    find_folder,
    read_csv_records,
    register_benchmark,
    relative,
)


def split_label_field(value: str) -> list[str]:
    """Class names of a ``labels`` field: ``|``-joined if it contains ``|``, else ``,``-joined."""
    separator = LABEL_SEPARATOR if LABEL_SEPARATOR in value else ","
    return [name.strip() for name in value.split(separator) if name.strip()]


def read_vocabulary(path: Path) -> list[str]:
    """Class names in index order from ``vocabulary.csv`` (``index,label,mid``, no header)."""
    records = read_csv_records(path, ("index", "label", "mid"), fieldnames=("index", "label", "mid"))
    names: dict[int, str] = {}
    for line_no, record in records:
        if not record["index"].isdigit():
            raise AnnotationError(f"{path}:{line_no}: index must be an integer, got {record['index']!r}")
        names[int(record["index"])] = record["label"]
    if sorted(names) != list(range(len(names))):
        raise AnnotationError(f"{path}: indices must be 0..N-1")
    return [names[i] for i in range(len(names))]


def build(root: Path, ground_truth: str | Path | None = None) -> Annotations:
    """Read FSD50K under ``root`` (``ground_truth``: the csv folder, relative to ``root``)."""
    truth = root / ground_truth if ground_truth else find_folder(root, ["FSD50K.ground_truth", "ground_truth"])
    classes = read_vocabulary(find_annotation_file(truth, ["vocabulary.csv"], "FSD50K vocabulary.csv"))
    sources = [
        (find_annotation_file(truth, ["dev.csv"], "FSD50K dev.csv"), ("fname", "labels", "split"),
         find_folder(root, ["FSD50K.dev_audio", "dev_audio"])),
        (find_annotation_file(truth, ["eval.csv"], "FSD50K eval.csv"), ("fname", "labels"),
         find_folder(root, ["FSD50K.eval_audio", "eval_audio"])),
    ]
    rows, missing, total = [], [], 0
    for csv_path, required, audio_dir in sources:
        for line_no, record in read_csv_records(csv_path, required):
            total += 1
            split = record.get("split", "test") or "test"
            if split not in ("train", "val", "test"):
                raise AnnotationError(f"{csv_path}:{line_no}: split must be train or val, got {split!r}")
            labels = split_label_field(record["labels"])
            if not labels:
                raise AnnotationError(f"{csv_path}:{line_no}: clip {record['fname']} has no label")
            path = audio_dir / f"{record['fname']}.wav"
            if not path.is_file():
                missing.append(f"{audio_dir.name}/{record['fname']}.wav")
                continue
            rows.append({"path": relative(path, root), "label": LABEL_SEPARATOR.join(labels), "split": split,
                         "mids": record.get("mids", "").replace(",", LABEL_SEPARATOR)})
    return Annotations(rows, classes, missing, total)


FSD50K = register_benchmark(Benchmark(
    name="fsd50k", modalities=("audio",), folds=(), multi_label=True,
    source="Fonseca et al. 2022, FSD50K; FSD50K.ground_truth/{dev,eval,vocabulary}.csv", build=build,
))
