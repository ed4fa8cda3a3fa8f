"""avssl.data.manifest: CSV round trip, path resolution, labels, and validation messages."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from avssl.data.manifest import COLUMNS, TIMING_COLUMNS, Manifest, ManifestError, ManifestRow
from avssl.media.decode import probe


def _rows() -> list[ManifestRow]:
    return [
        ManifestRow(path="clips/a.mp4", duration=10.024, has_video=True, has_audio=True, fps=30000 / 1001,
                    num_frames=300, width=340, height=256, rotation=0, sample_rate=44100, channels=2,
                    label="dog", split="train", video_start=0.0, video_duration=10.01, audio_start=0.021333333333333333,
                    audio_duration=10.0, extra={"source_path": "/data/a.avi", "size_bytes": "1234"}),
        ManifestRow(path="/abs/b.wav", duration=6.55675, has_video=False, has_audio=True, sample_rate=16000,
                    channels=1, label="car engine idling|engine accelerating, revving, vroom"),
        ManifestRow(path="phone.mov", duration=0.1, has_video=True, has_audio=False, fps=30.0, num_frames=3,
                    width=320, height=568, rotation=90, label="dog", extra={"note": "ünïcødé, with \"quotes\""}),
    ]


def test_round_trip_is_lossless(tmp_path):
    written = Manifest(_rows(), tmp_path).write(tmp_path / "manifest.csv")
    assert written == tmp_path / "manifest.csv"
    manifest = Manifest.read(written)
    assert manifest.rows == _rows()  # floats (29.97002997002997) and extra columns survive exactly
    assert manifest.path == written and manifest.root == tmp_path
    with open(written, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle))
    assert header == [*COLUMNS, *TIMING_COLUMNS, "source_path", "size_bytes", "note"]
    assert manifest.extra_columns() == ["source_path", "size_bytes", "note"]
    assert manifest.rows[1].extra == {}  # an empty cell is an absent value


def test_access_resolve_and_labels(tmp_path):
    manifest = Manifest.read(Manifest(_rows(), tmp_path).write(tmp_path / "sub" / "manifest.csv"))
    assert len(manifest) == 3 and manifest[2].path == "phone.mov"
    assert [row.path for row in manifest] == [row.path for row in _rows()]
    assert manifest.resolve(manifest[0]) == tmp_path / "sub" / "clips" / "a.mp4"  # the manifest's folder
    assert manifest.resolve(manifest[1]) == Path("/abs/b.wav")
    assert manifest.labels() == ["car engine idling", "dog", "engine accelerating, revving, vroom"]
    assert manifest[1].labels == ["car engine idling", "engine accelerating, revving, vroom"]
    subset = manifest.with_rows(manifest.rows[:1])
    assert len(subset) == 1 and subset.root == manifest.root


def test_row_from_probe_gives_back_the_media_info(tmp_path, shared_data):
    source = shared_data / "videos" / "decord" / "video_90.mov"
    info = probe(source)
    row = ManifestRow.from_media_info(str(source), info, label="keyboard")
    manifest = Manifest.read(Manifest([row], tmp_path).write(tmp_path / "manifest.csv"))
    assert manifest.media_info(manifest[0]) == info
    header_only = ManifestRow.from_media_info("x.mp4", probe(source, count_frames=False))
    assert header_only.num_frames is None and not header_only.problems()  # "not measured" is valid


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


GOOD = {"path": "a.mp4", "duration": "2.5", "fps": "25", "num_frames": "62", "width": "320", "height": "240",
        "rotation": "0", "has_video": "true", "has_audio": "yes", "sample_rate": "16000", "channels": "1",
        "label": "x", "split": ""}


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("duration", "ten", "must be a number"),
        ("duration", "-1", "finite number >= 0"),
        ("duration", "", "is empty"),
        ("fps", "nan", "positive number"),
        ("num_frames", "3.5", "must be an integer"),
        ("width", "0", "positive number"),
        ("rotation", "45", "0, 90, 180 or 270"),
        ("has_video", "maybe", "true or false"),
        ("sample_rate", "-16000", "positive number"),
        ("path", "  ", "is empty"),
    ],
)
def test_bad_value_names_file_row_field_and_problem(tmp_path, field, value, problem):
    bad = {**GOOD, "path": "b.mp4", field: value}
    path = _write_csv(tmp_path / "bad.csv", list(GOOD), [list(GOOD.values()), list(bad.values())])
    with pytest.raises(ManifestError) as caught:
        Manifest.read(path)
    message = str(caught.value)
    assert str(path) in message and "row 2" in message and f"field '{field}'" in message and problem in message


def test_stream_facts_must_match_the_streams(tmp_path):
    audio_only_with_fps = dict(GOOD, has_video="false")  # fps, size still filled in
    path = _write_csv(tmp_path / "m.csv", list(GOOD), [list(audio_only_with_fps.values())])
    with pytest.raises(ManifestError, match=r"row 1: field 'fps': must be empty for a file without video"):
        Manifest.read(path)
    nothing = dict(GOOD, has_video="false", has_audio="false", fps="", num_frames="", width="", height="",
                   sample_rate="", channels="")
    path = _write_csv(tmp_path / "n.csv", list(GOOD), [list(nothing.values())])
    with pytest.raises(ManifestError, match="row 1: field 'has_video': a row needs video or audio"):
        Manifest.read(path)


def test_structure_errors(tmp_path):
    header = [c for c in GOOD if c != "has_audio"]
    path = _write_csv(tmp_path / "h.csv", header, [[GOOD[c] for c in header]])
    with pytest.raises(ManifestError, match=r"h\.csv: row 0 \(header\): field 'has_audio': required column"):
        Manifest.read(path)
    path = _write_csv(tmp_path / "d.csv", list(GOOD), [list(GOOD.values()), list(GOOD.values())])
    with pytest.raises(ManifestError, match=r"d\.csv: row 2: field 'path': 'a.mp4' is already row 1"):
        Manifest.read(path)
    path = _write_csv(tmp_path / "e.csv", list(GOOD), [[*GOOD.values(), "surplus"]])
    with pytest.raises(ManifestError, match=r"e\.csv: row 1: .*more cells than the header"):
        Manifest.read(path)
    with pytest.raises(ManifestError, match="missing.csv: cannot read"):
        Manifest.read(tmp_path / "missing.csv")


def test_write_refuses_an_invalid_row(tmp_path):
    rows = _rows()
    rows[1].channels = 0
    with pytest.raises(ManifestError, match=r"out\.csv: row 2: field 'channels': must be a positive number"):
        Manifest(rows, tmp_path).write(tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
