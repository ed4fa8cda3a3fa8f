"""Build the AV-Digits corpus on disk: clips, manifest.csv, metadata.csv, and a reusable cache.

Layout of `OUT`:
    OUT/clips/<digit>/<name>.mp4   H.264 + AAC clips (`avssl.data.synthetic.encode.write_mp4`);
                                   <name> is the recording's file stem and the clip's repeat number
    OUT/manifest.csv               the avssl manifest (`avssl.data.manifest`): label = the digit,
                                   split = train / test, extra columns MANIFEST_EXTRA_COLUMNS
    OUT/metadata.csv               every value drawn for each clip (columns: clip.METADATA_COLUMNS)
    OUT/config.json                the AVDigitsConfig, the source digests, the fingerprint, and
                                   whether the build finished (`avssl.data.corpus_cache`)

A folder whose config.json has the same fingerprint (config, generator version and the digests of
the MNIST file and the FSDD manifest) and says complete is reused as it is; one from another
config or other sources (or an interrupted run) is cleared of its clips and rebuilt.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from avssl.data import corpus_cache
from avssl.data.avdigits.clip import METADATA_COLUMNS, render_task
from avssl.data.avdigits.config import GENERATOR_VERSION, AVDigitsConfig
from avssl.data.avdigits.layout import plan_corpus
from avssl.data.avdigits.sources import FsddRecordings, MnistDigits, load_fsdd, load_mnist
from avssl.data.manifest import Manifest, ManifestRow
from avssl.data.parallel_render import render_in_workers

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.csv"
METADATA_FILE = "metadata.csv"
MANIFEST_EXTRA_COLUMNS = ("speaker", "mnist_index", "onset", "onset_frame", "recording")
_CLIP_FOLDERS = (*(f"clips/{digit}" for digit in range(10)), "clips")  # deepest first


def manifest_row(config: AVDigitsConfig, metadata: dict[str, object]) -> ManifestRow:
    """The manifest row of a clip, filled from what was written (its metadata row)."""
    video_duration = config.num_frames / config.fps
    return ManifestRow(
        path=str(metadata["path"]),
        duration=video_duration,
        has_video=True,
        has_audio=True,
        fps=float(config.fps),
        num_frames=config.num_frames,
        width=config.size[1],
        height=config.size[0],
        sample_rate=config.sample_rate,
        channels=1,
        label=str(metadata["label"]),
        split=str(metadata["split"]),
        video_duration=video_duration,
        audio_duration=config.num_samples / config.sample_rate,
        extra={name: str(metadata[name]) for name in MANIFEST_EXTRA_COLUMNS},
    )


def _fingerprint(config: AVDigitsConfig, mnist: MnistDigits, fsdd: FsddRecordings) -> str:
    return config.fingerprint({"mnist": mnist.sha256, "fsdd": fsdd.sha256})


def _write_state(
    out_dir: Path, config: AVDigitsConfig, mnist: MnistDigits, fsdd: FsddRecordings, complete: bool
) -> None:
    corpus_cache.write_state(
        out_dir,
        generator_version=GENERATOR_VERSION,
        fingerprint=_fingerprint(config, mnist, fsdd),
        complete=complete,
        config=config.to_dict(),
        inputs={
            "mnist": {"path": str(mnist.path), "sha256": mnist.sha256},
            "fsdd": {"path": str(fsdd.manifest), "sha256": fsdd.sha256},
        },
    )


def build_avdigits(
    out_dir: str | Path,
    *,
    mnist: str | Path,
    fsdd: str | Path,
    config: AVDigitsConfig = AVDigitsConfig(),
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Build the AV-Digits corpus described by `config` into `out_dir` (or reuse it); return its manifest.

    `mnist` is the MNIST `.npz` (or its folder) and `fsdd` the Free Spoken Digit Dataset folder (see
    `sources.py` for what each must hold). `workers` processes render clips in parallel (1: in this
    process); the content does not depend on it. Workers start with "spawn", so a script calling
    this with `workers > 1` needs the `if __name__ == "__main__":` guard.
    """
    digits, recordings = load_mnist(mnist), load_fsdd(fsdd)
    entries = plan_corpus(config, digits, recordings)
    out = Path(out_dir).expanduser().resolve()
    fingerprint = _fingerprint(config, digits, recordings)
    if corpus_cache.is_complete_corpus(out, fingerprint, MANIFEST_FILE, len(entries)):
        logger.info("reusing AV-Digits corpus in %s (fingerprint %s)", out, fingerprint[:12])
        return out / MANIFEST_FILE
    corpus_cache.clear_previous_corpus(
        out, corpus_name="AV-Digits corpus", clip_folders=_CLIP_FOLDERS, files=(MANIFEST_FILE, METADATA_FILE)
    )
    _write_state(out, config, digits, recordings, complete=False)

    tasks = [(config, e, out, recordings.root, digits.images[e.mnist_index]) for e in entries]
    rows = render_in_workers(render_task, tasks, workers=workers, desc="AV-Digits corpus", progress=progress)
    with (out / METADATA_FILE).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METADATA_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    manifest = Manifest([manifest_row(config, row) for row in rows], root=out).write(out / MANIFEST_FILE)
    _write_state(out, config, digits, recordings, complete=True)
    return manifest
