"""AV-VICReg and VICReg-V (AV-SSRL, spec §3B.5): variance-invariance-covariance across two branches.

Bardes, Ponce, LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning", ICLR 2022, applied audio-visually by AV-SSRL: x = Expander_v(f_v(video)),
y = Expander_a(f_a(audio)) (4096-d); for VICReg-V, y is a second video clip of the same video
through the *same* encoder and expander (recipe ``video_pair``).

* invariance ``MSE(x, y)`` on the local batch;
* variance ``½[mean_d ReLU(1 − √(Var(x_d) + 1e-4)) + same for y]`` (unbiased variance) and
  covariance ``Σ_{i≠j} C(x)_ij² / D + same for y`` with ``C(x) = x_cᵀ x_c / (batch_size − 1)``,
  both on the embeddings all-gathered over ranks (gradients flow back to every rank's slice);
* ``L = 25·inv + 25·var + 1·cov``; ``batch_size`` = per-GPU batch × world size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avssl.methods import distributed
from avssl.methods.batch import take_av_views, take_views
from avssl.methods.registry import register_method
from avssl.models.heads import Expander

__all__ = ["vicreg_loss", "VICRegLoss", "VICReg", "vicreg_video"]


def _off_diagonal_square_sum(matrix: Tensor) -> Tensor:
    return matrix.pow(2).sum() - matrix.diagonal().pow(2).sum()


def vicreg_loss(
    x: Tensor,
    y: Tensor,
    sim_coeff: float = 25.0,
    std_coeff: float = 25.0,
    cov_coeff: float = 1.0,
    batch_size: int | None = None,
    eps: float = 1e-4,
) -> dict[str, Tensor]:
    """VICReg loss of two branches ``x, y`` ``[B, D]`` (local rows); returns the total and the terms.

    Args:
        x, y: expander outputs of this rank's batch (same shape, B ≥ 2 across all ranks).
        sim_coeff, std_coeff, cov_coeff: weights of invariance, variance, covariance (25, 25, 1).
        batch_size: divisor of the covariance is ``batch_size − 1``; AV-SSRL passes per-GPU batch ×
            world size. ``None`` = the number of all-gathered rows (the same for full batches).
        eps: added to the variance before the square root (1e-4).

    Computed in float32 (also under autocast): the covariance of 4096-d fp16 features overflows.
    """
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(
            f"vicreg_loss: x and y must both be [B, D], got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, y = x.float(), y.float()
        invariance = F.mse_loss(x, y)
        x_all, y_all = distributed.all_gather_with_grad(x), distributed.all_gather_with_grad(y)
        rows, dim = x_all.shape
        divisor = (batch_size if batch_size is not None else rows) - 1
        if rows < 2 or divisor < 1:
            raise ValueError(
                "vicreg_loss: variance needs at least 2 samples over all ranks "
                f"(rows {rows}, batch_size {batch_size})"
            )
        x_c, y_c = x_all - x_all.mean(dim=0), y_all - y_all.mean(dim=0)
        std_x, std_y = torch.sqrt(x_c.var(dim=0) + eps), torch.sqrt(y_c.var(dim=0) + eps)
        variance = 0.5 * (F.relu(1 - std_x).mean() + F.relu(1 - std_y).mean())
        cov_x, cov_y = x_c.T @ x_c / divisor, y_c.T @ y_c / divisor  # [D, D]
        covariance = (_off_diagonal_square_sum(cov_x) + _off_diagonal_square_sum(cov_y)) / dim
        loss = sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance
    return {
        "loss": loss,
        "loss/invariance": invariance.detach(),
        "loss/variance": variance.detach(),
        "loss/covariance": covariance.detach(),
    }


class VICRegLoss(nn.Module):
    """:func:`vicreg_loss` with its coefficients fixed: ``VICRegLoss()(x, y) -> dict``."""

    def __init__(
        self,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.sim_coeff, self.std_coeff, self.cov_coeff = sim_coeff, std_coeff, cov_coeff
        self.batch_size = batch_size

    def forward(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return vicreg_loss(x, y, self.sim_coeff, self.std_coeff, self.cov_coeff, self.batch_size)


@register_method("vicreg")
class VICReg(nn.Module):
    """AV-VICReg (``video_only=False``) or VICReg-V (``video_only=True``), spec §3B.5.

    Args:
        video_encoder: video backbone.
        audio_encoder: audio backbone (AV); must be ``None`` for VICReg-V.
        expander_dims: expander sizes ``(4096, 4096, 4096)``.
        sim_coeff, std_coeff, cov_coeff: 25, 25, 1.
        batch_size: covariance divisor − 1 (per-GPU batch × world size); ``None``: gathered rows.
        video_only: VICReg-V: two video views through the same encoder and expander.

    Batch: AV: one video and one audio view (recipe ``synchronous``); VICReg-V: two video views
    (recipe ``video_pair``).
    """

    # The heads whose outputs share one space across modalities (cross-modal retrieval reads them).
    shared_space_heads = {"video": "video_exp", "audio": "audio_exp"}

    def __init__(
        self,
        video_encoder: nn.Module,
        audio_encoder: nn.Module | None = None,
        expander_dims: Sequence[int] = (4096, 4096, 4096),
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        batch_size: int | None = None,
        video_only: bool = False,
    ) -> None:
        super().__init__()
        if video_only and audio_encoder is not None:
            raise ValueError("vicreg: VICReg-V (video_only) uses no audio encoder; remove audio_encoder")
        if not video_only and audio_encoder is None:
            raise ValueError("vicreg: audio-visual VICReg needs an audio_encoder (or video_only=True)")
        self.video_only = video_only
        self.video_encoder = video_encoder
        self.video_exp = Expander(video_encoder.out_dim, expander_dims)
        if audio_encoder is not None:
            self.audio_encoder = audio_encoder
            self.audio_exp = Expander(audio_encoder.out_dim, expander_dims)
        self.loss = VICRegLoss(sim_coeff, std_coeff, cov_coeff, batch_size)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``{"loss", "loss/invariance", "loss/variance", "loss/covariance"}``."""
        name = "vicreg_video" if self.video_only else "vicreg"
        if self.video_only:
            first, second = take_views(batch, "video", 2, name)
            x, y = self.video_exp(self.video_encoder(first)), self.video_exp(self.video_encoder(second))
        else:
            (video,), (audio,) = take_av_views(batch, 1, name)
            x, y = self.video_exp(self.video_encoder(video)), self.audio_exp(self.audio_encoder(audio))
        return self.loss(x, y)


@register_method("vicreg_video")
def vicreg_video(
    video_encoder: nn.Module, audio_encoder: nn.Module | None = None, **kwargs: Any
) -> VICReg:
    """VICReg-V (AV-SSRL ``VGGSound-VICReg-Video``): two video clips 2–8 s apart, one encoder."""
    return VICReg(video_encoder, audio_encoder, video_only=True, **kwargs)
