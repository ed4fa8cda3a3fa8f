"""Per-sample random token masking for masked reconstruction (MAE; XKD spec §4.3 step 1).

Each sample draws uniform noise over its ``N`` tokens; the ``round(N·(1−ratio))`` tokens with the
smallest noise stay visible, **in ascending-noise order** (that is the order the encoder sees
them, and the order ``ids_restore`` undoes). The keep count uses Python's ``round`` on the float
product exactly as the released code, so XKD keeps 59 of 392 video tokens (ratio 0.85) and 112 of
560 audio tokens (ratio 0.80).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class TokenMask:
    """Result of :func:`random_masking` for a batch of ``B`` samples of ``N`` tokens.

    Attributes:
        keep_index: ``B×L`` indices of the visible tokens (ascending noise), for
            ``ViTEncoder.forward_tokens(x, keep_index=...)``.
        mask: ``B×N`` float, 1 where the token is removed (masked), 0 where it is visible.
        ids_restore: ``B×N`` permutation mapping the ``[visible; masked]`` order back to token
            order (input of :class:`avssl.models.mae_decoder.MAEDecoder`).
    """

    keep_index: Tensor
    mask: Tensor
    ids_restore: Tensor


def num_visible(num_tokens: int, mask_ratio: float) -> int:
    """Tokens kept visible: Python ``round(N · (1 − ratio))`` (XKD: 392·0.15 → 59, 560·0.2 → 112)."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    return max(1, int(round(num_tokens * (1 - mask_ratio))))


def random_masking(
    batch: int,
    num_tokens: int,
    mask_ratio: float,
    device: torch.device | str | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> TokenMask:
    """Draw an independent random mask per sample.

    Args:
        batch, num_tokens: ``B`` and ``N``.
        mask_ratio: fraction of tokens removed.
        device: where to create the masks (ignored when ``noise`` is given).
        noise: optional ``B×N`` noise to use instead of ``torch.rand`` (parity tests, replay).
        generator: optional generator for the noise.
    """
    if noise is None:
        noise = torch.rand(batch, num_tokens, device=device, generator=generator)
    elif tuple(noise.shape) != (batch, num_tokens):
        raise ValueError(f"random_masking: noise must be {batch}×{num_tokens}, got {tuple(noise.shape)}")
    keep = num_visible(num_tokens, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1)  # [B, N] ascending noise: the first `keep` stay
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # [B, N]
    mask = torch.ones(batch, num_tokens, device=noise.device)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # [B, N] back in token order
    return TokenMask(keep_index=ids_shuffle[:, :keep], mask=mask, ids_restore=ids_restore)
