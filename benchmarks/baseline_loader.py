"""The loader of the original repositories, re-written for comparison (spec §6.1).

AVID-CMA, CrissCross and XKD load every training item the same way: open the container with PyAV,
seek to the clip start and decode the video window, seek again and decode + resample the audio
window, turn each frame into a PIL image and augment frame by frame (same parameters for all
frames), and compute a librosa log-mel spectrogram. One item = one open and two seeks. This module
reproduces that per-item cost so that `benchmarks/loader.py` can compare avssl with it on the same
files. It is benchmark code, not part of the library.
"""

from __future__ import annotations

import math
import random

import av
import librosa
import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_video_frames(container: av.container.InputContainer, fps: float, start: float, duration: float) -> list[Image.Image]:
    """Nearest-frame selection at `fps`: frame index int((t - stream_start) * native_fps)."""
    stream = container.streams.video[0]
    stream_start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    native_fps = float(stream.average_rate)
    n = max(1, round(duration * fps))
    wanted = [int((start + k / fps - stream_start) * native_fps) for k in range(n)]
    container.seek(int(max(start, 0.0) * av.time_base), any_frame=False, backward=True)
    frames: list[Image.Image] = []
    for frame in container.decode(video=0):
        index = round((float(frame.pts * frame.time_base) - stream_start) * native_fps)
        if len(frames) < n and index >= wanted[len(frames)]:
            # Converted once per decoded frame, repeated for every slot it fills (as the originals do);
            # one swscale thread: the PyAV of the originals had no threaded conversion.
            image = frame.to_image(threads=1)
            while len(frames) < n and index >= wanted[len(frames)]:
                frames.append(image)
        if len(frames) == n:
            break
    while len(frames) < n and frames:  # pad by repetition, as the originals do
        frames.append(frames[-1])
    return frames


def load_audio(container: av.container.InputContainer, rate: int, start: float, duration: float) -> np.ndarray:
    """Mono s16 resampled audio of the window, divided by the int16 max, trimmed/zero-padded."""
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="s16p", layout="mono", rate=rate)
    container.seek(int(max(start, 0.0) * av.time_base), any_frame=False, backward=True, stream=stream)
    chunks: list[np.ndarray] = []
    first_time = None
    end = start + duration
    for frame in container.decode(audio=0):
        if first_time is None:
            first_time = float(frame.pts * frame.time_base) if frame.pts is not None else start
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
        if frame.pts is not None and float(frame.pts * frame.time_base) > end:
            break
    samples = np.concatenate(chunks).astype(np.float32) / 32767.0 if chunks else np.zeros(0, np.float32)
    offset = max(0, int(round((start - (first_time or start)) * rate)))
    samples = samples[offset : offset + int(round(duration * rate))]
    out = np.zeros(int(round(duration * rate)), np.float32)
    out[: len(samples)] = samples
    return out


def log_mel(wave: np.ndarray, rate: int = 16000, n_fft: int = 1024, hop: int = 160, n_mels: int = 80) -> torch.Tensor:
    """CrissCross/XKD front-end with librosa (spec §2.2)."""
    spec = np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=hop, center=True, pad_mode="reflect")) ** 2
    mel = librosa.feature.melspectrogram(S=spec + 2.2e-16, sr=rate, n_mels=n_mels)
    mel = np.log(mel + np.finfo(np.float32).eps)
    return torch.from_numpy((mel + 5.3688107) / 4.410007).float()[None]


