"""Evaluation reports: per-fold metrics, mean ± std over folds, as JSON and a Markdown table.

Every report names the protocol (name, version, kind, model-selection mode), the parameter
overrides if any, the encoders and checkpoints, the seed, the avssl version and the exact command
line, so a number in a table can always be traced back to how it was made. Reports are written next
to the (first) checkpoint evaluated, or into an explicit folder (``avssl evaluate --out``).

The spread over folds is the sample standard deviation (``ddof=1``); it is 0 for a single fold.
Metrics are whatever the runner returns (percent for accuracies, recalls and mAP); extras (the C
chosen per fold, skipped files, ...) are kept in the JSON only.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from avssl.evaluate.protocols import EvaluationResult, FoldResult

__all__ = ["report_basename", "report_dict", "render_markdown", "summarise_folds", "write_report"]

SELECTION_LABELS = {
    "heldout": "held-out (chosen on training folds only)",
    "test": "on the test fold, as the original papers (optimistic; spec §5 row 23)",
    "none": "nothing is tuned",
}


def summarise_folds(folds: list[FoldResult]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "std", "n"}}`` over the folds that report the metric."""
    names: list[str] = []
    for fold in folds:
        names += [m for m in fold.metrics if m not in names]
    summary = {}
    for name in names:
        values = np.array([f.metrics[name] for f in folds if name in f.metrics], dtype=np.float64)
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[name] = {"mean": float(values.mean()), "std": std, "n": int(len(values))}
    return summary


def report_dict(result: EvaluationResult) -> dict[str, Any]:
    """The JSON-able content of a report."""
    return {
        "protocol": result.preset.to_dict(),
        "encoders": [
            {"name": e.name, "checkpoint": str(e.checkpoint) if e.checkpoint else None} for e in result.encoders
        ],
        "seed": result.seed,
        "command_line": result.command_line,
        "avssl_version": result.avssl_version,
        "seconds": round(result.seconds, 3),
        "folds": [{"fold": f.fold, "metrics": f.metrics, "extras": _jsonable(f.extras)} for f in result.folds],
        "summary": summarise_folds(result.folds),
    }


def render_markdown(result: EvaluationResult) -> str:
    """A Markdown page: how the run was made, then one row per fold and a mean ± std row."""
    preset = result.preset
    summary = summarise_folds(result.folds)
    metrics = list(summary)
    encoders = ", ".join(
        f"`{e.name}` ({e.checkpoint if e.checkpoint else 'random initialisation'})" for e in result.encoders
    )
    lines = [
        f"# {preset.name} (version {preset.version})",
        "",
        f"- kind: `{preset.kind}`; benchmark: `{preset.benchmark}`",
        f"- model selection: {SELECTION_LABELS.get(preset.selection, preset.selection)}",
        f"- encoders: {encoders}",
        f"- seed: {result.seed}; avssl {result.avssl_version}; {result.seconds:.1f} s",
        f"- command: `{result.command_line}`" if result.command_line else "- command: (called from Python)",
    ]
    if preset.overrides:
        changed = ", ".join(f"`{k}={v}`" for k, v in preset.overrides.items())
        lines.append(f"- **parameters overridden** (not the versioned protocol): {changed}")
    if preset.description:
        lines.append(f"- {preset.description}")
    if preset.source:
        lines.append(f"- source: {preset.source}")
    lines += ["", "| fold | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for fold in result.folds:
        cells = [_number(fold.metrics.get(m)) for m in metrics]
        lines.append(f"| {fold.fold if fold.fold is not None else 'test'} | " + " | ".join(cells) + " |")
    if len(result.folds) > 1:
        cells = [f"{summary[m]['mean']:.2f} ± {summary[m]['std']:.2f}" for m in metrics]
        lines.append("| **mean ± std** | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def report_basename(result: EvaluationResult) -> str:
    """``eval-<benchmark>-<preset>-v<version>-<encoders>``, safe as a file name."""
    encoders = "+".join(e.name for e in result.encoders)
    raw = f"eval-{result.preset.name.replace('/', '-')}-v{result.preset.version}-{encoders}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", raw)


def write_report(result: EvaluationResult, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``<basename>.json`` and ``<basename>.md``; returns both paths.

    ``out_dir`` defaults to the folder of the first checkpoint, else the current folder.
    """
    if out_dir is None:
        checkpoints = [e.checkpoint for e in result.encoders if e.checkpoint]
        out_dir = Path(checkpoints[0]).parent if checkpoints else Path.cwd()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / report_basename(result)
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(json.dumps(report_dict(result), indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(result), encoding="utf-8")
    return json_path, md_path


def _number(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value
