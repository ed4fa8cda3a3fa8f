"""The demo end to end: corpus → pretraining → frozen evaluation next to random init → figures → gallery.

Everything lands in one folder (default ``outputs/demo``)::

    corpus/, prepared/       the embedded corpus and its manifest (cached between runs)
    run/                     the pretraining run (config.yaml, logs/, checkpoints/, final/)
    results.md, results.json the score table (trained vs random initialisation) and the facts
    loss_curve.png           training loss against step
    embeddings.png           t-SNE of held-out clip features, trained and random, video and audio
    gallery/index.html       k-means clusters of held-out clips, purest first, playable excerpts

Pretraining and the probes' training use the corpus's ``train`` split; every score is measured on the
held-out ``val`` + ``test`` clips (:mod:`avssl.evaluate.frozen_suite`).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from avssl.data.manifest import Manifest
from avssl.demo.corpus import demo_manifest
from avssl.demo.methods import DEFAULT_METHOD, demo_config_path
from avssl.evaluate.frozen_suite import (
    FrozenFeatures,
    encode_files_together,
    format_table,
    shared_space_heads,
    suite_scores,
)
from avssl.data.recipe_overrides import record_trained_input_specs
from avssl.evaluate.middle_clip import reads_alike
from avssl.train.config import PretrainConfig, parse_config

MODALITIES = ("video", "audio")
TABLE_COLUMNS = ("video_probe", "audio_probe", "video_knn", "audio_knn", "a2v_r1", "video_purity", "audio_purity")


@dataclass(frozen=True)
class DemoOptions:
    """What ``avssl demo`` runs (see ``avssl demo --help``)."""

    out: Path = Path("outputs/demo")
    method: str = DEFAULT_METHOD
    num_clips: int = 1000
    seed: int = 0
    workers: int = 2
    steps: int | None = None  # None: the method's demo default
    batch_size: int | None = None
    gallery: bool = True
    progress: bool = True
    accelerator: str | None = None  # None: the demo config's (cpu)
    precision: str | None = None  # None: the demo config's ("32")


def pretraining_config(
    method: str, manifest_path: Path, output_dir: Path, *, seed: int = 0, steps: int | None = None,
    batch_size: int | None = None, max_minutes: float | None = None, progress: bool = True,
    accelerator: str | None = None, precision: str | None = None,
) -> PretrainConfig:
    """The method's CPU config (:mod:`avssl.demo.methods`) on ``manifest_path``, writing to
    ``output_dir``, with clips decoded once into memory and, when given, its steps, batch size,
    time limit, accelerator and precision replaced."""
    args = ["--config", str(demo_config_path(method)), "--data.manifest", str(manifest_path),
            "--trainer.output_dir", str(output_dir), "--trainer.resume", "null",
            "--data.cache_decoded", "true", "--data.num_workers", "1", "--trainer.log_every_n_steps", "1",
            "--seed", str(seed), "--trainer.progress_bar", str(progress).lower()]
    if steps is not None:
        args += ["--trainer.max_steps", str(steps)]
    if batch_size is not None:
        args += ["--data.batch_size", str(batch_size)]
    if max_minutes is not None:
        args += ["--trainer.max_minutes", str(max_minutes)]
    if accelerator is not None:
        args += ["--trainer.accelerator", accelerator]
    if precision is not None:
        args += ["--trainer.precision", precision]
    return parse_config(args)


# Method sizes that must stay below the number of training clips: (key, largest share of them).
CORPUS_BOUNDED_KWARGS = (("num_negatives", 0.5), ("num_negatives_within", 0.25), ("pos_k", 0.1),
                         ("num_clusters_video", 0.25), ("num_clusters_audio", 0.25), ("num_clusters_joint", 0.25))


def fit_to_corpus(config: PretrainConfig, num_items: int) -> list[str]:
    """Shrink memory-bank negatives, CMA positives and cluster counts that a small corpus cannot
    supply (the demo configs are sized for the 800 train clips of the default corpus); returns
    one note per change."""
    notes = []
    for key, share in CORPUS_BOUNDED_KWARGS:
        value = config.method.kwargs.get(key)
        bound = max(int(num_items * share), 2)
        if isinstance(value, int) and value > bound:
            config.method.kwargs[key] = bound
            notes.append(f"method.kwargs.{key} {value} -> {bound} ({num_items} training clips)")
    return notes


def method_encoders(method: nn.Module, config: PretrainConfig) -> dict[str, nn.Module]:
    """The method's encoders in eval mode, ``input_spec`` set to what the run fed them."""
    record_trained_input_specs(method, config)
    encoders = {modality: getattr(method, f"{modality}_encoder", None) for modality in MODALITIES}
    return {modality: encoder.eval() for modality, encoder in encoders.items() if encoder is not None}


