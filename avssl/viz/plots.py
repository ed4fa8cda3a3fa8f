"""Static figures of a run: the training-loss curve and t-SNE maps of clip embeddings.

Both write a PNG with matplotlib's non-interactive Agg backend, so they work on a headless machine.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_metric_curves(metrics_csv: Path, prefix: str = "train/loss") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{column: (steps [n], values [n])}`` for the columns of a Lightning CSV log starting with
    ``prefix`` (rows where the column is empty are left out)."""
    with open(metrics_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "step" not in rows[0]:
        raise ValueError(f"{metrics_csv}: not a Lightning CSV log (no 'step' column)")
    curves = {}
    for column in rows[0]:
        if not column.startswith(prefix):
            continue
        points = [(int(float(r["step"])), float(r[column])) for r in rows if r.get(column) not in (None, "")]
        if points:
            steps, values = zip(*points)
            curves[column] = (np.asarray(steps), np.asarray(values))
    if prefix not in curves:
        raise ValueError(f"{metrics_csv}: no '{prefix}' values logged")
    return curves


def plot_loss_curve(metrics_csv: Path, out_png: Path, title: str) -> Path:
    """The total loss (bold) and its logged terms against the training step."""
    plt = _pyplot()
    curves = read_metric_curves(metrics_csv)
    figure, axis = plt.subplots(figsize=(7, 4))
    for column, (steps, values) in sorted(curves.items()):
        total = column == "train/loss"
        axis.plot(steps, values, label=column.removeprefix("train/"), linewidth=2.2 if total else 0.9,
                  alpha=1.0 if total else 0.6, zorder=3 if total else 2)
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(out_png, dpi=110)
    plt.close(figure)
    return out_png


def tsne_map(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of ``features [n, D]`` (L2-normalised first; PCA initialisation): ``[n, 2]``."""
    from sklearn.manifold import TSNE

    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    perplexity = min(30.0, max(2.0, (len(x) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def plot_embeddings(
    panels: Mapping[str, np.ndarray], labels: np.ndarray, class_names: Sequence[str], out_png: Path, seed: int = 0
) -> Path:
    """One t-SNE panel per entry of ``panels`` (``{title: features [n, D]}``), points coloured by class."""
    plt = _pyplot()
    columns = min(len(panels), 2)
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.6 * rows), squeeze=False)
    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for axis, (title, features) in zip(axes.flat, panels.items()):
        points = tsne_map(np.asarray(features, dtype=np.float64), seed)
        for number, name in enumerate(class_names):
            chosen = labels == number
            axis.scatter(points[chosen, 0], points[chosen, 1], s=9, color=colours(number % colours.N), label=name)
        axis.set_title(title, fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in list(axes.flat)[len(panels):]:
        axis.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=min(len(names), 5), fontsize=7, markerscale=2)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(out_png, dpi=110)
    plt.close(figure)
    return out_png
