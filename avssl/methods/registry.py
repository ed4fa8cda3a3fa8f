"""Pretext methods created by name: ``create_method("crisscross", video_encoder=v, audio_encoder=a)``.

Mirrors :mod:`avssl.models.registry`. Each method module registers a factory with
:func:`register_method`; the engine and the YAML configs refer to methods only by these names, so
a new method becomes usable (and covered by registry-driven tests) by registering it.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Callable

from torch import nn

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}
_METHOD_MODULES_LOADED = False


def register_method(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``factory(**kwargs) -> method`` (an ``nn.Module``) under ``name``."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _FACTORIES and _FACTORIES[name] is not factory:
            raise ValueError(f"method name {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return decorator


def _load_method_modules() -> None:
    # Importing every module of avssl.methods lets each one register its methods.
    global _METHOD_MODULES_LOADED
    if _METHOD_MODULES_LOADED:
        return
    import avssl.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"avssl.methods.{info.name}")
    _METHOD_MODULES_LOADED = True


def list_methods(pattern: str = "*") -> list[str]:
    """Registered method names matching a shell-style ``pattern``, sorted."""
    _load_method_modules()
    return sorted(n for n in _FACTORIES if fnmatch.fnmatch(n, pattern))


def method_factory(name: str) -> Callable[..., nn.Module]:
    """The factory registered under ``name`` (e.g. to read its signature: does it take ``num_items``?)."""
    _load_method_modules()
    if name not in _FACTORIES:
        known = ", ".join(list_methods()) or "none registered"
        raise KeyError(f"unknown method {name!r}; available: {known}")
    return _FACTORIES[name]


def describe_method(name: str) -> str:
    """First line of the factory's docstring (for help texts and the docs' method table)."""
    doc = (method_factory(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _is_plain(value: object) -> bool:
    # Hyperparameters worth recording; encoders, tensors and loaded states are not.
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def create_method(name: str, **kwargs) -> nn.Module:
    """Build method ``name`` from ``kwargs`` (its encoders and hyperparameters).

    The name and the plain (JSON-able) kwargs are recorded on the instance as ``registry_name`` and
    ``registry_kwargs`` so a checkpoint header can say which objective produced it.
    """
    method = method_factory(name)(**kwargs)
    method.registry_name = name
    method.registry_kwargs = {k: v for k, v in kwargs.items() if _is_plain(v)}
    return method
