"""avssl.media.decode on real media: probe facts against each folder's MANIFEST.csv (made with ffprobe),
the nearest-frame rule against an independent sequential decode, both backends against each other.

Tolerances, as measured on the shared media (see avssl/media/decode/__init__.py):
* duration: 0.05 s. MANIFEST gives the container's header duration, we give where the later of the audio
  and video streams ends; they differ by AAC priming / edit lists (at most 1024 samples at 22.05 kHz =
  46 ms; 38 ms seen on vas/drum) or a video start one frame late (packed AVI: 33 ms).
* pixels, backend against backend: identical choice of frames; values within 2 grey levels without
  resizing (swscale of FFmpeg 5.1 vs PyAV's FFmpeg; 1 level seen) and 4 with resizing after rotation
  (FFmpeg filter graph vs PyAV resize-then-rot90; 3 seen).
* audio, backend against backend: 1e-5 (6e-8 seen: both decode the same stretch, one resampler).
* audio, windows read together against one at a time: 1e-3 (5e-4 seen on HE-AAC, whose decoder state
  after a seek takes longer than the 0.1 s margin to settle). Not applied to Matroska: its millisecond
  timestamps place a stretch decoded after a seek up to 0.5 ms off the one decoded from the start.
"""

from __future__ import annotations

import csv
import dataclasses
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from avssl.media.decode import (
    BACKEND_ENV,
    DecodeError,
    available_backends,
    default_backend,
    probe,
    read_audio,
    read_video,
)
from avssl.media.decode.audio import resample_on_grid

FOLDERS = ("videos", "vas", "vggsound", "grid")
DURATION_TOL = 0.05
# Resized frames: TorchCodec scales with swscale's bilinear filter, PyAV with torch's antialiased bilinear
# (pyav_backend.UprightRGB); the two differ by ~0.1 level on average and up to ~12 at sharp edges.
PIXEL_TOL, RESIZED_PIXEL_TOL, RESIZED_MEAN_TOL = 2, 12, 0.25
AUDIO_BACKEND_TOL, AUDIO_REGROUP_TOL = 1e-5, 1e-3
FPS_OUT, SAMPLE_RATE = 16, 16000


def _backend_param(name: str):
    reason = f"{name} does not load here (TorchCodec needs the system FFmpeg libraries)"
    return pytest.param(name, marks=pytest.mark.skipif(name not in available_backends(), reason=reason))


BACKENDS = [_backend_param("torchcodec"), _backend_param("pyav")]
needs_both = pytest.mark.skipif(len(available_backends()) < 2, reason="only one decoder backend loads here")


def manifest_media(shared_data: Path) -> list[tuple[Path, dict]]:
    """(path, MANIFEST row) of every media file of FOLDERS (rows without a container are not media)."""
    media = []
    for folder in FOLDERS:
        with open(shared_data / folder / "MANIFEST.csv", newline="", encoding="utf-8") as f:
            media += [(shared_data / folder / row["file"], row) for row in csv.DictReader(f) if row["container"]]
    return media


@pytest.fixture(scope="module")
def media(shared_data) -> list[tuple[Path, dict]]:
    return manifest_media(shared_data)


@pytest.fixture(scope="module")
def infos(media) -> dict[Path, object]:
    """Header probe of every file, used as `info=` for the audio reads."""
    return {path: probe(path, count_frames=False, backend="pyav") for path, _ in media}


def encode_test_video(path: Path, frames: list[np.ndarray], times_ms: list[int], rotation: int = 0) -> None:
    """Write an H.264 MP4 (lossless) with the given RGB frames at the given presentation times (ms).

    `rotation` is the clockwise display rotation (0/90/180/270) stored in the display matrix, as a phone
    does: the coded picture must then be the upright picture turned the other way.
    """
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"qp": "0", "preset": "ultrafast", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(-rotation)  # FFmpeg's angle is counter-clockwise
        for image, time_ms in zip(frames, times_ms):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = time_ms, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


# ---------------------------------------------------------------- probe


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_matches_manifest(media, backend):
    for path, row in media:
        info = probe(path, count_frames=False, backend=backend)
        where = f"{path} ({backend})"
        assert info.has_video == bool(row["video_codec"]), where
        assert info.has_audio == (row["has_audio"] == "yes"), where
        assert abs(info.duration - _expected_duration(path, float(row["duration_s"]))) <= DURATION_TOL, where
        if info.has_video:
            # MANIFEST has ffprobe's display-matrix angle (counter-clockwise) and the coded size.
            assert info.rotation == (-int(float(row["rotation"] or 0))) % 360, where
            coded = (int(row["height"]), int(row["width"]))
            assert (info.height, info.width) == (coded if info.rotation % 180 == 0 else coded[::-1]), where
            assert info.fps == pytest.approx(float(row["fps"]), abs=0.006), where  # MANIFEST rounds to 0.01
        if info.has_audio:
            assert info.sample_rate == int(row["audio_sample_rate"]), where
            assert info.channels == int(row["audio_channels"]), where


