"""Per-sample random parameters, drawn from an optional ``torch.Generator`` and kept on the host.

Parameters are a handful of numbers per sample, so they are drawn where the generator lives (the CPU
for ``None`` or a CPU generator) and returned as CPU tensors; the transforms move what they need to
the data's device. This keeps a seeded CPU generator giving the same augmentation whether the data is
on the CPU or a GPU, and lets the transforms index sub-batches without a device synchronisation.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _device_of(generator: torch.Generator | None) -> torch.device:
    return torch.device("cpu") if generator is None else generator.device


def uniform(
    size: int | tuple[int, ...], low: float, high: float, generator: torch.Generator | None
) -> Tensor:
    """Float64 CPU tensor of ``size`` with entries ~ U(low, high)."""
    size = (size,) if isinstance(size, int) else size
    u = torch.rand(size, generator=generator, device=_device_of(generator), dtype=torch.float64)
    return (low + (high - low) * u).cpu()


def gaussian(size: int | tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """Float32 CPU tensor of ``size`` with entries ~ N(0, 1) (e.g. white noise to be shaped)."""
    size = (size,) if isinstance(size, int) else size
    return torch.randn(size, generator=generator, device=_device_of(generator)).cpu()


def random_index(upper: Tensor, generator: torch.Generator | None) -> Tensor:
    """Int64 CPU tensor shaped like ``upper`` with entries ~ U{0, ..., upper - 1} (each ``upper`` ≥ 1)."""
    upper = upper.to(torch.int64).cpu()
    u = uniform(tuple(upper.shape), 0.0, 1.0, generator)
    # floor(u * n) is uniform on {0..n-1}; the clamp guards against u * n rounding up to n.
    return torch.minimum((u * upper).floor().to(torch.int64), upper - 1)


def random_integers(
    size: int | tuple[int, ...], low: int, high: int, generator: torch.Generator | None
) -> Tensor:
    """Int64 CPU tensor of ``size`` with entries ~ U{low, ..., high} (both ends included)."""
    size = (size,) if isinstance(size, int) else size
    return low + random_index(torch.full(size, high - low + 1), generator)


def coin_flips(size: int, p: float, generator: torch.Generator | None) -> Tensor:
    """Bool CPU tensor ``[size]``, each entry True with probability ``p``."""
    return uniform(size, 0.0, 1.0, generator) < p


def random_permutations(size: int, n: int, generator: torch.Generator | None) -> Tensor:
    """Int64 CPU tensor ``[size, n]``: an independent uniform permutation of ``0..n-1`` per row."""
    return uniform((size, n), 0.0, 1.0, generator).argsort(dim=1)
