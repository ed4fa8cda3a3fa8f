"""Prepare a corpus: find media files, verify each one, optionally re-encode, write the manifest.

`avssl prepare SRC --out DIR` (avssl/commands/prepare.py) is a thin front to `prepare_corpus`. Every file
is verified by a full decoding pass (`probe(count_frames=True)`: the true frame count, the true stream
ends), in a process pool. A file that cannot be used gets one line in DIR/rejected.csv with the reason;
the others get a row of DIR/manifest.csv (avssl/data/manifest.py).

Re-encoding (`short_side`, `gop`) addresses the loader costs measured in spec/landscape.md §5.3: random
clips from long-GOP sources decode ~4x slower than from a 16-frame GOP, and 720p ~7x slower than short
side 256. It writes H.264 (libx264, yuv420p, a keyframe every `gop` frames and only there) under
DIR/media/, mirroring the source tree, with the picture turned upright and the original timestamps kept
(variable frame rate stays variable); AAC audio is copied, other audio re-encoded to AAC.
`extract_audio` writes 16 kHz mono FLAC beside each file, starting at time 0 of the source clock (zeros
before the first sample) so that it stays in sync with the video.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from tqdm import tqdm

from avssl.data.manifest import Manifest, ManifestRow
from avssl.media.decode import DecodeError, MediaInfo, probe, read_audio
from avssl.media.decode import pyav_backend, pyav_container
from avssl.media.decode.timeline import resized_size

MEDIA_SUFFIXES = frozenset(
    ".mp4 .avi .mkv .mov .webm .mpg .mpeg .m4v .flv .wav .flac .mp3 .ogg .m4a .opus".split()
)
EXTRACTED_AUDIO_RATE = 16000
_VIDEO_TIME_BASE = Fraction(1, 90000)  # fine enough to keep any source timestamp
_FLAC_CHUNK_S = 60.0  # audio extracted a minute at a time, so that long files stay small in memory


@dataclass(frozen=True)
class PrepareOptions:
    """What `avssl prepare` does besides verifying (see the module docstring)."""

    labels_from_folders: bool = False
    require_audio: bool = False
    require_video: bool = False
    short_side: int | None = None
    gop: int | None = None
    fast_decode: bool = True  # x264 tune=fastdecode for re-encoded video (see `reencode`)
    extract_audio: bool = False
    workers: int = 1

    @property
    def reencode(self) -> bool:
        return self.short_side is not None or self.gop is not None


@dataclass(frozen=True)
class _Job:
    source: Path
    relative: Path  # of the source, from SRC: labels and output names
    media_target: Path | None  # re-encoded file, or None
    audio_target: Path | None  # extracted FLAC, or None
    out_dir: Path
    options: PrepareOptions


@dataclass(frozen=True)
class _Outcome:
    row: ManifestRow | None
    source: Path
    reason: str = ""


def find_media(src: Path) -> list[Path]:
    """Media files under `src` (by suffix, case-insensitive), recursively, in sorted order."""
    return sorted(p for p in src.rglob("*") if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file())


def read_file_list(list_file: Path, src: Path) -> list[Path]:
    """Paths listed one per line (relative to `src`, or absolute); blank lines and '#' comments skipped."""
    paths = []
    with open(list_file, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#"):
                paths.append(Path(line) if Path(line).is_absolute() else src / line)
    return paths


def prepare_corpus(src: Path, out_dir: Path, options: PrepareOptions, files: Iterable[Path] | None = None,
                   progress: bool = True) -> tuple[Manifest, list[tuple[str, str]]]:
    """Verify (and optionally re-encode) `files` (default: every media file under `src`); write
    out_dir/manifest.csv and out_dir/rejected.csv. Returns the manifest and the (path, reason) rejections."""
    src, out_dir = src.resolve(), out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = [Path(p).resolve() for p in (find_media(src) if files is None else files)]
    jobs = _plan_jobs(sources, src, out_dir, options)
    bar = tqdm(total=len(jobs), desc="prepare", unit="file", file=sys.stderr, disable=not progress or None)
    outcomes = []
    with bar:
        if options.workers > 1 and len(jobs) > 1:
            # forkserver, not fork: a process that has run torch ops holds an OpenMP thread pool, and a
            # child forked from it hangs at its first parallel op (seen with GNU OpenMP).
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["avssl.data.prepare"])
            with ProcessPoolExecutor(options.workers, mp_context=context, initializer=_init_worker) as pool:
                for outcome in pool.map(_prepare_file, jobs):
                    outcomes.append(outcome)
                    bar.update()
        else:
            for job in jobs:
                outcomes.append(_prepare_file(job))
                bar.update()
    manifest = Manifest([o.row for o in outcomes if o.row is not None], root=out_dir)
    manifest.write(out_dir / "manifest.csv")
    rejected = [(str(o.source), o.reason) for o in outcomes if o.row is None]
    with open(out_dir / "rejected.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "reason"])
        writer.writerows(rejected)
    return manifest, rejected


def _init_worker() -> None:
    torch.set_num_threads(1)  # the pool parallelises across files


def _plan_jobs(sources: list[Path], src: Path, out_dir: Path, options: PrepareOptions) -> list[_Job]:
    """One job per source, with its output names: DIR/media/<path under SRC>, suffix .mp4 (.flac for the
    extracted audio); when two sources would share a name (clip.avi, clip.mkv) the later ones keep their
    old suffix in it (clip.mkv.mp4)."""
    jobs, taken = [], set()
    for source in sources:
        relative = _relative_to(source, src)
        stem = out_dir / "media" / relative.with_suffix("")
        if stem in taken:
            stem = out_dir / "media" / relative
        taken.add(stem)
        jobs.append(_Job(
            source=source, relative=relative, out_dir=out_dir, options=options,
            media_target=stem.with_name(stem.name + ".mp4") if options.reencode else None,
            audio_target=stem.with_name(stem.name + ".flac") if options.extract_audio else None,
        ))
    return jobs


def _relative_to(path: Path, folder: Path) -> Path:
    try:
        return path.relative_to(folder)
    except ValueError:  # a listed file outside SRC
        return Path(path.name)


def _manifest_path(path: Path, out_dir: Path) -> str:
    """Relative to the manifest's folder when inside it, else absolute."""
    try:
        return path.relative_to(out_dir).as_posix()
    except ValueError:
        return str(path)


