"""A clip's recipe: its class, event timing and every nuisance value, drawn from the clip's seed.

`sample_clip_plan` is the only place randomness about a clip is decided, in a fixed order, from
`numpy.random.default_rng(clip_seed)`; rendering (`video.py`, `audio.py`) is a pure function of the
plan. Nuisance values are drawn independently of the class, so that colour, size, position, motion,
background, loudness and noise carry no class information (the class is in shape and sound only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avssl.data.synthetic import events
from avssl.data.synthetic.classes import CLASSES, SyntheticClass
from avssl.data.synthetic.config import SyntheticConfig

# Nuisance ranges (uniform). Lengths are fractions of the frame's shorter side.
OBJECT_RADIUS = (0.12, 0.22)
POP_SCALE = (0.2, 0.35)  # extra size at full event intensity: the object "pops" on each event
BASE_OPACITY = (0.2, 0.45)  # opacity between events: faint but visible; 1 at full event intensity
SPEED = (0.0, 0.15)  # per second: at most about a pixel a frame, so motion never masks a flash
ANGULAR_SPEED = (-0.6, 0.6)  # radians per second
MIN_COLOUR_DISTANCE = 0.4  # RGB distance in [0, 1]^3, so the object and its flashes stay visible
TEXTURE_CELLS = (3, 8)  # background blobs per side
TEXTURE_AMPLITUDE = (0.0, 0.12)
GRAIN_AMPLITUDE = (0.0, 0.05)  # static per-pixel noise
CLIP_PITCH_JITTER_OCTAVES = 0.1  # ± per clip; classes are 0.44 octave apart
EVENT_PITCH_JITTER_OCTAVES = 0.02  # ± per event
EVENT_GAIN = (0.7, 1.0)  # per event; shared by the sound level and the flash strength
EVENT_LEVEL = (0.05, 0.2)  # RMS of an event's sound at the envelope's peak (full scale 1)
SNR_DB = (12.0, 30.0)  # event level to background noise RMS
NOISE_EXPONENT = (0.0, 2.0)  # background noise power ~ 1 / f^exponent: white to brown


@dataclass(frozen=True)
class ClipPlan:
    """Everything needed to render one clip. Lengths in pixels, times in seconds, colours in [0, 1].

    Attributes:
        class_index: index into `CLASSES`.
        clip_seed: the seed this plan was drawn from.
        size, fps, sample_rate: copied from the config, so a plan renders on its own.
        num_frames: clip length in frames; the audio has `num_frames · sample_rate / fps` samples.
        onset_frames: frame on which each event starts (sorted).
        event_durations: length of each event's sound and flash.
        event_gains: relative strength of each event (sound level and flash alike).
        event_pitches_hz: each event's pitch (class band centre with clip and event jitter).
        object_radius: radius (pixels) of the circle the shape is drawn in, between events.
        pop_scale, base_opacity: at event intensity a in [0, 1] the radius is multiplied by
            1 + pop_scale · a and the opacity is base_opacity + (1 - base_opacity) · a.
        event_level: RMS of an event's sound at the envelope's peak, before the event gain.
        noise_rms, noise_exponent: background noise level and spectral slope (power ~ f^-exp).
        render_seed: seeds the background texture and the randomness inside the sounds.
    """

    class_index: int
    clip_seed: int
    size: tuple[int, int]
    fps: int
    sample_rate: int
    num_frames: int
    onset_frames: tuple[int, ...]
    event_durations: tuple[float, ...]
    event_gains: tuple[float, ...]
    event_pitches_hz: tuple[float, ...]
    object_colour: tuple[float, float, float]
    object_radius: float
    pop_scale: float
    base_opacity: float
    start_position: tuple[float, float]  # (x, y) of the object's centre at t = 0
    velocity: tuple[float, float]  # (x, y) per second; the object bounces off the margins
    rotation: float
    angular_speed: float
    background_colour: tuple[float, float, float]
    texture_cells: int
    texture_amplitude: float
    grain_amplitude: float
    event_level: float
    noise_rms: float
    noise_exponent: float
    render_seed: int

    @property
    def synthetic_class(self) -> SyntheticClass:
        return CLASSES[self.class_index]

    @property
    def num_samples(self) -> int:
        return int(events.frame_boundaries(self.num_frames, self.fps, self.sample_rate)[-1])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def event_times(self) -> tuple[float, ...]:
        """Onset times in seconds: exactly the start of each onset frame."""
        return tuple(frame / self.fps for frame in self.onset_frames)

    def event_spans(self) -> tuple[np.ndarray, np.ndarray]:
        """Each event's onset sample (a frame boundary) and length in samples: two `[E]` arrays."""
        boundaries = events.frame_boundaries(self.num_frames, self.fps, self.sample_rate)
        onsets = boundaries[list(self.onset_frames)]
        lengths = np.round(np.asarray(self.event_durations) * self.sample_rate).astype(np.int64)
        return onsets, lengths

    def activity(self) -> np.ndarray:
        """Event activity `[num_samples]` in [0, 1]: what the sound level and the flash both follow."""
        onsets, lengths = self.event_spans()
        return events.activity_curve(
            onsets, lengths, np.asarray(self.event_gains), self.num_samples, self.sample_rate
        )

    @property
    def motion_margin(self) -> float:
        return motion_margin(self.object_radius)


