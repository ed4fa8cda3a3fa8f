"""Versioned evaluation protocols: YAML presets and a registry of protocol kinds.

A **preset** is one file ``configs/evaluate/<benchmark>/<preset>.yaml`` and is named
``"<benchmark>/<preset>"`` (``"esc50/crisscross_svm_2s"``). Its format::

    name: esc50/crisscross_svm_2s     # must equal the file's place under configs/evaluate
    version: 1                        # bump whenever a number below changes
    kind: svm                         # a registered protocol kind (see below)
    benchmark: esc50                  # an adapter of avssl.data.benchmarks
    selection: test                   # how hyper-parameters / epochs are chosen: "heldout" (on
                                      # training data only), "test" (on the test fold, as the
                                      # original papers do; optimistic, spec §5 row 23) or
                                      # "none" (nothing is tuned: kNN, retrieval)
    folds: [1, 2, 3, 4, 5]            # folds run by default ([] for single-split benchmarks)
    description: one line
    source: where every number comes from (paper, repository file, spec section)
    params: {...}                     # everything the kind's runner reads; free-form mapping

**Kinds**: a runner is registered per kind with ``@register_protocol_kind("svm")``. Its signature is
``runner(preset: ProtocolPreset, context: EvaluationContext) -> list[FoldResult]``: it reads
``preset.params``, runs every fold of ``context.folds_for(preset)`` and returns one
:class:`FoldResult` per fold (the fold number, or ``None`` for a single-split benchmark, and flat
``metrics`` such as ``{"top1": 81.2, "top5": 95.0}`` in percent). :func:`run_protocol` looks the runner
up, times it and wraps the folds into an :class:`EvaluationResult`, which
:mod:`avssl.evaluate.report` writes as JSON and Markdown. Kinds registered in this package: ``svm``,
``av_svm`` (audio-visual fusion, both in :mod:`.svm`), ``knn``, ``retrieval``; evaluation II adds
``linear``, ``finetune``, ``fewshot``, ``concepts``. The modules of :data:`KIND_MODULES` are imported
on first use of the registry. Runners get the benchmark with ``context.load_benchmark(preset)``, the
encoder to evaluate with ``context.encoder_for(modality)`` and features with
:func:`avssl.evaluate.features.split_features`.

Presets are looked up in ``$AVSSL_CONFIG_DIR/evaluate`` when that variable is set, then in the
``configs/evaluate`` folder of the source checkout. A path to a YAML file works too.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from avssl.data.benchmarks import BenchmarkData

__all__ = [
    "EncoderChoice",
    "EvaluationContext",
    "EvaluationResult",
    "FoldResult",
    "ProtocolError",
    "ProtocolPreset",
    "ProtocolRunner",
    "config_dirs",
    "get_protocol_runner",
    "list_protocol_kinds",
    "list_protocols",
    "load_protocol",
    "register_protocol_kind",
    "run_protocol",
]

# Modules that register protocol kinds; imported on first use of the registry. A module that
# is not there yet (evaluation II is written in parallel) is skipped, not an error.
KIND_MODULES: tuple[str, ...] = (
    "avssl.evaluate.svm",
    "avssl.evaluate.knn",
    "avssl.evaluate.retrieval",
    "avssl.evaluate.linear",
    "avssl.evaluate.finetune",
    "avssl.evaluate.fewshot",
    "avssl.evaluate.concepts",
)

SELECTION_MODES = ("heldout", "test", "none")
_REQUIRED_KEYS = ("name", "version", "kind", "benchmark", "selection", "params")
_OPTIONAL_KEYS = ("folds", "description", "source")


class ProtocolError(ValueError):
    """A preset file is malformed, or a protocol / kind is unknown."""


@dataclass(frozen=True)
class ProtocolPreset:
    """One versioned protocol: what to run (``kind`` + ``params``) on which ``benchmark``."""

    name: str
    version: str
    kind: str
    benchmark: str
    selection: str
    params: Mapping[str, Any]
    folds: tuple[int, ...] = ()
    description: str = ""
    source: str = ""
    path: Path | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ProtocolPreset:
        """A copy with ``params`` updated by ``overrides`` (dotted keys reach nested mappings).

        A top-level key must exist (typos fail here); nested mappings may gain keys (``clip.seconds``
        where the preset says ``clip: {}``) and are checked by the runner that reads them.

        Overrides are recorded, and every report lists them: a run with overrides is not the
        versioned protocol any more.
        """
        params = _deep_copy(self.params)
        for dotted, value in overrides.items():
            *parents, leaf = dotted.split(".")
            node = params
            for key in parents:
                if not isinstance(node.get(key), dict):
                    raise ProtocolError(f"protocol {self.name}: override {dotted!r}: params has no mapping {key!r}")
                node = node[key]
            if leaf not in node and not parents:  # new keys may go inside nested mappings only
                raise ProtocolError(
                    f"protocol {self.name}: override {dotted!r}: unknown parameter {leaf!r} "
                    f"(known: {', '.join(sorted(node))})"
                )
            node[leaf] = value
        return replace(self, params=params, overrides={**self.overrides, **overrides})

    def param(self, key: str, default: Any = ...) -> Any:
        """``params[key]``; a missing key without ``default`` raises an error naming the preset file."""
        if key in self.params:
            return self.params[key]
        if default is ...:
            where = self.path or self.name
            raise ProtocolError(f"{where}: params.{key} is required by protocol kind {self.kind!r}")
        return default

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "kind": self.kind, "benchmark": self.benchmark,
            "selection": self.selection, "folds": list(self.folds), "description": self.description,
            "source": self.source, "params": _deep_copy(self.params), "overrides": dict(self.overrides),
            "path": str(self.path) if self.path else None,
        }


@dataclass(frozen=True)
class EncoderChoice:
    """An encoder to evaluate: registry name and optional checkpoint file (``None``: random init)."""

    name: str
    checkpoint: Path | None = None

    @property
    def modality(self) -> str:
        return _modality_of(self.name)


@functools.lru_cache(maxsize=None)
def _modality_of(encoder_name: str) -> str:
    # The registry has no metadata table; building the (randomly initialised) encoder once per
    # name is the only way to read its modality, so it is cached.
    from avssl.models.registry import create_encoder

    return create_encoder(encoder_name).modality


@dataclass
class EvaluationContext:
    """Everything a runner needs besides the preset.

    Args:
        encoders: encoders to evaluate; a runner picks by modality (:meth:`encoder_for`).
        data_root: folder of the benchmark in its official layout (see ``avssl.data.benchmarks``).
        folds: folds to run; ``None`` means the preset's default folds.
        device: torch device for feature extraction / training ("cpu", "cuda", "cuda:1").
        seed: base seed of every random choice (augmented clips, SVM, splits).
        cache_dir: where features are cached between runs (``None``: no cache).
        batch_size: clips per forward pass.
        num_workers: decoding worker processes.
        progress: show tqdm progress bars on stderr.
        force: allow what a protocol refuses by default (e.g. cross-modal retrieval between two
            encoders without a shared space, spec §5 row 15).
        command_line: the exact command, recorded in the report.
    """

    encoders: list[EncoderChoice]
    data_root: Path
    folds: list[int] | None = None
    device: str = "cpu"
    seed: int = 0
    cache_dir: Path | None = None
    batch_size: int = 16
    num_workers: int = 0
    progress: bool = True
    force: bool = False
    command_line: str = ""
    _benchmarks: dict[str, BenchmarkData] = field(default_factory=dict, repr=False)

    def folds_for(self, preset: ProtocolPreset) -> list[int | None]:
        """The folds to run: the requested ones, else the preset's; ``[None]`` for a single split."""
        folds = self.folds if self.folds is not None else list(preset.folds)
        if folds and preset.folds:
            unknown = sorted(set(folds) - set(preset.folds))
            if unknown:
                raise ProtocolError(
                    f"protocol {preset.name}: fold(s) {unknown} do not exist; folds: {list(preset.folds)}"
                )
        if folds and not preset.folds:
            raise ProtocolError(f"protocol {preset.name}: benchmark {preset.benchmark} has a single split, no folds")
        return list(folds) if folds else [None]

    def load_benchmark(self, preset: ProtocolPreset) -> BenchmarkData:
        """The preset's benchmark under ``data_root`` (adapter options from ``params.benchmark_options``),
        loaded once per context; probed media facts are kept in ``cache_dir/manifests`` when set."""
        from avssl.data.benchmarks import load_benchmark

        options = dict(preset.param("benchmark_options", {}))
        key = json.dumps([preset.benchmark, options], sort_keys=True, default=str)
        if key not in self._benchmarks:
            cache = None
            if self.cache_dir is not None:
                digest = hashlib.sha1(f"{Path(self.data_root).resolve()}|{key}".encode()).hexdigest()[:12]
                cache = Path(self.cache_dir) / "manifests" / f"{preset.benchmark}-{digest}.csv"
            self._benchmarks[key] = load_benchmark(preset.benchmark, self.data_root, manifest_cache=cache, **options)
        return self._benchmarks[key]

    def encoder_for(self, modality: str) -> EncoderChoice:
        """The one encoder of ``modality`` among ``encoders`` (error if none or several)."""
        matches = [e for e in self.encoders if e.modality == modality]
        if len(matches) != 1:
            names = [e.name for e in self.encoders]
            raise ProtocolError(f"expected exactly one {modality} encoder, got {len(matches)} among {names}")
        return matches[0]


