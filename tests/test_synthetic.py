"""The synthetic demo corpus (avssl.data.synthetic): real mp4 files whose sound and picture share
class and timing, deterministic by seed, cached by config fingerprint.

Files are decoded with PyAV directly (not avssl.media), so these tests check the corpus against an
independent reader. One corpus of 30 short clips (3 per class) is generated once for the module.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from avssl.data.synthetic import (
    CLASS_NAMES,
    CLASSES,
    METADATA_COLUMNS,
    SyntheticConfig,
    is_complete_corpus,
    plan_corpus,
    sample_clip_plan,
    write_corpus,
)
from avssl.data.synthetic import events
from avssl.data.synthetic.shapes import SHAPES

CONFIG = SyntheticConfig(num_clips=30, seed=11, duration_range=(2.0, 2.5))
AAC_FRAME = 1024  # samples per AAC frame: the decoder may pad the last one


@dataclass
class DecodedClip:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    frame_times: np.ndarray  # seconds [T]
    key_frames: np.ndarray  # bool [T]
    audio: np.ndarray  # float32 [N]
    first_audio_time: float
    video_codec: str
    audio_codec: str
    average_rate: float
    sample_rate: int
    channels: int
    audio_stream_duration: float


def decode_clip(path: Path) -> DecodedClip:
    with av.open(str(path)) as container:
        video_stream = container.streams.video[0]
        audio_stream = container.streams.audio[0]
        frames, times, keys, audio_chunks, audio_times = [], [], [], [], []
        for frame in container.decode(video_stream, audio_stream):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(frame.time)
                keys.append(frame.key_frame)
            else:
                audio_chunks.append(frame.to_ndarray().reshape(-1))
                audio_times.append(frame.time)
        return DecodedClip(
            frames=np.stack(frames),
            frame_times=np.asarray(times),
            key_frames=np.asarray(keys, dtype=bool),
            audio=np.concatenate(audio_chunks),
            first_audio_time=min(audio_times),
            video_codec=video_stream.codec_context.name,
            audio_codec=audio_stream.codec_context.name,
            average_rate=float(video_stream.average_rate),
            sample_rate=audio_stream.sample_rate,
            channels=audio_stream.codec_context.layout.nb_channels,
            audio_stream_duration=float(audio_stream.duration * audio_stream.time_base),
        )


def read_metadata(corpus: Path) -> list[dict[str, str]]:
    with (corpus / "metadata.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def seconds(text: str) -> list[float]:
    return [float(value) for value in text.split(";")]


def file_digests(corpus: Path) -> dict[str, str]:
    return {
        str(path.relative_to(corpus)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(corpus.rglob("*.mp4"))
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "corpus"
    return write_corpus(out, CONFIG, workers=1, progress=False)


@pytest.fixture(scope="module")
def rows(corpus: Path) -> list[dict[str, str]]:
    return read_metadata(corpus)


@pytest.fixture(scope="module")
def decoded(corpus: Path, rows: list[dict[str, str]]) -> list[DecodedClip]:
    return [decode_clip(corpus / row["path"]) for row in rows]


# --- files and metadata ---------------------------------------------------------------------


def test_files_decode_as_h264_aac_with_the_expected_size_rate_and_length(rows, decoded):
    height, width = CONFIG.size
    for row, clip in zip(rows, decoded, strict=True):
        num_frames, num_samples = int(row["num_frames"]), int(row["num_samples"])
        assert (clip.video_codec, clip.audio_codec) == ("h264", "aac"), row["path"]
        assert clip.frames.shape == (num_frames, height, width, 3), row["path"]
        assert clip.average_rate == CONFIG.fps
        np.testing.assert_allclose(clip.frame_times, np.arange(num_frames) / CONFIG.fps, atol=1e-6)
        # A key frame exactly every `gop` frames: cheap random access.
        key_frames = np.flatnonzero(clip.key_frames)
        np.testing.assert_array_equal(key_frames, np.arange(0, num_frames, CONFIG.gop))
        assert (clip.sample_rate, clip.channels) == (CONFIG.sample_rate, 1)
        assert clip.first_audio_time == 0.0  # encoder priming hidden by the mp4 edit list
        assert num_samples <= clip.audio.size < num_samples + AAC_FRAME, row["path"]
        assert clip.audio_stream_duration == pytest.approx(float(row["duration"]), abs=1e-3)


def test_metadata_describes_every_clip_and_regenerates_it_from_its_seed(corpus, rows):
    assert tuple(rows[0].keys()) == METADATA_COLUMNS
    assert len(rows) == CONFIG.num_clips
    assert (corpus / "classes.txt").read_text().splitlines() == list(CLASS_NAMES)
    assert len({row["seed"] for row in rows}) == len(rows)
    low, high = CONFIG.duration_range
    for row in rows:
        fps, num_frames = int(row["fps"]), int(row["num_frames"])
        assert row["label"] == CLASS_NAMES[int(row["class_index"])]
        assert row["path"] == f"{row['label']}/{row['clip_id']}.mp4"
        assert (corpus / row["path"]).is_file()
        assert float(row["duration"]) == pytest.approx(num_frames / fps)
        assert low - 0.5 / fps <= float(row["duration"]) <= high + 0.5 / fps
        assert int(row["num_samples"]) * fps == num_frames * int(row["sample_rate"])
        assert (int(row["height"]), int(row["width"])) == CONFIG.size

        times, durations = seconds(row["event_times"]), seconds(row["event_durations"])
        assert len(times) == len(durations) == int(row["num_events"])
        assert CONFIG.events_per_clip[0] <= len(times) <= CONFIG.events_per_clip[1]
        onset_frames = np.asarray(times) * fps
        np.testing.assert_allclose(onset_frames, np.round(onset_frames), atol=1e-4)  # on frames
        assert times[0] >= events.FIRST_ONSET_S
        assert np.all(np.diff(times) >= events.MIN_ONSET_GAP_S - 1e-6)
        assert all(events.EVENT_DURATION_S[0] <= d <= events.EVENT_DURATION_S[1] for d in durations)
        assert times[-1] + durations[-1] <= float(row["duration"]) + 1e-6

        plan = sample_clip_plan(CONFIG, int(row["class_index"]), int(row["seed"]))
        np.testing.assert_allclose(plan.event_times, times, atol=1e-6)
        assert plan.num_frames == num_frames


def split_sizes(count: int, fractions: tuple[float, ...]) -> list[int]:
    ends = np.round(np.cumsum(fractions) * count).astype(int)
    return list(np.diff(np.concatenate([[0], ends])))


def test_classes_are_balanced_and_splits_stratified(rows):
    counts = Counter(int(row["class_index"]) for row in rows)
    assert set(counts) == set(range(len(CLASSES)))
    assert max(counts.values()) - min(counts.values()) <= 1

    entries = plan_corpus(SyntheticConfig(num_clips=1000, seed=3))
    assert Counter(e.class_index for e in entries) == {c: 100 for c in range(len(CLASSES))}
    for class_index in range(len(CLASSES)):
        splits = Counter(e.split for e in entries if e.class_index == class_index)
        expected = split_sizes(100, CONFIG.split_fractions)
        assert [splits["train"], splits["val"], splits["test"]] == expected


def test_events_never_overlap_and_fill_the_allowed_range():
    rng = np.random.default_rng(0)
    fps, num_frames = 16, 40
    first, last = events.onset_frame_range(num_frames, fps)
    seen = set()
    for _ in range(300):
        onsets = events.sample_onset_frames(rng, num_frames, fps, 3)
        assert first <= onsets[0] and onsets[-1] <= last
        assert np.all(np.diff(onsets) >= events.min_onset_gap_frames(fps))
        seen.update(onsets.tolist())
    assert seen == set(range(first, last + 1))  # every allowed frame is reachable
    with pytest.raises(ValueError, match="cannot place"):
        events.sample_onset_frames(rng, num_frames, fps, events.max_events(num_frames, fps) + 1)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_fits_the_unit_circle(shape):
    # The renderer only draws inside a box of the popped radius: a shape poking out would be cut.
    angle = np.linspace(0, 2 * np.pi, 721)
    radius = np.linspace(1.01, 1.5, 20)[:, None]
    outside = SHAPES[shape](radius * np.cos(angle), radius * np.sin(angle))
    assert np.all(outside > 0)
    grid = np.linspace(-1, 1, 201)
    inside = SHAPES[shape](*np.meshgrid(grid, grid)) < 0
    assert 0.1 < inside.mean() <= np.pi / 4 + 0.01  # a real area, at most the disc's


# --- determinism and caching --------------------------------------------------------------


def test_same_seed_gives_identical_files_whatever_the_number_of_workers(corpus, rows, tmp_path):
    again = write_corpus(tmp_path / "again", CONFIG, workers=2, progress=False)
    assert file_digests(again) == file_digests(corpus)  # single-threaded x264: byte-identical
    assert (again / "metadata.csv").read_bytes() == (corpus / "metadata.csv").read_bytes()
    first, second = decode_clip(corpus / rows[0]["path"]), decode_clip(again / rows[0]["path"])
    np.testing.assert_array_equal(first.frames, second.frames)
    np.testing.assert_array_equal(first.audio, second.audio)


def test_another_seed_gives_other_clips(corpus, rows, decoded, tmp_path):
    other_config = SyntheticConfig(
        num_clips=3, seed=CONFIG.seed + 1, duration_range=CONFIG.duration_range
    )
    other = write_corpus(tmp_path / "other", other_config, workers=1, progress=False)
    other_rows = read_metadata(other)
    assert not {row["seed"] for row in other_rows} & {row["seed"] for row in rows}
    for row, clip in zip(other_rows, decoded, strict=False):
        other_clip = decode_clip(other / row["path"])
        for mine, theirs in ((clip.frames, other_clip.frames), (clip.audio, other_clip.audio)):
            assert mine.shape != theirs.shape or np.any(mine != theirs)


def test_cache_is_reused_regenerated_on_change_and_foreign_folders_are_left_alone(tmp_path):
    config = SyntheticConfig(num_clips=4, seed=5, duration_range=(2.0, 2.0))
    out = write_corpus(tmp_path / "cache", config, workers=1, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    assert is_complete_corpus(out, config)

    assert write_corpus(out, config, workers=1, progress=False) == out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == stamps  # nothing rewritten

    changed = SyntheticConfig(num_clips=3, seed=6, duration_range=(2.0, 2.0))
    assert not is_complete_corpus(out, changed)
    write_corpus(out, changed, workers=1, progress=False)
    assert is_complete_corpus(out, changed) and not is_complete_corpus(out, config)
    changed_rows = read_metadata(out)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.mp4")) == sorted(
        row["path"] for row in changed_rows
    )  # clips of the old config are gone

    (out / changed_rows[0]["path"]).unlink()  # a damaged corpus is regenerated
    assert not is_complete_corpus(out, changed)
    write_corpus(out, changed, workers=1, progress=False)
    assert (out / changed_rows[0]["path"]).is_file()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="foreign.*config.json missing"):
        write_corpus(foreign, config, workers=1, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", (111, 112)),
        ("size", 112),
        ("fps", 0),
        ("duration_range", (0.5, 0.6)),
        ("events_per_clip", (3, 2)),
        ("split_fractions", (0.5, 0.5, 0.5)),
        ("crf", 60),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"SyntheticConfig\.{field}:"):
        SyntheticConfig(**{field: value})


def test_fingerprint_follows_every_field():
    base = SyntheticConfig()
    assert SyntheticConfig.from_dict(base.to_dict()).fingerprint() == base.fingerprint()
    assert SyntheticConfig(crf=22).fingerprint() != base.fingerprint()
    assert SyntheticConfig(seed=1).fingerprint() != base.fingerprint()
    with pytest.raises(ValueError, match="unknown fields"):
        SyntheticConfig.from_dict({"num_clip": 3})


# --- timing: sound and picture change together ---------------------------------------------


def audio_energy(audio: np.ndarray, hop: int) -> np.ndarray:
    """Mean power in consecutive hops of `hop` samples: `[N // hop]`."""
    usable = audio.size // hop * hop
    return (audio[:usable].astype(np.float64) ** 2).reshape(-1, hop).mean(axis=1)


def picture_change(frames: np.ndarray) -> np.ndarray:
    """Per frame j, the summed change from frame j - 1 over pixels that changed by > 8 levels.

    The threshold ignores codec noise (small changes everywhere); entry 0 is 0.
    """
    change = np.abs(np.diff(frames.astype(np.int16), axis=0)).max(axis=-1)  # [T - 1, H, W]
    return np.concatenate([[0.0], np.where(change > 8, change, 0).sum(axis=(1, 2))])


def test_each_event_starts_within_one_frame_in_sound_and_picture(rows, decoded):
    fps, rate = CONFIG.fps, CONFIG.sample_rate
    frame_samples = rate // fps
    hop = rate // 200  # 5 ms
    for row, clip in zip(rows, decoded, strict=True):
        energy = audio_energy(clip.audio, hop)
        change = picture_change(clip.frames)
        for time in seconds(row["event_times"]):
            onset_frame, onset_hop = round(time * fps), round(time * rate) // hop

            # Sound: the first 5 ms hop above half the local peak, searched two frames either side.
            start = onset_hop - 2 * frame_samples // hop
            window = energy[start : onset_hop + 2 * frame_samples // hop]
            detected = (start + np.argmax(window > 0.5 * window.max())) * hop / rate
            assert abs(detected - time) <= 1 / fps, (row["path"], time, detected)
            before = energy[onset_hop - frame_samples // hop : onset_hop].mean()
            after = energy[onset_hop : onset_hop + frame_samples // hop].mean()
            assert after > 3 * before, (row["path"], time, after / before)

            # Picture: the largest change within two frames either side is at the onset frame.
            low, high = max(1, onset_frame - 2), min(len(change) - 1, onset_frame + 2)
            peak = low + int(np.argmax(change[low : high + 1]))
            assert abs(peak - onset_frame) <= 1, (row["path"], time, change[low : high + 1])


def test_sound_and_picture_agree_in_sync_more_than_when_shifted(decoded):
    # Per clip: correlation of per-frame audio energy with per-frame picture change, in sync and
    # with the picture shifted by 4-8 frames (0.25-0.5 s), as a desynchronised window would be.
    frame_samples = CONFIG.sample_rate // CONFIG.fps
    in_sync, shifted = [], []
    for clip in decoded:
        energy = audio_energy(clip.audio, frame_samples)[: len(clip.frames)]
        change = picture_change(clip.frames)[: energy.size]
        in_sync.append(np.corrcoef(energy[1:], change[1:])[0, 1])
        for shift in range(4, 9):
            shifted.append(np.corrcoef(energy[1 + shift :], change[1:-shift])[0, 1])
    assert np.mean(in_sync) > 0.5
    assert np.mean(in_sync) > np.mean(shifted) + 0.4


# --- class information: in shape and sound, not in nuisances -------------------------------


def audio_band_profile(audio: np.ndarray, times: list[float]) -> np.ndarray:
    """Mean log power in 24 log-spaced bands (150 Hz-7.5 kHz) over the first 150 ms of each
    event, centred over bands so that loudness cancels: `[24]`."""
    rate, length = CONFIG.sample_rate, int(0.15 * CONFIG.sample_rate)
    frequencies = np.fft.rfftfreq(length, 1 / rate)
    edges = np.geomspace(150, 7500, 25)
    band_of = [(frequencies >= lo) & (frequencies < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    powers = []
    for time in times:
        start = round(time * rate)
        spectrum = np.abs(np.fft.rfft(audio[start : start + length] * np.hanning(length))) ** 2
        powers.append([spectrum[band].sum() for band in band_of])
    profile = np.log(np.mean(powers, axis=0) + 1e-12)
    return profile - profile.mean()


def flash_shape_and_colour(frames: np.ndarray, times: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Shape descriptors and mean RGB of what lights up at each onset, averaged over events.

    The pixels that change most between frames k - 1 and k are the object (it flashes and pops);
    shape descriptors are invariant to position, size and rotation: the histogram of distances to
    the centroid in units of sqrt(area), the fill of the enclosing circle, the axis ratio and
    whether the centroid is covered (rings are hollow).
    """
    shapes, colours = [], []
    for time in times:
        k = round(time * CONFIG.fps)
        change = np.abs(frames[k].astype(np.int16) - frames[k - 1]).max(axis=-1)
        # The interior brightens by ~(1 - base opacity) of the contrast, the popped rim by all of
        # it: 0.3 of the strongest change keeps both; 8 levels is above codec noise.
        mask = change > max(8.0, 0.3 * np.percentile(change, 99.5))
        ys, xs = np.nonzero(mask)
        cy, cx = ys.mean(), xs.mean()
        distance = np.hypot(ys - cy, xs - cx)
        histogram = np.histogram(distance / np.sqrt(mask.sum()), bins=8, range=(0, 1.6))[0]
        histogram = histogram / mask.sum()
        minor, major = np.linalg.eigvalsh(np.cov(np.stack([xs, ys])))
        fill = mask.sum() / (np.pi * distance.max() ** 2)
        hollow = float(mask[int(round(cy)), int(round(cx))])
        shapes.append(np.concatenate([histogram, [fill, minor / major, hollow]]))
        colours.append(frames[k][mask].mean(axis=0) / 255.0)
    return np.mean(shapes, axis=0), np.mean(colours, axis=0)


