"""The two source data sets of AV-Digits, read and checked: MNIST images and FSDD recordings.

- MNIST: a `.npz` with `images` uint8 `[N, 28, 28]` (0 = background) and `labels` `[N]` (digits
  0-9), e.g. the `mnist5k.npz` of 5,000 digits. A folder holding exactly one `.npz` also works.
- FSDD (Free Spoken Digit Dataset): a folder with `MANIFEST.csv` whose columns `file` (audio
  path relative to the folder), `labels` (the spoken digit), `speaker` and `index` (the take)
  describe one recording a row. Other columns are ignored (its `split` column too: AV-Digits
  splits by speaker, see `layout.py`).

Each loader also returns the SHA-256 of what it read (the `.npz`, the manifest), which enters the
corpus fingerprint so that a cache built from other source data is not reused. Problems raise
errors naming the file, the row or field, and what was expected.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MNIST_EXPECTED = (
    "a .npz file with 'images' (uint8 [N, 28, 28]) and 'labels' ([N] digits 0-9), "
    "or a folder holding exactly one such file"
)
FSDD_EXPECTED = (
    "the Free Spoken Digit Dataset folder holding MANIFEST.csv (columns file, labels, speaker, "
    "index) and the audio files it lists"
)
FSDD_COLUMNS = ("file", "labels", "speaker", "index")
MNIST_SIDE = 28


@dataclass(frozen=True)
class MnistDigits:
    """MNIST images and labels as read from `path`."""

    path: Path
    images: np.ndarray  # uint8 [N, 28, 28]
    labels: np.ndarray  # int64 [N], digits 0-9
    sha256: str


@dataclass(frozen=True)
class Recording:
    """One FSDD recording: its file (relative to the FSDD folder), digit, speaker and take."""

    file: str
    digit: int
    speaker: str
    take: int


@dataclass(frozen=True)
class FsddRecordings:
    """The recordings listed by an FSDD folder's manifest, sorted by (digit, speaker, take)."""

    root: Path
    manifest: Path
    recordings: tuple[Recording, ...]
    sha256: str

    @property
    def speakers(self) -> list[str]:
        return sorted({r.speaker for r in self.recordings})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mnist_file(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: MNIST digits not found; expected {MNIST_EXPECTED}")
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.npz"))
    if len(candidates) != 1:
        found = "none" if not candidates else ", ".join(c.name for c in candidates)
        raise FileNotFoundError(f"{path}: expected {MNIST_EXPECTED}; .npz files found: {found}")
    return candidates[0]


def load_mnist(path: str | Path) -> MnistDigits:
    """Read and check MNIST digits from a `.npz` file or the folder holding it."""
    file = _mnist_file(Path(path).expanduser())
    try:
        with np.load(file, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in ("images", "labels") if name in archive.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{file}: cannot read as .npz ({error}); expected {MNIST_EXPECTED}") from None
    for name in ("images", "labels"):
        if name not in arrays:
            raise ValueError(f"{file}: field '{name}' is missing; expected {MNIST_EXPECTED}")
    images, labels = arrays["images"], arrays["labels"]
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
        raise ValueError(
            f"{file}: field 'images' must be uint8 [N, 28, 28], got {images.dtype} {list(images.shape)}"
        )
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{file}: field 'labels' must be integers [N] with N = {len(images)} (one per image), "
            f"got {labels.dtype} {list(labels.shape)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{file}: field 'labels' must hold digits 0-9, got values {labels.min()}..{labels.max()}")
    return MnistDigits(file, images, labels.astype(np.int64), _sha256(file))


def _parse_recording(values: dict[str, str], manifest: Path, number: int) -> Recording:
    def fail(field: str, problem: str) -> ValueError:
        return ValueError(f"{manifest}: row {number}: field '{field}': {problem}")

    file = (values["file"] or "").strip()
    if not file:
        raise fail("file", "is empty")
    digit_text = (values["labels"] or "").strip()
    if digit_text not in tuple("0123456789"):
        raise fail("labels", f"must be one digit 0-9, got {digit_text!r}")
    speaker = (values["speaker"] or "").strip()
    if not speaker:
        raise fail("speaker", "is empty")
    try:
        take = int((values["index"] or "").strip())
    except ValueError:
        raise fail("index", f"must be a whole number (the take), got {values['index']!r}") from None
    if not (manifest.parent / file).is_file():
        raise fail("file", f"{manifest.parent / file} does not exist")
    return Recording(file, int(digit_text), speaker, take)


def load_fsdd(path: str | Path) -> FsddRecordings:
    """Read and check the recordings of an FSDD folder (or of its `MANIFEST.csv` given directly)."""
    path = Path(path).expanduser()
    manifest = path if path.is_file() else path / "MANIFEST.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: not found; expected {FSDD_EXPECTED}")
    with manifest.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        for column in FSDD_COLUMNS:
            if column not in header:
                raise ValueError(
                    f"{manifest}: row 0 (header): field '{column}': required column is missing; "
                    f"expected {FSDD_EXPECTED}"
                )
        recordings = [_parse_recording(values, manifest, n) for n, values in enumerate(reader, start=1)]
    if not recordings:
        raise ValueError(f"{manifest}: lists no recordings; expected {FSDD_EXPECTED}")
    seen: set[str] = set()
    for number, recording in enumerate(recordings, start=1):
        if recording.file in seen:
            raise ValueError(f"{manifest}: row {number}: field 'file': {recording.file!r} is listed twice")
        seen.add(recording.file)
    # A fixed order, whatever the manifest's: clip i is the same clip for the same recordings.
    ordered = tuple(sorted(recordings, key=lambda r: (r.digit, r.speaker, r.take, r.file)))
    return FsddRecordings(manifest.parent, manifest, ordered, _sha256(manifest))