def augment_frames(frames: list[Image.Image], size: int, scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.4, 0.2)) -> torch.Tensor:
    """Temporally consistent RRC + flip + colour jitter on PIL frames, then to a normalised C×T×H×W tensor."""
    width, height = frames[0].size
    area = width * height
    for _ in range(10):
        target = area * random.uniform(*scale)
        ratio = math.exp(random.uniform(math.log(3 / 4), math.log(4 / 3)))
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            top, left = random.randint(0, height - h), random.randint(0, width - w)
            break
    else:
        w = h = min(width, height)
        top, left = (height - h) // 2, (width - w) // 2
    flip = random.random() < 0.5
    factors = [random.uniform(max(0, 1 - j), 1 + j) for j in jitter[:3]] + [random.uniform(-jitter[3], jitter[3])]
    order = random.sample(range(4), 4)
    out = []
    for img in frames:
        img = TF.resized_crop(img, top, left, h, w, [size, size])
        if flip:
            img = TF.hflip(img)
        for op in order:
            if op == 0:
                img = TF.adjust_brightness(img, factors[0])
            elif op == 1:
                img = TF.adjust_contrast(img, factors[1])
            elif op == 2:
                img = TF.adjust_saturation(img, factors[2])
            else:
                img = TF.adjust_hue(img, factors[3])
        out.append(TF.normalize(TF.to_tensor(img), IMAGENET_MEAN, IMAGENET_STD))
    return torch.stack(out, dim=1)


def open_one_thread(path: str) -> av.container.InputContainer:
    """The file with one decoding thread per stream (FFmpeg's default, 0, means one per core): the
    benchmark compares work per sample, and the avssl side decodes with one thread too."""
    container = av.open(path)
    for stream in container.streams:
        stream.codec_context.thread_count = 1
    return container


def _random_start(length: float, window: float) -> float:
    return random.uniform(0.0, max(0.0, length - window))


def avid_item(path: str, size: int = 112) -> tuple[torch.Tensor, torch.Tensor]:
    """8 frames @16 fps placed inside a 2 s audio window (±0.5 s), 2 s log-mel (spec §3A.3)."""
    with open_one_thread(path) as container:
        length = float(container.duration or 0) / av.time_base
        audio_start = _random_start(length, 2.0)
        video_start = min(max(audio_start + random.uniform(-0.5, 2.0), 0.0), max(0.0, length - 0.5))
        frames = load_video_frames(container, 16, video_start, 0.5)
        wave = load_audio(container, 16000, audio_start, 2.0)
    return augment_frames(frames, size), log_mel(wave)


def crisscross_item(path: str, size: int = 112) -> tuple[torch.Tensor, ...]:
    """Two overlapping 8-frame views of a 0.75 s window, two 2 s mels of a 3 s window (spec §2.3)."""
    with open_one_thread(path) as container:
        length = float(container.duration or 0) / av.time_base
        audio_start = _random_start(length, 3.0)
        video_start = min(audio_start + random.uniform(0, 2.25), max(0.0, length - 0.75))
        frames = load_video_frames(container, 16, video_start, 0.75)
        wave = load_audio(container, 16000, audio_start, 3.0)
    v1, v2 = augment_frames(frames[:8], size), augment_frames(frames[4:12], size)
    a1, a2 = log_mel(wave[:32000]), log_mel(wave[16000:48000])
    return v1, v2, a1, a2


def xkd_item(path: str) -> tuple[torch.Tensor, ...]:
    """Global 32 frames @8 fps 112² + local 8 frames 96²; global 4 s mel (hop 143) + local 1 s (spec §4.2)."""
    with open_one_thread(path) as container:
        length = float(container.duration or 0) / av.time_base
        start = _random_start(length, 4.0)
        frames = load_video_frames(container, 8, start, 4.0)
        wave = load_audio(container, 16000, start, 4.0)
    offset = random.randint(0, 24)
    global_view = augment_frames(frames, 112, scale=(0.2, 1.0))
    local_view = augment_frames(frames[offset : offset + 8], 96, scale=(0.08, 0.4))
    local_start = random.randrange(0, 48000, 100)
    return (
        global_view,
        local_view,
        log_mel(wave, hop=143),
        log_mel(wave[local_start : local_start + 16000], hop=143),
    )


BASELINE_ITEMS = {"avid": avid_item, "crisscross": crisscross_item, "xkd": xkd_item}
