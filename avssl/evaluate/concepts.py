"""Concept generalisation: which downstream classes were "seen" during pretraining (spec §3B.7).

AV-SSRL split UCF101 / HMDB51 classes by their names' closeness to the VGGSound classes it
pretrained on (``label_similarities.ipynb``). A downstream class ``d`` is **seen** when

1. its top-1 cosine similarity to a pretraining class under all-MiniLM-L6-v2 exceeds the threshold
   (0.47 for UCF101, 0.46 for HMDB51), **and**
2. the top-k (k = 3) pretraining classes of ``d`` under MiniLM and under a second encoder share at
   least one class;

minus a manual list of outliers. Everything else is **unseen** ("rest"). The linear protocol then
trains separate heads on the two subsets (:mod:`avssl.evaluate.fewshot`).

Substitution: AV-SSRL's second encoder was Phrase-BERT, which cannot be loaded offline. The
default second encoder here is a character n-gram TF-IDF (``tfidf_char``, see
:mod:`avssl.evaluate.class_name_similarity`); any registered similarity can take its place. Our
split is therefore not AV-SSRL's published ``*_rest_classes.txt`` list, and says so in its output.

A pretraining class enters a top-k list only with a positive similarity: a lexical encoder gives
0 to every unrelated name, and the order among ties at 0 carries no information.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avssl.evaluate.class_name_similarity import get_class_similarity, humanise_class_name
from avssl.evaluate.protocols import EvaluationContext, FoldResult, ProtocolPreset, register_protocol_kind

# Thresholds of AV-SSRL's notebook (spec §3B.7), by downstream benchmark.
REFERENCE_THRESHOLDS = {"ucf101": 0.47, "hmdb51": 0.46}
_INDEXED_LINE = re.compile(r"^\s*\d+\s+(\S.*)$")  # UCF101 classInd.txt: "1 ApplyEyeMakeup"


def read_class_names(path: str | Path) -> list[str]:
    """Class names of a text file, one per line, in file order.

    Empty lines and lines starting with ``#`` are skipped; a leading integer index followed by
    whitespace (UCF101's ``classInd.txt`` format) is dropped. Raises ``ValueError`` naming the file
    and line for duplicates, and for a file without names.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class list {path} does not exist")
    names: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        indexed = _INDEXED_LINE.match(text)
        name = indexed.group(1).strip() if indexed else text
        if name in first_line:
            raise ValueError(f"{path}:{number}: class {name!r} repeats line {first_line[name]}")
        first_line[name] = number
        names.append(name)
    if not names:
        raise ValueError(f"{path}: no class names (one name per line expected)")
    return names


def top_k_positive(similarities: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` largest entries of a 1-D array, best first, positive entries only.

    Ties keep the lower index first (stable sort), so the result is deterministic.
    """
    order = np.argsort(-similarities, kind="stable")[:k]
    return [int(i) for i in order if similarities[i] > 0]


@dataclass(frozen=True)
class ClassVerdict:
    """Why one downstream class is seen or unseen."""

    name: str
    nearest: str  # nearest pretraining class under the primary encoder
    similarity: float  # its cosine similarity
    primary_top_k: tuple[str, ...]
    secondary_top_k: tuple[str, ...]
    shared: tuple[str, ...]  # classes in both top-k lists, primary order
    forced_unseen: bool
    seen: bool


@dataclass(frozen=True)
class ConceptSplit:
    """The seen/unseen partition of the downstream classes and the settings that produced it."""

    verdicts: tuple[ClassVerdict, ...]
    threshold: float
    top_k: int
    primary: str
    secondary: str
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def seen(self) -> list[str]:
        return [v.name for v in self.verdicts if v.seen]

    @property
    def unseen(self) -> list[str]:
        return [v.name for v in self.verdicts if not v.seen]


def split_concepts(
    downstream: Sequence[str],
    pretrain: Sequence[str],
    threshold: float = REFERENCE_THRESHOLDS["ucf101"],
    top_k: int = 3,
    primary: str = "minilm",
    secondary: str = "tfidf_char",
    force_unseen: Sequence[str] = (),
) -> ConceptSplit:
    """Apply the seen rule (module docstring) to every downstream class.

    Args:
        downstream: downstream class names (e.g. the 101 UCF101 classes), any spelling.
        pretrain: pretraining class names (e.g. VGGSound's 309).
        threshold: the primary encoder's top-1 similarity must be strictly above it.
        top_k: length of the two lists that must intersect.
        primary, secondary: names of registered class similarities.
        force_unseen: downstream classes put in "unseen" whatever their scores (the manual
            outlier list); each must be one of ``downstream``.
    """
    if top_k < 1:
        raise ValueError(f"split_concepts: top_k must be >= 1, got {top_k}")
    if not downstream or not pretrain:
        raise ValueError("split_concepts: both class lists must be non-empty")
    unknown = sorted(set(force_unseen) - set(downstream))
    if unknown:
        raise ValueError(f"split_concepts: force_unseen names not among the downstream classes: {unknown}")
    first = get_class_similarity(primary)(downstream, pretrain)  # [D, P]
    second = get_class_similarity(secondary)(downstream, pretrain)  # [D, P]
    verdicts = []
    for row, name in enumerate(downstream):
        nearest = int(np.argmax(first[row]))
        top_first = top_k_positive(first[row], top_k)
        top_second = top_k_positive(second[row], top_k)
        shared = [i for i in top_first if i in set(top_second)]
        similarity = float(first[row, nearest])
        forced = name in force_unseen
        verdicts.append(ClassVerdict(
            name=name,
            nearest=pretrain[nearest],
            similarity=similarity,
            primary_top_k=tuple(pretrain[i] for i in top_first),
            secondary_top_k=tuple(pretrain[i] for i in top_second),
            shared=tuple(pretrain[i] for i in shared),
            forced_unseen=forced,
            seen=similarity > threshold and bool(shared) and not forced,
        ))
    notes = {}
    if secondary != "phrase_bert":
        notes["secondary"] = (
            f"AV-SSRL's second encoder was Phrase-BERT (not available offline); {secondary!r} was used "
            "instead, so this split is not AV-SSRL's published rest-class list"
        )
    return ConceptSplit(tuple(verdicts), threshold, top_k, primary, secondary, notes)


def write_concept_split(split: ConceptSplit, out_dir: str | Path) -> dict[str, Path]:
    """Write ``seen.txt``, ``unseen.txt`` (one class a line, input order), ``scores.csv`` (one row
    per downstream class) and ``split.json`` (settings, counts, notes) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("seen.txt", "unseen.txt", "scores.csv", "split.json")}
    paths["seen.txt"].write_text("".join(f"{n}\n" for n in split.seen), encoding="utf-8")
    paths["unseen.txt"].write_text("".join(f"{n}\n" for n in split.unseen), encoding="utf-8")
    with paths["scores.csv"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([
            "class", "humanised", "nearest_pretrain_class", f"{split.primary}_similarity",
            f"{split.primary}_top{split.top_k}", f"{split.secondary}_top{split.top_k}", "shared",
            "forced_unseen", "seen",
        ])
        for v in split.verdicts:
            writer.writerow([
                v.name, humanise_class_name(v.name), v.nearest, f"{v.similarity:.6f}",
                "|".join(v.primary_top_k), "|".join(v.secondary_top_k), "|".join(v.shared),
                int(v.forced_unseen), int(v.seen),
            ])
    summary = {
        "rule": f"seen iff {split.primary} top-1 similarity > threshold and the top-{split.top_k} lists "
                f"of {split.primary} and {split.secondary} intersect, minus forced_unseen",
        "threshold": split.threshold,
        "top_k": split.top_k,
        "primary": split.primary,
        "secondary": split.secondary,
        "num_seen": len(split.seen),
        "num_unseen": len(split.unseen),
        "forced_unseen": [v.name for v in split.verdicts if v.forced_unseen],
        "notes": split.notes,
    }
    paths["split.json"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return paths


def read_concept_split(folder: str | Path) -> tuple[list[str], list[str]]:
    """``(seen, unseen)`` class names from a folder written by :func:`write_concept_split`."""
    folder = Path(folder)
    return read_optional_class_names(folder / "seen.txt"), read_optional_class_names(folder / "unseen.txt")


def read_optional_class_names(path: Path) -> list[str]:
    # seen.txt may legitimately be empty (no class passes the rule); unseen.txt likewise.
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (write it with `avssl concepts`)")
    return read_class_names(path) if path.read_text(encoding="utf-8").strip() else []



# -- protocol kind "concepts": seen / unseen linear probes at few-shot ratios ----------------------

_SPLIT_KEYS = {"split_dir", "pretrain_classes", "threshold", "top_k", "primary", "secondary", "force_unseen"}


def concept_split_for(
    preset: ProtocolPreset, classes: Sequence[str], data_root: Path
) -> tuple[list[str], list[str], dict]:
    """``(seen, unseen, how)`` for a preset's ``params.concepts``.

    Either ``split_dir`` (a folder written by ``avssl concepts``) or ``pretrain_classes`` (a class
    list file; the split is computed with ``threshold``, ``top_k``, ``primary``, ``secondary``,
    ``force_unseen``). Relative paths are resolved against the benchmark folder ``data_root``.
    Every name must be one of the benchmark's ``classes``.
    """
    where = f"{preset.path or preset.name}: params.concepts"
    options = dict(preset.param("concepts"))
    unknown = sorted(set(options) - _SPLIT_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(_SPLIT_KEYS)}")

    def resolve(value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else data_root / path

    if options.get("split_dir"):
        seen, unseen = read_concept_split(resolve(options["split_dir"]))
        how = {"split_dir": str(resolve(options["split_dir"]))}
    elif options.get("pretrain_classes"):
        split = split_concepts(
            classes, read_class_names(resolve(options["pretrain_classes"])),
            threshold=float(options.get("threshold", REFERENCE_THRESHOLDS.get(preset.benchmark, 0.47))),
            top_k=int(options.get("top_k", 3)), primary=options.get("primary", "minilm"),
            secondary=options.get("secondary", "tfidf_char"), force_unseen=options.get("force_unseen") or (),
        )
        seen, unseen = split.seen, split.unseen
        how = {"threshold": split.threshold, "top_k": split.top_k, "primary": split.primary,
               "secondary": split.secondary, "notes": split.notes}
    else:
        raise ValueError(f"{where}: set split_dir (from `avssl concepts`) or pretrain_classes (a class list file)")
    strangers = sorted(set(seen + unseen) - set(classes))
    if strangers:
        raise ValueError(f"{where}: class(es) {strangers[:5]} are not classes of {preset.benchmark}")
    return seen, unseen, how


@register_protocol_kind("concepts")
def run_concepts(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]:
    """Two independent linear-probe sweeps per fold, on the seen and on the unseen classes (labels
    re-indexed within each subset), at every few-shot ratio; metrics ``seen/r5/clip_top1`` ...
    ``unseen/r100/video_top5``. A subset without classes is skipped (and said so in the extras)."""
    from avssl.data.benchmarks import load_benchmark
    from avssl.evaluate.classifier_run import CONCEPT_PARAMS, ClassifierParams, build_encoder, run_settings
    from avssl.evaluate.fewshot import class_subset_sweep, sweep_options

    params = ClassifierParams.from_params(preset.params, str(preset.path or preset.name), CONCEPT_PARAMS)
    ratios, seed = sweep_options(preset)
    data = load_benchmark(preset.benchmark, context.data_root)
    seen, unseen, how = concept_split_for(preset, data.classes, Path(context.data_root))
    choice = context.encoder_for(params.modality)
    template = build_encoder(choice.name, choice.checkpoint, params)
    index = data.class_index
    results = []
    for fold in context.folds_for(preset):
        metrics: dict[str, float] = {}
        extras: dict = {"split": how, "seen": seen, "unseen": unseen, "ratios": ratios}
        for subset, names in (("seen", seen), ("unseen", unseen)):
            if not names:
                extras[f"{subset}_skipped"] = "no class in this subset"
                continue
            scores, runs = class_subset_sweep(
                template, data, fold, params, run_settings(context), ratios, seed,
                classes=[index[n] for n in names], prefix=f"{subset}/",
            )
            metrics.update(scores)
            extras[subset + "_runs"] = runs
        results.append(FoldResult(fold, metrics, extras))
    return results
