"""TorchCodec backend: PyTorch's decoder on the system FFmpeg (the fast path, DESIGN.md "Choices").

Video uses `VideoDecoder(seek_mode="exact")`: its scan of the packet index makes `get_frames_played_at`
exact (the last frame whose timestamp is <= the query, our rule of timeline.py), and one call with all the
query times of all windows decodes forward once, skipping only what lies between keyframes, and decodes a
frame shared by several windows once. Rotation and the optional resize happen inside the decoder
(`transforms=[Resize]`, bilinear on RGB, after rotation). Audio uses `AudioDecoder` over
the union of the windows, then the mean over channels.

Files TorchCodec 0.17 mis-seeks are handed to the PyAV backend (measured on the shared test media):
MPEG program/transport streams (GRID .mpg: frame 25 asked, frame 36 returned; the last frames raise) and
packed-bitstream AVI (HMDB51-style Xvid with B-frames: frames off by one or two after a seek, and a packet
index one frame longer than what decodes). Plain AVI (UCF101-style, no B-frames) stays here.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avssl.media.decode import pyav_backend, pyav_container
from avssl.media.decode.info import AudioFacts, DecodeError, MediaInfo, VideoFacts, assemble_media_info
from avssl.media.decode.timeline import rotation_from_display_matrix

NAME = "torchcodec"

# Video streams with these codecs are cover art of audio files, not video (TorchCodec has no disposition).
_PICTURE_CODECS = frozenset({"mjpeg", "png", "bmp", "gif", "webp", "tiff"})
# Containers and codecs worth a PyAV look before trusting TorchCodec's seeking (see module docstring).
_SUSPECT_SUFFIXES = frozenset({".avi", ".divx", ".mpg", ".mpeg", ".vob", ".ts", ".mts", ".m2ts", ".m2v"})
_SUSPECT_CODECS = frozenset({"mpeg1video", "mpeg2video", "mpeg4", "msmpeg4v2", "msmpeg4v3"})
_MPEG_STREAM_FORMATS = frozenset({"mpeg", "mpegts", "mpegvideo", "vob"})


def loads() -> bool:
    """Whether TorchCodec imports and finds usable FFmpeg libraries on this machine."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401  (loads the FFmpeg libraries)
    except Exception:  # noqa: BLE001 - any failure to load means "not available"
        return False
    return True


def _decoders():
    from torchcodec import decoders

    return decoders


def _stream_indices(path: str) -> tuple[object, int | None, int | None]:
    """Container metadata and the indices of the first video (not cover art) and first audio streams."""
    try:
        metadata = _decoders().get_container_metadata(path)
    except Exception as error:  # noqa: BLE001 - TorchCodec raises RuntimeError/ValueError for bad files
        raise DecodeError(path, f"cannot open as media ({error})") from None
    video = audio = None
    for index, stream in enumerate(metadata.streams):
        kind = getattr(stream, "media_type", None)
        if kind == "video" and video is None and stream.codec not in _PICTURE_CODECS:
            video = index
        elif kind == "audio" and audio is None:
            audio = index
    return metadata, video, audio


@dataclass(frozen=True)
class _Plan:
    """How to read one file: its stream indices and whether TorchCodec can seek in it."""

    video: int | None
    audio: int | None
    use_pyav: bool


