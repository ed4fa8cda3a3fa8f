"""avssl's own encoder checkpoint: a state dict plus a small JSON-able header (DESIGN.md "Checkpoints").

File content (``torch.save`` of plain containers, readable with ``weights_only=True``)::

    {"format": "avssl-encoder", "version": 1,
     "header": {"encoder": registry name, "kwargs": factory kwargs, "input_spec": {...},
                "modality": ..., "out_dim": ..., "method": ..., "avssl_version": ...,
                "torch_version": ..., "created": ISO time, "extra": {...}},
     "state_dict": {key: tensor}}

:func:`save_encoder` writes atomically (temporary file in the same folder, then ``os.replace``), so
an interrupted save never leaves a half-written checkpoint under the final name.
:func:`load_encoder` rebuilds the encoder by name from the header and loads it strictly.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avssl.models.checkpoints import (
    CheckpointError,
    CheckpointLayout,
    StateDict,
    load_checkpoint,
    read_checkpoint,
    register_layout,
)

FORMAT = "avssl-encoder"
VERSION = 1


def _json_able(value: Any, what: str) -> Any:
    """Round-trip through JSON so that the header holds plain containers only (tuples -> lists)."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from exc


def encoder_header(encoder: nn.Module, method: str | None = None, extra: Mapping | None = None) -> dict:
    """The header :func:`save_encoder` writes; needs an encoder made by ``create_encoder``."""
    from avssl import __version__

    name = getattr(encoder, "registry_name", None)
    if name is None:
        raise ValueError(
            f"cannot save {type(encoder).__name__}: it was not built by avssl.create_encoder, so its "
            "registry name and arguments are unknown (set encoder.registry_name and "
            "encoder.registry_kwargs, or build it with create_encoder)"
        )
    spec = getattr(encoder, "input_spec", None)
    return {
        "encoder": name,
        "kwargs": _json_able(getattr(encoder, "registry_kwargs", {}), "encoder kwargs"),
        "input_spec": _json_able(spec.to_dict() if spec is not None else None, "input_spec"),
        "modality": getattr(encoder, "modality", None),
        "out_dim": getattr(encoder, "out_dim", None),
        "method": method,
        "avssl_version": __version__,
        "torch_version": str(torch.__version__),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": _json_able(dict(extra or {}), "extra"),
    }


def save_encoder(
    encoder: nn.Module, path: str | Path, *, method: str | None = None, extra: Mapping | None = None
) -> Path:
    """Write ``encoder`` to ``path`` in avssl's format, atomically. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "header": encoder_header(encoder, method, extra),
        "state_dict": {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()},
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def read_header(obj: Any, source: str) -> dict | None:
    """The validated header of an avssl checkpoint object, or ``None`` for another format."""
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        return None
    version = obj.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{source}: field 'version' is {version!r}; this avssl reads avssl-encoder version "
            f"<= {VERSION} (upgrade avssl)"
        )
    header = obj.get("header")
    if not isinstance(header, Mapping) or not isinstance(header.get("encoder"), str):
        raise CheckpointError(f"{source}: field 'header' must be a dict with a string 'encoder'")
    if not isinstance(obj.get("state_dict"), Mapping):
        raise CheckpointError(f"{source}: field 'state_dict' is missing or not a dict")
    return dict(header)


def load_encoder(path: str | Path) -> nn.Module:
    """Rebuild the encoder named in the header of an avssl checkpoint and load its weights."""
    from avssl.models.registry import create_encoder

    obj = read_checkpoint(path)
    header = read_header(obj, f"checkpoint {path}")
    if header is None:
        raise CheckpointError(
            f"checkpoint {path}: not an avssl encoder file (no format='{FORMAT}'); for an official "
            "release use create_encoder(NAME, checkpoint_path=...)"
        )
    kwargs = header.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise CheckpointError(f"checkpoint {path}: field 'header.kwargs' must be a dict")
    encoder = create_encoder(header["encoder"], **kwargs)
    load_checkpoint(encoder, obj, source=str(path))
    encoder.checkpoint_header = header
    return encoder


def _extract(obj: Any, encoder: nn.Module) -> StateDict | None:
    if read_header(obj, "avssl checkpoint") is None:
        return None
    return dict(obj["state_dict"])


register_layout(
    CheckpointLayout(
        name="avssl",
        description="avssl encoder file {'format': 'avssl-encoder', 'header', 'state_dict'}",
        extract=_extract,
    )
)
