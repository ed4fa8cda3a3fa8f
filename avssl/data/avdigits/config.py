"""The settings of an AV-Digits corpus, and the fingerprint that decides whether a cache is reusable."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import ClassVar

from avssl.data.corpus_config import CorpusConfig

# Bump whenever a change to the generator changes what a given config produces, so that corpora
# cached by an older avssl are regenerated instead of silently reused.
GENERATOR_VERSION = 1

# Pixels the moving digit keeps from the frame edge (beyond its rotated 20×20 ink box), so that a
# 64² crop of the frame decoded at short side 72 (the demo and benchmark input) rarely cuts it.
EDGE_MARGIN_PX = 4.0

_RANGE_FIELDS = (
    "speech_rms_dbfs",
    "snr_db",
    "noise_exponent",
    "hum_share",
    "digit_size_px",
    "digit_speed_px_s",
    "background_colour",
    "digit_colour",
    "clutter_strokes",
    "clutter_blobs",
)


@dataclass(frozen=True)
class AVDigitsConfig(CorpusConfig):
    """What to build. Every field enters the cache fingerprint; how to run (workers) does not.

    A clip pairs one Free Spoken Digit Dataset (FSDD) recording with an MNIST image of the same
    digit: the digit appears on the frame where its spoken word starts and moves over a cluttered
    background, while the word plays over background noise. Ranges `(low, high)` are drawn
    uniformly per clip, independently of the digit.

    Attributes:
        seed: corpus seed (MNIST split, image pairing, every clip's nuisance values).
        duration: clip length in seconds; `duration * fps` must be a whole number of frames.
        fps: video frame rate.
        size: frame (height, width) in pixels, both even (yuv420p halves the chroma planes).
        sample_rate: audio sample rate in Hz; recordings are resampled to it.
        test_speakers: FSDD speakers whose recordings form the test split (never seen in train).
        mnist_test_fraction: fraction of each digit's MNIST images kept for the test split.
        num_clips_per_recording: clips made from each recording (each with its own image and draws).
        min_lead_in_s: earliest speech onset (the digit is absent on at least the first frames).
        min_tail_s: time left after the end of the speech.
        max_onset_s: latest speech onset. The digit stays on screen from its onset to the end, so
            with onsets by 0.6 s every video window from 0.6 s on shows it — the middle 0.5 s
            window that evaluation reads (0.75–1.25 s of a 2 s clip) always does. Without this
            bound a fifth of the clips showed no digit in that window.
        trim_margins_db: (onset, offset): a recording's word starts where its 10 ms energy rises
            the first margin above the recording's own noise floor and ends where it last stays
            the second margin above it (`speech.speech_bounds`); what lies before and after is
            cut, so that the onset is the real start of the word.
        speech_rms_dbfs: RMS of the trimmed speech in dB relative to full scale (random gain).
        snr_db: speech RMS over background RMS, in dB.
        noise_exponent: background noise power ~ 1 / f^exponent (0 white, 1 pink, 2 brown).
        hum_probability: chance that the background also holds a mains hum (50 or 60 Hz).
        hum_share: the hum's share of the background power, when there is one.
        digit_size_px: side of the MNIST digit's 20×20 ink box after scaling (MNIST cells are 28²).
        digit_rotation_deg: the digit is rotated uniformly within ± this many degrees.
        digit_speed_px_s: speed of the digit (random heading, bouncing off the frame margins).
        background_colour: range of each RGB channel of the background's base colour.
        digit_colour: range of each RGB channel of the digit's colour. The default ranges are
            disjoint: a light, tinted digit on a dark, tinted ground, as MNIST's white on black.
            Overlapping ranges (the first defaults drew the ground from (0.2, 0.8) and the digit
            from (0, 1)) make the digit as often darker as lighter than its ground, in any hue: a
            nuisance under which randomly initialised video encoders do not see the digit at all
            (linear probe at chance, docs/benchmarks.md).
        min_digit_contrast: least RGB distance (channels in [0, 1]) between the digit's colour and
            the background's base colour.
        clutter_contrast: largest colour deviation of background strokes, blobs and gradient from
            the base colour (channels in [0, 1]): clutter stays fainter than the digit.
        clutter_strokes, clutter_blobs: numbers of background curves and colour blobs.
        gop: frames per H.264 group of pictures (key frame interval).
        crf: x264 constant rate factor.
        audio_bit_rate: AAC bit rate in bits per second.
    """

    seed: int = 0
    duration: float = 2.0
    fps: int = 16
    size: tuple[int, int] = (80, 80)
    sample_rate: int = 16000
    test_speakers: tuple[str, ...] = ("george",)
    mnist_test_fraction: float = 0.2
    num_clips_per_recording: int = 1
    min_lead_in_s: float = 0.15
    min_tail_s: float = 0.15
    max_onset_s: float = 0.6
    trim_margins_db: tuple[float, float] = (8.0, 4.0)
    speech_rms_dbfs: tuple[float, float] = (-28.0, -18.0)
    snr_db: tuple[float, float] = (5.0, 20.0)
    noise_exponent: tuple[float, float] = (0.0, 2.0)
    hum_probability: float = 0.5
    hum_share: tuple[float, float] = (0.2, 0.7)
    digit_size_px: tuple[float, float] = (36.0, 52.0)
    digit_rotation_deg: float = 15.0
    digit_speed_px_s: tuple[float, float] = (8.0, 32.0)
    background_colour: tuple[float, float] = (0.0, 0.35)
    digit_colour: tuple[float, float] = (0.65, 1.0)
    min_digit_contrast: float = 0.45
    clutter_contrast: float = 0.08
    clutter_strokes: tuple[int, int] = (2, 5)
    clutter_blobs: tuple[int, int] = (3, 8)
    gop: int = 16
    crf: int = 23
    audio_bit_rate: int = 64000

    SEQUENCE_FIELDS: ClassVar[tuple[str, ...]] = ("size", "test_speakers", "trim_margins_db", *_RANGE_FIELDS)

    def _validate(self) -> None:
        fail = self._fail
        if self.fps < 1:
            fail("fps", "must be a positive whole number of frames per second")
        if not self.duration > 0 or abs(self.duration * self.fps - round(self.duration * self.fps)) > 1e-9:
            fail("duration", f"must be positive and a whole number of frames at fps = {self.fps}")
        if len(self.size) != 2 or any(s < 32 or s % 2 for s in self.size):
            fail("size", "must be (height, width), each even and at least 32")
        if self.sample_rate < 8000:
            fail("sample_rate", "must be at least 8000 Hz (the FSDD recordings' own rate)")
        if not self.test_speakers or not all(isinstance(s, str) and s for s in self.test_speakers):
            fail("test_speakers", "must name at least one FSDD speaker")
        if not 0 < self.mnist_test_fraction < 1:
            fail("mnist_test_fraction", "must lie strictly between 0 and 1")
        if self.num_clips_per_recording < 1:
            fail("num_clips_per_recording", "must be at least 1")
        if self.min_lead_in_s < 0 or self.min_tail_s < 0:
            fail("min_lead_in_s" if self.min_lead_in_s < 0 else "min_tail_s", "must be >= 0")
        if self.max_onset_s < self.min_lead_in_s:
            fail("max_onset_s", f"must be at least min_lead_in_s ({self.min_lead_in_s})")
        if self.speech_window_s < 0.1:
            fail("duration", "leaves less than 0.1 s for speech after min_lead_in_s and min_tail_s")
        if len(self.trim_margins_db) != 2 or not all(m > 0 for m in self.trim_margins_db):
            fail("trim_margins_db", "must be (onset, offset), both positive (dB above the noise floor)")
        for name in _RANGE_FIELDS:
            value = getattr(self, name)
            if len(value) != 2 or not value[0] <= value[1]:
                fail(name, "must be (low, high) with low <= high")
        if self.speech_rms_dbfs[1] > -6:
            fail("speech_rms_dbfs", "must stay at or below -6 dBFS so that speech peaks do not clip")
        if not 0 <= self.hum_probability <= 1:
            fail("hum_probability", "must lie in [0, 1]")
        if self.hum_share[0] < 0 or self.hum_share[1] > 1:
            fail("hum_share", "must lie in [0, 1]")
        if self.noise_exponent[0] < 0 or self.noise_exponent[1] > 3:
            fail("noise_exponent", "must lie in [0, 3]")
        if self.digit_size_px[0] < 8:
            fail("digit_size_px", "must be at least 8 pixels")
        if not 0 <= self.digit_rotation_deg <= 45:
            fail("digit_rotation_deg", "must lie in [0, 45]")
        if self.max_digit_extent_px + 2 * EDGE_MARGIN_PX > min(self.size):
            fail(
                "digit_size_px",
                f"the largest rotated digit ({self.max_digit_extent_px:.1f} px) and the edge margins "
                f"({EDGE_MARGIN_PX:g} px each) do not fit a {self.size} frame",
            )
        if self.digit_speed_px_s[0] < 0:
            fail("digit_speed_px_s", "must be >= 0")
        for name in ("background_colour", "digit_colour"):
            if getattr(self, name)[0] < 0 or getattr(self, name)[1] > 1:
                fail(name, "must lie in [0, 1] (each RGB channel)")
        if not 0 <= self.min_digit_contrast <= 1:
            fail("min_digit_contrast", "must lie in [0, 1] (a colour distance a random colour can reach)")
        if not 0 <= self.clutter_contrast <= 0.5:
            fail("clutter_contrast", "must lie in [0, 0.5]")
        if self.clutter_strokes[0] < 0 or self.clutter_blobs[0] < 0:
            fail("clutter_strokes" if self.clutter_strokes[0] < 0 else "clutter_blobs", "must be >= 0")
        if self.gop < 1:
            fail("gop", "must be at least 1")
        if not 0 <= self.crf <= 51:
            fail("crf", "must lie in [0, 51]")
        if self.audio_bit_rate < 16000:
            fail("audio_bit_rate", "must be at least 16000 bits per second")

    @property
    def num_frames(self) -> int:
        return round(self.duration * self.fps)

    @property
    def num_samples(self) -> int:
        return round(self.duration * self.sample_rate)

    @property
    def speech_window_s(self) -> float:
        """The longest speech a clip holds; longer utterances are cut (with a fade) to this."""
        return self.duration - self.min_lead_in_s - self.min_tail_s

    @property
    def max_digit_extent_px(self) -> float:
        """Side of the axis-aligned box around the largest, most rotated digit ink box."""
        angle = math.radians(self.digit_rotation_deg)
        return self.digit_size_px[1] * (math.cos(angle) + math.sin(angle))

    def fingerprint(self, inputs: dict[str, str]) -> str:
        """SHA-256 of the generator version, every field and the digests of the source data
        (`inputs`, e.g. {"mnist": sha256, "fsdd": sha256}): equal fingerprints, equal corpora."""
        payload = json.dumps(
            {"generator_version": GENERATOR_VERSION, "inputs": inputs, **self.to_dict()}, sort_keys=True
        )
        return hashlib.sha256(payload.encode()).hexdigest()