@dataclass
class FoldResult:
    """Metrics of one fold (percent for accuracies and mAP) and free extra facts (chosen C, ...)."""

    fold: int | None
    metrics: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvaluationResult:
    """A finished run: the preset, the folds, and how it was run."""

    preset: ProtocolPreset
    folds: list[FoldResult]
    encoders: list[EncoderChoice]
    seed: int
    command_line: str
    seconds: float
    avssl_version: str


ProtocolRunner = Callable[[ProtocolPreset, EvaluationContext], list[FoldResult]]
_RUNNERS: dict[str, ProtocolRunner] = {}
_KIND_MODULES_LOADED = False


def register_protocol_kind(kind: str) -> Callable[[ProtocolRunner], ProtocolRunner]:
    """Decorator registering ``runner(preset, context) -> list[FoldResult]`` for presets of ``kind``."""

    def decorator(runner: ProtocolRunner) -> ProtocolRunner:
        if kind in _RUNNERS and _RUNNERS[kind] is not runner:
            raise ValueError(f"protocol kind {kind!r} is registered twice")
        _RUNNERS[kind] = runner
        return runner

    return decorator


def _load_kind_modules() -> None:
    global _KIND_MODULES_LOADED
    if _KIND_MODULES_LOADED:
        return
    for module in KIND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # a module that exists but fails to import is a real error
                raise
    _KIND_MODULES_LOADED = True


