"""`avssl prepare` through the real CLI entry: robustness on damaged and unusual files, file lists,
and re-encoding (GOP, short side, audio extraction)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from test_decode import encode_test_video  # sibling test module: the media builder both files use

from avssl.cli import main
from avssl.data.manifest import Manifest
from avssl.media.decode import probe, read_audio, read_video


def _gradient(height: int, width: int, shift: int) -> np.ndarray:
    y, x = np.mgrid[:height, :width]
    return np.stack([(x * 4 + shift) % 256, (y * 4) % 256, np.full_like(x, 128)], axis=-1).astype(np.uint8)


VFR_TIMES_MS = [0, 40, 60, 150, 160, 300, 310, 320, 500]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data) -> Path:
    """The robustness folder: good files under good/, damaged ones under bad/."""
    root = tmp_path_factory.mktemp("corpus")
    good, bad = root / "good", root / "bad"
    good.mkdir()
    bad.mkdir()
    videos = shared_data / "videos"
    shutil.copyfile(videos / "cav-mae" / "00W1lcxW-WU_40.000.mp4", good / "with_audio.mp4")
    shutil.copyfile(videos / "decord" / "video_90.mov", good / "phone_rotated.mov")
    shutil.copyfile(videos / "mmaction2" / "rawvideo_dataset_part_0.mp4", good / "ünïcødé_视频.mp4")
    shutil.copyfile(videos / "mmaction2" / "test.wav", good / "speech.WAV")  # suffixes match in any case
    encode_test_video(good / "one_frame.mp4", [_gradient(48, 64, 0)], [0])
    encode_test_video(good / "vfr.mp4", [_gradient(48, 64, 30 * i) for i in range(len(VFR_TIMES_MS))], VFR_TIMES_MS)
    (bad / "empty.mp4").write_bytes(b"")
    source = (shared_data / "vggsound" / "0nib7bMm8BA_15000_25000.mp4").read_bytes()
    (bad / "truncated.mp4").write_bytes(source[: len(source) * 3 // 10])
    (bad / "notes.mp4").write_text("not a video, only text\n" * 100)
    (root / "README.txt").write_text("not media: ignored by the scan\n")
    return root


def _run(*args: str) -> int:
    return main(["prepare", *args, "--no-progress"])


def _rejected(out: Path) -> dict[str, str]:
    with open(out / "rejected.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "reason"]
    return {Path(path).name: reason for path, reason in rows[1:]}


def _kept(out: Path) -> dict[str, object]:
    manifest = Manifest.read(out / "manifest.csv")
    return {Path(row.path).name: row for row in manifest}


BAD_REASONS = {"empty.mp4": "empty file", "truncated.mp4": "cannot open as media", "notes.mp4": "cannot open as media"}


def test_robustness_requiring_video(corpus, tmp_path):
    out = tmp_path / "out"
    assert _run(str(corpus), "--out", str(out), "--require-video", "--labels-from-folders", "--workers", "2") == 0
    kept, rejected = _kept(out), _rejected(out)
    assert set(kept) == {"with_audio.mp4", "phone_rotated.mov", "ünïcødé_视频.mp4", "one_frame.mp4", "vfr.mp4"}
    assert set(rejected) == {*BAD_REASONS, "speech.WAV"}
    for name, phrase in {**BAD_REASONS, "speech.WAV": "no video stream (--require-video)"}.items():
        assert phrase in rejected[name] and "\n" not in rejected[name], name
    phone = kept["phone_rotated.mov"]
    assert (phone.rotation, phone.width, phone.height, phone.num_frames) == (90, 320, 568, 3)  # upright size
    assert kept["one_frame.mp4"].num_frames == 1
    assert kept["vfr.mp4"].num_frames == len(VFR_TIMES_MS)
    assert kept["vfr.mp4"].video_duration == pytest.approx(VFR_TIMES_MS[-1] / 1000 + 1 / kept["vfr.mp4"].fps)
    assert all(row.label == "good" for row in kept.values())
    manifest = Manifest.read(out / "manifest.csv")
    for row in manifest:  # source files outside DIR are referred to by absolute path, and all decode
        assert manifest.resolve(row).is_file()
        (clip,) = read_video(manifest.resolve(row), [(0.0, 0.25)], 16, info=manifest.media_info(row))
        assert clip.shape == (3, 4, row.height, row.width)


def test_robustness_requiring_audio(corpus, tmp_path):
    out = tmp_path / "out"
    assert _run(str(corpus), "--out", str(out), "--require-audio", "--workers", "1") == 0
    kept, rejected = _kept(out), _rejected(out)
    assert set(kept) == {"with_audio.mp4", "speech.WAV"}
    no_audio = {"phone_rotated.mov", "ünïcødé_视频.mp4", "one_frame.mp4", "vfr.mp4"}
    assert set(rejected) == {*BAD_REASONS, *no_audio}
    assert all(rejected[name] == "no audio stream (--require-audio)" for name in no_audio)
    speech = kept["speech.WAV"]
    assert (speech.has_video, speech.sample_rate, speech.channels, speech.label) == (False, 16000, 2, "")


def test_file_list_and_bad_arguments(corpus, tmp_path, capsys):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two files\ngood/one_frame.mp4\n\n{corpus / 'bad' / 'empty.mp4'}\n", encoding="utf-8")
    out = tmp_path / "out"
    assert _run(str(corpus), "--out", str(out), "--file-list", str(listing), "--workers", "1") == 0
    assert set(_kept(out)) == {"one_frame.mp4"} and set(_rejected(out)) == {"empty.mp4"}
    assert _run(str(tmp_path / "absent"), "--out", str(out)) == 2
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prepare", str(corpus), "--out", str(out), "--gop", "0"])


def _keyframe_indices(path: Path) -> list[int]:
    """Positions (in presentation order) of the keyframes of the first video stream."""
    with av.open(str(path)) as container:
        packets = [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.pts is not None]
    return [i for i, (_, key) in enumerate(sorted(packets)) if key]


def test_reencode_sets_gop_short_side_and_extracts_audio(shared_data, tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    shutil.copyfile(shared_data / "videos" / "mmaction2" / "test.avi", src / "a" / "xvid_mp3.avi")  # re-encoded audio
    shutil.copyfile(shared_data / "videos" / "cav-mae" / "00W1lcxW-WU_40.000.mp4", src / "h264_aac.mp4")  # copied
    out = tmp_path / "out"
    assert _run(str(src), "--out", str(out), "--short-side", "96", "--gop", "8", "--extract-audio",
                "--workers", "2") == 0
    manifest = Manifest.read(out / "manifest.csv")
    assert len(manifest) == 2 and _rejected(out) == {}
    for row in manifest:
        target = manifest.resolve(row)
        source = Path(row.extra["source_path"])
        assert target.parent.is_relative_to(out / "media") and target.suffix == ".mp4"
        assert target.relative_to(out / "media").with_suffix("") == source.relative_to(src).with_suffix("")
        source_info, info = probe(source), probe(target)
        assert info == manifest.media_info(row)
        # Keyframes exactly every 8 frames; short side 96, even sizes, aspect kept within a pixel.
        assert _keyframe_indices(target) == list(range(0, info.num_frames, 8))
        assert min(info.height, info.width) == 96 and info.height % 2 == 0 and info.width % 2 == 0
        long_side = max(source_info.height, source_info.width) * 96 / min(source_info.height, source_info.width)
        assert abs(max(info.height, info.width) - long_side) <= 2
        # Same frames at the same times (lossy H.264, so compared on average), same audio clock.
        assert info.num_frames == source_info.num_frames
        assert info.video_start == pytest.approx(source_info.video_start, abs=1e-3)
        windows = [(0.5, 0.5), (3.0, 0.5)]
        expected = read_video(source, windows, 8, info=source_info, short_side=96)
        got = read_video(target, windows, 8, info=info)
        for a, b in zip(expected, got):
            assert a.shape == b.shape and (a.float() - b.float()).abs().mean() < 8
        # FLAC: 16 kHz mono from time 0 of the source clock: our own decode of the whole track, in 16 bits.
        flac = out / row.extra["audio_path"]
        flac_info = probe(flac)
        assert (flac_info.sample_rate, flac_info.channels, flac_info.has_video) == (16000, 1, False)
        assert flac_info.audio_duration == pytest.approx(source_info.audio_end, abs=1e-3)
        (from_flac,) = read_audio(flac, [(0.0, source_info.audio_end)], 16000, info=flac_info)
        (from_source,) = read_audio(source, [(0.0, source_info.audio_end)], 16000, info=source_info)
        assert torch.allclose(from_flac, from_source, atol=1.5 / 32767)


def _x264_settings(path: Path) -> str:
    """x264's option string, which it writes into the stream (an SEI message) of every file it encodes."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    return data[start:data.index(b"\x00", start)].decode("ascii", "replace")


def test_reencoded_video_is_tuned_for_fast_decoding_unless_asked_not_to(shared_data, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(shared_data / "videos" / "cav-mae" / "00W1lcxW-WU_40.000.mp4", src / "clip.mp4")
    for flags, cabac, deblock in (((), "cabac=0", "deblock=0"), (("--no-fast-decode",), "cabac=1", "deblock=1")):
        out = tmp_path / f"out{len(flags)}"
        assert _run(str(src), "--out", str(out), "--short-side", "64", "--gop", "8", "--workers", "1", *flags) == 0
        settings = _x264_settings(out / "media" / "clip.mp4")
        assert f" {cabac} " in settings and f" {deblock}:" in settings, settings
