"""Render a clip's sound: the spoken digit at its onset over coloured noise and an optional hum.

The background is independent of the digit and runs through the whole clip, so the only audio
event is the word; its level and the signal-to-noise ratio come from the clip's plan.
"""

from __future__ import annotations

import numpy as np

from avssl.data.avdigits.plan import ClipPlan
from avssl.data.synthetic.audio import LOWEST_NOISE_HZ
from avssl.data.synthetic.sounds import shaped_noise

HUM_HARMONIC_LEVELS = (1.0, 0.5, 0.3, 0.15)  # amplitudes of the hum's harmonics 1-4: a buzzy hum


def coloured_noise(rng: np.random.Generator, num_samples: int, sample_rate: int, exponent: float) -> np.ndarray:
    """Unit-RMS Gaussian noise `[num_samples]` with power spectrum ~ 1 / f^exponent."""

    def amplitude(frequencies: np.ndarray) -> np.ndarray:
        # Held flat below LOWEST_NOISE_HZ: no DC and no rumble dominating the power.
        return np.maximum(frequencies, LOWEST_NOISE_HZ) ** (-exponent / 2.0)

    return shaped_noise(rng, num_samples, sample_rate, amplitude).astype(np.float64)


def mains_hum(rng: np.random.Generator, num_samples: int, sample_rate: int, frequency_hz: float) -> np.ndarray:
    """Unit-RMS hum `[num_samples]`: harmonics of `frequency_hz` with random phases."""
    t = np.arange(num_samples) / sample_rate
    hum = np.zeros(num_samples)
    for k, level in enumerate(HUM_HARMONIC_LEVELS, start=1):
        hum += level * np.sin(2 * np.pi * k * frequency_hz * t + rng.uniform(0, 2 * np.pi))
    return hum / np.sqrt(np.mean(hum**2))


def background(plan: ClipPlan, num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS background `[num_samples]`: noise and hum mixed by power share `plan.hum_share`."""
    noise = coloured_noise(rng, num_samples, sample_rate, plan.noise_exponent)
    if plan.hum_share == 0.0:
        return noise
    # The two are uncorrelated, so the powers add: the mix keeps unit RMS (up to chance correlation).
    hum = mains_hum(rng, num_samples, sample_rate, plan.hum_hz)
    return np.sqrt(1.0 - plan.hum_share) * noise + np.sqrt(plan.hum_share) * hum


def render_audio(plan: ClipPlan, speech: np.ndarray, num_samples: int, sample_rate: int) -> np.ndarray:
    """The clip's mono waveform: float32 `[num_samples]` in [-1, 1].

    `speech` `[L]` is the trimmed word (`speech.py`); it is scaled to RMS `plan.speech_rms_dbfs`
    and added at `plan.onset_sample` to a background at `plan.snr_db` below it.
    """
    if plan.onset_sample + len(speech) > num_samples:
        raise ValueError(
            f"speech of {len(speech)} samples at sample {plan.onset_sample} runs past the clip's {num_samples}"
        )
    rng = np.random.default_rng([plan.render_seed, 1])
    speech_rms = 10.0 ** (plan.speech_rms_dbfs / 20.0)
    word = speech.astype(np.float64) * (speech_rms / max(float(np.sqrt(np.mean(speech**2))), 1e-12))
    noise_rms = speech_rms * 10.0 ** (-plan.snr_db / 20.0)
    waveform = noise_rms * background(plan, num_samples, sample_rate, rng)
    waveform[plan.onset_sample : plan.onset_sample + len(word)] += word
    # Speech at the default -28 to -18 dBFS RMS peaks well below full scale (crest factor ~12-15 dB);
    # louder configured levels may touch it, so clip as a guard.
    return np.clip(waveform, -1.0, 1.0).astype(np.float32)
