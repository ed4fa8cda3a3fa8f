"""Sound kinds of the synthetic corpus: the waveform each class makes at one event.

Every kind maps `(rng, pitch_hz, num_samples, sample_rate)` to a float32 waveform `[num_samples]`
with unit RMS and no envelope (`audio.py` applies the event envelope and loudness). `pitch_hz` is the
class's band centre after jitter; each kind keeps its energy within about half an octave of it,
so that the band identifies the class and the timbre (spectral and temporal shape) adds to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

SoundKind = Callable[[np.random.Generator, float, int, int], np.ndarray]


def shaped_noise(
    rng: np.random.Generator,
    num_samples: int,
    sample_rate: int,
    amplitude_of_frequency: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Gaussian noise whose amplitude spectrum follows `amplitude_of_frequency(hz)`; unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.fft.rfftfreq(num_samples, d=1.0 / sample_rate)
    noise = np.fft.irfft(spectrum * amplitude_of_frequency(frequencies), n=num_samples)
    rms = float(np.sqrt(np.mean(noise**2)))
    return (noise / max(rms, 1e-12)).astype(np.float32)


def _band_noise(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    """Noise with a Gaussian band of 0.15 octave standard deviation around `pitch_hz`."""

    def band(frequencies: np.ndarray) -> np.ndarray:
        octaves = np.log2(np.maximum(frequencies, 1.0) / pitch_hz)
        return np.exp(-0.5 * (octaves / 0.15) ** 2)

    return shaped_noise(rng, num_samples, sample_rate, band)


def _phase(
    frequency_hz: np.ndarray | float, num_samples: int, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Instantaneous phase (radians) of an oscillator following `frequency_hz` per sample."""
    frequency = np.broadcast_to(np.asarray(frequency_hz, dtype=np.float64), (num_samples,))
    return rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(frequency) / sample_rate


def _harmonic_sum(
    rng: np.random.Generator,
    pitch_hz: float,
    num_samples: int,
    sample_rate: int,
    harmonics: Iterable[int],
) -> np.ndarray:
    """Sum of harmonics k of `pitch_hz` with amplitude 1/k, kept below 0.45 × sample rate."""
    phase = _phase(pitch_hz, num_samples, sample_rate, rng)
    wave = np.zeros(num_samples)
    for k in harmonics:
        if k * pitch_hz < 0.45 * sample_rate:  # avoid aliasing for high-pitched variants
            wave += np.sin(k * phase) / k
    return wave


def _normalise(wave: np.ndarray) -> np.ndarray:
    # Unit RMS, not unit peak: a noise band and a pure tone at the same level are equally loud,
    # so the signal-to-noise ratio drawn in plan.py means the same for every class.
    return (wave / max(float(np.sqrt(np.mean(wave**2))), 1e-12)).astype(np.float32)


def tone(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    return _normalise(np.sin(_phase(pitch_hz, num_samples, sample_rate, rng)))


def harmonics(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    # Sawtooth-like stack of the first six harmonics.
    return _normalise(_harmonic_sum(rng, pitch_hz, num_samples, sample_rate, range(1, 7)))


def odd_harmonics(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    # Square-like (hollow, clarinet-like) stack of odd harmonics.
    return _normalise(_harmonic_sum(rng, pitch_hz, num_samples, sample_rate, (1, 3, 5, 7, 9)))


def _chirp(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int, octaves: float
) -> np.ndarray:
    # Exponential sweep over `octaves`, centred (in log frequency) on the pitch.
    position = np.linspace(-0.5, 0.5, num_samples)
    frequency = pitch_hz * 2.0 ** (octaves * position)
    return _normalise(np.sin(_phase(frequency, num_samples, sample_rate, rng)))


def chirp_up(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    return _chirp(rng, pitch_hz, num_samples, sample_rate, octaves=0.7)


def chirp_down(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    return _chirp(rng, pitch_hz, num_samples, sample_rate, octaves=-0.7)


def am_tone(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    # Tremolo at 10-16 Hz, deep enough to be heard (and seen in a spectrogram) as pulsing.
    rate_hz = rng.uniform(10.0, 16.0)
    t = np.arange(num_samples) / sample_rate
    modulation = 1.0 - 0.9 * (0.5 - 0.5 * np.cos(2 * np.pi * rate_hz * t))
    return _normalise(modulation * np.sin(_phase(pitch_hz, num_samples, sample_rate, rng)))


def vibrato(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    # Frequency modulation of ±6 % at 6-9 Hz.
    rate_hz = rng.uniform(6.0, 9.0)
    t = np.arange(num_samples) / sample_rate
    frequency = pitch_hz * (1.0 + 0.06 * np.sin(2 * np.pi * rate_hz * t))
    return _normalise(np.sin(_phase(frequency, num_samples, sample_rate, rng)))


def dyad(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    # Two tones a major third apart (ratio 1.26), like a two-tone doorbell.
    low = np.sin(_phase(pitch_hz, num_samples, sample_rate, rng))
    high = np.sin(_phase(1.26 * pitch_hz, num_samples, sample_rate, rng))
    return _normalise(low + high)


def noise_band(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    return _normalise(_band_noise(rng, pitch_hz, num_samples, sample_rate))


def rattle(
    rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    # Band noise chopped by a 20-30 Hz on/off gate (half duty cycle): a rattling buzz.
    rate_hz = rng.uniform(20.0, 30.0)
    t = np.arange(num_samples) / sample_rate
    gate = (np.mod(rate_hz * t + rng.uniform(), 1.0) < 0.5).astype(np.float64)
    return _normalise(gate * _band_noise(rng, pitch_hz, num_samples, sample_rate))


SOUND_KINDS: dict[str, SoundKind] = {
    "tone": tone,
    "harmonics": harmonics,
    "odd_harmonics": odd_harmonics,
    "chirp_up": chirp_up,
    "chirp_down": chirp_down,
    "am_tone": am_tone,
    "vibrato": vibrato,
    "dyad": dyad,
    "noise_band": noise_band,
    "rattle": rattle,
}


def synthesise(
    kind: str, rng: np.random.Generator, pitch_hz: float, num_samples: int, sample_rate: int
) -> np.ndarray:
    """Waveform `[num_samples]` (float32, unit RMS) of one event of sound `kind` at `pitch_hz`."""
    try:
        function = SOUND_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown sound kind {kind!r}; known kinds: {', '.join(SOUND_KINDS)}") from None
    return function(rng, pitch_hz, num_samples, sample_rate)
