"""Instance-discrimination losses on scores against a memory bank (xID / AVID, AV-SSRL).

Every function takes cosine scores already divided by the temperature τ: ``positive`` ``[B, P]``
(``P`` = 1 for xID, ``pos_k`` for AVID-CMA's positive sets) and ``negative`` ``[B, K]``, and
returns the scalar batch mean. They are written in log space (softplus, logsumexp, expm1) so that
scores up to 1/τ ≈ 14 never overflow an exponential, in float32 or under autocast.

* :func:`nce_loss` — AVID's non-normalised NCE with a frozen partition constant Z (Morgado et
  al., "Audio-Visual Instance Discrimination with Cross-Modal Agreement", CVPR 2021; spec §3A.4).
* :func:`info_nce_loss` — InfoNCE (van den Oord et al. 2018), RINCE's q = 0 case.
* :func:`rince_loss` — Robust InfoNCE (Chuang et al., "Robust Contrastive Learning against Noisy
  Views", CVPR 2022), as used by AV-SSRL (spec §3B.4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["nce_loss", "info_nce_loss", "rince_loss", "check_scores"]


def check_scores(positive: Tensor, negative: Tensor, where: str) -> None:
    """Raise a clear error unless ``positive`` is ``[B, P]`` and ``negative`` ``[B, K]``, P, K ≥ 1."""
    if positive.ndim != 2 or negative.ndim != 2 or positive.shape[0] != negative.shape[0]:
        raise ValueError(
            f"{where}: expected positive scores [B, P] and negative scores [B, K], "
            f"got {tuple(positive.shape)} and {tuple(negative.shape)}"
        )
    if negative.shape[1] < 1 or positive.shape[1] < 1:
        raise ValueError(f"{where}: need at least one positive and one negative score per sample")


def nce_loss(positive: Tensor, negative: Tensor, partition: float | Tensor) -> Tensor:
    """AVID NCE with noise distribution K·Z (spec §3A.4, parity ``avid_nce_loss``).

    With e = exp(score) and K negatives per sample,
    ``P(pos) = e⁺ / (e⁺ + K·Z)``, ``P(noise_k) = K·Z / (e⁻_k + K·Z)`` and
    ``ℓ = mean_b[ mean_p(−log P(pos)) − Σ_k log P(noise_k) ]``.

    Args:
        positive: ``[B, P]`` positive scores (s⁺ = cos/τ); the positive term is averaged over P.
        negative: ``[B, K]`` negative scores; K is taken from this shape.
        partition: Z > 0, AVID's ``avg_exp_score`` (mean exp(s⁻) of the first batch, then frozen).
    """
    check_scores(positive, negative, "nce_loss")
    partition = torch.as_tensor(partition, dtype=positive.dtype, device=positive.device)
    if not bool(partition > 0):
        raise ValueError(f"nce_loss: the partition constant must be positive, got {float(partition)}")
    log_noise = math.log(negative.shape[1]) + partition.log()  # log(K·Z)
    positive_term = F.softplus(log_noise - positive).mean(dim=1)  # −log(e⁺/(e⁺+KZ)), [B]
    noise_term = F.softplus(negative - log_noise).sum(dim=1)  # −Σ log(KZ/(e⁻+KZ)), [B]
    return (positive_term + noise_term).mean()


def info_nce_loss(positive: Tensor, negative: Tensor) -> Tensor:
    """InfoNCE ``mean_b[−log(e⁺ / (e⁺ + Σ_k e⁻_k))]``.

    Args:
        positive: ``[B, 1]`` scores of the positive.
        negative: ``[B, K]`` scores of the negatives.
    """
    check_scores(positive, negative, "info_nce_loss")
    if positive.shape[1] != 1:
        raise ValueError(f"info_nce_loss: expected one positive per sample, got {positive.shape[1]}")
    logits = torch.cat([positive, negative], dim=1)  # [B, 1+K]
    return (torch.logsumexp(logits, dim=1) - positive[:, 0]).mean()


def rince_loss(positive: Tensor, negative: Tensor, q: float, lam: float = 0.01) -> Tensor:
    """Robust InfoNCE ``mean_b[−(e⁺)^q/q + (λ·(e⁺ + Σ_k e⁻_k))^q/q]``; q = 0 is InfoNCE.

    Computed as ``e^{q s⁺}·expm1(q·(log λ + logsumexp(s) − s⁺))/q``, the same quantity without the
    cancellation of two ~1/q terms that float32 suffers at q = 0.001 (AV-SSRL's q₀).

    Args:
        positive: ``[B, 1]`` scores of the positive.
        negative: ``[B, K]`` scores of the negatives.
        q: robustness exponent in [0, 1]; AV-SSRL anneals it from 0.001 to 0.4.
        lam: λ, weight of the full partition sum (0.01).
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"rince_loss: q must be in [0, 1], got {q}")
    if lam <= 0:
        raise ValueError(f"rince_loss: lam must be positive, got {lam}")
    if q == 0.0:
        return info_nce_loss(positive, negative)
    check_scores(positive, negative, "rince_loss")
    if positive.shape[1] != 1:
        raise ValueError(f"rince_loss: expected one positive per sample, got {positive.shape[1]}")
    s_pos = positive[:, 0]
    log_sum = torch.logsumexp(torch.cat([positive, negative], dim=1), dim=1)  # log(e⁺+Σe⁻), [B]
    gap = math.log(lam) + log_sum - s_pos
    return (torch.exp(q * s_pos) * torch.expm1(q * gap) / q).mean()
