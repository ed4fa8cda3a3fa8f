"""Checkpoints of a pretraining run: atomic periodic saves, resume lookup, RNG state, final exports.

A training checkpoint is Lightning's (method state, optimiser state, loop counters, the data
loader's position) plus what :class:`avssl.train.module.PretrainModule` adds (every rank's RNG
states, the skipped-file counts). It is written to a temporary file in the same folder and renamed
with ``os.replace``, so a crash during a save leaves the previous checkpoint intact.

At the end of a run the method and each of its encoders are exported as plain state dicts with a
JSON-able header (DESIGN.md "Checkpoints"), loadable without Lightning.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from avssl.models.checkpoints.avssl_native import save_encoder

LAST_CHECKPOINT = "last.ckpt"
METHOD_FORMAT = "avssl-method"


class PeriodicCheckpoint(L.Callback):
    """Writes ``directory/last.ckpt`` every ``every_n_steps`` optimiser steps and when training ends.

    All ranks take part (Lightning gathers state on every rank; rank 0 writes). ``last_path`` and
    ``last_step`` name the newest complete checkpoint, for error messages.
    """

    def __init__(self, directory: str | Path, every_n_steps: int) -> None:
        if every_n_steps < 1:
            raise ValueError(f"PeriodicCheckpoint: every_n_steps must be >= 1, got {every_n_steps}")
        self.directory = Path(directory)
        self.every_n_steps = every_n_steps
        self.last_path: Path | None = None
        self.last_step: int | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every_n_steps == 0 or _is_last_batch(trainer, batch_idx):
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Normally the last batch already saved (see _is_last_batch); this covers other stops.
        if self.last_step != trainer.global_step:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> Path:
        path = self.directory / LAST_CHECKPOINT
        temporary = self.directory / f".{LAST_CHECKPOINT}.tmp"
        if trainer.is_global_zero:
            self.directory.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(temporary, weights_only=False)  # collective; rank 0 writes, then a barrier
        if trainer.is_global_zero:
            os.replace(temporary, path)
        self.last_path, self.last_step = path, trainer.global_step
        return path


def _is_last_batch(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether the run ends after this batch.

    The final checkpoint is written here rather than in ``on_train_end``: Lightning counts a run
    stopped mid-epoch as a finished epoch by ``on_train_end``, so a checkpoint taken there would
    resume at the next epoch instead of the next batch.
    """
    if trainer.should_stop or (trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps):
        return True
    last_epoch = trainer.max_epochs is not None and trainer.current_epoch >= trainer.max_epochs - 1 >= 0
    return last_epoch and batch_idx + 1 >= trainer.num_training_batches


def resolve_resume(resume: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint to resume from: ``None``, ``"auto"`` (``last.ckpt`` of the run if present) or a path."""
    if resume is None:
        return None
    if resume == "auto":
        candidate = Path(output_dir) / "checkpoints" / LAST_CHECKPOINT
        return candidate if candidate.is_file() else None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"trainer.resume: checkpoint {path} does not exist")
    return path


# ---------------------------------------------------------------------------------- RNG states


def capture_rng_state() -> dict[str, Any]:
    """This process's RNG states as plain containers (loadable with ``weights_only=True``)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def seed_process(seed: int, rank: int) -> None:
    """Seed torch, numpy and random for training-time draws; different streams per rank."""
    entropy = int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
    torch.manual_seed(entropy)
    np.random.seed(entropy)
    random.seed(entropy)


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


# ---------------------------------------------------------------------------------- exports


def encoder_modules(method: nn.Module) -> dict[str, nn.Module]:
    """Submodules built by ``create_encoder`` (they carry ``registry_name``), by attribute path;
    encoders nested inside another encoder are part of it and not listed."""
    found: dict[str, nn.Module] = {}
    for name, module in method.named_modules():
        if name and getattr(module, "registry_name", None) and not any(name.startswith(f"{p}.") for p in found):
            found[name] = module
    return found


# What torch.load(weights_only=True) reads back besides tensors (DESIGN.md "Checkpoints").
_PLAIN_SCALARS = (str, int, float, bool, type(None))


def portable_state(state_dict: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A CPU copy of ``state_dict`` that ``torch.load(..., weights_only=True)`` reads back.

    Tensors are detached and copied. ``*._extra_state`` entries (a module's ``get_extra_state``)
    may be any object; they are copied when built of tensors, numbers, strings, ``None`` and
    lists / tuples / dicts of those, and refused otherwise with the entry's key and type in the
    message (``source`` names the file being written): pickling arbitrary objects would make the
    file unreadable with ``weights_only=True``.
    """
    return {key: _portable(value, f"{source}: state_dict[{key!r}]") for key, value in state_dict.items()}


def _portable(value: Any, where: str) -> Any:
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, _PLAIN_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        items = [_portable(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)  # named tuples become plain ones
    if isinstance(value, Mapping):
        if not all(isinstance(k, _PLAIN_SCALARS) for k in value):
            raise TypeError(f"{where}: dict keys must be strings or numbers, got {sorted(map(repr, value))[:3]}")
        return {k: _portable(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"{where} is a {type(value).__name__}: extra state (get_extra_state) must be tensors, numbers, strings, "
        "None or lists/tuples/dicts of them to be exported"
    )


def export_final(method: nn.Module, directory: str | Path, header: dict[str, Any]) -> list[Path]:
    """Write ``method.pt`` (whole method state + header) and one avssl-encoder file per encoder.

    The method state may hold ``_extra_state`` entries (see :func:`portable_state`).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    method_path = directory / "method.pt"
    payload = {
        "format": METHOD_FORMAT,
        "version": 1,
        "header": header,
        "state_dict": portable_state(method.state_dict(), str(method_path)),
    }
    temporary = directory / ".method.pt.tmp"
    torch.save(payload, temporary)
    os.replace(temporary, method_path)
    written = [method_path]
    for name, encoder in encoder_modules(method).items():
        written.append(save_encoder(encoder, directory / f"{name}.pt", method=header.get("method")))
    return written