def leave_one_out_nearest_centroid(features: np.ndarray, labels: np.ndarray) -> float:
    features = (features - features.mean(0)) / (features.std(0) + 1e-9)
    correct = 0
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        centroids = np.stack(
            [features[others & (labels == c)].mean(0) for c in range(len(CLASSES))]
        )
        correct += int(np.argmin(((centroids - features[i]) ** 2).sum(1)) == labels[i])
    return correct / len(labels)


def test_class_is_recoverable_from_sound_alone_and_picture_alone_but_not_from_colour(rows, decoded):
    labels = np.array([int(row["class_index"]) for row in rows])
    times = [seconds(row["event_times"]) for row in rows]
    sound = np.stack([audio_band_profile(c.audio, t) for c, t in zip(decoded, times)])
    shape_colour = [flash_shape_and_colour(c.frames, t) for c, t in zip(decoded, times)]
    shape = np.stack([s for s, _ in shape_colour])
    colour = np.stack([c for _, c in shape_colour])
    chance = 1 / len(CLASSES)
    assert leave_one_out_nearest_centroid(sound, labels) >= 6 * chance
    assert leave_one_out_nearest_centroid(shape, labels) >= 6 * chance
    assert leave_one_out_nearest_centroid(colour, labels) <= 3 * chance


