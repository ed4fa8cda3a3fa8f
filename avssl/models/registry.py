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


def describe_encoder(name: str) -> str:
    """First line of the factory's docstring (used by the model table in docs/models.md)."""
    _load_model_modules()
    if name not in _FACTORIES:
        raise KeyError(f"unknown encoder {name!r}")
    doc = (_FACTORIES[name].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def create_encoder(
    name: str,
    checkpoint_path: str | Path | None = None,
    pretrained: str | None = None,
    **kwargs,
) -> nn.Module:
    """Build encoder ``name``; load weights from ``checkpoint_path`` or the zoo entry ``pretrained``.

    ``checkpoint_path`` may be a file of any supported release layout or an avssl checkpoint.
    ``pretrained`` names an entry of :mod:`avssl.models.zoo` (``avssl zoo list``); its file is
    downloaded into ``torch.hub.get_dir()/checkpoints`` on first use. Extra ``kwargs`` go to the
    encoder's factory (e.g. ``pool="avg"``). The name and kwargs are recorded on the instance as
    ``registry_name`` and ``registry_kwargs`` so that :func:`avssl.models.checkpoints.avssl_native.
    save_encoder` can rebuild it.
    """
    _load_model_modules()
    if name not in _FACTORIES:
        close = ", ".join(list_encoders()) or "none registered"
        raise KeyError(f"unknown encoder {name!r}; available: {close}")
    if checkpoint_path is not None and pretrained is not None:
        raise ValueError("give either checkpoint_path or pretrained, not both")
    if pretrained is not None:
        from avssl.models import zoo

        checkpoint_path = zoo.checkpoint_for_encoder(pretrained, name)
    encoder = _FACTORIES[name](**kwargs)
    encoder.registry_name = name
    encoder.registry_kwargs = dict(kwargs)
    if checkpoint_path is not None:
        from avssl.models.checkpoints import load_checkpoint

        load_checkpoint(encoder, checkpoint_path)
    return encoder
