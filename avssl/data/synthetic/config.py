"""The settings of a synthetic corpus, and the fingerprint that decides whether a cache is reusable."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import ClassVar

from avssl.data.corpus_config import CorpusConfig

from avssl.data.synthetic import events

# Bump whenever a change to the generator changes what a given config produces, so that corpora
# cached by an older avssl are regenerated instead of silently reused.
GENERATOR_VERSION = 1

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")


@dataclass(frozen=True)
class SyntheticConfig(CorpusConfig):
    """What to generate. Every field enters the cache fingerprint; how to run (workers) does not.

    Defaults: 1,000 clips of 2-4 s, 112×112 at 16 fps (the frame rate and crop of AVID, CrissCross
    and XKD pretraining in spec/methods.md), 16 kHz mono AAC (the rate of XDC, AV-VICReg and XKD;
    AVID's 24 kHz front-end resamples it, and every class band lies below 8 kHz).

    Attributes:
        num_clips: number of clips; classes are balanced (counts differ by at most one).
        seed: corpus seed; the same config gives the same decoded frames and samples.
        size: frame (height, width) in pixels; both even (yuv420p halves the chroma planes).
        fps: video frame rate; event onsets fall on frame boundaries.
        sample_rate: audio sample rate in Hz.
        duration_range: clip duration drawn uniformly in [low, high] s, rounded to whole frames.
        events_per_clip: number of events drawn uniformly in [low, high], capped by what fits.
        split_fractions: train/val/test fractions, applied within each class.
        gop: frames per H.264 group of pictures (key frame interval), for cheap random access.
        crf: x264 constant rate factor (lower is better quality, larger files).
        audio_bit_rate: AAC bit rate in bits per second.
    """

    num_clips: int = 1000
    seed: int = 0
    size: tuple[int, int] = (112, 112)
    fps: int = 16
    sample_rate: int = 16000
    duration_range: tuple[float, float] = (2.0, 4.0)
    events_per_clip: tuple[int, int] = (2, 5)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    gop: int = 16
    crf: int = 23
    audio_bit_rate: int = 64000

    SEQUENCE_FIELDS: ClassVar[tuple[str, ...]] = ("size", "duration_range", "events_per_clip", "split_fractions")

    def _validate(self) -> None:
        fail = self._fail
        if self.num_clips < 1:
            fail("num_clips", "must be at least 1")
        if len(self.size) != 2 or any(s < 32 or s % 2 for s in self.size):
            fail("size", "must be (height, width), each even and at least 32")
        if self.fps < 1:
            fail("fps", "must be a positive whole number of frames per second")
        if self.sample_rate < 16000:
            fail("sample_rate", "must be at least 16000 Hz (class bands reach 7 kHz)")
        if len(self.duration_range) != 2:
            fail("duration_range", "must be (low, high) in seconds")
        low, high = self.duration_range
        if not 0 < low <= high:
            fail("duration_range", "must be (low, high) with 0 < low <= high")
        if len(self.events_per_clip) != 2:
            fail("events_per_clip", "must be (low, high)")
        fewest, most = self.events_per_clip
        if not 1 <= fewest <= most:
            fail("events_per_clip", "must be (low, high) with 1 <= low <= high")
        if len(self.split_fractions) != 3 or any(f < 0 for f in self.split_fractions):
            fail("split_fractions", "must be three non-negative fractions (train, val, test)")
        if abs(sum(self.split_fractions) - 1.0) > 1e-6:
            fail("split_fractions", "must sum to 1")
        shortest_clip_events = events.max_events(round(low * self.fps), self.fps)
        if shortest_clip_events < fewest:
            fail(
                "duration_range",
                f"the shortest clip has room for {shortest_clip_events} events, fewer than "
                f"events_per_clip[0] = {fewest} (events need {events.MIN_ONSET_GAP_S} s between onsets)",
            )
        if self.gop < 1:
            fail("gop", "must be at least 1")
        if not 0 <= self.crf <= 51:
            fail("crf", "must lie in [0, 51]")
        if self.audio_bit_rate < 16000:
            fail("audio_bit_rate", "must be at least 16000 bits per second")

    @property
    def height(self) -> int:
        return self.size[0]

    @property
    def width(self) -> int:
        return self.size[1]

    def fingerprint(self) -> str:
        """SHA-256 of the generator version and every field: equal fingerprints, equal corpora."""
        payload = json.dumps({"generator_version": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()
