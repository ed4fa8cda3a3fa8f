"""Decoded clips held in memory, read by time window exactly as the decoder would read the file.

For a small corpus (the embedded demo corpus, AV-Digits) decoding dominates a training step on a
CPU while the decoded clips fit in memory (1,000 clips of 3 s at 16 fps and 72×72 take ~0.75 GB).
:class:`DecodedClipStore` decodes every file once, at the frame size and audio rate a view recipe
asks for, and then answers ``read_video`` / ``read_audio`` calls from memory with the same frame and
sample choice as :func:`avssl.media.decode.read_video` / :func:`~avssl.media.decode.read_audio`:

* video: each native frame slot ``j`` (``video_start + j / native_fps``) is decoded once, at its
  middle, and a window's output time ``t`` takes slot ``floor((t - video_start) · native_fps)``,
  clamped to the first and last slot — :func:`avssl.media.decode.timeline.frame_slots`, the rule
  the decoder applies (the first frame before the start, the last frame past the end);
* audio: the whole stream is decoded and resampled once, and windows are cut from it with
  :func:`avssl.media.decode.audio.cut_audio_windows` (zero outside the stream).

Filled in the main process before DataLoader workers start, the store is shared with them by
fork (copy-on-write: tensor storage is never written).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from avssl.media import decode
from avssl.media.decode.audio import cut_audio_windows
from avssl.media.decode.timeline import check_windows, frame_slots, window_frame_times

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodedClip:
    """One file decoded: ``frames`` uint8 ``[3, S, H, W]`` (one per native frame slot, upright,
    resized) and mono ``samples`` float32 ``[M]`` at ``sample_rate`` starting at ``audio_time``."""

    frames: Tensor | None
    video_start: float
    native_fps: float
    short_side: int | None
    samples: Tensor | None
    audio_time: float
    sample_rate: int | None

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.frames, self.samples) if t is not None)


def decode_clip(
    path: str | Path, info: decode.MediaInfo, short_side: int | None, sample_rate: int | None,
    backend: str | None = None,
) -> DecodedClip:
    """Decode every frame slot of ``path`` (resized to ``short_side``) and, if ``sample_rate``, its
    whole audio stream resampled to it."""
    frames = None
    if info.has_video and info.fps:
        slots = max(int(round(info.video_duration * info.fps)), 1)
        (frames,) = decode.read_video(
            path, [(info.video_start, slots / info.fps)], info.fps, backend=backend, info=info, short_side=short_side
        )
    samples = None
    if sample_rate is not None:
        if not info.has_audio:
            raise decode.DecodeError(str(path), "no audio stream")
        (samples,) = decode.read_audio(
            path, [(info.audio_start, info.audio_duration)], sample_rate, backend=backend, info=info
        )
    return DecodedClip(frames, info.video_start, float(info.fps or 0.0), short_side, samples, info.audio_start,
                       sample_rate)


class DecodedClipStore:
    """Decoded clips by path; ``read_video`` / ``read_audio`` have the decoder's signatures."""

    def __init__(self) -> None:
        self.clips: dict[str, DecodedClip] = {}
        self.failures: dict[str, str] = {}

    def __contains__(self, path: object) -> bool:
        return str(path) in self.clips

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def nbytes(self) -> int:
        return sum(clip.nbytes for clip in self.clips.values())

    def fill(
        self,
        items: Iterable[tuple[Path, decode.MediaInfo]],
        short_side: int | None,
        sample_rate: int | None,
        workers: int = 1,
        backend: str | None = None,
        progress: bool = True,
    ) -> DecodedClipStore:
        """Decode ``(path, info)`` items; a file that fails is recorded in ``failures`` (the
        dataset then reads it from disk, where it fails again and is skipped and counted)."""
        items = list(items)

        def one(item: tuple[Path, decode.MediaInfo]) -> tuple[str, DecodedClip | str]:
            path, info = item
            try:
                return str(path), decode_clip(path, info, short_side, sample_rate, backend)
            except (decode.DecodeError, RuntimeError, ValueError, OSError, EOFError, IndexError) as exc:
                return str(path), f"{type(exc).__name__}: {exc}".splitlines()[0]

        # Decoders release the GIL while decoding, so threads overlap the work of several files.
        with ThreadPoolExecutor(max(workers, 1)) as pool:
            for key, outcome in tqdm(pool.map(one, items), total=len(items), desc="decode to memory",
                                     unit="file", disable=not progress):
                if isinstance(outcome, DecodedClip):
                    self.clips[key] = outcome
                else:
                    self.failures[key] = outcome
        logger.info("decoded %d files into memory (%.0f MB), %d failed", len(self.clips), self.nbytes / 2**20,
                    len(self.failures))
        return self

    def serves(self, path: str | Path, short_side: int | None, sample_rate: int | None) -> bool:
        """Whether ``path`` is held at this frame size and (when audio is read) this audio rate."""
        clip = self.clips.get(str(path))
        return (clip is not None and clip.short_side == short_side
                and (sample_rate is None or clip.sample_rate == sample_rate))

    def _clip(self, path: str | Path) -> DecodedClip:
        try:
            return self.clips[str(path)]
        except KeyError:
            raise KeyError(f"{path}: not in the decoded clip store") from None

    def read_video(
        self, path: str | Path, windows: Sequence[tuple[float, float]], fps: float, *,
        short_side: int | None = None, **_: object,
    ) -> list[Tensor]:
        """uint8 ``[3, T, H, W]`` per window, as :func:`avssl.media.decode.read_video`."""
        clip = self._clip(path)
        if clip.frames is None:
            raise decode.DecodeError(str(path), "no video stream")
        if short_side != clip.short_side:
            raise ValueError(f"{path}: stored at short side {clip.short_side}, asked for {short_side}")
        last = clip.frames.shape[1] - 1
        out = []
        for start, duration in check_windows(windows, str(path)):
            slots = frame_slots(window_frame_times(start, duration, fps), clip.video_start, clip.native_fps)
            out.append(clip.frames[:, torch.from_numpy(np.minimum(slots, last))])
        return out

    def read_audio(
        self, path: str | Path, windows: Sequence[tuple[float, float]], sample_rate: int, **_: object
    ) -> list[Tensor]:
        """float32 ``[round(duration · rate)]`` per window, as :func:`avssl.media.decode.read_audio`."""
        clip = self._clip(path)
        if clip.samples is None:
            raise decode.DecodeError(str(path), "no audio stream")
        if sample_rate != clip.sample_rate:
            raise ValueError(f"{path}: stored at {clip.sample_rate} Hz, asked for {sample_rate} Hz")
        return cut_audio_windows(clip.samples, clip.audio_time, sample_rate, check_windows(windows, str(path)))
