"""The cluster gallery: cluster order, excerpts, and the page in a real headless Chromium.

The browser tests need the Debian package ``chromium`` (``apt-get install -y chromium``); without
it they skip and say so. Chromium prints every console message of the page to stderr with
``--enable-logging=stderr --v=0`` (errors, warnings and uncaught exceptions alike), and the page
itself logs exactly one line when its script has run, so any other console line is a failure.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import av
import numpy as np
import faiss
import pytest
import torch

from avssl import cli
from avssl.commands import clusters as clusters_command
from avssl.evaluate.middle_clip import load_encoders
from avssl.data.manifest import Manifest, ManifestRow
from avssl.data.synthetic import generate_corpus
from avssl.models.checkpoints.avssl_native import save_encoder
from avssl.models.registry import create_encoder
from avssl.viz.gallery import GalleryCluster, GalleryItem, build_clusters, order_clusters

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install -y chromium); the gallery page test "
    "needs a real browser",
)
READY_MESSAGE = "gallery ready: 2 panels"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny convolutions are far slower on two threads when other processes share the cores.
    previous = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(previous[0])
    faiss.omp_set_num_threads(previous[1])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Twelve labelled synthetic clips (64², 2-4 s, H.264 + AAC), generated in about a second."""
    return generate_corpus(tmp_path_factory.mktemp("corpus"), num_clips=12, size=(64, 64), workers=1, progress=False)


