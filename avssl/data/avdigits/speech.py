"""A recording's spoken word, ready to place in a clip: resampled, trimmed of silence, faded.

Trimming makes "the digit appears when its spoken digit starts" mean the real start of speech,
not the start of the file: FSDD files hold up to a few hundred milliseconds of silence or room
noise around the word (measured over all 3,000: a median 30 ms before it, up to 0.47 s). The
trimmed words last 0.07-0.74 s (median 0.31 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

TRIM_WINDOW_S = 0.010  # energy is measured on 10 ms windows: 1/6 of a 16 fps frame
MIN_SPEECH_RUN_S = 0.030  # speech is at least 30 ms above the threshold: a click is not speech
NOISE_FLOOR_PERCENTILE = 10  # of the windows' energies: the recording's own background level
THRESHOLD_RANGE_DB = (35.0, 10.0)  # thresholds lie between these many dB below the loudest window
MAX_PAUSE_S = 0.25  # a longer pause ends the word (stop closures inside a word last about 0.1 s)
FADE_S = 0.005  # linear fade at both cuts, so that a cut never clicks


@dataclass(frozen=True)
class Speech:
    """The word of one recording.

    Attributes:
        samples: float32 `[L]` at the corpus sample rate, trimmed and faded, not yet scaled.
        start_s: where the word starts in the recording (the silence trimmed before it).
        truncated: the word was longer than a clip can hold and was cut at its end.
    """

    samples: np.ndarray
    start_s: float
    truncated: bool

    def duration(self, sample_rate: int) -> float:
        return len(self.samples) / sample_rate


def read_recording(path: str | Path, sample_rate: int) -> np.ndarray:
    """The whole recording as mono float32 `[N]` at `sample_rate` (FFmpeg's resampler, through PyAV).

    PyAV directly rather than `avssl.media.decode`: the clips are rendered in worker processes,
    and this keeps torch (about 3 s and 0.6 GB to import) out of them. A FLAC of FSDD decodes in
    about 1 ms this way.
    """
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as error:
        raise ValueError(f"{path}: cannot open as audio ({error}); expected a spoken-digit recording") from None
    with container:
        if not container.streams.audio:
            raise ValueError(f"{path}: holds no audio stream; expected a spoken-digit recording")
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=sample_rate)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            chunks += [out.to_ndarray()[0] for out in resampler.resample(frame)]
        chunks += [out.to_ndarray()[0] for out in resampler.resample(None)]  # the resampler's tail
    if not chunks:
        raise ValueError(f"{path}: holds no audio samples; expected a spoken-digit recording")
    return np.concatenate(chunks).astype(np.float32, copy=False)


def speech_bounds(
    samples: np.ndarray, sample_rate: int, onset_margin_db: float, offset_margin_db: float
) -> tuple[int, int]:
    """First and one-past-last sample of the word in `samples` `[N]`.

    Measured on FSDD, a recording's background sits anywhere from 50 to 7 dB below its loudest
    10 ms (median 26 dB), so a threshold relative to the peak alone either keeps the noise before
    the word or cuts into it. Thresholds are therefore set above the recording's noise floor (the
    10th percentile of its 10 ms energies), but no lower than 35 dB below the loudest window (a
    recording whose quietest stretch is far quieter than the noise before the word) and no higher
    than 10 dB below it (a recording without pauses around the word):
    - the word starts at the first run of 30 ms above the floor by `onset_margin_db`;
    - it goes on while windows above the floor by `offset_margin_db` (a lower margin, to keep soft
      endings such as the "ks" of "six") follow each other with pauses under 0.25 s, so that a
      click or a cough long after the word does not belong to it.
    """
    window = max(1, round(TRIM_WINDOW_S * sample_rate))
    count = len(samples) // window
    if count == 0:
        raise ValueError(f"recording is shorter than one {TRIM_WINDOW_S * 1000:g} ms window")
    energy = np.mean(samples[: count * window].astype(np.float64).reshape(count, window) ** 2, axis=1)  # [W]
    loudest = float(energy.max())
    if loudest <= 0:
        raise ValueError("recording is silent")
    level_db = 10.0 * np.log10(np.maximum(energy / loudest, 1e-20))  # [W], 0 at the loudest window
    floor_db = float(np.percentile(level_db, NOISE_FLOOR_PERCENTILE))

    def above(margin_db: float) -> np.ndarray:
        lowest, highest = (-db for db in THRESHOLD_RANGE_DB)
        return level_db >= np.clip(floor_db + margin_db, lowest, highest)  # [W] bool

    run = min(max(1, round(MIN_SPEECH_RUN_S / TRIM_WINDOW_S)), count)
    runs = np.flatnonzero(np.convolve(above(onset_margin_db), np.ones(run), mode="valid") == run)
    # A word shorter than a run: its first loud window (the loudest one always qualifies).
    first = int(runs[0]) if runs.size else int(np.flatnonzero(above(onset_margin_db))[0])
    voiced = np.flatnonzero(above(offset_margin_db)[first:]) + first  # includes `first`
    longest_pause = round(MAX_PAUSE_S / TRIM_WINDOW_S)
    breaks = np.flatnonzero(np.diff(voiced) > longest_pause)
    last = int(voiced[breaks[0]] if breaks.size else voiced[-1])
    return first * window, (last + 1) * window


def fade_edges(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """`samples` `[L]` with a linear fade-in and fade-out of `FADE_S` each (a new float32 array)."""
    out = samples.astype(np.float32)  # a copy
    length = min(round(FADE_S * sample_rate), len(out) // 2)
    if length > 0:
        ramp = (np.arange(length, dtype=np.float32) + 0.5) / length
        out[:length] *= ramp
        out[len(out) - length :] *= ramp[::-1]
    return out


def load_speech(
    path: str | Path, sample_rate: int, trim_margins_db: tuple[float, float], max_duration_s: float
) -> Speech:
    """Read `path`, keep its word (see `speech_bounds`; margins: onset, offset), cut it to
    `max_duration_s`, fade its edges."""
    samples = read_recording(path, sample_rate)
    try:
        start, stop = speech_bounds(samples, sample_rate, *trim_margins_db)
    except ValueError as error:
        raise ValueError(f"{path}: {error}; expected a spoken-digit recording") from None
    longest = int(max_duration_s * sample_rate)
    truncated = stop - start > longest
    word = samples[start : start + longest] if truncated else samples[start:stop]
    return Speech(fade_edges(word, sample_rate), start / sample_rate, truncated)
