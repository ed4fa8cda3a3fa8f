"""Time-window sampling: each scheme against its formula (spec §2.3, §3A.3, §3B.3, §4.2, §6.1).

Exact checks replay the formula with an identically seeded generator; statistical checks use many
draws from a fixed seed (so they are deterministic) and compare against the uniform law.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from avssl.media.sampling import (
    CRISSCROSS_SUBMODES,
    AVWindows,
    StreamSpan,
    ViewWindows,
    Window,
    WindowSamplingError,
    crisscross_views,
    dense_windows,
    random_window,
    synchronous_pair,
    vicreg_video_views,
    xkd_views,
)

DRAWS = 3000
TOL = 1e-9
# Streams as a real file: audio starts a little before the video and ends a little after.
SPAN = StreamSpan(video_start=0.2, video_end=9.7, audio_start=0.0, audio_end=10.0)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def uniform_on(values: np.ndarray, low: float, high: float) -> bool:
    """Kolmogorov–Smirnov test against U[low, high]; fixed seeds make it deterministic."""
    return stats.kstest(values, stats.uniform(loc=low, scale=high - low).cdf).pvalue > 1e-3


# ----------------------------------------------------------------------------- basics


def test_window_unpacks_and_has_end():
    start, duration = Window(1.5, 2.0)
    assert (start, duration) == (1.5, 2.0)
    assert Window(1.5, 2.0).end == 3.5


@pytest.mark.parametrize(
    "args, message",
    [
        ((0.0, 0.0, 0.0, 5.0), "video_end"),
        ((0.0, 5.0, 3.0, 2.0), "audio_end"),
        ((0.0, 5.0, 6.0, 9.0), "do not overlap"),
        ((float("nan"), 5.0, 0.0, 5.0), "video_start"),
    ],
)
def test_stream_span_rejects_bad_limits(args, message):
    with pytest.raises(ValueError, match=message):
        StreamSpan(*args)


def test_stream_span_common_part():
    assert (SPAN.common_start, SPAN.common_end) == (0.2, 9.7)
    assert StreamSpan.of_duration(3.0) == StreamSpan(0.0, 3.0, 0.0, 3.0)


def test_stream_span_accepts_fractions_as_probed():
    span = StreamSpan(Fraction(1, 30), Fraction(301, 30), Fraction(0), Fraction(10))
    assert span.video_start == pytest.approx(1 / 30) and isinstance(span.video_start, float)
    assert synchronous_pair(rng(), span).video.start >= 1 / 30


def test_generator_is_required():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        synchronous_pair(0, SPAN)


def test_same_seed_same_windows():
    for submode in CRISSCROSS_SUBMODES:
        assert crisscross_views(rng(5), SPAN, submode) == crisscross_views(rng(5), SPAN, submode)
    assert synchronous_pair(rng(5), SPAN, max_offsync=0.5) == synchronous_pair(rng(5), SPAN, max_offsync=0.5)
    assert xkd_views(rng(5), SPAN, num_local_views=3) == xkd_views(rng(5), SPAN, num_local_views=3)


def test_random_window_formula_and_short_stream():
    g = rng(1)
    windows = [random_window(g, 2.0, 12.0, 3.0) for _ in range(DRAWS)]
    starts = np.array([w.start for w in windows])
    assert starts.min() >= 2.0 and starts.max() <= 9.0
    assert uniform_on(starts, 2.0, 9.0)
    assert random_window(rng(), 2.0, 3.0, 5.0) == Window(2.0, 5.0)


# ----------------------------------------------------------------------------- AVID / AV-SSRL


def test_synchronous_pair_replays_formula_exactly():
    video_duration, audio_duration, off = 0.5, 2.0, 0.5
    span = StreamSpan(video_start=0.3, video_end=4.0, audio_start=0.0, audio_end=5.0)
    for seed in range(50):
        got = synchronous_pair(rng(seed), span, video_duration, audio_duration, off)
        replay = rng(seed)
        s_a = replay.uniform(0.3, min(5.0 - audio_duration, 4.0 - video_duration))
        s_v = replay.uniform(max(s_a - off, 0.3), min(s_a + audio_duration + off, 4.0) - video_duration)
        assert got == AVWindows(Window(s_v, video_duration), Window(s_a, audio_duration))


@pytest.mark.parametrize("video_duration, off", [(0.5, 0.5), (1.0, 0.5), (0.5, 0.0)])
def test_synchronous_pair_ranges_and_uniformity(video_duration, off):
    g = rng(2)
    pairs = [synchronous_pair(g, SPAN, video_duration, 2.0, off) for _ in range(DRAWS)]
    a = np.array([p.audio.start for p in pairs])
    v = np.array([p.video.start for p in pairs])
    high_a = min(SPAN.audio_end - 2.0, SPAN.video_end - video_duration)
    assert a.min() >= SPAN.common_start and a.max() <= high_a
    assert uniform_on(a, SPAN.common_start, high_a)
    low_v = np.maximum(a - off, SPAN.video_start)
    high_v = np.minimum(a + 2.0 + off, SPAN.video_end) - video_duration
    assert np.all(v >= low_v - TOL) and np.all(v <= high_v + TOL)
    # Inside its allowed range the video start is uniform: the relative position is U[0, 1].
    assert uniform_on((v - low_v) / (high_v - low_v), 0.0, 1.0)
    # The jitter is really used: with off > 0 some video windows stick out of the audio window.
    sticks_out = np.mean((v < a - TOL) | (v + video_duration > a + 2.0 + TOL))
    assert (sticks_out > 0.05) if off > 0 else sticks_out == 0


def test_synchronous_pair_video_longer_swaps_roles():
    pairs = [synchronous_pair(rng(s), SPAN, video_duration=3.0, audio_duration=1.0) for s in range(200)]
    for video, audio in pairs:
        assert video.start - TOL <= audio.start and audio.end <= video.end + TOL


def test_synchronous_pair_short_stream_starts_at_stream_start():
    span = StreamSpan(0.1, 1.2, 0.0, 1.5)
    video, audio = synchronous_pair(rng(), span, 0.5, 2.0)
    assert audio == Window(0.1, 2.0)  # starts at the shared start, keeps its 2 s (reader pads)
    assert video.start >= 0.1 and video.end <= 1.2 + TOL


# ----------------------------------------------------------------------------- CrissCross


def test_crisscross_overlapped_replays_spec_steps_exactly():
    span = StreamSpan(video_start=0.25, video_end=6.0, audio_start=0.0, audio_end=6.5)
    for seed in range(50):
        got = crisscross_views(rng(seed), span, "overlapped")
        replay = rng(seed)
        s_a = replay.uniform(max(0.0, 0.25), min(6.5 - 3.0, 6.0 - 0.75))  # step 2
        s_v = replay.uniform(max(s_a, 0.25), min(s_a + 3.0, 6.0) - 0.75)
        expected = ViewWindows(  # step 3
            Window(s_v, 0.5), Window(s_v + 0.25, 0.5), Window(s_a, 2.0), Window(s_a + 1.0, 2.0)
        )
        assert np.allclose(np.array(got), np.array(expected), atol=TOL, rtol=0)


def test_crisscross_overlapped_offsets_match_spec_ranges():
    g = rng(3)
    views = [crisscross_views(g, StreamSpan.of_duration(60.0), "overlapped") for _ in range(DRAWS)]
    u = np.array([v.v1.start - v.a1.start for v in views])
    assert u.min() >= -TOL and u.max() <= 2.25 + TOL
    assert uniform_on(u, 0.0, 2.25)  # unclipped: u ~ U[0, 2.25]

    def centre_offset(audio: Window, video: Window) -> np.ndarray:
        return (audio.start + audio.duration / 2) - (video.start + video.duration / 2)

    expected = {("a1", "v1"): 0.75, ("a2", "v2"): 1.5, ("a2", "v1"): 1.75, ("a1", "v2"): 0.5}
    for (audio_name, video_name), constant in expected.items():
        offsets = np.array([centre_offset(getattr(v, audio_name), getattr(v, video_name)) for v in views])
        assert np.allclose(offsets, constant - u, atol=1e-9)  # step 4: offset = c − u


def test_crisscross_same_timestamp_and_adjacent():
    for seed in range(100):
        same = crisscross_views(rng(seed), SPAN, "same_timestamp")
        assert same.v1 == same.v2 and same.a1 == same.a2
        assert same.a1.start - TOL <= same.v1.start and same.v1.end <= same.a1.end + TOL

        adjacent = crisscross_views(rng(seed), SPAN, "adjacent")
        assert adjacent.v2.start == pytest.approx(adjacent.v1.end)
        assert adjacent.a2.start == pytest.approx(adjacent.a1.end)
        assert adjacent.a1.start - TOL <= adjacent.v1.start and adjacent.v2.end <= adjacent.a2.end + TOL


def test_crisscross_random_pairs_are_independent():
    g = rng(4)
    views = [crisscross_views(g, SPAN, "random") for _ in range(DRAWS)]
    for v in views:
        for video, audio in ((v.v1, v.a1), (v.v2, v.a2)):
            assert audio.start - TOL <= video.start and video.end <= audio.end + TOL
    first = np.array([v.a1.start for v in views])
    second = np.array([v.a2.start for v in views])
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.06


def test_crisscross_far_apart_is_half_the_span_later():
    g = rng(5)
    half = (SPAN.common_end - SPAN.common_start) / 2
    views = [crisscross_views(g, SPAN, "far_apart") for _ in range(DRAWS)]
    firsts = np.array([v.v1.start for v in views])
    for v in views:
        assert v.v2.start - v.v1.start == pytest.approx(half)
        assert v.a1.start == v.v1.start and v.a2.start == v.v2.start
        assert v.a1.start >= SPAN.common_start and v.a2.end <= SPAN.common_end + TOL
    assert uniform_on(firsts, SPAN.common_start, SPAN.common_start + half - 2.0)


def test_crisscross_far_apart_on_short_stream_uses_both_ends():
    v = crisscross_views(rng(), StreamSpan.of_duration(3.0), "far_apart")
    assert (v.a1.start, v.a2.start) == (0.0, 1.0)


@pytest.mark.parametrize("submode, same, far", [("v_far_a_same", "a", "v"), ("v_same_a_far", "v", "a")])
def test_crisscross_one_modality_far_other_duplicated(submode, same, far):
    g = rng(6)
    picks_first = []
    for _ in range(1000):
        v = crisscross_views(g, SPAN, submode)
        same1, same2 = getattr(v, f"{same}1"), getattr(v, f"{same}2")
        far1, far2 = getattr(v, f"{far}1"), getattr(v, f"{far}2")
        assert same1 == same2
        assert far2.start - far1.start == pytest.approx((SPAN.common_end - SPAN.common_start) / 2)
        assert same1.start in (far1.start, far2.start)
        picks_first.append(same1.start == far1.start)
    assert 0.45 < np.mean(picks_first) < 0.55


def test_crisscross_unknown_submode():
    with pytest.raises(ValueError, match="unknown submode 'shuffled'"):
        crisscross_views(rng(), SPAN, "shuffled")


# ----------------------------------------------------------------------------- XKD


def test_xkd_global_windows_are_synchronous_and_uniform():
    g = rng(7)
    views = [xkd_views(g, SPAN) for _ in range(DRAWS)]
    starts = np.array([v.video.start for v in views])
    for v in views:
        assert v.audio == v.video and v.video.duration == 4.0
    assert uniform_on(starts, SPAN.common_start, SPAN.common_end - 4.0)


def test_xkd_local_offsets_follow_the_spec():
    g = rng(8)
    views = [xkd_views(g, SPAN, num_local_views=3) for _ in range(DRAWS)]
    video_offsets = np.array([v.local_video_offsets for v in views])
    audio_offsets = np.array([v.local_audio_offsets for v in views])
    assert video_offsets.shape == audio_offsets.shape == (DRAWS, 3)
    assert views[0].local_video_frames == 32 // 4 and views[0].local_audio_samples == 64000 // 4
    # Every frame offset 0..24 occurs, roughly equally often.
    counts = np.bincount(video_offsets.ravel(), minlength=25)
    assert counts.shape == (25,) and stats.chisquare(counts).pvalue > 1e-3
    # Audio offsets are multiples of 100 in [0, 48000], both ends reachable.
    assert np.all(audio_offsets % 100 == 0)
    assert audio_offsets.min() >= 0 and audio_offsets.max() <= 48000
    audio_counts = np.bincount(audio_offsets.ravel() // 100, minlength=481)
    assert audio_counts.shape == (481,) and stats.chisquare(audio_counts).pvalue > 1e-3


def test_xkd_local_windows_lie_inside_the_global_window():
    v = xkd_views(rng(9), SPAN, num_local_views=2)
    for window, offset in zip(v.local_video_windows, v.local_video_offsets):
        assert window == Window(v.video.start + offset / 8.0, 1.0)
        assert v.video.start <= window.start and window.end <= v.video.end + TOL
    for window, offset in zip(v.local_audio_windows, v.local_audio_offsets):
        assert window == Window(v.audio.start + offset / 16000, 1.0)
        assert window.end <= v.audio.end + TOL


# ----------------------------------------------------------------------------- VICReg-V


def test_vicreg_video_views_gap_modulo_length():
    g = rng(10)
    start, end, length = 0.0, 10.0, 10.0
    pairs = [vicreg_video_views(g, start, end) for _ in range(DRAWS)]
    first = np.array([p[0].start for p in pairs])
    second = np.array([p[1].start for p in pairs])
    gap = np.mod(second - first, length)
    assert gap.min() >= 2.0 - TOL and gap.max() <= 8.0 + TOL
    assert np.all(second > start) and np.all(second + 1.0 < end)
    assert first.min() >= start and first.max() <= end - 1.0


def test_vicreg_video_views_with_offset_stream_start():
    pairs = [vicreg_video_views(rng(s), 5.0, 17.0, clip_duration=1.0) for s in range(200)]
    for a, b in pairs:
        assert 5.0 < b.start and b.end < 17.0
        assert 2.0 - TOL <= (b.start - a.start) % 12.0 <= 8.0 + TOL


def test_vicreg_video_views_gives_up_with_clear_error():
    # length 1.2 s, clip 1 s, gap always 2 s: the second start lands at s1 + 0.8 ∈ [0.8, 1.0), never valid.
    with pytest.raises(WindowSamplingError, match="within 5 draws"):
        vicreg_video_views(rng(), 0.0, 1.2, clip_duration=1.0, min_gap=2.0, max_gap=2.0, max_draws=5)


def test_vicreg_video_views_short_video_repeats_the_clip():
    assert vicreg_video_views(rng(), 0.0, 0.8) == (Window(0.0, 1.0), Window(0.0, 1.0))


# ----------------------------------------------------------------------------- dense windows


def test_dense_windows_linspace():
    windows = dense_windows(1.0, 11.0, 2.0, 5)
    assert np.allclose([w.start for w in windows], 1.0 + np.linspace(0.0, 8.0, 5))
    assert all(w.duration == 2.0 for w in windows)
    assert windows[-1].end == pytest.approx(11.0)


def test_dense_windows_short_stream_all_at_start():
    assert dense_windows(0.5, 1.5, 2.0, 3) == [Window(0.5, 2.0)] * 3
    assert dense_windows(0.0, 10.0, 2.0, 1) == [Window(0.0, 2.0)]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: dense_windows(0.0, 10.0, 2.0, 0), "num_windows"),
        (lambda: dense_windows(0.0, 10.0, -1.0, 3), "duration must be > 0"),
        (lambda: dense_windows(5.0, 1.0, 1.0, 3), "before start"),
        (lambda: synchronous_pair(rng(), SPAN, max_offsync=-0.5), "max_offsync"),
        (lambda: xkd_views(rng(), SPAN, temporal_ratio=0), "temporal_ratio"),
        (lambda: vicreg_video_views(rng(), 0.0, 10.0, min_gap=5.0, max_gap=2.0), "min_gap <= max_gap"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
