"""Encoders created by name, timm style: ``create_encoder("r2plus1d_18_avid", checkpoint_path=...)``.

Each encoder module registers a factory with :func:`register_encoder`. Tests iterate
:func:`list_encoders`, so a new entry is covered by tests that already exist.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

from torch import nn

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}
_MODEL_MODULES_LOADED = False


def register_encoder(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``factory(**kwargs) -> encoder`` under ``name``."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _FACTORIES and _FACTORIES[name] is not factory:
            raise ValueError(f"encoder name {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return decorator


def _load_model_modules() -> None:
    # Importing every module of avssl.models lets each one register its encoders.
    global _MODEL_MODULES_LOADED
    if _MODEL_MODULES_LOADED:
        return
    import avssl.models as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"avssl.models.{info.name}")
    _MODEL_MODULES_LOADED = True


def list_encoders(pattern: str = "*") -> list[str]:
    """Registered encoder names matching a shell-style ``pattern``, sorted."""
    _load_model_modules()
    return sorted(n for n in _FACTORIES if fnmatch.fnmatch(n, pattern))


def create_encoder(
    name: str, checkpoint_path: str | Path | None = None, **kwargs
) -> nn.Module:
    """Build encoder ``name``; load ``checkpoint_path`` (any supported release layout) if given.

    Extra ``kwargs`` go to the encoder's factory (e.g. ``pool="avg"``).
    """
    _load_model_modules()
    if name not in _FACTORIES:
        close = ", ".join(list_encoders()) or "none registered"
        raise KeyError(f"unknown encoder {name!r}; available: {close}")
    encoder = _FACTORIES[name](**kwargs)
    if checkpoint_path is not None:
        from avssl.models.checkpoints import load_checkpoint

        load_checkpoint(encoder, checkpoint_path)
    return encoder
