"""Generate the synthetic corpus on disk: clips, metadata.csv, classes.txt, and a reusable cache.

Layout of `OUT`:
    OUT/<class_name>/<clip_id>.mp4   H.264 + AAC clips (see encode.py)
    OUT/metadata.csv                 one row per clip (columns: METADATA_COLUMNS)
    OUT/classes.txt                  class names, one a line, in class-index order
    OUT/config.json                  the SyntheticConfig, its fingerprint, and whether it is complete

A folder whose config.json has the same fingerprint and says complete is reused as it is; one from
another config (or an interrupted run) is cleared of its clips and regenerated. A non-empty folder
without config.json is never touched.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avssl.data import corpus_cache
from avssl.data.parallel_render import render_in_workers
from avssl.data.synthetic.audio import render_audio
from avssl.data.synthetic.classes import CLASS_NAMES, CLASSES
from avssl.data.synthetic.config import GENERATOR_VERSION, SPLIT_NAMES, SyntheticConfig
from avssl.data.synthetic.encode import write_mp4_atomically
from avssl.data.synthetic.plan import sample_clip_plan
from avssl.data.synthetic.video import render_video

logger = logging.getLogger(__name__)

METADATA_COLUMNS: tuple[str, ...] = (
    "path",  # relative to OUT, with forward slashes
    "label",  # class name
    "class_index",
    "duration",  # seconds, num_frames / fps
    "fps",
    "event_times",  # onset seconds, ';'-separated; each is the start time of a video frame
    "seed",  # the clip seed: sample_clip_plan(config, class_index, seed) re-creates the clip
    "split",  # train / val / test
    "clip_id",
    "num_frames",
    "sample_rate",
    "num_samples",
    "width",
    "height",
    "num_events",
    "event_durations",  # seconds, ';'-separated, same order as event_times
)


@dataclass(frozen=True)
class CorpusEntry:
    """One clip's place in the corpus, decided before anything is rendered."""

    index: int
    clip_id: str
    class_index: int
    clip_seed: int
    split: str

    @property
    def relative_path(self) -> str:
        return f"{CLASS_NAMES[self.class_index]}/{self.clip_id}.mp4"


def plan_corpus(config: SyntheticConfig) -> list[CorpusEntry]:
    """Class, seed and split of every clip: balanced classes, splits stratified by class.

    Clip i's seed comes from `SeedSequence(config.seed, spawn_key=(i,))`, so a clip does not
    depend on how many clips are generated or on which worker renders it.
    """
    layout_rng = np.random.default_rng(np.random.SeedSequence(config.seed))
    class_of_clip = layout_rng.permutation(np.arange(config.num_clips) % len(CLASSES))

    split_of_clip = np.empty(config.num_clips, dtype=object)
    for class_index in range(len(CLASSES)):
        members = layout_rng.permutation(np.flatnonzero(class_of_clip == class_index))
        # Cumulative rounding: the three parts always add up to the class's clip count.
        ends = np.round(np.cumsum(config.split_fractions) * len(members)).astype(int)
        for split, start, end in zip(SPLIT_NAMES, (0, *ends[:-1]), ends, strict=True):
            split_of_clip[members[start:end]] = split

    digits = max(5, len(str(config.num_clips - 1)))
    return [
        CorpusEntry(
            index=index,
            clip_id=f"clip{index:0{digits}d}",
            class_index=int(class_of_clip[index]),
            clip_seed=_clip_seed(config.seed, index),
            split=str(split_of_clip[index]),
        )
        for index in range(config.num_clips)
    ]


def _clip_seed(corpus_seed: int, index: int) -> int:
    # 63 bits, so the seed fits a signed 64-bit integer column in any CSV reader.
    state = np.random.SeedSequence(corpus_seed, spawn_key=(index,)).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def _format_seconds(values: Iterable[float]) -> str:
    return ";".join(f"{value:.6f}" for value in values)