def corpus_items(root: Path) -> list[GalleryItem]:
    with open(root / "metadata.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [GalleryItem(f"row{i:06d}", root / r["path"], r["path"], r["label"]) for i, r in enumerate(rows)]


def run_chromium(page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", *mode, page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    return re.findall(r':CONSOLE(?::\d+)?\] "(.*)", source:', stderr)


# ------------------------------------------------------------------------------------ ordering


def _cluster(cluster: int, size: int, purity: float | None) -> GalleryCluster:
    return GalleryCluster("video", cluster, size, "x" if purity is not None else None, purity, tuple(range(size)))


def test_clusters_are_ordered_by_purity_then_size_and_by_size_without_labels():
    ordered = order_clusters([_cluster(0, 5, 0.5), _cluster(1, 2, 1.0), _cluster(2, 9, 0.5), _cluster(3, 4, None)])
    assert [c.cluster for c in ordered] == [1, 2, 0, 3]
    unlabelled = order_clusters([_cluster(0, 3, None), _cluster(1, 8, None), _cluster(2, 5, None)])
    assert [c.cluster for c in unlabelled] == [1, 2, 0]


def test_build_clusters_describes_each_cluster():
    rng = np.random.default_rng(0)
    directions = np.eye(3, dtype=np.float32)
    truth = np.repeat(np.arange(3), [8, 6, 4])
    features = directions[truth] + 0.05 * rng.standard_normal((len(truth), 3)).astype(np.float32)
    labels = np.array(["a", "b", "c"])[truth].tolist()
    labels[0] = "b"  # one mislabelled clip makes the "a" cluster 7/8 pure
    clusters, scores = build_clusters(features, "audio", 3, labels)
    assert [(c.dominant_label, c.size) for c in clusters] == [("b", 6), ("c", 4), ("a", 8)]
    assert [c.purity for c in clusters] == pytest.approx([1.0, 1.0, 7 / 8])
    assert scores["purity"] == pytest.approx(17 / 18)
    # Members nearest the centroid come first: in cluster "a" (direction e0) clip j sits at a
    # distance that grows with j (alternating sides, so the centroid stays on e0).
    a = clusters[2]
    assert sorted(a.members) == list(range(8))
    spread = np.repeat(directions[[0]], 8, axis=0)
    spread[:, 1] = [0.0, 0.1, -0.2, -0.3, -0.4, -0.5, 0.6, 0.7]  # the two sides sum to 1.4 each
    ordered, _ = build_clusters(np.concatenate([spread, features[8:]]), "audio", 3, labels)
    assert next(c for c in ordered if c.size == 8).members == tuple(range(8))
    _, no_scores = build_clusters(features, "audio", 3, None)
    assert no_scores == {}


# ------------------------------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def gallery(corpus, tmp_path_factory) -> Path:
    """``avssl clusters`` on the corpus with randomly initialised small encoders saved as avssl
    encoder files (so the command's checkpoint loading runs too)."""
    work = tmp_path_factory.mktemp("gallery")
    rows = [
        ManifestRow(path=item.name, duration=2.0, has_video=True, has_audio=True, label=item.label)
        for item in corpus_items(corpus)
    ]
    manifest = Manifest(rows, corpus).write(corpus / "manifest.csv")
    checkpoints = []
    for name in ("r2plus1d_small", "audio_resnet_small"):
        torch.manual_seed(0)
        checkpoints += ["--checkpoint", str(save_encoder(create_encoder(name), work / f"{name}.pt"))]
    out = work / "site"
    # The command's own parser and run (cli.main would import every other command as well).
    assert cli.COMMANDS["clusters"] == clusters_command.__name__
    parser = argparse.ArgumentParser()
    clusters_command.add_arguments(parser)
    args = parser.parse_args([*checkpoints, "--manifest", str(manifest), "--out", str(out), "--num-clusters", "4",
                              "--num-clips", "2", "--batch-size", "6", "--no-progress"])
    assert clusters_command.run(args) == 0
    return out


def test_method_file_gives_both_encoders_with_their_trained_weights(tmp_path):
    from avssl.methods.xdc import XDC

    torch.manual_seed(1)
    method = XDC(create_encoder("r2plus1d_small"), create_encoder("audio_resnet_small"), num_items=4)
    config = {
        "method": {"video_encoder": "r2plus1d_small", "video_encoder_kwargs": {},
                   "audio_encoder": "audio_resnet_small", "audio_encoder_kwargs": {"freq_bins": None}},
        "data": {"manifest": "unused.csv", "recipe": "avid", "recipe_overrides": {"video_seconds": 0.25},
                 "video_augment_overrides": {"size": 48}},
    }
    path = tmp_path / "method.pt"
    torch.save({"format": "avssl-method", "version": 1, "header": {"config": config},
                "state_dict": method.state_dict()}, path)
    encoders = load_encoders([tmp_path], {}, ("video", "audio"))  # the run's final/ folder
    for modality, trained in (("video", method.video_encoder), ("audio", method.audio_encoder)):
        for key, value in trained.state_dict().items():
            assert torch.equal(encoders[modality].state_dict()[key], value), key
        assert not encoders[modality].training
    # Clips for the gallery are made as the run made them: recipe avid's audio front end (2 s of
    # 24 kHz audio, 257 bins), 0.25 s at 16 fps = 4 frames, crop 48 — not the encoders' defaults.
    audio_spec, video_spec = encoders["audio"].input_spec, encoders["video"].input_spec
    assert (audio_spec.spectrogram, audio_spec.duration, audio_spec.sample_rate) == ("avid", 2.0, 24000)
    assert (video_spec.frames, video_spec.fps, video_spec.size) == (4, 16, 48)
    with pytest.raises(ValueError, match="no audio encoder"):
        load_encoders([], {"video": "r2plus1d_small"}, ("video", "audio"))


def test_gallery_files_and_excerpts(gallery, corpus):
    payload = json.loads((gallery / "clusters.json").read_text())
    assert set(payload["clusters"]) == {"video", "audio"}
    shown = {m for clusters in payload["clusters"].values() for c in clusters for m in c["members"][:2]}
    clips = sorted((gallery / "clips").glob("*.mp4"))
    assert {p.stem for p in clips} == {payload["items"][m]["key"] for m in shown}
    with av.open(str(clips[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        assert 2.5 <= float(container.duration / av.time_base) <= 3.5  # 3 s from the middle
    assert all(p.with_suffix(".jpg").is_file() for p in clips)
    page = (gallery / "index.html").read_text()
    assert "r2plus1d_small.pt" in page and "audio_resnet_small.pt" in page  # the facts name the checkpoints


@needs_chromium
def test_page_loads_in_chromium_with_clusters_in_purity_order(gallery, tmp_path):
    page = gallery / "index.html"
    result = run_chromium(page, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert console_messages(result.stderr) == [READY_MESSAGE], result.stderr[-2000:]
    html_tag = re.search(r"<html[^>]*>", dom).group(0)  # the script marks the root element
    assert 'data-ready="1"' in html_tag and "data-js-errors" not in html_tag, html_tag

    payload = json.loads((gallery / "clusters.json").read_text())
    labels = [item["label"] for item in payload["items"]]
    for modality in ("video", "audio"):
        panel = dom.split(f'id="panel-{modality}"', 1)[1].split('class="panel', 1)[0]
        sections = re.findall(r'<section class="cluster" data-modality="(\w+)" data-cluster="(\d+)" '
                              r'data-size="(\d+)" data-purity="([\d.]+)"', panel)
        assert {s[0] for s in sections} == {modality} and len(sections) == 4
        # purity recomputed here from the members' labels: non-increasing down the page
        members = {c["cluster"]: c["members"] for c in payload["clusters"][modality]}
        purities = []
        for _, cluster, size, shown_purity in sections:
            counts = Counter(labels[m] for m in members[int(cluster)])
            purities.append(max(counts.values()) / len(members[int(cluster)]))
            assert int(size) == len(members[int(cluster)])
            assert float(shown_purity) == pytest.approx(purities[-1], abs=1e-6)
        assert purities == sorted(purities, reverse=True)
    # every clip and poster the page refers to exists
    for reference in re.findall(r'(?:src|poster)="(clips/[^"]+)"', dom):
        assert (gallery / reference).is_file(), reference

    shot = tmp_path / "gallery.png"
    result = run_chromium(page, tmp_path / "profile2", "--window-size=1280,1400", f"--screenshot={shot}")
    assert result.returncode == 0 and shot.is_file()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