def list_protocol_kinds() -> list[str]:
    """Registered protocol kinds, sorted."""
    _load_kind_modules()
    return sorted(_RUNNERS)


def get_protocol_runner(kind: str) -> ProtocolRunner:
    _load_kind_modules()
    if kind not in _RUNNERS:
        raise ProtocolError(f"unknown protocol kind {kind!r}; registered: {', '.join(sorted(_RUNNERS))}")
    return _RUNNERS[kind]


def config_dirs() -> list[Path]:
    """Folders searched for presets, first match wins: ``$AVSSL_CONFIG_DIR/evaluate``, then the
    ``configs/evaluate`` folder beside the ``avssl`` package (a source checkout)."""
    dirs = []
    if os.environ.get("AVSSL_CONFIG_DIR"):
        dirs.append(Path(os.environ["AVSSL_CONFIG_DIR"]).expanduser() / "evaluate")
    dirs.append(Path(__file__).resolve().parents[2] / "configs" / "evaluate")
    return dirs


def list_protocols(benchmark: str | None = None) -> list[str]:
    """Names ``<benchmark>/<preset>`` of the presets found in :func:`config_dirs`, sorted."""
    names: set[str] = set()
    for root in config_dirs():
        if root.is_dir():
            names.update(f"{p.parent.name}/{p.stem}" for p in root.glob("*/*.yaml"))
    return sorted(n for n in names if benchmark is None or n.split("/")[0] == benchmark)


def load_protocol(name_or_path: str | Path) -> ProtocolPreset:
    """Read and validate preset ``"<benchmark>/<preset>"`` or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        candidates = [root / f"{name_or_path}.yaml" for root in config_dirs()]
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise ProtocolError(
                f"unknown protocol {str(name_or_path)!r}; available: {', '.join(list_protocols()) or 'none'} "
                f"(searched {', '.join(str(c) for c in candidates)})"
            )
        path = found[0]
    if not path.is_file():
        raise ProtocolError(f"protocol file {path} does not exist")
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    return _parse_preset(raw, path)


def _parse_preset(raw: Any, path: Path) -> ProtocolPreset:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise ProtocolError(f"{path}: missing field(s) {missing}")
    unknown = sorted(set(raw) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
    if unknown:
        raise ProtocolError(f"{path}: unknown field(s) {unknown}; allowed: {list(_REQUIRED_KEYS + _OPTIONAL_KEYS)}")
    expected_name = f"{path.parent.name}/{path.stem}"
    if raw["name"] != expected_name:
        raise ProtocolError(f"{path}: field name is {raw['name']!r} but the file's place says {expected_name!r}")
    if raw["benchmark"] != path.parent.name:
        raise ProtocolError(f"{path}: field benchmark is {raw['benchmark']!r} but the file lies in {path.parent.name}/")
    if raw["selection"] not in SELECTION_MODES:
        raise ProtocolError(f"{path}: field selection must be one of {SELECTION_MODES}, got {raw['selection']!r}")
    if not isinstance(raw["params"], dict):
        raise ProtocolError(f"{path}: field params must be a mapping, got {type(raw['params']).__name__}")
    folds = raw.get("folds") or []
    if not isinstance(folds, list) or not all(isinstance(f, int) and not isinstance(f, bool) for f in folds):
        raise ProtocolError(f"{path}: field folds must be a list of integers, got {folds!r}")
    return ProtocolPreset(
        name=raw["name"], version=str(raw["version"]), kind=str(raw["kind"]), benchmark=raw["benchmark"],
        selection=raw["selection"], params=_deep_copy(raw["params"]), folds=tuple(folds),
        description=str(raw.get("description", "")).strip(), source=str(raw.get("source", "")).strip(),
        path=path,
    )


def run_protocol(preset: ProtocolPreset, context: EvaluationContext) -> EvaluationResult:
    """Run ``preset`` with the runner of its kind and collect the folds into a result."""
    from avssl import __version__

    runner = get_protocol_runner(preset.kind)
    start = time.perf_counter()
    folds = runner(preset, context)
    if not folds:
        raise ProtocolError(f"protocol {preset.name}: runner {preset.kind!r} returned no folds")
    return EvaluationResult(
        preset=preset, folds=list(folds), encoders=list(context.encoders), seed=context.seed,
        command_line=context.command_line, seconds=time.perf_counter() - start, avssl_version=__version__,
    )


def _deep_copy(value: Any) -> Any:
    # Presets are frozen; params are copied so a runner cannot change the loaded preset.
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