def _prepare_file(job: _Job) -> _Outcome:
    """Verify one file and make its outputs; any failure becomes a one-line reason, never an exception."""
    try:
        return _Outcome(_prepare_row(job), job.source)
    except _Rejected as rejection:
        return _Outcome(None, job.source, str(rejection))
    except DecodeError as error:
        return _Outcome(None, job.source, _one_line(error.problem))
    except Exception as error:  # noqa: BLE001 - a damaged file must not stop the corpus
        return _Outcome(None, job.source, _one_line(f"unexpected {type(error).__name__}: {error}"))


class _Rejected(Exception):
    """A file that decodes but does not meet the requirements."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _prepare_row(job: _Job) -> ManifestRow:
    options = job.options
    if not job.source.is_file():
        raise _Rejected("file not found")
    if job.source.stat().st_size == 0:
        raise _Rejected("empty file (0 bytes)")
    info = probe(job.source, count_frames=True)
    if not (info.has_video or info.has_audio):
        raise _Rejected("no decodable video or audio stream")
    if options.require_video and not info.has_video:
        raise _Rejected("no video stream (--require-video)")
    if options.require_audio and not info.has_audio:
        raise _Rejected("no audio stream (--require-audio)")
    label = job.relative.parent.name if options.labels_from_folders else ""
    extra: dict[str, str] = {}
    if job.audio_target is not None and info.has_audio:  # from the source: no second lossy step
        extract_audio(job.source, job.audio_target, info)
        extra["audio_path"] = _manifest_path(job.audio_target, job.out_dir)
    path = job.source
    if job.media_target is not None and info.has_video:
        reencode(job.source, job.media_target, info, options.short_side, options.gop, options.fast_decode)
        extra["source_path"] = str(job.source)
        path = job.media_target
        info = probe(path, count_frames=True)
    return ManifestRow.from_media_info(_manifest_path(path, job.out_dir), info, label=label, **extra)


def reencode(source: Path, target: Path, info: MediaInfo, short_side: int | None, gop: int | None,
             fast_decode: bool = True) -> None:
    """Write `source` as H.264 + AAC MP4 at `target`: upright, short side `short_side` (even sizes, aspect
    kept), a keyframe every `gop` frames (and nowhere else), the source's timestamps. Written to a
    temporary name first, so an interrupted run leaves no half file under the final name.

    `fast_decode` encodes with x264's `tune=fastdecode` (CAVLC instead of CABAC, no deblocking filter,
    no weighted prediction): on the benchmark's 12 files at short side 256 a full decode took 0.59 s
    instead of 1.00 s (one thread) for files 16 % larger, and a loader re-decodes every file once per
    epoch, so training data are worth the bytes."""
    height, width = (info.height, info.width) if short_side is None else resized_size(info.height, info.width, short_side)
    size = (height - height % 2, width - width % 2)  # yuv420p needs even sizes
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        permuted = pyav_container.frame_times_are_permuted(source)
        try:
            _write_h264(source, partial, info, size, gop, permuted, fast_decode)
        except pyav_backend.TimesGoBackwards:
            _write_h264(source, partial, info, size, gop, True, fast_decode)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _write_h264(source: Path, target: Path, info: MediaInfo, size: tuple[int, int], gop: int | None,
                permuted: bool, fast_decode: bool) -> None:
    with pyav_container.open_container(source) as src, av.open(str(target), "w", format="mp4") as dst:
        video_in, audio_in = pyav_container.first_video_stream(src), pyav_container.first_audio_stream(src)
        options = {"preset": "veryfast", "crf": "23"}
        if fast_decode:
            options["tune"] = "fastdecode"
        if gop:  # fixed GOP: no extra keyframes at scene cuts, none fewer
            options.update(g=str(gop), keyint_min=str(gop), sc_threshold="0")
        video_out = dst.add_stream("libx264", rate=Fraction(info.fps).limit_denominator(100_000), options=options)
        video_out.height, video_out.width = size
        video_out.pix_fmt = "yuv420p"
        video_out.codec_context.time_base = _VIDEO_TIME_BASE
        video_out.codec_context.open()  # the container header, written at the first packet, needs both streams
        audio = _AudioPass(dst, audio_in) if audio_in is not None else None
        clock = pyav_backend.VideoClock(info.fps or 1.0, permuted)
        last_pts = None
        for packet in src.demux(*(s for s in (video_in, audio_in) if s is not None)):
            if packet.stream is audio_in:
                audio.add(packet)
                continue
            for frame in pyav_container.decode_packet(packet):
                pts = round(clock.time_of(frame) / _VIDEO_TIME_BASE)
                if last_pts is not None and pts <= last_pts:
                    continue  # two frames on one tick of the output clock: keep the first
                last_pts = pts
                rgb = pyav_backend.upright_rgb(frame, size)  # [H, W, 3]
                out = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb.numpy()), format="rgb24")
                out.pts, out.time_base = pts, _VIDEO_TIME_BASE
                dst.mux(video_out.encode(out))
        dst.mux(video_out.encode())
        if audio is not None:
            audio.finish()


class _AudioPass:
    """The audio of a re-encoded file: AAC packets are copied, other codecs re-encoded to AAC.

    Re-encoded frames are numbered by a running sample count from the first frame's time: container
    timestamps of other codecs (AVI's MP3, a frame counter) do not survive AAC's 1024-sample framing."""

    def __init__(self, dst: av.container.OutputContainer, stream: av.AudioStream):
        self.dst = dst
        self.copy = stream.codec_context.name == "aac"
        if self.copy:
            self.out = dst.add_stream_from_template(stream)
            return
        layout = stream.layout.name if stream.channels <= 2 else "stereo"
        self.out = dst.add_stream("aac", rate=stream.rate, layout=layout)
        self.out.codec_context.open()
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=stream.rate,
                                           frame_size=self.out.codec_context.frame_size)
        self.next_sample: int | None = None

    def add(self, packet: av.Packet) -> None:
        if self.copy:
            if packet.dts is not None:  # the demuxer's end-of-stream marker has none
                packet.stream = self.out
                self.dst.mux(packet)
            return
        for frame in pyav_container.decode_packet(packet):
            if self.next_sample is None:
                self.next_sample = round((frame.time or 0.0) * frame.sample_rate)
            self._encode(self.resampler.resample(frame))

    def finish(self) -> None:
        if not self.copy:
            self._encode(self.resampler.resample(None))
            self.dst.mux(self.out.encode(None))

    def _encode(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            frame.pts, frame.time_base = self.next_sample, Fraction(1, frame.sample_rate)
            self.next_sample += frame.samples
            self.dst.mux(self.out.encode(frame))


def extract_audio(source: Path, target: Path, info: MediaInfo) -> None:
    """Write the audio of `source` as 16 kHz mono 16-bit FLAC, sample k at time k / 16000 of the source."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with av.open(str(partial), "w", format="flac") as dst:
            stream = dst.add_stream("flac", rate=EXTRACTED_AUDIO_RATE, layout="mono")
            stream.format = "s16"
            written, end = 0, info.audio_end
            while written < round(end * EXTRACTED_AUDIO_RATE):
                start = written / EXTRACTED_AUDIO_RATE
                (chunk,) = read_audio(source, [(start, min(_FLAC_CHUNK_S, end - start))], EXTRACTED_AUDIO_RATE,
                                      info=info, backend="pyav")
                if chunk.numel() == 0:
                    break
                samples = torch.round(chunk * 32767).to(torch.int16).numpy()
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[None]), format="s16", layout="mono")
                frame.sample_rate, frame.pts = EXTRACTED_AUDIO_RATE, written
                dst.mux(stream.encode(frame))
                written += samples.size
            dst.mux(stream.encode(None))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
