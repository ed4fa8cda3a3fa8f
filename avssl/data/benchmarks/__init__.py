"""Public benchmarks: official annotation files -> a :class:`~avssl.data.manifest.Manifest`.

One small adapter per benchmark (``ucf101``, ``hmdb51``, ``esc50``, ``dcase``, ``fsd50k``,
``kinetics400``, ``kinetics_sound``, ``vggsound``, ``audioset``) reads the files the benchmark ships,
in their official format, from a folder holding the benchmark as downloaded.
:func:`load_benchmark` turns what it read into a :class:`BenchmarkData`: the manifest (one row per
media file, with the media facts probed from the file), the class list in its official order, and
the folds.

Manifest columns written by every adapter:

* ``path`` — the media file, relative to the benchmark folder;
* ``label`` — the class name; several names joined by ``|`` for multi-label benchmarks;
* ``split_<k>`` — ``train`` / ``test`` / empty (not used) in fold ``k``, for benchmarks with folds
  (UCF101 and HMDB51 3 splits, ESC-50 5 folds);
* ``split`` — the official split name (``train``, ``val``, ``test``, ``eval``, ...) for benchmarks with
  one split; :attr:`Benchmark.train_split` / :attr:`Benchmark.test_split` say which are evaluated;
* ``fold`` — the official fold number where the benchmark defines one (ESC-50; UCF101: the test list
  that names the video);
* benchmark-specific extras (``youtube_id``, ``start``, ``mids``, ...).

Media named by the annotations but absent from disk, or present but unreadable, are **reported and
skipped**, not fatal: a warning gives the count and the first few, and :attr:`BenchmarkData.missing`
and :attr:`BenchmarkData.unreadable` list them all.
Malformed annotation files raise :class:`AnnotationError` naming the file, the line and the problem.
"""

from __future__ import annotations

import csv
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avssl.data.benchmarks.media_facts import probe_records
from avssl.data.manifest import COLUMNS, LABEL_SEPARATOR, TIMING_COLUMNS, Manifest, ManifestRow
from avssl.media.decode import MediaInfo

__all__ = [
    "AnnotationError",
    "Annotations",
    "Benchmark",
    "BenchmarkData",
    "MediaIndex",
    "find_annotation_file",
    "get_benchmark",
    "list_benchmarks",
    "load_benchmark",
    "register_benchmark",
]

logger = logging.getLogger(__name__)

MEDIA_EXTENSIONS = frozenset(
    ".mp4 .avi .mkv .mov .webm .mpg .mpeg .m4v .flv .wav .flac .mp3 .ogg .m4a .opus".split()
)
SHOW_MISSING = 5


class AnnotationError(ValueError):
    """An annotation file is malformed; the message names the file, the line and the problem."""


@dataclass
class BenchmarkData:
    """A benchmark read from disk: manifest, classes in official order, folds, missing media."""

    name: str
    root: Path
    manifest: Manifest
    classes: list[str]
    folds: tuple[int, ...]
    multi_label: bool
    train_split: str = "train"
    test_split: str = "test"
    missing: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def from_manifest(cls, manifest: Manifest, name: str = "manifest") -> BenchmarkData:
        """A manifest of any corpus (``avssl prepare``) as a benchmark without folds; classes are
        its sorted labels (``|``-joined labels make it multi-label)."""
        multi = any(len(row.labels) > 1 for row in manifest)
        return cls(name, manifest.root, manifest, manifest.labels(), (), multi)

    @property
    def class_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def split_rows(self, fold: int | None, split: str) -> list[int]:
        """Row numbers of the ``"train"`` or ``"test"`` part of ``fold`` (``None``: the single split)."""
        if split not in ("train", "test"):
            raise ValueError(f"{self.name}: split must be 'train' or 'test', got {split!r}")
        if fold is None:
            if self.folds:
                raise ValueError(f"{self.name} has folds {list(self.folds)}; name one")
            wanted, column = (self.train_split if split == "train" else self.test_split), "split"
        else:
            if fold not in self.folds:
                raise ValueError(f"{self.name}: fold {fold} does not exist; folds: {list(self.folds)}")
            wanted, column = split, f"split_{fold}"
        return [i for i in range(len(self.manifest)) if self.cell(i, column) == wanted]

    def cell(self, row_number: int, column: str) -> str:
        """The value of ``column`` in a manifest row ("" when the row has no such column)."""
        return _row_value(self.manifest[row_number], column)

    def path_of(self, row_number: int) -> Path:
        """The media file of a manifest row."""
        return self.manifest.resolve(self.manifest[row_number])

    def labels_of(self, row_number: int) -> list[int]:
        """Class indices of one row (one for single-label benchmarks)."""
        index = self.class_index
        return [index[n] for n in self.manifest[row_number].labels]

    def media_info(self, row_number: int) -> MediaInfo:
        """The probed facts of a row, to pass as ``info=`` to the decoders (saves a probe)."""
        return self.manifest.media_info(self.manifest[row_number])

    def label_array(self, row_numbers: Sequence[int]) -> np.ndarray:
        """``[N]`` class indices (single-label) or ``[N, C]`` 0/1 targets (multi-label)."""
        if self.multi_label:
            targets = np.zeros((len(row_numbers), len(self.classes)), dtype=np.int64)
            for i, r in enumerate(row_numbers):
                targets[i, self.labels_of(r)] = 1
            return targets
        return np.array([self.labels_of(r)[0] for r in row_numbers], dtype=np.int64)


