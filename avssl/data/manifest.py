"""The corpus index: one row per media file, as CSV (DESIGN.md "The flow"; written by `avssl prepare`).

Columns, in order: `path` (relative to the manifest's folder, or absolute), `duration` (s), `fps`,
`num_frames`, `width`, `height` (displayed size), `rotation` (0/90/180/270), `has_video`, `has_audio`,
`sample_rate`, `channels`, `label`, `split`; then the optional stream timings `video_start`,
`video_duration`, `audio_start`, `audio_duration` (s; `avssl prepare` writes them, see
`avssl.media.decode.MediaInfo`); then any extra columns, kept as strings (e.g. `source_path`,
`audio_path`). Video fields are empty for a file without video, audio fields for a file without audio.
`label` may hold several labels separated by "|" (multi-label sets such as VGGSounder).

An empty fact of a stream the file has means "not measured" (e.g. `num_frames` after a header-only
probe); the facts of a stream it lacks must be empty. Every row is validated on reading and before
writing; a bad row raises `ManifestError` naming the file, the row (1 = the first after the header), the
field and the problem.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from avssl.media.decode import MediaInfo

COLUMNS = ("path", "duration", "fps", "num_frames", "width", "height", "rotation", "has_video", "has_audio",
           "sample_rate", "channels", "label", "split")
TIMING_COLUMNS = ("video_start", "video_duration", "audio_start", "audio_duration")
REQUIRED_COLUMNS = ("path", "duration", "has_video", "has_audio")
LABEL_SEPARATOR = "|"
_VIDEO_FIELDS = ("fps", "num_frames", "width", "height")
_AUDIO_FIELDS = ("sample_rate", "channels")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


class ManifestError(ValueError):
    """A manifest file or row is not valid. The message names the file, the row, the field and the problem."""


@dataclass
class ManifestRow:
    """One media file of the corpus (see the module docstring for the meaning of each field)."""

    path: str
    duration: float
    has_video: bool
    has_audio: bool
    fps: float | None = None
    num_frames: int | None = None
    width: int | None = None
    height: int | None = None
    rotation: int = 0
    sample_rate: int | None = None
    channels: int | None = None
    label: str = ""
    split: str = ""
    video_start: float = 0.0
    video_duration: float | None = None  # None: unknown, num_frames / fps
    audio_start: float = 0.0
    audio_duration: float | None = None  # None: unknown, to the end of `duration`
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        """The row's labels (several for a multi-label set), without empty ones."""
        return [part.strip() for part in self.label.split(LABEL_SEPARATOR) if part.strip()]

    @classmethod
    def from_media_info(cls, path: str, info: MediaInfo, label: str = "", split: str = "", **extra: str) -> ManifestRow:
        """The row describing a probed file (`avssl.media.decode.probe`)."""
        return cls(
            path=path, duration=info.duration, has_video=info.has_video, has_audio=info.has_audio,
            fps=info.fps, num_frames=info.num_frames, width=info.width, height=info.height,
            rotation=info.rotation, sample_rate=info.sample_rate, channels=info.channels, label=label,
            split=split, video_start=info.video_start if info.has_video else 0.0,
            video_duration=info.video_duration if info.has_video else None,
            audio_start=info.audio_start if info.has_audio else 0.0,
            audio_duration=info.audio_duration if info.has_audio else None, extra=dict(extra),
        )

    def problems(self) -> list[tuple[str, str]]:
        """(field, problem) for everything wrong with this row; empty when it is valid."""
        found = []
        if not self.path.strip():
            found.append(("path", "is empty"))
        if not (math.isfinite(self.duration) and self.duration >= 0):
            found.append(("duration", f"must be a finite number >= 0, got {self.duration}"))
        if not (self.has_video or self.has_audio):
            found.append(("has_video", "a row needs video or audio (both are false)"))
        if self.rotation not in (0, 90, 180, 270):
            found.append(("rotation", f"must be 0, 90, 180 or 270, got {self.rotation}"))
        for name, present in (*((n, self.has_video) for n in _VIDEO_FIELDS), *((n, self.has_audio) for n in _AUDIO_FIELDS)):
            value = getattr(self, name)
            kind = "video" if name in _VIDEO_FIELDS else "audio"
            if present and value is not None and not (math.isfinite(value) and value > 0):
                found.append((name, f"must be a positive number (or empty: not measured), got {value}"))
            if not present and value is not None:
                found.append((name, f"must be empty for a file without {kind}, got {value}"))
        for name in TIMING_COLUMNS:
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and (name.endswith("start") or value >= 0)):
                found.append((name, f"must be a finite number{'' if name.endswith('start') else ' >= 0'}, got {value}"))
        return found

    def media_info(self, resolved_path: str | Path) -> MediaInfo:
        """The `MediaInfo` this row records, to pass as `info=` to `read_video`/`read_audio`."""
        video_duration = self.video_duration
        if video_duration is None:
            if self.has_video and self.num_frames and self.fps:
                video_duration = self.num_frames / self.fps
            else:
                video_duration = max(self.duration - self.video_start, 0.0) if self.has_video else 0.0
        audio_duration = self.audio_duration
        if audio_duration is None:
            audio_duration = max(self.duration - self.audio_start, 0.0) if self.has_audio else 0.0
        return MediaInfo(
            path=str(resolved_path), duration=self.duration, has_video=self.has_video, fps=self.fps,
            num_frames=self.num_frames, width=self.width, height=self.height, rotation=self.rotation,
            video_start=self.video_start, video_duration=video_duration, has_audio=self.has_audio,
            sample_rate=self.sample_rate, channels=self.channels, audio_start=self.audio_start,
            audio_duration=audio_duration,
        )


