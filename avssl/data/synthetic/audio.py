"""Render a clip's sound from its plan: class sound events over coloured background noise.

Each event is the class's sound kind (`sounds.py`) at the event's pitch, shaped by the event
envelope (`events.py`) and scaled by the clip's event level and the event's gain; the same
activity drives the picture's flashes, so sound and picture agree on timing and strength.
"""

from __future__ import annotations

import numpy as np

from avssl.data.synthetic import events
from avssl.data.synthetic.plan import ClipPlan
from avssl.data.synthetic.sounds import shaped_noise, synthesise

LOWEST_NOISE_HZ = 100.0  # the 1/f^exponent spectrum is held flat below: no DC, no loud rumble


def background_noise(plan: ClipPlan, rng: np.random.Generator) -> np.ndarray:
    """Noise `[num_samples]` with power spectrum ~ 1/f^exponent and RMS `plan.noise_rms`."""

    def amplitude(frequencies: np.ndarray) -> np.ndarray:
        return np.maximum(frequencies, LOWEST_NOISE_HZ) ** (-plan.noise_exponent / 2.0)

    return plan.noise_rms * shaped_noise(rng, plan.num_samples, plan.sample_rate, amplitude)


def render_audio(plan: ClipPlan) -> np.ndarray:
    """The clip's mono waveform: float32 `[num_samples]`, within [-1, 1]."""
    rng = np.random.default_rng([plan.render_seed, 1])
    waveform = background_noise(plan, rng).astype(np.float64)
    kind = plan.synthetic_class.sound
    onsets, lengths = plan.event_spans()
    for onset, length, gain, pitch in zip(
        onsets, lengths, plan.event_gains, plan.event_pitches_hz, strict=True
    ):
        onset, length = int(onset), int(length)
        sound = synthesise(kind, rng, pitch, length, plan.sample_rate)
        envelope = events.event_envelope(length, plan.sample_rate)
        waveform[onset : onset + length] += plan.event_level * gain * envelope * sound
    # Levels ≤ 0.2 RMS keep even noise-like events (crest factor ~4) inside full scale; clip
    # only as a guard.
    return np.clip(waveform, -1.0, 1.0).astype(np.float32)