@dataclass
class Annotations:
    """What an adapter read from the annotation files: one record per present media file (``path``
    relative to the benchmark folder, ``label``, split/fold columns, extras), the classes in official
    order, the media named but absent, how many files were named, and the folds found."""

    records: list[dict[str, str]]
    classes: list[str]
    missing: list[str]
    total: int
    folds: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Benchmark:
    """A registered adapter. ``build(root, **options) -> Annotations``."""

    name: str
    modalities: tuple[str, ...]
    folds: tuple[int, ...]
    multi_label: bool
    source: str
    build: Callable[..., Annotations]
    train_split: str = "train"
    test_split: str = "test"


_BENCHMARKS: dict[str, Benchmark] = {}
ADAPTER_MODULES = (
    "ucf101", "hmdb51", "esc50", "dcase", "fsd50k", "kinetics400", "kinetics_sound", "vggsound", "audioset",
)


def register_benchmark(benchmark: Benchmark) -> Benchmark:
    if benchmark.name in _BENCHMARKS and _BENCHMARKS[benchmark.name] is not benchmark:
        raise ValueError(f"benchmark {benchmark.name!r} is registered twice")
    _BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def _load_adapters() -> None:
    for module in ADAPTER_MODULES:
        importlib.import_module(f"avssl.data.benchmarks.{module}")


