"""avssl.data.avdigits: the AV-Digits corpus built from MNIST and the Free Spoken Digit Dataset.

One small corpus (20 clips: speakers george (test) and jackson (train), take 7 of every digit) is
built once for the module from a copy of part of FSDD. Its files are decoded through the avssl
media pipeline, as the benchmark reads them, and the onsets are measured on the decoded pixels and
samples, not taken from the generator. The module corpus uses a high SNR so that the speech onset
can be found by a plain energy threshold; the signal-to-noise ratio itself is checked on rendered
waveforms.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from avssl.data.avdigits import (
    MANIFEST_EXTRA_COLUMNS,
    METADATA_COLUMNS,
    AVDigitsConfig,
    build_avdigits,
    load_fsdd,
    load_mnist,
    plan_corpus,
    sample_clip_plan,
)
from avssl.data.avdigits.audio import render_audio
from avssl.data.avdigits.layout import split_mnist
from avssl.data.avdigits.speech import TRIM_WINDOW_S, load_speech, speech_bounds
from avssl.data.avdigits.video import render_video
from avssl.data.manifest import Manifest
from avssl.media import decode

CONFIG = AVDigitsConfig(seed=7, snr_db=(40.0, 40.0))
SPEAKERS = ("george", "jackson")
TAKE = "7"


@pytest.fixture(scope="module")
def sources(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(MNIST folder, FSDD folder holding 20 recordings: take 7 of every digit by two speakers)."""
    fsdd = tmp_path_factory.mktemp("fsdd")
    with (shared_data / "fsdd" / "MANIFEST.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [r for r in reader if r["speaker"] in SPEAKERS and r["index"] == TAKE]
        columns = reader.fieldnames
    (fsdd / "audio").mkdir()
    for row in rows:
        shutil.copy(shared_data / "fsdd" / row["file"], fsdd / row["file"])
    with (fsdd / "MANIFEST.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return shared_data / "mnist5k", fsdd


@pytest.fixture(scope="module")
def manifest_path(sources: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    mnist, fsdd = sources
    out = tmp_path_factory.mktemp("avdigits") / "corpus"
    return build_avdigits(out, mnist=mnist, fsdd=fsdd, config=CONFIG, workers=1, progress=False)


@pytest.fixture(scope="module")
def manifest(manifest_path: Path) -> Manifest:
    return Manifest.read(manifest_path)


@pytest.fixture(scope="module")
def metadata(manifest_path: Path) -> list[dict[str, str]]:
    with (manifest_path.parent / "metadata.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*.mp4"))
    }


def decoded(manifest: Manifest, row) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 [T, H, W, 3] and audio [N] of a whole clip, read as the benchmark reads them."""
    info = manifest.media_info(row)
    path = manifest.resolve(row)
    frames = decode.read_video(path, [(0.0, row.duration)], row.fps, info=info)[0]
    audio = decode.read_audio(path, [(0.0, row.duration)], row.sample_rate, info=info)[0]
    return frames.permute(1, 2, 3, 0).numpy(), audio.numpy()


# --- files, labels, manifest ----------------------------------------------------------------------


def test_manifest_lists_every_clip_with_its_digit_split_and_probed_facts(manifest, metadata, sources):
    mnist = load_mnist(sources[0])
    assert len(manifest) == 20 and len(metadata) == 20
    assert tuple(metadata[0]) == METADATA_COLUMNS
    assert manifest.extra_columns() == list(MANIFEST_EXTRA_COLUMNS)
    assert manifest.labels() == [str(d) for d in range(10)]
    for row, meta in zip(manifest, metadata, strict=True):
        digit, speaker, take = Path(meta["recording"]).stem.split("_")
        assert (row.label, row.extra["speaker"], meta["take"]) == (digit, speaker, take)
        assert row.path == f"clips/{digit}/{digit}_{speaker}_{take}_0.mp4" == meta["path"]
        assert row.split == ("test" if speaker == "george" else "train")
        assert mnist.labels[int(row.extra["mnist_index"])] == int(digit)  # the image shows the spoken digit
        assert row.extra["onset"] == meta["onset"] and row.extra["recording"] == meta["recording"]

        counted = decode.probe(manifest.resolve(row), count_frames=True)  # decodes every frame
        header = decode.probe(manifest.resolve(row), count_frames=False)
        assert (counted.num_frames, header.fps, header.width, header.height) == (32, 16.0, 80, 80)
        assert (header.sample_rate, header.channels) == (16000, 1)
        assert (row.num_frames, row.fps, row.width, row.height, row.sample_rate, row.channels) == (
            counted.num_frames, header.fps, header.width, header.height, header.sample_rate, header.channels
        )
        # The header's durations (the mp4 edit list) are the written ones; decoding the last AAC
        # frame in full may run up to 1023 samples past them.
        assert (row.duration, row.video_duration, row.audio_duration) == pytest.approx(
            (header.duration, header.video_duration, header.audio_duration), abs=1e-3
        )
        assert row.audio_duration <= counted.audio_duration < row.audio_duration + 1024 / 16000


def test_speech_fits_the_clip_with_its_margins(metadata):
    for meta in metadata:
        onset, length = float(meta["onset"]), float(meta["speech_duration"])
        assert CONFIG.min_lead_in_s <= onset <= CONFIG.max_onset_s
        assert onset + length <= CONFIG.duration - CONFIG.min_tail_s + 1e-4
        assert int(meta["onset_frame"]) == int(np.floor(onset * CONFIG.fps + 0.5))
        assert int(meta["onset_sample"]) == round(onset * CONFIG.sample_rate)


# --- audio-visual onset ------------------------------------------------------------------------


def visual_onset(frames: np.ndarray) -> int:
    """First frame where more than 0.5 % of pixels differ from frame 0 by over 40 levels."""
    change = np.abs(frames.astype(np.int16) - frames[:1].astype(np.int16)).max(axis=-1) > 40  # [T, H, W]
    changed = np.flatnonzero(change.mean(axis=(1, 2)) > 0.005)
    assert changed.size, "the digit never appears"
    return int(changed[0])


def audio_onset(audio: np.ndarray, sample_rate: int) -> float:
    """Start (s) of the first 5 ms window 20 dB above the noise of the first 0.1 s."""
    window = sample_rate // 200
    energy = np.mean(audio[: len(audio) // window * window].reshape(-1, window) ** 2, axis=1)
    noise = np.mean(energy[: int(0.1 * sample_rate) // window])
    return float(np.flatnonzero(energy > 100.0 * noise)[0] * window / sample_rate)


def test_digit_appears_on_the_frame_where_the_decoded_speech_starts(manifest):
    frame_s = 1.0 / CONFIG.fps
    for row in manifest:
        frames, audio = decoded(manifest, row)
        onset_frame = visual_onset(frames)
        # Frame-exact: the digit is absent up to frame round(t0 · fps) - 1 and present from it on.
        assert onset_frame == int(row.extra["onset_frame"]), row.path
        assert onset_frame == int(np.floor(float(row.extra["onset"]) * CONFIG.fps + 0.5))
        heard = audio_onset(audio, row.sample_rate)
        assert abs(heard - float(row.extra["onset"])) < 0.03, row.path  # measured vs recorded onset
        assert abs(heard - onset_frame * frame_s) <= frame_s, row.path  # within one frame
        assert np.abs(audio[: int(0.1 * row.sample_rate)]).max() < 0.01  # no word before the lead-in


def test_metadata_recreates_each_clip_with_its_own_mnist_image(manifest, metadata, sources):
    mnist, fsdd = load_mnist(sources[0]), load_fsdd(sources[1])
    own, other = [], []
    for row, meta in zip(manifest, metadata, strict=True):
        speech = load_speech(fsdd.root / meta["recording"], 16000, CONFIG.trim_margins_db, CONFIG.speech_window_s)
        plan = sample_clip_plan(CONFIG, len(speech.samples), int(meta["clip_seed"]))
        assert plan.onset_sample == int(meta["onset_sample"])
        frames, _ = decoded(manifest, row)

        def mismatch(image_index: int) -> float:
            """Share of pixels off by over 40 levels: rare for H.264 at crf 23, common for a wrong stroke."""
            rendered = render_video(CONFIG, plan, mnist.images[image_index]).astype(np.int16)
            return float((np.abs(rendered - frames).max(axis=-1) > 40).mean())

        image = int(meta["mnist_index"])
        another = next(i for i in np.flatnonzero(mnist.labels == int(row.label)) if i != image)
        own.append(mismatch(image))
        other.append(mismatch(another))  # another image of the same digit
    assert max(own) < 0.01  # measured: at most 0.75 % (chroma subsampling at colourful edges)
    assert all(o < a for o, a in zip(own, other, strict=True))
    assert sum(other) > 5 * sum(own)  # measured: about 14 times


def test_signal_to_noise_ratio_and_speech_level_are_as_planned(sources):
    config = AVDigitsConfig(seed=1)
    fsdd = load_fsdd(sources[1])
    speech = load_speech(fsdd.root / fsdd.recordings[0].file, 16000, config.trim_margins_db, config.speech_window_s)
    for seed in range(6):
        plan = sample_clip_plan(config, len(speech.samples), seed)
        waveform = render_audio(plan, speech.samples, config.num_samples, config.sample_rate).astype(np.float64)
        before = waveform[: plan.onset_sample]
        word = waveform[plan.onset_sample : plan.onset_sample + len(speech.samples)]
        noise_db = 10 * np.log10(np.mean(before**2))
        speech_db = 10 * np.log10(np.mean(word**2) - np.mean(before**2))  # noise power subtracted
        assert speech_db == pytest.approx(plan.speech_rms_dbfs, abs=0.6)
        assert speech_db - noise_db == pytest.approx(plan.snr_db, abs=1.5)
        assert config.snr_db[0] <= plan.snr_db <= config.snr_db[1]


@pytest.mark.parametrize("noise_rms", [1e-4, 0.03])  # near silence; room noise 17 dB below the word
def test_speech_bounds_find_the_word_inside_noise_and_ignore_clicks(noise_rms):
    rate = 16000
    rng = np.random.default_rng(0)
    samples = noise_rms * rng.standard_normal(rate)  # 1 s
    samples[4000:9000] += 0.3 * np.sin(2 * np.pi * 300 * np.arange(5000) / rate)  # the word
    samples[1000:1080] += 0.3  # a 5 ms click before it: too short to start a word
    samples[14400:15200] += 0.2 * rng.standard_normal(800)  # a 50 ms crackle 0.34 s after it
    start, stop = speech_bounds(samples.astype(np.float32), rate, onset_margin_db=8.0, offset_margin_db=4.0)
    window = round(TRIM_WINDOW_S * rate)
    assert 4000 - window < start <= 4000 and 9000 <= stop < 9000 + window
    with pytest.raises(ValueError, match="silent"):
        speech_bounds(np.zeros(rate, dtype=np.float32), rate, onset_margin_db=8.0, offset_margin_db=4.0)


# --- splits ----------------------------------------------------------------------------------


def test_test_split_has_unseen_speakers_and_unseen_images(manifest, shared_data):
    test_rows = [r for r in manifest if r.split == "test"]
    train_rows = [r for r in manifest if r.split == "train"]
    assert {r.extra["speaker"] for r in test_rows} == {"george"}
    assert {r.extra["speaker"] for r in train_rows} == {"jackson"}

    # The full corpus of the default config, planned without rendering.
    config = AVDigitsConfig()
    mnist, fsdd = load_mnist(shared_data / "mnist5k"), load_fsdd(shared_data / "fsdd")
    entries = plan_corpus(config, mnist, fsdd)
    by_split = {s: [e for e in entries if e.split == s] for s in ("train", "test")}
    assert (len(by_split["train"]), len(by_split["test"])) == (2500, 500)
    assert {e.recording.speaker for e in by_split["test"]} == {"george"}
    assert "george" not in {e.recording.speaker for e in by_split["train"]}
    images = {s: {e.mnist_index for e in by_split[s]} for s in by_split}
    assert not images["train"] & images["test"]
    assert all(mnist.labels[e.mnist_index] == e.recording.digit for e in entries)
    # 50 test recordings per digit draw from that digit's 100 test images: no image twice.
    assert len(images["test"]) == 500 and len(images["train"]) == 2500
    assert len({e.relative_path for e in entries}) == 3000

    shares = split_mnist(config, mnist)
    for digit in range(10):
        assert (len(shares["train"][digit]), len(shares["test"][digit])) == (400, 100)  # 20 % test
        assert not set(shares["train"][digit]) & set(shares["test"][digit])

    # The module corpus draws from the shares of its own seed: a subset of FSDD changes nothing there.
    own = split_mnist(CONFIG, mnist)
    for row in manifest:
        assert int(row.extra["mnist_index"]) in own[row.split][int(row.label)]


def test_two_clips_per_recording_get_their_own_images_and_names(sources):
    mnist, fsdd = load_mnist(sources[0]), load_fsdd(sources[1])
    entries = plan_corpus(AVDigitsConfig(num_clips_per_recording=2), mnist, fsdd)
    assert len(entries) == 40
    assert len({e.relative_path for e in entries}) == 40
    assert len({e.clip_seed for e in entries}) == 40
    for first, second in zip(entries[::2], entries[1::2], strict=True):
        assert first.recording == second.recording and (first.repeat, second.repeat) == (0, 1)
        assert first.mnist_index != second.mnist_index


# --- determinism and caching -----------------------------------------------------------------


def test_same_config_gives_identical_clips_whatever_the_number_of_workers(manifest_path, sources, tmp_path):
    mnist, fsdd = sources
    again = build_avdigits(tmp_path / "again", mnist=mnist, fsdd=fsdd, config=CONFIG, workers=2, progress=False)
    assert digests(again.parent) == digests(manifest_path.parent)  # single-threaded x264: byte-identical
    for name in ("manifest.csv", "metadata.csv"):
        assert (again.parent / name).read_bytes() == (manifest_path.parent / name).read_bytes()


def test_cache_is_reused_and_rebuilt_when_config_or_sources_change(sources, tmp_path):
    mnist, fsdd = sources
    small = tmp_path / "fsdd_small"
    shutil.copytree(fsdd, small)
    with (small / "MANIFEST.csv").open() as handle:
        lines = handle.readlines()
    (small / "MANIFEST.csv").write_text("".join(lines[:4]))  # header + 3 recordings
    out = tmp_path / "cache"

    manifest_path = build_avdigits(out, mnist=mnist, fsdd=small, config=CONFIG, workers=1, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    first_digests = digests(out)
    assert len(stamps) == 3
    assert build_avdigits(out, mnist=mnist, fsdd=small, config=CONFIG, workers=1, progress=False) == manifest_path
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == stamps  # nothing rewritten

    fingerprint = json.loads((out / "config.json").read_text())["fingerprint"]
    other_seed = replace(CONFIG, seed=CONFIG.seed + 1)
    build_avdigits(out, mnist=mnist, fsdd=small, config=other_seed, workers=1, progress=False)
    state = json.loads((out / "config.json").read_text())
    assert state["complete"] and state["fingerprint"] != fingerprint
    assert state["config"]["seed"] == CONFIG.seed + 1
    assert digests(out).keys() == first_digests.keys()  # the same recordings...
    assert all(digests(out)[name] != first_digests[name] for name in first_digests)  # ...drawn anew

    (small / "MANIFEST.csv").write_text("".join(lines[:3]))  # other sources: 2 recordings
    build_avdigits(out, mnist=mnist, fsdd=small, config=other_seed, workers=1, progress=False)
    assert len(Manifest.read(out / "manifest.csv")) == 2
    assert len(list(out.rglob("*.mp4"))) == 2  # clips of the earlier build are gone

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no AV-Digits corpus"):
        build_avdigits(foreign, mnist=mnist, fsdd=small, config=CONFIG, workers=1, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


# --- errors ------------------------------------------------------------------------------------


def test_missing_or_invalid_sources_raise_errors_naming_the_path_and_the_problem(sources, tmp_path):
    mnist, fsdd = sources
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.npz: MNIST digits not found; expected a \.npz"):
        build_avdigits(out, mnist=tmp_path / "nowhere.npz", fsdd=fsdd)
    with pytest.raises(FileNotFoundError, match=r"no_fsdd/MANIFEST\.csv: not found; expected the Free Spoken"):
        build_avdigits(out, mnist=mnist, fsdd=tmp_path / "no_fsdd")

    bad_npz = tmp_path / "bad.npz"
    np.savez(bad_npz, images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"bad\.npz: field 'labels' is missing"):
        load_mnist(bad_npz)
    np.savez(bad_npz, images=np.zeros((3, 32, 32), np.uint8), labels=np.zeros(3, np.int64))
    wrong_shape = r"bad\.npz: field 'images' must be uint8 \[N, 28, 28\], got uint8 \[3, 32, 32\]"
    with pytest.raises(ValueError, match=wrong_shape):
        load_mnist(bad_npz)

    broken = tmp_path / "fsdd_broken"
    shutil.copytree(fsdd, broken)
    text = (broken / "MANIFEST.csv").read_text().splitlines()
    header = text[0].split(",")
    cells = text[2].split(",")
    cells[header.index("labels")] = "ten"
    (broken / "MANIFEST.csv").write_text("\n".join([text[0], text[1], ",".join(cells)]) + "\n")
    with pytest.raises(ValueError, match=r"MANIFEST\.csv: row 2: field 'labels': must be one digit 0-9, got 'ten'"):
        load_fsdd(broken)
    (broken / "MANIFEST.csv").write_text("file,speaker,index\n")
    with pytest.raises(ValueError, match=r"row 0 \(header\): field 'labels': required column is missing"):
        load_fsdd(broken)
    (broken / "MANIFEST.csv").write_text("\n".join(text[:2]) + "\n")
    (broken / text[1].split(",")[0]).unlink()
    with pytest.raises(ValueError, match=r"row 1: field 'file': .*\.flac does not exist"):
        load_fsdd(broken)

    with pytest.raises(ValueError, match=r"field 'speaker': test speakers \['nobody'\]"):
        build_avdigits(out, mnist=mnist, fsdd=fsdd, config=AVDigitsConfig(test_speakers=("nobody",)))
    assert not out.exists()  # nothing written for bad input


def test_config_rejects_bad_values_naming_the_field():
    with pytest.raises(ValueError, match=r"AVDigitsConfig\.duration: must be positive and a whole number of frames"):
        AVDigitsConfig(duration=2.01)
    with pytest.raises(ValueError, match=r"AVDigitsConfig\.digit_size_px: the largest rotated digit"):
        AVDigitsConfig(digit_size_px=(26.0, 70.0))
    with pytest.raises(ValueError, match=r"AVDigitsConfig\.snr_db: must be \(low, high\) with low <= high"):
        AVDigitsConfig(snr_db=(20.0, 5.0))
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\]"):
        AVDigitsConfig.from_dict({"colour": 1})
    config = AVDigitsConfig.from_dict(json.loads(json.dumps(AVDigitsConfig().to_dict())))
    assert config == AVDigitsConfig()  # lists from JSON become tuples again
    assert config.fingerprint({"mnist": "a"}) != config.fingerprint({"mnist": "b"})


def test_config_rejects_an_onset_bound_before_the_lead_in():
    with pytest.raises(ValueError, match="max_onset_s"):
        replace(CONFIG, min_lead_in_s=0.3, max_onset_s=0.2)


def test_colour_ranges_bound_each_channel_and_keep_the_digit_contrast():
    # The default ranges are disjoint: a light digit on a dark ground in every clip.
    plans = [sample_clip_plan(CONFIG, 8000, seed) for seed in range(200)]
    bases = np.array([plan.base_colour for plan in plans])  # [200, 3]
    digits = np.array([plan.digit_colour for plan in plans])
    assert bases.min() >= 0.0 and bases.max() <= 0.35 and digits.min() >= 0.65 and digits.max() <= 1.0
    assert np.linalg.norm(digits - bases, axis=1).min() >= CONFIG.min_digit_contrast
    # Overlapping ranges (the first defaults) give both polarities.
    any_colour = replace(CONFIG, background_colour=(0.2, 0.8), digit_colour=(0.0, 1.0))
    plans = [sample_clip_plan(any_colour, 8000, seed) for seed in range(200)]
    darker = [np.mean(plan.digit_colour) < np.mean(plan.base_colour) for plan in plans]
    assert 0.2 < np.mean(darker) < 0.8
    assert min(np.linalg.norm(np.subtract(p.digit_colour, p.base_colour)) for p in plans) >= CONFIG.min_digit_contrast
    with pytest.raises(ValueError, match=r"AVDigitsConfig\.digit_colour: must lie in \[0, 1\]"):
        AVDigitsConfig(digit_colour=(0.5, 1.2))
    with pytest.raises(ValueError, match="move digit_colour away from background_colour"):
        sample_clip_plan(replace(CONFIG, background_colour=(0.4, 0.5), digit_colour=(0.4, 0.5)), 8000, 0)
