"""A clip's recipe: speech onset and every nuisance value, drawn from the clip's seed.

`sample_clip_plan` is the only place randomness about a clip is decided, in a fixed order, from
`numpy.random.default_rng(clip_seed)`; rendering (`audio.py`, `video.py`) is a pure function of the
plan, the speech and the MNIST image. Every value is drawn independently of the digit, so loudness,
noise, colour, size, angle, position and motion carry no class information (the class is in the
handwriting and the word only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avssl.data.avdigits.config import EDGE_MARGIN_PX, AVDigitsConfig

MNIST_INK_SIDE = 20.0  # MNIST digits are size-normalised to a 20×20 box centred in the 28² cell
HUM_FREQUENCIES_HZ = (50.0, 60.0)  # mains hum, as recorded near power lines in Europe / America


@dataclass(frozen=True)
class ClipPlan:
    """Everything drawn for one clip. Lengths in pixels, times in seconds, colours in [0, 1].

    Attributes:
        onset_sample: sample at which the speech starts (its first sample after trimming).
        onset_frame: first frame showing the digit: round(onset_sample / sample_rate · fps).
        speech_rms_dbfs: level of the speech (a gain applied to the trimmed word).
        snr_db: speech RMS over background RMS.
        noise_exponent: background noise power ~ 1 / f^exponent.
        hum_hz, hum_share: mains hum frequency and its share of the background power (0: no hum).
        digit_size: side of the digit's ink box; the MNIST cell is scaled by digit_size / 20.
        digit_angle: rotation of the digit in radians (counter-clockwise on screen).
        digit_colour, base_colour: RGB of the digit and of the background.
        start_position: (x, y) of the digit's centre at t = 0 (before it is visible too).
        velocity: (x, y) per second; the centre bounces between `margin` and the far edge - margin.
        margin: closest the digit's centre comes to a frame edge.
        render_seed: seeds the background clutter and the noise.
    """

    onset_sample: int
    onset_frame: int
    speech_rms_dbfs: float
    snr_db: float
    noise_exponent: float
    hum_hz: float
    hum_share: float
    digit_size: float
    digit_angle: float
    digit_colour: tuple[float, float, float]
    base_colour: tuple[float, float, float]
    start_position: tuple[float, float]
    velocity: tuple[float, float]
    margin: float
    render_seed: int

    def onset_time(self, sample_rate: int) -> float:
        return self.onset_sample / sample_rate


def onset_frame_of(onset_sample: int, sample_rate: int, fps: int) -> int:
    """round(t0 · fps) for t0 = onset_sample / sample_rate, ties up, in exact integer arithmetic."""
    return (2 * onset_sample * fps + sample_rate) // (2 * sample_rate)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _colour_pair(config: AVDigitsConfig, rng: np.random.Generator) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Base and digit colours, each channel uniform in its configured range, the digit's at least
    `min_digit_contrast` from the base."""
    min_distance = config.min_digit_contrast
    base = rng.uniform(*config.background_colour, size=3)
    # Rejection sampling: with the default base in [0.2, 0.8]^3 the farthest corner is at least 0.8
    # away, so any min_distance up to about 0.8 accepts a fair share of draws.
    for _ in range(10_000):
        colour = rng.uniform(*config.digit_colour, size=3)
        if np.linalg.norm(colour - base) >= min_distance:
            return tuple(float(c) for c in base), tuple(float(c) for c in colour)
    raise ValueError(
        f"no digit colour in {config.digit_colour} is {min_distance} from the background colour {base}; "
        "lower min_digit_contrast or move digit_colour away from background_colour"
    )


def sample_clip_plan(config: AVDigitsConfig, speech_length: int, clip_seed: int) -> ClipPlan:
    """Draw one clip's plan for a trimmed word of `speech_length` samples (deterministic in the seed).

    The onset is uniform over the samples that keep `min_lead_in_s` before the word and
    `min_tail_s` after it, and no later than `max_onset_s`.
    """
    rate = config.sample_rate
    earliest = math.ceil(config.min_lead_in_s * rate)
    fits = math.floor((config.duration - config.min_tail_s) * rate) - speech_length
    if fits < earliest:
        raise ValueError(
            f"a word of {speech_length / rate:.3f} s does not fit a {config.duration} s clip with "
            f"{config.min_lead_in_s} s before and {config.min_tail_s} s after it"
        )
    latest = min(fits, math.floor(config.max_onset_s * rate))
    rng = np.random.default_rng(clip_seed)
    onset = int(rng.integers(earliest, latest + 1))
    speech_rms_dbfs = _uniform(rng, config.speech_rms_dbfs)
    snr_db = _uniform(rng, config.snr_db)
    noise_exponent = _uniform(rng, config.noise_exponent)
    with_hum = rng.uniform() < config.hum_probability
    hum_hz = float(rng.choice(HUM_FREQUENCIES_HZ))
    hum_share = _uniform(rng, config.hum_share)

    base_colour, digit_colour = _colour_pair(config, rng)
    size = _uniform(rng, config.digit_size_px)
    angle = math.radians(_uniform(rng, (-config.digit_rotation_deg, config.digit_rotation_deg)))
    # Half the axis-aligned extent of the rotated ink box, plus the edge margin.
    margin = 0.5 * size * (abs(math.cos(angle)) + abs(math.sin(angle))) + EDGE_MARGIN_PX
    height, width = config.size
    start = (float(rng.uniform(margin, width - margin)), float(rng.uniform(margin, height - margin)))
    heading = rng.uniform(0.0, 2 * math.pi)
    speed = _uniform(rng, config.digit_speed_px_s)

    return ClipPlan(
        onset_sample=onset,
        onset_frame=onset_frame_of(onset, rate, config.fps),
        speech_rms_dbfs=speech_rms_dbfs,
        snr_db=snr_db,
        noise_exponent=noise_exponent,
        hum_hz=hum_hz if with_hum else 0.0,
        hum_share=hum_share if with_hum else 0.0,
        digit_size=size,
        digit_angle=angle,
        digit_colour=digit_colour,
        base_colour=base_colour,
        start_position=start,
        velocity=(float(speed * math.cos(heading)), float(speed * math.sin(heading))),
        margin=margin,
        render_seed=int(rng.integers(2**63)),
    )
