"""Frames no window picks are left undecoded (avssl/media/decode/frame_skipping.py) without changing a
single output pixel: the rule on hand-made timelines, then PyAV reads of real B-frame H.264 / MPEG-4
with skipping against the same reads with skipping switched off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avssl.media.decode import probe, read_video
from avssl.media.decode.frame_skipping import UnpickedFrames

# Real files of ../shared/data/videos with B-frames (x264 defaults, Xvid), long enough for spread windows.
B_FRAME_FILES = (
    "pytorch-vision/R6llTwEh07w.mp4",
    "torchcodec/nasa_13013.mp4",
    "cav-mae/00W1lcxW-WU_40.000.mp4",
    "cav-mae/KlsG1EnBEjc_000361.mp4",  # an edit list hides 3.4 s of frames before the first shown one
    "mmaction2/test.avi",
)


def _noted(queries, times) -> UnpickedFrames:
    skip = UnpickedFrames(np.asarray(queries, dtype=np.float64))
    for time in times:
        skip.note(time)
    return skip


def test_a_frame_is_unpicked_only_when_a_later_frame_answers_its_next_query():
    # Frames every 0.1 s; queries at 0.25 and 0.55: frames 0.2 and 0.5 are picked.
    skip = _noted([0.25, 0.55], [0.0, 0.3, 0.1, 0.2, 0.5, 0.4, 0.6])  # noted in decoding order
    picked = {t: not skip.unpicked(t) for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)}
    assert picked == {0.0: True, 0.1: False, 0.2: True, 0.3: False, 0.4: False, 0.5: True, 0.6: False}


def test_unknown_next_frame_and_segment_start_are_kept():
    # The frame after 0.2 has not been demuxed yet: 0.2 might be on screen at 0.55, so it is kept.
    assert not _noted([0.55], [0.0, 0.1, 0.2]).unpicked(0.2)
    # The earliest frame of a segment answers the queries before it: never unpicked.
    assert not _noted([0.05], [0.3, 0.4]).unpicked(0.3)
    skip = _noted([0.05], [0.3, 0.4])
    skip.restart()
    assert skip.times == []
    # A query exactly on a frame's time is answered by that frame (last frame with time <= query).
    assert not _noted([0.2], [0.0, 0.2, 0.3]).unpicked(0.2)
    assert _noted([0.2], [0.0, 0.1, 0.2, 0.3]).unpicked(0.1)


def _windows_across(duration: float, length: float) -> list[tuple[float, float]]:
    return [(float(s), length) for s in np.linspace(0.0, max(duration - length, 0.0), 5)]


@pytest.mark.parametrize("fps", [8, 16])
def test_skipping_gives_the_frames_of_a_full_decode(shared_data, monkeypatch, fps):
    calls = {"skipped": 0}
    unpicked = UnpickedFrames.unpicked

    def counted(self, time):
        answer = unpicked(self, time)
        calls["skipped"] += answer
        return answer

    for name in B_FRAME_FILES:
        path = shared_data / "videos" / name
        info = probe(path, count_frames=False, backend="pyav")
        windows = _windows_across(info.video_duration, 0.75)
        with monkeypatch.context() as patch:
            patch.setattr(UnpickedFrames, "unpicked", counted)
            skipping = read_video(path, windows, fps, backend="pyav", info=info, short_side=112)
        with monkeypatch.context() as patch:
            patch.setattr(UnpickedFrames, "unpicked", lambda self, time: False)
            full = read_video(path, windows, fps, backend="pyav", info=info, short_side=112)
        for window, a, b in zip(windows, skipping, full):
            assert torch.equal(a, b), (name, window)
    assert calls["skipped"] > 0  # the rule did leave frames out