def _plan(path: str) -> _Plan:
    """The file's `_Plan`, cached per (path, size, mtime) so that repeated reads of a file open it once."""
    try:
        stat = os.stat(path)
    except OSError as error:
        raise DecodeError(path, f"cannot read ({error.strerror})") from None
    return _cached_plan(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _cached_plan(path: str, size: int, mtime_ns: int) -> _Plan:
    del size, mtime_ns  # cache key only: a rewritten file is looked at again
    metadata, video, audio = _stream_indices(path)
    codec = metadata.streams[video].codec if video is not None else ""
    use_pyav = False
    if Path(path).suffix.lower() in _SUSPECT_SUFFIXES or codec in _SUSPECT_CODECS:
        formats, packed_avi = pyav_container.container_traits(path)
        use_pyav = packed_avi or bool(formats & _MPEG_STREAM_FORMATS)
    return _Plan(video=video, audio=audio, use_pyav=use_pyav)


def _decoded_frames(path: str, stream_index: int) -> Iterator[object]:
    """Every decoded frame (video RawFrame or RawAudioSamples) of one stream, from the start, unconverted.

    A decoding error after some frames ends the stream (a truncated file)."""
    decoders = _decoders()
    produced = False
    try:
        demuxer = decoders.Demuxer(path, streams=stream_index)
        decoder = demuxer.streams[0].make_decoder()
        for packet in demuxer:
            for frame in decoder.decode(packet):
                produced = True
                yield frame
        for frame in decoder.drain():
            produced = True
            yield frame
    except (RuntimeError, ValueError) as error:
        if not produced:
            raise DecodeError(path, f"cannot decode stream {stream_index} ({error})") from None


def _span(path: str, stream_index: int, count: bool) -> tuple[int, float, float] | None:
    """(frames decoded, first time, last time) of one stream; only the first frame unless `count`.

    For audio the last time is the end of the decoded samples (a packet's duration may say less:
    SOX5yA1l24A.mp4); for video it is the last frame's start."""
    count_decoded, first, last = 0, None, 0.0
    try:
        for frame in _decoded_frames(path, stream_index):
            count_decoded += 1
            if first is None:
                first = frame.pts_seconds
            last = frame.pts_seconds
            if hasattr(frame, "sample_rate"):
                last += frame.data.shape[-1] / frame.sample_rate
            if not count:
                break
    except DecodeError:
        return None
    return None if first is None else (count_decoded, first, last)


def probe(path: str | Path, count_frames: bool) -> MediaInfo:
    path = str(path)
    if _plan(path).use_pyav:
        return pyav_backend.probe(path, count_frames)
    metadata, video, audio = _stream_indices(path)
    video_facts = _probe_video(path, metadata.streams[video], video, count_frames) if video is not None else None
    audio_facts = _probe_audio(path, metadata.streams[audio], audio, count_frames) if audio is not None else None
    return assemble_media_info(path, metadata.duration_seconds_from_header, video_facts, audio_facts)


def _probe_video(path: str, stream, index: int, count_frames: bool) -> VideoFacts | None:
    span = _span(path, index, count_frames)
    if span is None:
        return None
    frames, first, last = span
    # The nominal rate is FFmpeg's avg_frame_rate, as in the original code. TorchCodec 0.17 exposes only
    # r_frame_rate (its `average_fps_from_header`), which is 1000 for a variable-rate MP4 with a 1 ms
    # time base, so the header is read once more with PyAV.
    fps = pyav_container.nominal_fps(path)
    return VideoFacts(
        fps=fps,
        num_frames=frames if count_frames else None,
        width=stream.width,  # TorchCodec reports the upright (displayed) size
        height=stream.height,
        rotation=rotation_from_display_matrix(stream.rotation),
        start=first,
        # The last frame lasts one nominal frame, as in the PyAV backend.
        duration=last + 1.0 / fps - first if count_frames and fps else stream.duration_seconds_from_header,
    )


def _probe_audio(path: str, stream, index: int, count_samples: bool) -> AudioFacts | None:
    span = _span(path, index, count_samples)
    if span is None:
        return None
    _, first, end = span
    return AudioFacts(
        sample_rate=stream.sample_rate,
        channels=stream.num_channels,
        start=first,
        duration=end - first if count_samples else stream.duration_seconds_from_header,
    )


def read_frames(
    path: str | Path, queries: np.ndarray, info: MediaInfo, size: tuple[int, int] | None
) -> torch.Tensor:
    """uint8 [len(queries), H, W, 3]: the frame on screen at each sorted query time, upright."""
    path = str(path)
    plan = _plan(path)
    if plan.use_pyav:
        return pyav_backend.read_frames(path, queries, info, size)
    if plan.video is None:
        raise DecodeError(path, "no video stream")
    decoders = _decoders()
    try:
        transforms = None
        if size is not None and size != (info.height, info.width):
            from torchcodec.transforms import Resize

            transforms = [Resize(size)]
        decoder = decoders.VideoDecoder(path, stream_index=plan.video, seek_mode="exact",
                                        transforms=transforms, dimension_order="NHWC")
        stream = decoder.metadata
        # Clamp into [first frame, end of last frame): before the start is frame 0, past the end the last.
        last = np.nextafter(stream.end_stream_seconds, -np.inf)
        times = np.clip(queries, stream.begin_stream_seconds, last)
        return decoder.get_frames_played_at(torch.from_numpy(times)).data
    except (RuntimeError, ValueError) as error:
        raise DecodeError(path, f"cannot decode video ({error})") from None


def read_native_samples(path: str | Path, start: float, stop: float, info: MediaInfo) -> tuple[torch.Tensor, float, int]:
    """Mono float32 samples at the stream's own rate covering [start, stop) plus the PyAV backend's margin

    on each side (as far as the stream goes): (samples [N], time of the first, sample rate)."""
    path = str(path)
    plan = _plan(path)
    if plan.use_pyav:
        return pyav_backend.read_native_samples(path, start, stop, info)
    if plan.audio is None:
        raise DecodeError(path, "no audio stream")
    margin = pyav_backend.AUDIO_MARGIN_S
    try:
        decoder = _decoders().AudioDecoder(path, stream_index=plan.audio)
        samples = decoder.get_samples_played_in_range(max(start - margin, info.audio_start), stop + margin)
    except (RuntimeError, ValueError) as error:
        raise DecodeError(path, f"cannot decode audio ({error})") from None
    return samples.data.mean(dim=0).to(torch.float32), float(samples.pts_seconds), int(samples.sample_rate)
