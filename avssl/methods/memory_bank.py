"""Memory bank of instance embeddings and the negative sampling over it (xID / AVID, spec §3A.4).

One bank holds a unit-norm embedding per dataset instance (``N × D``). A loss scores a query
against bank rows (the instance's own row is the positive, other rows the negatives) and, after
scoring, the bank moves towards the new embeddings of the instances just seen:

    M[i] <- normalize(m * M[i] + (1 - m) * normalize(z_i)),   m = 0.5

with the embeddings and indices of *all* ranks, so every rank keeps an identical copy.

Negatives are drawn uniformly over the instances that are not excluded (the instance itself for
xID, the instance's positives for AVID-CMA): a raw draw ``r`` in ``[0, N - m)`` is shifted past the
``m`` sorted excluded indices, ``r <- r + (r >= e)`` for each ``e`` in ascending order, which maps
it onto the ``r``-th non-excluded instance (the fixtures' rule, parity README ``avid_nce_loss``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avssl.methods import distributed

__all__ = ["MemoryBank", "UniformNegatives", "RawDraws", "skip_excluded", "score_rows"]

# ``draw(shape, high, device) -> LongTensor[shape]`` of uniform integers in [0, high)
RawDraws = Callable[[tuple[int, int], int, torch.device], Tensor]


class MemoryBank(nn.Module):
    """``N × D`` bank of unit-norm instance embeddings with a momentum update (spec §3A.4).

    Args:
        num_items: N, the number of dataset instances (``batch["index"]`` must be in ``[0, N)``).
        dim: D, the embedding size.
        momentum: m of the update ``normalize(m * old + (1 - m) * normalize(new))``; 0.5 in AVID
            and AV-SSRL.
        seed: seed of the generator for the initial rows (L2-normalised Gaussian noise), so every
            rank builds the same bank even before :meth:`sync_from_rank0`.

    The rows are the buffer ``memory`` (in ``state_dict()``, so a resume restores them exactly).
    """

    memory: Tensor

    def __init__(self, num_items: int, dim: int, momentum: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        if num_items < 2:
            raise ValueError(f"MemoryBank: num_items must be at least 2, got {num_items}")
        if dim < 1:
            raise ValueError(f"MemoryBank: dim must be positive, got {dim}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"MemoryBank: momentum must be in [0, 1), got {momentum}")
        self.num_items = num_items
        self.dim = dim
        self.momentum = momentum
        generator = torch.Generator().manual_seed(seed)
        rows = torch.randn(num_items, dim, generator=generator)
        self.register_buffer("memory", F.normalize(rows, dim=1))

    def extra_repr(self) -> str:
        return f"num_items={self.num_items}, dim={self.dim}, momentum={self.momentum}"

    def check_index(self, index: Tensor, where: str) -> None:
        """Raise a clear error when ``index`` is not a 1-D integer tensor of valid instance ids."""
        if index.ndim != 1 or index.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"{where}: 'index' must be a 1-D integer tensor, got {index.dtype} {tuple(index.shape)}"
            )
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.num_items):
            raise ValueError(
                f"{where}: 'index' values must be in [0, {self.num_items}) (the memory bank size, i.e. "
                f"the dataset length), got min {int(index.min())} max {int(index.max())}"
            )

    def rows(self, index: Tensor) -> Tensor:
        """Bank rows at ``index`` (any shape) -> ``[*index.shape, D]``; constants for autograd."""
        return self.memory[index]

    @torch.no_grad()
    def update(self, embeddings: Tensor, index: Tensor) -> None:
        """Momentum update with the embeddings ([B, D], any norm) and indices ([B]) of every rank."""
        embeddings = distributed.all_gather_no_grad(embeddings.float())  # [W*B, D]
        index = distributed.all_gather_no_grad(index)  # [W*B]
        new = F.normalize(embeddings, dim=1).to(self.memory.dtype)
        mixed = self.momentum * self.memory[index] + (1.0 - self.momentum) * new
        self.memory.index_copy_(0, index, F.normalize(mixed, dim=1))

    @torch.no_grad()
    def sync_from_rank0(self) -> None:
        """Make every rank's bank rank 0's (a no-op outside distributed runs)."""
        distributed.broadcast_from_rank0(self.memory)


def score_rows(query: Tensor, bank: MemoryBank, index: Tensor, temperature: float) -> Tensor:
    """Scores ``[B, K]``: cosine of unit queries ``[B, D]`` with bank rows ``index`` ``[B, K]``, over τ."""
    return torch.einsum("bd,bkd->bk", query, bank.rows(index)) / temperature


def skip_excluded(raw: Tensor, excluded: Tensor) -> Tensor:
    """Map raw draws ``[B, K]`` in ``[0, N - m)`` onto instances not in ``excluded`` ``[B, m]``.

    ``excluded`` must be sorted ascending along dim 1 (and hold distinct ids per row); each draw
    is shifted past every excluded id it reaches, so the result is uniform over the other
    ``N - m`` instances when the raw draws are uniform.
    """
    if raw.ndim != 2 or excluded.ndim != 2 or raw.shape[0] != excluded.shape[0]:
        raise ValueError(
            f"skip_excluded: expected raw [B, K] and excluded [B, m], "
            f"got {tuple(raw.shape)} and {tuple(excluded.shape)}"
        )
    index = raw.clone()
    for column in range(excluded.shape[1]):
        index += (index >= excluded[:, column : column + 1]).to(index.dtype)
    return index


def _uniform_draws(shape: tuple[int, int], high: int, device: torch.device) -> Tensor:
    return torch.randint(0, high, shape, device=device)


class UniformNegatives:
    """Draws ``K`` negatives per sample uniformly over the instances not excluded for it.

    Args:
        draw: ``draw(shape, high, device) -> LongTensor`` of uniform integers in ``[0, high)``.
            Defaults to ``torch.randint`` (global RNG). Injectable so tests can replay the draws
            stored in the parity fixtures.

    Call with ``num_items`` (N), ``excluded`` ``[B, m]`` (sorted ids per sample: ``index[:, None]``
    for xID, the positives for AVID-CMA) and ``num_negatives`` (K); returns ``[B, K]``.
    """

    def __init__(self, draw: RawDraws | None = None) -> None:
        self.draw = draw or _uniform_draws

    def __call__(self, num_items: int, excluded: Tensor, num_negatives: int) -> Tensor:
        batch, num_excluded = excluded.shape
        high = num_items - num_excluded
        if high < 1:
            raise ValueError(
                f"UniformNegatives: nothing to draw from ({num_items} items, {num_excluded} excluded)"
            )
        raw = self.draw((batch, num_negatives), high, excluded.device).to(excluded.device, torch.long)
        if raw.shape != (batch, num_negatives):
            raise ValueError(
                f"UniformNegatives: draw returned shape {tuple(raw.shape)}, "
                f"expected {(batch, num_negatives)}"
            )
        return skip_excluded(raw, excluded)
