"""The cluster gallery: a static web page of audio and visual clusters with playable excerpts.

:func:`build_clusters` runs k-means on clip features of one modality and describes each cluster
(dominant label, purity, size, members nearest the centroid); :func:`write_gallery` writes

    DIR/index.html     the page (inline CSS and JS: opens from the file system, no server)
    DIR/clusters.json  the same content for programs (clusters, members, scores)
    DIR/clips/*.mp4    one short H.264 + AAC excerpt per clip shown (PyAV), played by <video controls>

Clusters are ordered by purity with respect to the labels when there are labels (ties: larger
first), by size otherwise. This is the qualitative check of XDC's Fig. 3/4-style cluster figures
(spec §1.3): what the encoders group together, with the sound, so that audio clusters can be heard.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np
from torch import Tensor

from avssl.evaluate.cluster_metrics import cluster_summaries, clustering_scores
from avssl.media import decode
from avssl.media.sampling import Window
from avssl.methods.kmeans import kmeans

__all__ = [
    "GalleryItem",
    "GalleryCluster",
    "ExcerptSettings",
    "middle_window",
    "build_clusters",
    "order_clusters",
    "write_excerpt",
    "render_page",
    "write_gallery",
]

logger = logging.getLogger(__name__)

MODALITY_TITLES = {"video": "Visual clusters", "audio": "Audio clusters"}


@dataclass(frozen=True)
class GalleryItem:
    """One media file shown in the gallery.

    ``key`` names its excerpt (``clips/<key>.mp4``; letters, digits, ``_`` and ``-`` only),
    ``name`` is what the page shows (usually the manifest path), ``label`` its label or ``None``.
    """

    key: str
    path: Path
    name: str
    label: str | None


@dataclass(frozen=True)
class GalleryCluster:
    """A cluster of one modality: members ordered by distance to the centroid (nearest first)."""

    modality: str
    cluster: int
    size: int
    dominant_label: str | None
    purity: float | None
    members: tuple[int, ...]  # positions in the item list


@dataclass(frozen=True)
class ExcerptSettings:
    """How the excerpts are cut and encoded: ``seconds`` around the middle of each file, ``fps``,
    frames resized to ``short_side`` (even sizes for yuv420p), audio resampled to ``sample_rate``."""

    seconds: float = 3.0
    fps: int = 16
    short_side: int = 160
    sample_rate: int = 16000


def middle_window(start: float, end: float, duration: float) -> Window:
    """A window of ``duration`` centred on ``[start, end]`` (from ``start`` if the span is shorter)."""
    return Window(start + max(0.0, (end - start - duration) / 2), duration)


# ------------------------------------------------------------------------------------ clusters


def build_clusters(
    features: Tensor | np.ndarray,
    modality: str,
    num_clusters: int,
    labels: Sequence[str | None] | None = None,
    *,
    seed: int = 0,
    nredo: int = 3,
) -> tuple[list[GalleryCluster], dict[str, float]]:
    """k-means (cosine) on ``features`` ``[N, D]``; the clusters in gallery order and the scores.

    ``labels`` (one per row, ``None`` or ``""`` for unlabelled rows) give each cluster its dominant
    label and purity over its labelled members, and the scores NMI / ARI / purity / Hungarian
    accuracy over the labelled rows (empty dict without labels).
    """
    result = kmeans(features, num_clusters, spherical=True, nredo=nredo, seed=seed)
    assignments = result.assignments.numpy()
    distances = result.distances.numpy()
    labelled = np.array([bool(label) for label in labels]) if labels is not None else np.zeros(len(assignments), bool)
    summaries = {}
    scores: dict[str, float] = {}
    if labelled.any():
        label_array = np.array([label for label in labels if label], dtype=object)
        summaries = {s.cluster: s for s in cluster_summaries(assignments[labelled], label_array.astype(str))}
        scores = clustering_scores(assignments[labelled], label_array.astype(str))
    clusters = []
    for cluster in range(result.num_clusters):
        members = np.flatnonzero(assignments == cluster)
        members = members[np.argsort(distances[members], kind="stable")]
        summary = summaries.get(cluster)
        clusters.append(
            GalleryCluster(
                modality=modality,
                cluster=cluster,
                size=len(members),
                dominant_label=str(summary.dominant_label) if summary else None,
                purity=summary.purity if summary else None,
                members=tuple(int(m) for m in members),
            )
        )
    return order_clusters(clusters), scores


def order_clusters(clusters: Sequence[GalleryCluster]) -> list[GalleryCluster]:
    """Purest first (ties: larger first) when purities are known; largest first otherwise.

    Clusters without labelled members (purity ``None``) come after the others.
    """
    return sorted(
        clusters,
        key=lambda c: (c.purity is None, -(c.purity or 0.0), -c.size, c.cluster),
    )


# ------------------------------------------------------------------------------------ excerpts


def write_excerpt(path: str | Path, out_path: Path, settings: ExcerptSettings = ExcerptSettings()) -> None:
    """Write ``settings.seconds`` from the middle of ``path`` as an H.264 + AAC mp4 at ``out_path``,
    and its middle frame as the poster ``out_path.with_suffix(".jpg")`` (shown before playing).

    A file without video gets a dark still picture (so its sound plays in a ``<video>``); a file
    without audio gets silence.
    """
    from PIL import Image

    from avssl.data.synthetic.encode import write_mp4

    info = decode.probe(path, count_frames=False)
    span_start = min(info.video_start if info.has_video else np.inf, info.audio_start if info.has_audio else np.inf)
    span_end = max(info.video_end if info.has_video else 0.0, info.audio_end if info.has_audio else 0.0)
    window = middle_window(span_start, span_end, min(settings.seconds, max(span_end - span_start, 1.0 / settings.fps)))
    num_frames = max(1, round(window.duration * settings.fps))
    if info.has_video:
        (clip,) = decode.read_video(path, [window], settings.fps, info=info, short_side=settings.short_side)
        frames = clip.permute(1, 2, 3, 0).numpy()  # [T, H, W, 3]
        height, width = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2  # yuv420p needs even sizes
        frames = np.ascontiguousarray(frames[:, :height, :width])
    else:
        frames = np.full((num_frames, settings.short_side, settings.short_side, 3), 24, dtype=np.uint8)
    if info.has_audio:
        (wave,) = decode.read_audio(path, [window], settings.sample_rate, info=info)
        waveform = wave.numpy()
    else:
        waveform = np.zeros(round(window.duration * settings.sample_rate), dtype=np.float32)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(out_path, frames, waveform, settings.fps, settings.sample_rate)
    Image.fromarray(frames[len(frames) // 2]).save(out_path.with_suffix(".jpg"), quality=85)


# ---------------------------------------------------------------------------------------- page


def _template() -> Template:
    text = resources.files("avssl.viz").joinpath("templates/gallery.html").read_text(encoding="utf-8")
    return Template(text)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _clip_html(item: GalleryItem, playable: bool) -> str:
    e = html.escape
    caption = e(item.name) + (f" · <b>{e(item.label)}</b>" if item.label else "")
    media = (
        f'<video controls preload="metadata" src="clips/{e(item.key)}.mp4" poster="clips/{e(item.key)}.jpg"></video>'
        if playable else '<div class="missing">excerpt unavailable</div>'
    )
    return f'<figure class="clip">{media}<figcaption>{caption}</figcaption></figure>'


def _cluster_html(
    cluster: GalleryCluster, items: Sequence[GalleryItem], num_clips: int, playable: set[str] | None
) -> str:
    e = html.escape
    label = e(cluster.dominant_label) if cluster.dominant_label is not None else "<i>no label</i>"
    figures = [
        _clip_html(items[p], playable is None or items[p].key in playable) for p in cluster.members[:num_clips]
    ]
    purity_attr = "" if cluster.purity is None else f' data-purity="{cluster.purity:.6f}"'
    return (
        f'<section class="cluster" data-modality="{e(cluster.modality)}" data-cluster="{cluster.cluster}" '
        f'data-size="{cluster.size}"{purity_attr}>'
        f'<h3><span class="dominant">{label}</span>'
        f'<span class="stat">purity {_percent(cluster.purity)}</span>'
        f'<span class="stat">{cluster.size} clip{"s" if cluster.size != 1 else ""}</span>'
        f'<span class="stat id">cluster {cluster.cluster}</span></h3>'
        f'<div class="clips">{"".join(figures)}</div></section>'
    )


def render_page(
    title: str,
    facts: Mapping[str, str],
    clusters_by_modality: Mapping[str, Sequence[GalleryCluster]],
    scores_by_modality: Mapping[str, Mapping[str, float]],
    items: Sequence[GalleryItem],
    num_clips: int,
    playable: set[str] | None = None,
) -> str:
    """The HTML of the page (clusters already in display order); ``playable`` holds the keys of
    the items that have an excerpt (``None``: all)."""
    e = html.escape
    tabs, panels = [], []
    for modality, clusters in clusters_by_modality.items():
        heading = MODALITY_TITLES.get(modality, f"{modality} clusters")
        scores = scores_by_modality.get(modality) or {}
        score_text = (
            " · ".join(f"{name.replace('_', ' ')} {value:.3f}" for name, value in scores.items())
            if scores else "no labels: ordered by size"
        )
        tabs.append(f'<button class="tab" data-target="{e(modality)}">{e(heading)}</button>')
        panels.append(
            f'<div class="panel" id="panel-{e(modality)}" data-modality="{e(modality)}">'
            f'<h2>{e(heading)} <small>{len(clusters)} clusters · {e(score_text)}</small></h2>'
            + "".join(_cluster_html(c, items, num_clips, playable) for c in clusters)
            + "</div>"
        )
    fact_rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts.items())
    return _template().substitute(
        title=e(title), facts=fact_rows, tabs="".join(tabs), panels="".join(panels)
    )


def write_gallery(
    out_dir: str | Path,
    items: Sequence[GalleryItem],
    clusters_by_modality: Mapping[str, Sequence[GalleryCluster]],
    scores_by_modality: Mapping[str, Mapping[str, float]],
    *,
    num_clips: int = 6,
    title: str = "avssl cluster gallery",
    facts: Mapping[str, str] | None = None,
    excerpt: ExcerptSettings = ExcerptSettings(),
) -> Path:
    """Write the excerpts of the clips shown, ``clusters.json`` and ``index.html``; return the page path.

    A clip shown in several clusters (a visual and an audio one) has one excerpt; excerpts are
    rewritten on every call, so a gallery re-made into the same folder never shows stale clips. A
    file whose excerpt cannot be written is logged and shown as "excerpt unavailable".
    """
    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    shown = sorted({m for clusters in clusters_by_modality.values() for c in clusters for m in c.members[:num_clips]})
    playable: set[str] = set()
    for position in shown:
        item = items[position]
        target = out / "clips" / f"{item.key}.mp4"
        try:
            write_excerpt(item.path, target, excerpt)
            playable.add(item.key)
        except (decode.DecodeError, RuntimeError, ValueError, OSError) as exc:
            logger.warning("cluster gallery: no excerpt for %s: %s", item.path, exc)
    payload = {
        "title": title,
        "facts": dict(facts or {}),
        "scores": {m: dict(s) for m, s in scores_by_modality.items()},
        "items": [{**asdict(item), "path": str(item.path)} for item in items],
        "clusters": {m: [asdict(c) for c in clusters] for m, clusters in clusters_by_modality.items()},
    }
    (out / "clusters.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    page = out / "index.html"
    page.write_text(
        render_page(title, facts or {}, clusters_by_modality, scores_by_modality, items, num_clips, playable),
        encoding="utf-8",
    )
    return page