def _expected_duration(path: Path, container_duration: float) -> float:
    """MANIFEST's container duration, unless the header shows the container outlasting its audio and video

    (a subtitle track in torchcodec/nasa_13013.mp4, an mvhd longer than both tracks in
    cav-mae/KlsG1EnBEjc_000361.mp4): then the end of the longer audio/video track per the header."""
    with av.open(str(path), metadata_errors="ignore") as container:
        ends = [float((s.start_time or 0) * s.time_base + s.duration * s.time_base)
                for s in container.streams if s.type in ("audio", "video") and s.duration]
    if ends and container_duration - max(ends) > DURATION_TOL:
        return max(ends)
    return container_duration


@needs_both
def test_probe_counts_agree_between_backends(media):
    """Full verification pass (count_frames) on the short files, including packed AVI and MPEG-PS."""
    short = [path for path, row in media if float(row["duration_s"]) <= 3.5]
    assert len(short) >= 15
    for path in short:
        pyav_info = probe(path, backend="pyav")
        tc_info = probe(path, backend="torchcodec")
        assert pyav_info.num_frames == tc_info.num_frames, path
        for field in ("video_start", "video_duration", "audio_start", "audio_duration", "duration"):
            assert getattr(pyav_info, field) == pytest.approx(getattr(tc_info, field), abs=1e-6), (path, field)


@pytest.mark.parametrize("backend", BACKENDS)
def test_probe_bad_files_raise_decode_error(tmp_path, backend):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    for bad in (empty, text, tmp_path / "missing.mp4"):
        with pytest.raises(DecodeError, match=bad.name):
            probe(bad, backend=backend)


# ---------------------------------------------------------------- video


