"""DCASE 2013 acoustic scene classification (IEEE AASP challenge, task 1): 10 scenes, 30 s recordings.

Layout (as CrissCross reads it, spec §2.7)::

    ROOT/scenes_stereo/<scene><NN>.wav           training set (also accepted: ROOT/set1/scenes_stereo)
    ROOT/scenes_stereo_testset/<scene><NN>.wav   test set

There is no annotation file: the label is the file-name prefix before the take number
(``busystreet05.wav`` → ``busystreet``). One split (train / test); classes sorted by name.
"""

from __future__ import annotations

import re
from pathlib import Path

from avssl.data.benchmarks import (
    MEDIA_EXTENSIONS,
    AnnotationError,
    Annotations,
    Benchmark,
    find_folder,
    register_benchmark,
    relative,
)

SCENE_NAME = re.compile(r"^(?P<label>[A-Za-z]+?)_?(?P<take>\d+)$")


def _scan(folder: Path, split: str, root: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in MEDIA_EXTENSIONS:
            continue
        match = SCENE_NAME.match(path.stem)
        if match is None:
            raise AnnotationError(f"{path}: file name does not follow '<scene><number>' (DCASE 2013 naming)")
        rows.append({"path": relative(path, root), "label": match["label"].lower(), "split": split,
                     "take": match["take"]})
    return rows


def build(root: Path, train: str | Path | None = None, test: str | Path | None = None) -> Annotations:
    """Read the DCASE 2013 scenes under ``root`` (``train``/``test``: folders relative to ``root``)."""
    train_dir = root / train if train else find_folder(root, ["scenes_stereo", "set1/scenes_stereo"])
    test_dir = root / test if test else root / "scenes_stereo_testset"
    for split, folder in (("train", train_dir), ("test", test_dir)):
        if folder == root or not folder.is_dir():
            raise FileNotFoundError(f"DCASE 2013: the {split} folder ({folder}) does not exist under {root}")
    train_rows, test_rows = _scan(train_dir, "train", root), _scan(test_dir, "test", root)
    classes = sorted({r["label"] for r in train_rows})
    unseen = sorted({r["label"] for r in test_rows} - set(classes))
    if unseen:
        raise AnnotationError(f"{test_dir}: test scene(s) {unseen} have no training recording")
    rows = train_rows + test_rows
    return Annotations(rows, classes, [], len(rows))


DCASE = register_benchmark(Benchmark(
    name="dcase", modalities=("audio",), folds=(), multi_label=False,
    source="Stowell et al. 2015, DCASE 2013 scene classification; labels from file names (spec §2.7)",
    build=build,
))