def list_benchmarks() -> list[str]:
    _load_adapters()
    return sorted(_BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    _load_adapters()
    if name not in _BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; available: {', '.join(sorted(_BENCHMARKS))}")
    return _BENCHMARKS[name]


def load_benchmark(
    name: str,
    root: str | Path,
    manifest_cache: str | Path | None = None,
    probe_workers: int = 8,
    **options,
) -> BenchmarkData:
    """Read benchmark ``name`` from ``root`` (its official layout; see each adapter's docstring).

    Every listed file present on disk is probed (header only) for the manifest's media facts;
    files that cannot be probed are reported and skipped like missing ones. ``manifest_cache``: a
    CSV where the probed facts are kept, so the next load probes only new or changed files.
    ``options`` go to the adapter (e.g. ``class_list`` of Kinetics-Sound).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: benchmark folder {root} does not exist")
    benchmark = get_benchmark(name)
    found = benchmark.build(root, **options)
    known = set(found.classes)
    for record in found.records:
        unknown = [n for n in record["label"].split(LABEL_SEPARATOR) if n and n not in known]
        if unknown:
            raise AnnotationError(f"{name}: {record['path']} has label(s) {unknown} not in the class list")
    report_missing(name, root, found.missing, found.total)
    cache = Path(manifest_cache) if manifest_cache is not None else None
    known_facts = Manifest.read(cache) if cache is not None and cache.is_file() else None
    rows, unreadable = probe_records(found.records, root, probe_workers, known_facts)
    if unreadable:
        shown = "; ".join(f"{p}: {why}" for p, why in unreadable[:SHOW_MISSING])
        logger.warning("%s: %d media files could not be probed and are skipped: %s", name, len(unreadable), shown)
    manifest = Manifest(rows, root)
    if cache is not None:
        manifest.write(cache)
        manifest.path = None  # the cache is a store of facts; paths stay relative to the benchmark root
    return BenchmarkData(
        name=name, root=root, manifest=manifest, classes=found.classes,
        folds=benchmark.folds if found.folds is None else found.folds, multi_label=benchmark.multi_label,
        train_split=benchmark.train_split, test_split=benchmark.test_split, missing=found.missing,
        unreadable=unreadable,
    )


# -- shared pieces of the adapters ----------------------------------------------------------------


def find_annotation_file(root: Path, candidates: Iterable[str], what: str) -> Path:
    """The first of ``candidates`` (paths relative to ``root``) that exists, or an error listing them."""
    candidates = list(candidates)
    for candidate in candidates:
        if (root / candidate).is_file():
            return root / candidate
    raise FileNotFoundError(f"{what} not found under {root}; looked for: {', '.join(candidates)}")


def read_csv_records(
    path: Path, required: Sequence[str], fieldnames: Sequence[str] | None = None
) -> list[tuple[int, dict[str, str]]]:
    """``(line number, record)`` of a CSV file; ``fieldnames`` for files without a header row.

    Lines starting with ``#`` are comments (AudioSet). A missing column is an error naming the file.
    """
    with open(path, newline="", encoding="utf-8") as f:
        lines = [(n, line) for n, line in enumerate(f, 1) if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader((line for _, line in lines), fieldnames=fieldnames, skipinitialspace=True)
    records = list(reader)
    absent = [c for c in required if c not in (reader.fieldnames or [])]
    if absent:
        raise AnnotationError(f"{path}: missing column(s) {absent}; columns are {reader.fieldnames}")
    first = 0 if fieldnames else 1  # the header occupies the first kept line
    out = []
    for (line_no, _), record in zip(lines[first:], records):
        if None in record or any(record.get(c) is None for c in required):
            raise AnnotationError(f"{path}:{line_no}: expected the columns {list(reader.fieldnames)}, got {record}")
        out.append((line_no, {k: v.strip() for k, v in record.items()}))
    return out


def find_folder(root: Path, candidates: Iterable[str]) -> Path:
    """The first of ``candidates`` (relative to ``root``) that is a folder, else ``root``."""
    for candidate in candidates:
        if (root / candidate).is_dir():
            return root / candidate
    return root


class MediaIndex:
    """Every media file under a folder, by file stem (for benchmarks named by YouTube id).

    Kinetics, VGGSound and AudioSet ship only ids and times; downloaders name files differently
    (``<id>_<start:06d>_<end:06d>.mp4``, ``<id>_<start_ms>_<end_ms>.mp4``, ``<id>_<start>.000.mp4``,
    per-class folders or flat). The adapters try several stems in a fixed order.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._by_stem: dict[str, Path] = {}
        for dirpath, _dirs, files in os.walk(folder, followlinks=True):
            for name in sorted(files):
                path = Path(dirpath) / name
                if path.suffix.lower() in MEDIA_EXTENSIONS:
                    # The first file of a stem wins; later copies (other formats) are ignored.
                    self._by_stem.setdefault(path.stem, path)

    def __len__(self) -> int:
        return len(self._by_stem)

    def find(self, stems: Iterable[str]) -> Path | None:
        for stem in stems:
            if stem in self._by_stem:
                return self._by_stem[stem]
        return None


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (POSIX separators), else absolute."""
    # absolute(), not resolve(): a benchmark folder of symlinks must keep its own names.
    try:
        return path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        return str(path.absolute())


def report_missing(name: str, root: Path, missing: list[str], total: int) -> None:
    """Warn once about media named by the annotations but absent (count and the first few)."""
    if missing:
        shown = ", ".join(missing[:SHOW_MISSING]) + (", ..." if len(missing) > SHOW_MISSING else "")
        logger.warning("%s: %d of %d media files named by the annotations are missing under %s and are "
                       "skipped: %s", name, len(missing), total, root, shown)


def _row_value(row: ManifestRow, column: str) -> str:
    if column in COLUMNS or column in TIMING_COLUMNS:
        value = getattr(row, column)
        return "" if value is None else str(value)
    return row.extra.get(column, "")