def _sequential_frames(path: Path, count: int, fps: float, wanted) -> tuple[dict[int, torch.Tensor], list[float]]:
    """Decode the first `count` frames in display order from the start, without seeking (PyAV).

    Returns the frames whose index `wanted(stamps)` names (upright RGB) and the display times of all.
    Where the stamps go backwards (packed-bitstream AVI) the display time of frame i is first + i/fps: AVI
    has no timestamps of its own, a frame is a slot."""
    decoded, stamps = [], []
    with av.open(str(path), metadata_errors="ignore") as container:
        for frame in container.decode(video=0):
            decoded.append(frame)
            stamps.append(float((frame.pts if frame.pts is not None else frame.dts) * frame.time_base))
            if len(decoded) == count:
                break
        if any(b <= a for a, b in zip(stamps, stamps[1:])):
            stamps = [stamps[0] + i / fps for i in range(len(stamps))]
        frames = {}
        for index in set(wanted(stamps)):
            image = torch.from_numpy(decoded[index].to_ndarray(format="rgb24")).permute(2, 0, 1)
            frames[index] = torch.rot90(image, (decoded[index].rotation // 90) % 4, dims=(1, 2))
    return frames, stamps


def _rule_windows(info) -> list[tuple[float, float]]:
    """Windows at the start and before it; for short files also across and past the end; for small
    long files one 2 s in (a jump ahead over a keyframe). Small on purpose: the whole corpus is read by
    both backends and decoded once more as the reference."""
    windows = [(0.0, 0.25), (-0.2, 0.25)]
    if info.video_duration < 3.5:
        return windows + [(info.video_end - 0.1, 0.5), (info.video_end + 1.0, 0.25)]
    if info.width * info.height <= 480 * 360:
        return windows + [(2.0, 0.25)]
    return windows


def _expected_index(t: float, info, stamps: list[float]) -> int:
    """Spec §2.2 rule, computed here from the formula: index int((t - start) * fps) for constant-rate
    streams; the frame on screen in the middle of that slot when the stamps are off the grid (VFR)."""
    slot = max(int(np.floor((t - info.video_start) * info.fps + 1e-6)), 0)
    on_grid = all(abs(s - (stamps[0] + i / info.fps)) < 0.5 / info.fps for i, s in enumerate(stamps))
    if on_grid:
        return min(slot, info.num_frames - 1)
    mid = info.video_start + (slot + 0.5) / info.fps
    return max(sum(1 for s in stamps if s <= mid) - 1, 0)


@pytest.fixture(scope="module")
def video_reads(media) -> dict:
    """For every video file: (info, windows, {backend: clips}) read once by each available backend.

    Short files get a full probe (true frame count); the others a header probe."""
    reads = {}
    for path, row in media:
        if not row["video_codec"]:
            continue
        info = probe(path, count_frames=float(row["duration_s"]) < 3.5, backend="pyav")
        windows = _rule_windows(info)
        clips = {b: read_video(path, windows, FPS_OUT, backend=b, info=info) for b in available_backends()}
        reads[path] = (info, windows, clips)
    return reads


def _window_times(windows) -> list[float]:
    return [start + k / FPS_OUT for start, duration in windows for k in range(round(duration * FPS_OUT))]


@pytest.fixture(scope="module")
def video_references(video_reads) -> dict:
    """For every video file: the frames the rule picks, from a sequential decode, and the expected index
    of each output frame."""
    references = {}
    for path, (info, windows, _) in video_reads.items():
        times = _window_times(windows)
        if info.num_frames is None:  # only the first frames are decoded, and no window reaches the end
            info = dataclasses.replace(info, num_frames=10**9)
            count = int(max(times) * info.fps) + 2
        else:
            count = info.num_frames

        def expected(stamps, info=info, times=times):
            return [_expected_index(t, info, stamps) for t in times]

        frames, stamps = _sequential_frames(path, count, info.fps, expected)
        references[path] = (frames, expected(stamps))
    return references


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_video_picks_frames_by_the_nearest_frame_rule(video_reads, video_references, backend):
    for path, (info, windows, clips) in video_reads.items():
        clips = clips[backend]
        frames, indices = video_references[path]
        got = torch.cat(clips, dim=1)  # [3, sum T, H, W]
        assert got.dtype == torch.uint8, path
        for k, index in enumerate(indices):
            assert torch.equal(got[:, k], frames[index]), (path, backend, k, index)
        for clip, (_, duration) in zip(clips, windows):
            assert clip.shape == (3, round(duration * FPS_OUT), info.height, info.width), path


@needs_both
def test_backends_give_the_same_frames(video_reads, shared_data):
    for path, (_, _, clips) in video_reads.items():
        for a, b in zip(clips["pyav"], clips["torchcodec"]):
            assert a.shape == b.shape, path
            if not torch.equal(a, b):
                difference = (a.to(torch.int16) - b.to(torch.int16)).abs()
                assert difference.max() <= PIXEL_TOL and difference.float().mean() < 0.05, path
    # Resized inside the decoder: TorchCodec's filter graph against PyAV's torch resize, then rotation.
    for name in ("decord/video_90.mov", "decord/video_270.mov", "mmaction2/test.avi", "torchcodec/nasa_13013.mp4"):
        path = shared_data / "videos" / name
        windows = [(0.0, 0.2), (1.0, 0.2)]
        pyav = read_video(path, windows, FPS_OUT, backend="pyav", short_side=112)
        tc = read_video(path, windows, FPS_OUT, backend="torchcodec", short_side=112)
        for a, b in zip(pyav, tc):
            difference = (a.int() - b.int()).abs()
            assert a.shape == b.shape and difference.max() <= RESIZED_PIXEL_TOL, name
            assert difference.float().mean() < RESIZED_MEAN_TOL, name


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_sets_the_short_side_and_keeps_the_aspect(shared_data, backend):
    for name in ("mmaction2/test.avi", "decord/video_90.mov", "libopenshot/sintel_trailer-720p.mp4"):
        path = shared_data / "videos" / name
        info = probe(path, count_frames=False)
        (clip,) = read_video(path, [(0.5, 0.125)], FPS_OUT, backend=backend, info=info, short_side=112)
        long_side = int(112 * max(info.height, info.width) / min(info.height, info.width))  # torchvision's
        assert clip.shape[2:] == ((112, long_side) if info.height <= info.width else (long_side, 112)), name
        (full,) = read_video(path, [(0.5, 0.125)], FPS_OUT, backend=backend, info=info)
        shrunk = torch.nn.functional.interpolate(full.float(), size=clip.shape[2:], mode="bilinear",
                                                 antialias=True)
        assert (shrunk - clip.float()).abs().mean() < 3.0, name  # the same picture, bilinear-resized


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotation_turns_the_picture_upright(tmp_path, shared_data, backend):
    """A synthetic phone clip: the upright picture has a white block top-left; the coded picture is that
    picture turned against the display rotation, as a phone camera stores it."""
    upright = np.zeros((48, 64, 3), np.uint8)
    upright[:16, :16] = 255
    for rotation in (0, 90, 180, 270):
        coded = np.ascontiguousarray(np.rot90(upright, k=rotation // 90))  # np.rot90: counter-clockwise
        path = tmp_path / f"phone_{rotation}.mp4"
        encode_test_video(path, [coded] * 3, [0, 40, 80], rotation=rotation)
        info = probe(path, backend=backend)
        assert (info.rotation, info.height, info.width) == (rotation, 48, 64)
        (clip,) = read_video(path, [(0.0, 0.125)], FPS_OUT, backend=backend, info=info)
        assert torch.equal(clip[:, 0].permute(1, 2, 0), torch.from_numpy(upright)), rotation
    # The phone clips of the shared data come out upright too, in their displayed size.
    for rotation in (0, 90, 180, 270):
        path = shared_data / "videos" / "decord" / f"video_{rotation}.mov"
        (clip,) = read_video(path, [(0.0, 0.1)], 30, backend=backend)
        assert clip.shape[2:] == ((320, 568) if rotation % 180 == 0 else (568, 320))


@pytest.mark.parametrize("backend", BACKENDS)
def test_variable_frame_rate_is_chosen_by_presentation_time(tmp_path, backend):
    times_ms = [0, 40, 60, 150, 160, 300, 310, 320, 500]
    levels = [10 + 20 * i for i in range(len(times_ms))]  # frame i is a flat grey of level 10 + 20 i
    path = tmp_path / "vfr.mp4"
    encode_test_video(path, [np.full((48, 64, 3), v, np.uint8) for v in levels], times_ms)
    info = probe(path, backend=backend)
    assert info.num_frames == len(times_ms)
    (clip,) = read_video(path, [(0.0, 0.6)], 20, backend=backend, info=info)
    got = clip.float().mean(dim=(0, 2, 3)).round().int().tolist()
    stamps = [t / 1000 for t in times_ms]
    expected = [levels[_expected_index(k / 20, info, stamps)] for k in range(12)]
    assert got == expected
    assert not all(abs(s - i / info.fps) < 0.5 / info.fps for i, s in enumerate(stamps))  # really off-grid


@pytest.mark.parametrize("backend", BACKENDS)
def test_windows_in_one_call_equal_windows_one_by_one(shared_data, backend):
    names = ["vggsound/0nib7bMm8BA_15000_25000.mp4", "videos/pytorch-vision/TrumanShow_wave_f_nm_np1_fr_med_26.avi",
             "grid/bbaf2n.mpg", "videos/decord/flipping_a_pancake.mkv"]
    for name in names:
        path = shared_data / name
        info = probe(path, count_frames=False)
        windows = [(0.9, 0.5), (0.2, 0.5), (1.0, 0.25), (-0.1, 0.3), (info.duration - 0.2, 0.5)]
        together = read_video(path, windows, FPS_OUT, backend=backend, info=info)
        for window, clip in zip(windows, together):
            assert torch.equal(clip, read_video(path, [window], FPS_OUT, backend=backend, info=info)[0]), name
        if info.has_audio and path.suffix != ".mkv":
            together = read_audio(path, windows, SAMPLE_RATE, backend=backend, info=info)
            for window, clip in zip(windows, together):
                alone = read_audio(path, [window], SAMPLE_RATE, backend=backend, info=info)[0]
                assert torch.allclose(clip, alone, atol=AUDIO_REGROUP_TOL), name


def test_read_video_rejects_bad_arguments(shared_data):
    path = shared_data / "videos" / "mmaction2" / "test.wav"
    with pytest.raises(DecodeError, match="no video stream"):
        read_video(path, [(0.0, 1.0)], FPS_OUT)
    clip = shared_data / "videos" / "decord" / "video_0.mov"
    with pytest.raises(ValueError, match="window 1"):
        read_video(clip, [(0.0, 0.1), (0.0, -1.0)], FPS_OUT)
    with pytest.raises(ValueError, match="fps"):
        read_video(clip, [(0.0, 0.1)], 0)


# ---------------------------------------------------------------- audio


@pytest.fixture(scope="module")
def audio_reads(media, infos) -> dict:
    """For every file with audio: (info, windows, {backend: clips}); windows inside, before the start,
    across the end and wholly past the end."""
    reads = {}
    for path, _ in media:
        info = infos[path]
        if info.has_audio:
            end = info.audio_end
            windows = [(0.5, 1.0), (-0.5, 1.0), (end - 0.25, 1.0), (end + 2.0, 0.5)]
            clips = {b: read_audio(path, windows, SAMPLE_RATE, backend=b, info=info) for b in available_backends()}
            reads[path] = (info, windows, clips)
    return reads


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_audio_shapes_ranges_and_padding(audio_reads, backend):
    for path, (info, windows, clips) in audio_reads.items():
        clips = clips[backend]
        for clip, (_, duration) in zip(clips, windows):
            assert clip.dtype == torch.float32 and clip.shape == (round(duration * SAMPLE_RATE),), path
            assert clip.abs().max() <= 1.0, path
        lead = round((0.5 + info.audio_start) * SAMPLE_RATE)
        assert torch.count_nonzero(clips[1][: lead - 2]) == 0, path  # before the stream: zeros
        # Past the end: zeros. A header duration may miss the last codec frame (< 50 ms), which decodes.
        tail = round((0.25 + 0.05) * SAMPLE_RATE)
        assert torch.count_nonzero(clips[2][tail:]) == 0, path
        assert torch.count_nonzero(clips[3]) == 0, path
        assert clips[0].abs().max() > 0, path  # real sound inside


@needs_both
def test_backends_give_the_same_audio(audio_reads):
    for path, (_, _, clips) in audio_reads.items():
        for a, b in zip(clips["pyav"], clips["torchcodec"]):
            assert (a - b).abs().max() <= AUDIO_BACKEND_TOL, path


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_audio_matches_librosa(shared_data, backend):
    """WAV at its own rate is the mean of the channels exactly; resampled audio follows librosa's."""
    librosa = pytest.importorskip("librosa")
    path = shared_data / "videos" / "mmaction2" / "test.wav"
    reference, rate = librosa.load(str(path), sr=None, mono=True)
    (native,) = read_audio(path, [(1.0, 2.0)], rate, backend=backend)
    assert torch.allclose(native, torch.from_numpy(reference[rate : 3 * rate]), atol=1e-6)
    (resampled,) = read_audio(path, [(1.0, 2.0)], 8000, backend=backend)
    expected = librosa.resample(reference, orig_sr=rate, target_sr=8000, res_type="soxr_hq")[8000:24000]
    error = (resampled.numpy() - expected)[100:-100]  # edges: the two resamplers' filters differ
    assert np.sqrt(np.mean(error**2)) < 0.01 * np.sqrt(np.mean(expected**2)) + 1e-4


def test_resampling_is_anchored_to_the_file_clock():
    """Stretches of one 440 Hz tone starting at different samples resample onto the same 16 kHz grid of
    absolute times (multiples of 10 ms for 44.1 kHz), and swr puts output sample k at input time k/16000."""
    rate, target = 44100, 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(3 * rate) / rate)).astype(np.float32)
    for first_index in (0, 1000, 12345):
        out, first_time = resample_on_grid(torch.from_numpy(tone[first_index:]), first_index / rate, rate, target)
        assert abs(first_time * 100 - round(first_time * 100)) < 1e-9 and first_time >= first_index / rate
        times = first_time + np.arange(len(out)) / target
        expected = 0.5 * np.sin(2 * np.pi * 440 * times)
        assert np.abs(out.numpy() - expected)[200:-200].max() < 1e-3  # edges: the filter's zero padding


def test_read_audio_without_audio_stream(shared_data):
    with pytest.raises(DecodeError, match="no audio stream"):
        read_audio(shared_data / "videos" / "mmaction2" / "demo.mp4", [(0.0, 1.0)], SAMPLE_RATE)


# ---------------------------------------------------------------- backend choice


def test_backend_choice(monkeypatch):
    assert available_backends()[-1] == "pyav"
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert default_backend() == available_backends()[0]
    monkeypatch.setenv(BACKEND_ENV, "pyav")
    assert default_backend() == "pyav"
    monkeypatch.setenv(BACKEND_ENV, "decord")
    with pytest.raises(ValueError, match=BACKEND_ENV):
        default_backend()


def test_copy_with_unicode_name_reads(tmp_path, shared_data):
    source = shared_data / "videos" / "mmaction2" / "rawvideo_dataset_part_0.mp4"
    copy = tmp_path / "ünïcødé_视频.mp4"
    shutil.copyfile(source, copy)
    for backend in available_backends():
        (clip,) = read_video(copy, [(0.0, 0.25)], FPS_OUT, backend=backend)
        (expected,) = read_video(source, [(0.0, 0.25)], FPS_OUT, backend=backend)
        assert torch.equal(clip, expected)
