"""What a media file holds: `MediaInfo`, and the one error type every decoder raises.

The facts follow ffprobe's conventions (each shared test folder's MANIFEST.csv was made with ffprobe):
`fps` is the stream's average frame rate from the header, `width`/`height` the displayed size (after the
display-matrix rotation). One exception: `duration` is where the later of the audio and video streams
ends, not the container's header duration, which may count a subtitle track (torchcodec/nasa_13013.mp4:
16.57 s of container for 13.06 s of audio and video) and differs between FFmpeg versions by tens of ms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class DecodeError(RuntimeError):
    """A file cannot be opened or decoded, or lacks the stream asked for. The message names the file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class MediaInfo:
    """Facts about one media file (the first video stream and the first audio stream).

    Times are in seconds on the file's own clock; `duration` is the end of the later of the two streams. `video_start` is the presentation time of the first
    frame (not the header's stream start: in packed-bitstream AVI they differ by a frame),
    `video_duration` runs from there to the end of the last frame. `num_frames` counts frames that really
    decode (a full decode pass; None when `probe(count_frames=False)`). `rotation` is the clockwise
    rotation, in degrees, that turns the coded picture upright (0/90/180/270, from the display matrix);
    `width`/`height` are the upright (displayed) size. `audio_start`/`audio_duration` give the span of
    decoded samples.
    """

    path: str
    duration: float
    has_video: bool
    fps: float | None
    num_frames: int | None
    width: int | None
    height: int | None
    rotation: int
    video_start: float
    video_duration: float
    has_audio: bool
    sample_rate: int | None
    channels: int | None
    audio_start: float
    audio_duration: float

    @property
    def video_end(self) -> float:
        return self.video_start + self.video_duration

    @property
    def audio_end(self) -> float:
        return self.audio_start + self.audio_duration


@dataclass
class VideoFacts:
    """What a backend's probe found about the video stream (an intermediate of `MediaInfo`)."""

    fps: float | None
    num_frames: int | None
    width: int
    height: int
    rotation: int
    start: float
    duration: float | None  # None: unknown, runs to the end of the container


@dataclass
class AudioFacts:
    """What a backend's probe found about the audio stream (an intermediate of `MediaInfo`)."""

    sample_rate: int
    channels: int
    start: float
    duration: float | None  # None: unknown, runs to the end of the container


def assemble_media_info(
    path: str, duration: float | None, video: VideoFacts | None, audio: AudioFacts | None
) -> MediaInfo:
    """Build MediaInfo from per-stream facts and the container's header duration (used only for a stream

    whose own duration is unknown, e.g. Matroska, and for a file with neither stream)."""
    streams = [facts for facts in (video, audio) if facts is not None]
    for facts in streams:
        if facts.duration is None:
            facts.duration = max((duration or 0.0) - facts.start, 0.0)
    media_end = max((f.start + f.duration for f in streams), default=duration or 0.0)
    return MediaInfo(
        path=path,
        duration=media_end,
        has_video=video is not None,
        fps=video.fps if video else None,
        num_frames=video.num_frames if video else None,
        width=video.width if video else None,
        height=video.height if video else None,
        rotation=video.rotation if video else 0,
        video_start=video.start if video else 0.0,
        video_duration=video.duration if video else 0.0,
        has_audio=audio is not None,
        sample_rate=audio.sample_rate if audio else None,
        channels=audio.channels if audio else None,
        audio_start=audio.start if audio else 0.0,
        audio_duration=audio.duration if audio else 0.0,
    )
