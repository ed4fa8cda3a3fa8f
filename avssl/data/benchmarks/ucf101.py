"""UCF101 (Soomro, Zamir & Shah 2012): 101 action classes, 13,320 clips, 3 official splits.

Layout (as downloaded and unpacked)::

    ROOT/UCF-101/<Class>/v_<Class>_g<GG>_c<CC>.avi
    ROOT/ucfTrainTestlist/classInd.txt            "1 ApplyEyeMakeup"
    ROOT/ucfTrainTestlist/trainlist0{1,2,3}.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    ROOT/ucfTrainTestlist/testlist0{1,2,3}.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"

The class of a listed video is its folder name (the file names spell some classes differently,
e.g. ``HandstandPushups/v_HandStandPushups_...``). Split ``k`` trains on ``trainlist0k`` and tests on
``testlist0k`` (spec §2.7, §3A.7); ``fold`` is the split whose test list names the video.
"""

from __future__ import annotations

from pathlib import Path

from avssl.data.benchmarks import (
    AnnotationError,
    Annotations,
    Benchmark,
    find_annotation_file,
    find_folder,
    register_benchmark,
    relative,
)

SPLITS = (1, 2, 3)


def read_class_index(path: Path) -> list[str]:
    """Class names of ``classInd.txt`` ("<index> <name>", indices 1..N in order)."""
    classes = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{path}:{line_no}: expected '<index> <class>', got {line!r}")
        if int(parts[0]) != len(classes) + 1:
            raise AnnotationError(
                f"{path}:{line_no}: class index {parts[0]} out of order (expected {len(classes) + 1})"
            )
        classes.append(parts[1])
    if not classes:
        raise AnnotationError(f"{path}: no classes")
    return classes


def _read_list(path: Path, classes: list[str], with_index: bool) -> list[str]:
    """Relative video paths of a train/test list, checked against the class list."""
    videos = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != (2 if with_index else 1) or "/" not in parts[0]:
            form = "'<Class>/<video> <index>'" if with_index else "'<Class>/<video>'"
            raise AnnotationError(f"{path}:{line_no}: expected {form}, got {line!r}")
        folder = parts[0].split("/")[0]
        if folder not in classes:
            raise AnnotationError(f"{path}:{line_no}: class folder {folder!r} is not in classInd.txt")
        if with_index and parts[1] != str(classes.index(folder) + 1):
            raise AnnotationError(
                f"{path}:{line_no}: label {parts[1]} does not match class {folder!r} "
                f"(index {classes.index(folder) + 1})"
            )
        videos.append(parts[0])
    return videos


def build(root: Path, annotations: str | Path | None = None, videos: str | Path | None = None) -> Annotations:
    """Read UCF101 under ``root`` (``annotations``/``videos``: other folders, relative to ``root``)."""
    lists = root / annotations if annotations else find_folder(root, ["ucfTrainTestlist"])
    video_dir = root / videos if videos else find_folder(root, ["UCF-101", "UCF101"])
    classes = read_class_index(find_annotation_file(lists, ["classInd.txt"], "UCF101 classInd.txt"))
    rows: dict[str, dict[str, str]] = {}
    folds = []
    for k in SPLITS:
        train_file, test_file = lists / f"trainlist0{k}.txt", lists / f"testlist0{k}.txt"
        if not train_file.is_file() and not test_file.is_file():
            continue
        for needed in (train_file, test_file):
            if not needed.is_file():
                raise FileNotFoundError(f"UCF101 split {k}: {needed} is missing (the other list of the split exists)")
        folds.append(k)
        for split, file, with_index in (("train", train_file, True), ("test", test_file, False)):
            for video in _read_list(file, classes, with_index):
                row = rows.setdefault(video, {"label": video.split("/")[0], "fold": ""})
                if row.get(f"split_{k}"):
                    raise AnnotationError(f"{file}: {video} is listed twice in split {k}")
                row[f"split_{k}"] = split
                if split == "test":
                    row["fold"] = str(k)
    if not folds:
        raise FileNotFoundError(f"UCF101: no trainlist0k.txt / testlist0k.txt under {lists}")
    present, missing = [], []
    for video, row in rows.items():
        path = video_dir / video
        if path.is_file():
            present.append({"path": relative(path, root), **{f"split_{k}": row.get(f"split_{k}", "") for k in folds},
                            "label": row["label"], "fold": row["fold"]})
        else:
            missing.append(video)
    return Annotations(present, classes, missing, len(rows), folds=tuple(folds))


UCF101 = register_benchmark(Benchmark(
    name="ucf101", modalities=("video", "audio"), folds=SPLITS, multi_label=False,
    source="Soomro et al. 2012, UCF101; official ucfTrainTestlist (3 splits)", build=build,
))