class Manifest:
    """A list of `ManifestRow`s, the folder their relative paths start from, and the CSV file it was read
    from or last written to (`path`, None for one built in memory)."""

    def __init__(self, rows: Iterable[ManifestRow] = (), root: str | Path = ".", path: str | Path | None = None):
        self.rows = list(rows)
        self.root = Path(root)
        self.path = None if path is None else Path(path)

    def __repr__(self) -> str:
        return f"Manifest({len(self.rows)} rows, root={str(self.root)!r}, path={self.path})"

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> ManifestRow:
        return self.rows[index]

    def __iter__(self) -> Iterator[ManifestRow]:
        return iter(self.rows)

    def resolve(self, row: ManifestRow) -> Path:
        """The file a row points at: absolute paths as they are, relative ones from the manifest's folder."""
        path = Path(row.path)
        return path if path.is_absolute() else self.root / path

    def labels(self) -> list[str]:
        """Sorted distinct labels over all rows (multi-label rows contribute each of theirs)."""
        return sorted({label for row in self.rows for label in row.labels})

    def media_info(self, row: ManifestRow) -> MediaInfo:
        return row.media_info(self.resolve(row))

    def with_rows(self, rows: Iterable[ManifestRow]) -> Manifest:
        """Another manifest over `rows` (e.g. a subset), with the same root and file."""
        return Manifest(rows, self.root, self.path)

    def extra_columns(self) -> list[str]:
        """Names of the extra columns, in order of first appearance."""
        names: dict[str, None] = {}
        for row in self.rows:
            names.update(dict.fromkeys(row.extra))
        return list(names)

    def validate(self) -> None:
        """Raise ManifestError for the first invalid row or a path listed twice."""
        where = self.path if self.path is not None else "<manifest in memory>"
        seen: dict[str, int] = {}
        for number, row in enumerate(self.rows, start=1):
            for name, problem in row.problems():
                raise ManifestError(f"{where}: row {number}: field '{name}': {problem}")
            if row.path in seen:
                raise ManifestError(f"{where}: row {number}: field 'path': {row.path!r} is already row {seen[row.path]}")
            seen[row.path] = number

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """Read and validate a manifest CSV."""
        path = Path(path)
        try:
            handle = open(path, newline="", encoding="utf-8")
        except OSError as error:
            raise ManifestError(f"{path}: cannot read the manifest ({error.strerror})") from None
        with handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if missing:
                raise ManifestError(f"{path}: row 0 (header): field '{missing[0]}': required column is missing")
            rows = [_parse_row(values, path, number) for number, values in enumerate(reader, start=1)]
        manifest = cls(rows, root=path.parent, path=path)
        manifest.validate()
        return manifest

    def write(self, path: str | Path) -> Path:
        """Validate and write as CSV (floats written exactly, so a round trip is lossless); returns `path`.

        Relative row paths are written as they are: write beside `root` to keep them valid."""
        path = Path(path)
        self.path = path
        self.validate()
        extra = self.extra_columns()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow([*COLUMNS, *TIMING_COLUMNS, *extra])
            for row in self.rows:
                values = [_format(getattr(row, name)) for name in (*COLUMNS, *TIMING_COLUMNS)]
                writer.writerow(values + [row.extra.get(name, "") for name in extra])
        return path


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest string that reads back as the same float
    return str(value)


_KNOWN = {f.name: f for f in fields(ManifestRow) if f.name != "extra"}


def _parse_row(values: dict[str, str | None], path: Path, number: int) -> ManifestRow:
    """Convert one CSV row; a value that does not parse raises ManifestError naming file, row and field."""
    if None in values:  # more cells than header columns
        raise ManifestError(f"{path}: row {number}: field '(extra cells)': the row has more cells than the header")
    parsed: dict[str, object] = {}
    for name, text in values.items():
        if name not in _KNOWN:
            continue
        text = (text or "").strip()
        try:
            parsed[name] = _parse_value(name, text)
        except ValueError as error:
            raise ManifestError(f"{path}: row {number}: field '{name}': {error}") from None
    extra = {name: text for name, text in values.items() if name not in _KNOWN and text}  # empty = absent
    row = ManifestRow(**parsed, extra=extra)
    for name, problem in row.problems():
        raise ManifestError(f"{path}: row {number}: field '{name}': {problem}")
    return row


def _parse_value(name: str, text: str) -> object:
    if name in ("path", "label", "split"):
        return text
    if name in ("has_video", "has_audio"):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"must be true or false, got {text!r}")
    if text == "":
        if name in ("duration",):
            raise ValueError("is empty")
        return 0 if name == "rotation" else (0.0 if name in ("video_start", "audio_start") else None)
    if name in ("num_frames", "width", "height", "rotation", "sample_rate", "channels"):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"must be an integer, got {text!r}") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None