def render_entry(config: SyntheticConfig, entry: CorpusEntry, out_dir: Path) -> dict[str, object]:
    """Render and write one clip (atomically: a partial file never has the final name); its row."""
    plan = sample_clip_plan(config, entry.class_index, entry.clip_seed)
    path = out_dir / entry.relative_path
    write_mp4_atomically(
        path,
        render_video(plan),
        render_audio(plan),
        plan.fps,
        plan.sample_rate,
        gop=config.gop,
        crf=config.crf,
        audio_bit_rate=config.audio_bit_rate,
    )
    return {
        "path": entry.relative_path,
        "label": CLASS_NAMES[entry.class_index],
        "class_index": entry.class_index,
        "duration": f"{plan.duration:.6f}",
        "fps": plan.fps,
        "event_times": _format_seconds(plan.event_times),
        "seed": entry.clip_seed,
        "split": entry.split,
        "clip_id": entry.clip_id,
        "num_frames": plan.num_frames,
        "sample_rate": plan.sample_rate,
        "num_samples": plan.num_samples,
        "width": config.width,
        "height": config.height,
        "num_events": len(plan.onset_frames),
        "event_durations": _format_seconds(plan.event_durations),
    }


def _render_task(task: tuple[SyntheticConfig, CorpusEntry, Path]) -> dict[str, object]:
    return render_entry(*task)


def is_complete_corpus(out_dir: Path, config: SyntheticConfig) -> bool:
    """True when `out_dir` holds a finished corpus of exactly `config` with every clip present."""
    return corpus_cache.is_complete_corpus(
        out_dir, config.fingerprint(), "metadata.csv", config.num_clips
    )


def _write_state(out_dir: Path, config: SyntheticConfig, complete: bool) -> None:
    corpus_cache.write_state(
        out_dir,
        generator_version=GENERATOR_VERSION,
        fingerprint=config.fingerprint(),
        complete=complete,
        config=config.to_dict(),
    )


def write_corpus(
    out_dir: str | Path, config: SyntheticConfig, *, workers: int = 2, progress: bool = True
) -> Path:
    """Generate the corpus described by `config` into `out_dir` (or reuse it); return its path.

    `workers` processes render clips in parallel (1: in this process). The content does not depend
    on `workers`: the same config gives the same clips. Workers are started with "spawn" (safe
    after torch has started threads), so a script calling this with `workers > 1` needs the usual
    `if __name__ == "__main__":` guard.
    """
    out = Path(out_dir).expanduser().resolve()
    if is_complete_corpus(out, config):
        logger.info("reusing synthetic corpus in %s (fingerprint %s)", out, config.fingerprint()[:12])
        return out
    corpus_cache.clear_previous_corpus(
        out,
        corpus_name="synthetic corpus",
        clip_folders=CLASS_NAMES,
        files=("metadata.csv", "classes.txt"),
    )
    _write_state(out, config, complete=False)

    entries = plan_corpus(config)
    rows = render_in_workers(
        _render_task,
        [(config, entry, out) for entry in entries],
        workers=workers,
        desc="synthetic corpus",
        progress=progress,
    )
    (out / "classes.txt").write_text("".join(f"{name}\n" for name in CLASS_NAMES))
    with (out / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METADATA_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    _write_state(out, config, complete=True)
    return out


def generate_corpus(
    out_dir: str | Path,
    num_clips: int = 1000,
    seed: int = 0,
    size: tuple[int, int] = (112, 112),
    fps: int = 16,
    sample_rate: int = 16000,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Generate (or reuse) the default synthetic corpus in `out_dir`; see `SyntheticConfig`.

    `size` is (height, width). Returns the corpus folder, holding metadata.csv and classes.txt.
    """
    config = SyntheticConfig(num_clips=num_clips, seed=seed, size=size, fps=fps, sample_rate=sample_rate)
    return write_corpus(out_dir, config, workers=workers, progress=progress)