def test_nuisance_values_are_drawn_independently_of_the_class():
    # 2,000 plans (no rendering): a nearest-centroid classifier on every nuisance value stays at
    # chance, while the same classifier on pitch, a class cue, is near perfect.
    config = SyntheticConfig(num_clips=2000, seed=9)
    plans = [sample_clip_plan(config, e.class_index, e.clip_seed) for e in plan_corpus(config)]
    labels = np.array([p.class_index for p in plans])
    nuisance = np.array(
        [
            [
                *p.object_colour,
                *p.background_colour,
                p.object_radius,
                p.pop_scale,
                p.base_opacity,
                *p.start_position,
                *p.velocity,
                p.rotation,
                p.angular_speed,
                p.texture_amplitude,
                p.grain_amplitude,
                p.event_level,
                p.noise_rms / p.event_level,
                p.noise_exponent,
                p.num_frames,
                len(p.onset_frames),
            ]
            for p in plans
        ]
    )
    pitch = np.log([[np.mean(p.event_pitches_hz)] for p in plans])

    def held_out_accuracy(features: np.ndarray) -> float:
        features = (features - features.mean(0)) / (features.std(0) + 1e-9)
        train, test = np.arange(len(labels)) % 2 == 0, np.arange(len(labels)) % 2 == 1
        centroids = np.stack([features[train & (labels == c)].mean(0) for c in range(len(CLASSES))])
        predicted = np.argmin(((features[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        return float(np.mean(predicted == labels[test]))

    chance = 1 / len(CLASSES)
    assert held_out_accuracy(nuisance) < chance + 0.05  # 1,000 test clips: chance ± 0.01
    assert held_out_accuracy(pitch) > 0.95


# --- command line ---------------------------------------------------------------------------


def test_synth_command_writes_a_corpus(tmp_path, monkeypatch, capsys):
    from avssl import cli

    assert cli.COMMANDS["synth"] == "avssl.commands.synth"
    # Dispatch through the real CLI, with only this command loaded (others may need extras).
    monkeypatch.setattr(cli, "COMMANDS", {"synth": cli.COMMANDS["synth"]})
    out = tmp_path / "cli"
    argv = ["synth", "--out", str(out), "--num-clips", "2", "--seed", "4", "--size", "64x96"]
    assert cli.main([*argv, "--duration", "2", "2", "--workers", "1", "--quiet"]) == 0
    assert f"2 clips in {out}" in capsys.readouterr().out
    rows = read_metadata(out)
    assert len(rows) == 2 and (rows[0]["height"], rows[0]["width"]) == ("64", "96")
    assert decode_clip(out / rows[0]["path"]).frames.shape[1:] == (64, 96, 3)

    with pytest.raises(SystemExit):
        cli.main(["synth", "--out", str(out), "--size", "wide"])
    assert "expected HEIGHTxWIDTH" in capsys.readouterr().err
    assert cli.main(["synth", "--out", str(tmp_path / "bad"), "--size", "63x96"]) == 2
    assert "SyntheticConfig.size" in capsys.readouterr().err
