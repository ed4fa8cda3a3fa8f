"""Render one AV-Digits clip: load its word, draw its plan, write its mp4, return its metadata row.

This is what worker processes run (`avssl.data.parallel_render`), so it imports nothing heavy:
no torch, no manifest (see `corpus.py` for the corpus around the clips).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avssl.data.avdigits.audio import render_audio
from avssl.data.avdigits.config import AVDigitsConfig
from avssl.data.avdigits.layout import CorpusEntry
from avssl.data.avdigits.plan import sample_clip_plan
from avssl.data.avdigits.speech import load_speech
from avssl.data.avdigits.video import render_video
from avssl.data.synthetic.encode import write_mp4_atomically

METADATA_COLUMNS: tuple[str, ...] = (
    "path",  # relative to OUT, with forward slashes
    "label",  # the digit, "0".."9"
    "split",  # train / test
    "speaker",
    "take",  # the FSDD recording's index
    "recording",  # the FSDD file, relative to the FSDD folder
    "repeat",  # which of the recording's clips
    "mnist_index",  # row of the MNIST arrays
    "clip_seed",  # sample_clip_plan(config, speech length, clip_seed) re-draws the clip
    "onset",  # seconds: onset_sample / sample_rate, where the (trimmed) word starts
    "onset_frame",  # first frame showing the digit: round(onset · fps)
    "onset_sample",
    "speech_start",  # seconds of silence trimmed from the recording's start
    "speech_duration",  # seconds of speech in the clip
    "speech_truncated",  # true when the word was longer than the clip allows and was cut
    "speech_rms_dbfs",
    "snr_db",
    "noise_exponent",
    "hum_hz",  # 0: no hum
    "hum_share",
    "digit_size",  # side of the ink box, pixels
    "digit_angle",  # degrees
    "digit_colour",  # r;g;b in [0, 1]
    "base_colour",  # r;g;b in [0, 1]
    "start_x",  # digit centre at t = 0, pixels
    "start_y",
    "velocity_x",  # pixels per second
    "velocity_y",
    "num_frames",
    "fps",
    "num_samples",
    "sample_rate",
    "width",
    "height",
)


def _fixed(value: float) -> str:
    return f"{value:.4f}"


def _colour(values: tuple[float, ...]) -> str:
    return ";".join(f"{v:.4f}" for v in values)


def render_entry(
    config: AVDigitsConfig, entry: CorpusEntry, out_dir: Path, fsdd_root: Path, digit: np.ndarray
) -> dict[str, object]:
    """Render and write one clip (atomically: a partial file never has the final name); its metadata row.

    `digit` is the entry's MNIST image, uint8 `[28, 28]`.
    """
    speech = load_speech(
        fsdd_root / entry.recording.file, config.sample_rate, config.trim_margins_db, config.speech_window_s
    )
    plan = sample_clip_plan(config, len(speech.samples), entry.clip_seed)
    path = out_dir / entry.relative_path
    write_mp4_atomically(
        path,
        render_video(config, plan, digit),
        render_audio(plan, speech.samples, config.num_samples, config.sample_rate),
        config.fps,
        config.sample_rate,
        gop=config.gop,
        crf=config.crf,
        audio_bit_rate=config.audio_bit_rate,
    )
    return {
        "path": entry.relative_path,
        "label": str(entry.recording.digit),
        "split": entry.split,
        "speaker": entry.recording.speaker,
        "take": entry.recording.take,
        "recording": entry.recording.file,
        "repeat": entry.repeat,
        "mnist_index": entry.mnist_index,
        "clip_seed": entry.clip_seed,
        "onset": repr(plan.onset_time(config.sample_rate)),  # exact: the manifest's onset column too
        "onset_frame": plan.onset_frame,
        "onset_sample": plan.onset_sample,
        "speech_start": _fixed(speech.start_s),
        "speech_duration": _fixed(speech.duration(config.sample_rate)),
        "speech_truncated": "true" if speech.truncated else "false",
        "speech_rms_dbfs": _fixed(plan.speech_rms_dbfs),
        "snr_db": _fixed(plan.snr_db),
        "noise_exponent": _fixed(plan.noise_exponent),
        "hum_hz": _fixed(plan.hum_hz),
        "hum_share": _fixed(plan.hum_share),
        "digit_size": _fixed(plan.digit_size),
        "digit_angle": _fixed(float(np.degrees(plan.digit_angle))),
        "digit_colour": _colour(plan.digit_colour),
        "base_colour": _colour(plan.base_colour),
        "start_x": _fixed(plan.start_position[0]),
        "start_y": _fixed(plan.start_position[1]),
        "velocity_x": _fixed(plan.velocity[0]),
        "velocity_y": _fixed(plan.velocity[1]),
        "num_frames": config.num_frames,
        "fps": config.fps,
        "num_samples": config.num_samples,
        "sample_rate": config.sample_rate,
        "width": config.size[1],
        "height": config.size[0],
    }


def render_task(task: tuple[AVDigitsConfig, CorpusEntry, Path, Path, np.ndarray]) -> dict[str, object]:
    return render_entry(*task)
