"""Collective helpers for methods, the identity when ``torch.distributed`` is not initialised.

Methods never talk to ``torch.distributed`` directly: they call these, so the same code runs in a
single CPU process (tests), under Lightning's DDP, or multi-node. Gathers concatenate along dim 0
in rank order, as the original AVID-CMA / CrissCross / AV-SSRL code does, so a gathered batch is
``[world_size * B, ...]`` with rank r's rows at ``[r*B:(r+1)*B]``.

All ranks must pass tensors of the same shape (DDP with a ``DistributedSampler`` guarantees equal
per-rank batch sizes); a mismatch raises instead of hanging or silently truncating.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = [
    "is_distributed",
    "world_size",
    "rank",
    "all_gather_no_grad",
    "all_gather_with_grad",
    "all_reduce_mean",
    "broadcast_from_rank0",
]


_MAX_NDIM = 8


def is_distributed() -> bool:
    """True when a default process group exists (so collectives are real)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the default group; 1 when not distributed."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank in the default group; 0 when not distributed."""
    return dist.get_rank() if is_distributed() else 0


def _check_same_shape(x: torch.Tensor, what: str) -> None:
    # A gather of unequal shapes deadlocks or errors deep inside NCCL; say what is wrong instead.
    # fixed-length record (ndim, then the sizes padded with -1) so ranks of any ndim can compare
    record = torch.full((1 + _MAX_NDIM,), -1, device=x.device, dtype=torch.long)
    record[0] = x.ndim
    record[1 : 1 + x.ndim] = torch.tensor(x.shape[:_MAX_NDIM], dtype=torch.long)
    records = [torch.empty_like(record) for _ in range(world_size())]
    dist.all_gather(records, record)
    if any(not torch.equal(r, record) for r in records):
        seen = [tuple(r[1 : 1 + int(r[0])].tolist()) for r in records]
        raise ValueError(f"{what}: every rank must pass the same shape, got {seen} (by rank)")


@torch.no_grad()
def all_gather_no_grad(x: torch.Tensor, check_shapes: bool = False) -> torch.Tensor:
    """Concatenate ``x`` ([B, ...]) from every rank along dim 0 -> ``[world_size * B, ...]``.

    No gradient flows through the result (memory-bank updates, statistics). ``check_shapes``
    verifies first that all ranks agree on the shape (one extra small collective).
    """
    if not is_distributed() or world_size() == 1:
        return x.detach()
    if check_shapes:
        _check_same_shape(x, "all_gather_no_grad")
    x = x.detach().contiguous()
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x)
    return torch.cat(parts, dim=0)


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` ([B, ...]) from every rank along dim 0, keeping the autograd graph.

    Uses ``torch.distributed.nn.functional.all_gather``, whose backward sums the incoming
    gradients across ranks and returns each rank its own slice: the gradient a loss over the
    gathered batch gives this rank's inputs is the full-batch gradient (AV-VICReg's variance and
    covariance terms rely on this).
    """
    if not is_distributed() or world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


@torch.no_grad()
def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over ranks (a new tensor; ``x`` is not modified). No gradient."""
    if not is_distributed() or world_size() == 1:
        return x.detach().clone()
    out = x.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / world_size()


@torch.no_grad()
def broadcast_from_rank0(x: torch.Tensor) -> torch.Tensor:
    """Overwrite ``x`` in place with rank 0's values (identical initial memory banks) and return it."""
    if is_distributed() and world_size() > 1:
        dist.broadcast(x, src=0)
    return x
