"""Load any official release (or an avssl checkpoint) into our encoders, strictly.

Each module of this package describes the layouts of one family of released files and registers
them with :func:`register_layout`. A layout's ``extract(obj, encoder)`` returns the encoder's state
dict in *our* key names, or ``None`` when the loaded object (or the target encoder) is not its kind.
:func:`load_checkpoint` tries the layouts in registration order and loads the first match with a
strict comparison that lists missing, unexpected and wrongly shaped keys — never a silent
``strict=False``. Files are read with ``torch.load(..., weights_only=True)``: a checkpoint from the
internet must not be able to run code.
"""

from __future__ import annotations

import importlib
import io
import pickle
import pkgutil
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

StateDict = dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or is of no known layout."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's tensors do not fit the encoder; lists every offending key."""

    def __init__(
        self,
        source: str,
        missing: list[str],
        unexpected: list[str],
        wrong_shape: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
        hint: str = "",
    ) -> None:
        self.source, self.missing, self.unexpected, self.wrong_shape = (
            source, missing, unexpected, wrong_shape,
        )
        lines = [f"checkpoint {source} does not fit the encoder:"]
        if hint:
            lines.append(f"  {hint}")
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        for key, got, want in wrong_shape:
            lines.append(f"  wrong shape: {key}: checkpoint {tuple(got)}, encoder {tuple(want)}")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class CheckpointLayout:
    """One released file layout.

    ``extract(obj, encoder)`` gets the object read from the file and the target encoder and returns
    the state dict in the encoder's key names (dropping what belongs to other components, such as
    projection heads or the other modality), or ``None`` when it does not apply.
    ``optional(key)`` says which encoder keys a file of this layout may lack (e.g. XDC's ``fc.*``).
    ``modality`` is the modality of the encoder a file of this layout holds, when the layout
    implies one (used to explain a mismatch such as an audio file given to a video encoder).
    An ``extract`` may raise :class:`CheckpointError` for a file of its kind that is unusable.
    """

    name: str
    description: str
    extract: Callable[[Any, nn.Module], StateDict | None]
    optional: Callable[[str], bool] = field(default=lambda key: False)
    modality: str | None = None


@dataclass(frozen=True)
class LoadReport:
    layout: str
    source: str
    loaded_keys: int
    absent_optional_keys: list[str]


_LAYOUTS: list[CheckpointLayout] = []
_LAYOUT_MODULES_LOADED = False


def register_layout(layout: CheckpointLayout) -> CheckpointLayout:
    if any(existing.name == layout.name for existing in _LAYOUTS):
        raise ValueError(f"checkpoint layout {layout.name!r} is registered twice")
    _LAYOUTS.append(layout)
    return layout


def list_layouts() -> list[CheckpointLayout]:
    _load_layout_modules()
    return list(_LAYOUTS)


def _load_layout_modules() -> None:
    global _LAYOUT_MODULES_LOADED
    if _LAYOUT_MODULES_LOADED:
        return
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        importlib.import_module(f"{__name__}.{info.name}")
    _LAYOUT_MODULES_LOADED = True


def read_checkpoint(path: str | Path) -> Any:
    """Read a checkpoint file with ``weights_only=True``.

    Also accepts a plain .zip archive that wraps one checkpoint file (CrissCross ships its
    ``.pth.tar`` inside ``.pth.tar.zip``); a torch-format file, itself a zip, is read directly.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                is_torch_zip = any(n.endswith("/data.pkl") or n == "data.pkl" for n in names)
                if not is_torch_zip:
                    members = [n for n in names if n.endswith((".pth", ".pth.tar", ".pt", ".ckpt"))]
                    if len(members) != 1:
                        raise CheckpointError(
                            f"checkpoint {path}: zip archive holds {len(members)} checkpoint "
                            f"files ({', '.join(members) or 'none'}), expected exactly one"
                        )
                    data = io.BytesIO(archive.read(members[0]))
                    return torch.load(data, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as exc:
        # torch.load(weights_only=True) refuses globals outside its allow-list.
        raise CheckpointError(
            f"checkpoint {path}: refused — it needs code to unpickle (custom classes or functions), "
            f"and avssl reads checkpoints with weights_only=True so that a downloaded file cannot "
            f"run code. Re-save it as plain tensors/dicts. Details: {exc}"
        ) from exc
    except Exception as exc:  # corrupted or truncated
        raise CheckpointError(f"checkpoint {path}: cannot be read ({type(exc).__name__}: {exc})") from exc


def load_state_strict(
    encoder: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    optional: Callable[[str], bool] = lambda key: False,
    hint: str = "",
) -> list[str]:
    """Copy ``state`` into ``encoder``; raise :class:`CheckpointMismatchError` on any mismatch.

    Returns the encoder keys that were absent but allowed by ``optional``.
    """
    own = encoder.state_dict()
    missing = [k for k in own if k not in state and not optional(k)]
    absent_optional = [k for k in own if k not in state and optional(k)]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [
        (k, tuple(state[k].shape), tuple(own[k].shape))
        for k in state
        if k in own and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong_shape:
        raise CheckpointMismatchError(source, missing, unexpected, wrong_shape, hint)
    encoder.load_state_dict(dict(state), strict=False)
    return absent_optional


def _describe(encoder: nn.Module) -> str:
    name = getattr(encoder, "registry_name", None)
    return f"{name} ({type(encoder).__name__})" if name else type(encoder).__name__


def load_checkpoint(
    encoder: nn.Module, checkpoint: str | Path | Mapping[str, Any], *, source: str | None = None
) -> LoadReport:
    """Load a file (or an already-read object) of any registered layout into ``encoder``.

    ``source`` names an already-read object in error messages (default: the path).
    """
    if source is None:
        source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "<in-memory checkpoint>"
    obj = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    for layout in list_layouts():
        try:
            state = layout.extract(obj, encoder)
        except CheckpointError as exc:
            raise CheckpointError(f"checkpoint {source} ({layout.name} layout): {exc}") from exc
        if state is None:
            continue
        hint = ""
        modality = getattr(encoder, "modality", None)
        if layout.modality and modality and layout.modality != modality:
            hint = (
                f"the file holds {layout.modality} weights ({layout.name} layout), but "
                f"{_describe(encoder)} is a {modality} encoder"
            )
        absent = load_state_strict(
            encoder, state, f"{source} ({layout.name} layout) -> {_describe(encoder)}",
            layout.optional, hint,
        )
        return LoadReport(layout.name, source, len(state), absent)
    names = ", ".join(layout.name for layout in _LAYOUTS)
    keys = list(obj.keys())[:8] if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(
        f"checkpoint {source}: no known layout fits encoder {_describe(encoder)} "
        f"(first keys: {keys}); known layouts: {names}"
    )