def motion_margin(object_radius: float) -> float:
    """Closest the object's centre comes to the frame edge: even fully popped it stays inside."""
    return object_radius * (1.0 + POP_SCALE[1]) + 2.0


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _colour_pair(rng: np.random.Generator) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Background and object colours, uniform in RGB, at least MIN_COLOUR_DISTANCE apart."""
    background = rng.uniform(0.1, 0.9, size=3)
    while True:  # rejection sampling: accepts about 3 in 4 draws
        colour = rng.uniform(0.0, 1.0, size=3)
        if np.linalg.norm(colour - background) >= MIN_COLOUR_DISTANCE:
            return tuple(float(c) for c in background), tuple(float(c) for c in colour)


def sample_clip_plan(config: SyntheticConfig, class_index: int, clip_seed: int) -> ClipPlan:
    """Draw one clip's plan for class `class_index` from `clip_seed` (deterministic)."""
    if not 0 <= class_index < len(CLASSES):
        raise ValueError(f"class_index {class_index} out of range [0, {len(CLASSES)})")
    rng = np.random.default_rng(clip_seed)
    fps = config.fps
    short_side = min(config.size)

    num_frames = round(_uniform(rng, config.duration_range) * fps)
    fewest, most = config.events_per_clip
    count = min(int(rng.integers(fewest, most + 1)), events.max_events(num_frames, fps))
    onset_frames = events.sample_onset_frames(rng, num_frames, fps, count)
    durations = rng.uniform(*events.EVENT_DURATION_S, size=count)
    gains = rng.uniform(*EVENT_GAIN, size=count)
    clip_pitch = CLASSES[class_index].centre_hz * 2.0 ** rng.uniform(
        -CLIP_PITCH_JITTER_OCTAVES, CLIP_PITCH_JITTER_OCTAVES
    )
    pitches = clip_pitch * 2.0 ** rng.uniform(
        -EVENT_PITCH_JITTER_OCTAVES, EVENT_PITCH_JITTER_OCTAVES, size=count
    )

    background_colour, object_colour = _colour_pair(rng)
    radius = _uniform(rng, OBJECT_RADIUS) * short_side
    margin = motion_margin(radius)
    height, width = config.size
    start = (float(rng.uniform(margin, width - margin)), float(rng.uniform(margin, height - margin)))
    heading = rng.uniform(0.0, 2 * np.pi)
    speed = _uniform(rng, SPEED) * short_side
    event_level = _uniform(rng, EVENT_LEVEL)

    return ClipPlan(
        class_index=class_index,
        clip_seed=int(clip_seed),
        size=tuple(config.size),
        fps=fps,
        sample_rate=config.sample_rate,
        num_frames=num_frames,
        onset_frames=tuple(int(f) for f in onset_frames),
        event_durations=tuple(float(d) for d in durations),
        event_gains=tuple(float(g) for g in gains),
        event_pitches_hz=tuple(float(p) for p in pitches),
        object_colour=object_colour,
        object_radius=radius,
        pop_scale=_uniform(rng, POP_SCALE),
        base_opacity=_uniform(rng, BASE_OPACITY),
        start_position=start,
        velocity=(float(speed * np.cos(heading)), float(speed * np.sin(heading))),
        rotation=float(rng.uniform(0.0, 2 * np.pi)),
        angular_speed=_uniform(rng, ANGULAR_SPEED),
        background_colour=background_colour,
        texture_cells=int(rng.integers(TEXTURE_CELLS[0], TEXTURE_CELLS[1] + 1)),
        texture_amplitude=_uniform(rng, TEXTURE_AMPLITUDE),
        grain_amplitude=_uniform(rng, GRAIN_AMPLITUDE),
        event_level=event_level,
        noise_rms=event_level * 10.0 ** (-_uniform(rng, SNR_DB) / 20.0),
        noise_exponent=_uniform(rng, NOISE_EXPONENT),
        render_seed=int(rng.integers(2**63)),
    )
