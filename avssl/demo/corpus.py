"""The demo's data: the embedded corpus, generated once, indexed by ``avssl prepare``, with its splits.

The generator writes each clip's split (train/val/test, per class) into ``metadata.csv``;
``prepare`` verifies the files and records their stream facts. The demo manifest is prepare's with
the generator's split copied in, so that pretraining and the probes' training use ``train`` and every
score is measured on the held-out ``val`` + ``test`` clips.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from avssl.data.manifest import Manifest
from avssl.data.prepare import PrepareOptions, prepare_corpus
from avssl.data.synthetic import generate_corpus

MANIFEST_NAME = "manifest.csv"


def _generator_splits(corpus: Path) -> dict[Path, str]:
    with open(corpus / "metadata.csv", newline="", encoding="utf-8") as handle:
        return {(corpus / row["path"]).resolve(): row["split"] for row in csv.DictReader(handle)}


def demo_manifest(out: Path, num_clips: int, seed: int, workers: int, progress: bool = True) -> Manifest:
    """``out/corpus`` (generated or reused), ``out/prepared/manifest.csv`` with a ``split`` column.

    Reused as it is when the manifest is newer than the corpus metadata and lists every clip.
    """
    corpus = generate_corpus(out / "corpus", num_clips=num_clips, seed=seed, workers=workers, progress=progress)
    prepared = out / "prepared"
    path = prepared / MANIFEST_NAME
    if path.is_file() and path.stat().st_mtime >= (corpus / "metadata.csv").stat().st_mtime:
        manifest = Manifest.read(path)
        if len(manifest) == num_clips and all(row.split for row in manifest):
            return manifest
    manifest, rejected = prepare_corpus(
        corpus, prepared,
        PrepareOptions(labels_from_folders=True, require_audio=True, require_video=True, workers=workers),
        progress=progress,
    )
    if rejected:
        raise RuntimeError(f"{len(rejected)} generated clips failed verification; first: {rejected[0]}")
    splits = _generator_splits(Path(corpus))
    rows = []
    for row in manifest:
        split = splits.get(manifest.resolve(row).resolve())
        if split is None:
            raise RuntimeError(f"{manifest.resolve(row)}: not listed in {corpus}/metadata.csv")
        rows.append(dataclasses.replace(row, split=split))
    manifest = manifest.with_rows(rows)
    manifest.write(path)
    return manifest