def _write_results(out: Path, rows: dict[str, dict[str, float]], facts: dict[str, object]) -> str:
    table = format_table(rows, TABLE_COLUMNS)
    notes = (
        "Scores in % on the held-out clips (val + test splits) of the embedded corpus: linear probe and "
        "kNN (k = 10) top-1 on frozen features fit on the train split; a2v_r1 = audio→video retrieval R@1 "
        "(same class) in the method's shared space (— when it has none); purity of k-means clusters "
        "(k = number of classes)."
    )
    (out / "results.md").write_text(f"# avssl demo: {facts['method']}\n\n{table}\n\n{notes}\n", encoding="utf-8")
    plain = {name: {k: (None if math.isnan(v) else v) for k, v in scores.items()} for name, scores in rows.items()}
    (out / "results.json").write_text(json.dumps({"scores": plain, "facts": facts}, indent=1) + "\n", encoding="utf-8")
    return table


def evaluate_methods(
    manifest: Manifest, methods: Mapping[str, tuple[nn.Module, PretrainConfig]], seed: int = 0, progress: bool = True,
) -> dict[str, tuple[FrozenFeatures, dict[str, float]]]:
    """Frozen features and scores (:mod:`avssl.evaluate.frozen_suite` plus cluster purity) of each
    ``{name: (method, its config)}`` on ``manifest``: fit on its ``train`` split, scored on the rest.
    Files that fail to decode are skipped and listed. Methods whose encoders read the same inputs
    (a trained model and its random initialisation) share one decoding pass."""
    from avssl.demo.report import cluster_purities

    classes = manifest.labels()
    paths = [manifest.resolve(row) for row in manifest]
    labels = [classes.index(row.label) for row in manifest]
    train = [row.split == "train" for row in manifest]
    groups: list[dict[str, tuple[dict[str, nn.Module], dict[str, nn.Module] | None]]] = []
    for name, (method, config) in methods.items():
        model = (method_encoders(method, config), shared_space_heads(method))
        group = next((g for g in groups if reads_alike(next(iter(g.values()))[0], model[0])), None)
        if group is None:
            groups.append(group := {})
        group[name] = model
    evaluated = {}
    for group in groups:
        frozen, failed = encode_files_together(paths, labels, train, list(group.values()), progress=progress)
        for path, reason in failed:
            print(f"[evaluate] skipped {path}: {reason}")
        for name, features in zip(group, frozen):
            evaluated[name] = (features, {**suite_scores(features), **cluster_purities(features, len(classes), seed)})
    return {name: evaluated[name] for name in methods}


def run_demo(options: DemoOptions) -> dict[str, dict[str, float]]:
    """Run the demo; returns the score rows ``{method: scores, "random": scores}``."""
    from avssl.demo.report import write_figures_and_gallery
    from avssl.train.runner import build_method, run_pretraining

    start = time.perf_counter()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"[demo] embedded corpus ({options.num_clips} clips) in {out / 'corpus'}")
    manifest = demo_manifest(out, options.num_clips, options.seed, options.workers, options.progress)
    train_manifest = manifest.with_rows([row for row in manifest if row.split == "train"])
    train_path = train_manifest.write(out / "prepared" / "train.csv")
    print(f"[demo] {len(manifest)} clips, {len(manifest.labels())} classes; pretraining {options.method} "
          f"on the {len(train_manifest)} train clips")

    config = pretraining_config(options.method, train_path, out / "run", seed=options.seed, steps=options.steps,
                                batch_size=options.batch_size, progress=options.progress,
                                accelerator=options.accelerator, precision=options.precision)
    for note in fit_to_corpus(config, len(train_manifest)):
        print(f"[demo] {note}")
    shutil.rmtree(config.trainer.output_dir, ignore_errors=True)  # each demo run trains afresh
    result = run_pretraining(config)
    print(f"[demo] pretrained {result.global_step} steps ({result.epochs:.1f} epochs) in "
          f"{time.perf_counter() - start:.0f} s since the start")

    # A fresh method from the same config: random encoders and heads of the same architecture.
    torch.manual_seed(options.seed + 1)
    baseline = build_method(config.method, len(train_manifest))
    frozen = evaluate_methods(manifest, {options.method: (result.method, config), "random": (baseline, config)},
                              seed=options.seed, progress=options.progress)
    rows = {name: scores for name, (_, scores) in frozen.items()}
    classes = manifest.labels()
    facts = {
        "method": options.method, "config": str(demo_config_path(options.method)), "steps": result.global_step,
        "epochs": round(result.epochs, 2), "train_clips": len(train_manifest),
        "held_out_clips": sum(row.split != "train" for row in manifest), "classes": classes,
    }
    table = _write_results(out, rows, facts)
    print("\n" + table + "\n")
    write_figures_and_gallery(out, Path(config.trainer.output_dir), {n: f for n, (f, _) in frozen.items()}, options,
                              manifest, classes)
    facts["seconds"] = round(time.perf_counter() - start, 1)
    _write_results(out, rows, facts)
    print(f"[demo] done in {facts['seconds']:.0f} s; results in {out / 'results.md'}, figures and gallery in {out}")
    return rows

