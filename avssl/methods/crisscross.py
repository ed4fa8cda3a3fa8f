"""CrissCross: SimSiam-style learning with relaxed audio-visual synchronicity (spec §2.4).

Sarkar & Etemad, "Self-Supervised Audio-Visual Representation Learning with Relaxed Cross-Modal
Synchronicity", AAAI 2023 (arXiv 2111.05329). Per modality an encoder f (backbone → projector) and
a predictor h; for the four views x ∈ {v1, v2, a1, a2} (two overlapping time windows per modality,
recipe ``crisscross``): z = f(x), p = h(z), D(p, z) = −cos(p, stopgrad z) averaged over the batch.

* intra-modal (``joint``): L_v1v2 = ½D(p_v1, z_v2) + ½D(p_v2, z_v1); L_a1a2 likewise;
* synchronous cross-modal (``cm``): L_v1a1 = ½D(p_v1, z_a1) + ½D(p_a1, z_v1); L_v2a2 likewise;
* asynchronous cross-modal (``ctcm``): L_v1a2 = ½D(p_v1, z_a2) + ½D(p_a2, z_v1);
  L_a1v2 = ½D(p_a1, z_v2) + ½D(p_v2, z_a1);
* L = [λ_v L_v1v2 + λ_a L_a1a2 + λ_ct (L_v1a2 + L_a1v2) + λ_cm (L_v1a1 + L_v2a2)] / N_terms,
  N_terms = 2 per enabled group; the λ are *not* renormalised (parity ``crisscross/loss.pt``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from avssl.methods.batch import take_av_views
from avssl.methods.registry import register_method
from avssl.models.heads import SimSiamPredictor, SimSiamProjector

__all__ = ["negative_cosine", "CrissCrossLoss", "CrissCross"]

VIEWS = ("v1", "v2", "a1", "a2")
# term name -> (first view, second view); each term is ½D(p_first, z_second) + ½D(p_second, z_first)
TERMS = {
    "joint": {"v1v2": ("v1", "v2"), "a1a2": ("a1", "a2")},
    "ctcm": {"v1a2": ("v1", "a2"), "a1v2": ("a1", "v2")},
    "cm": {"v1a1": ("v1", "a1"), "v2a2": ("v2", "a2")},
}


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """SimSiam's D(p, z) = −mean_b cos(p_b, z_b) with no gradient into z. ``p, z``: ``[B, D]``."""
    if p.shape != z.shape or p.ndim != 2:
        raise ValueError(
            f"negative_cosine: p and z must both be [B, D], got {tuple(p.shape)} and {tuple(z.shape)}"
        )
    # float32 even under autocast: the loss is a mean of cosines near ±1, where bf16 keeps 2 digits
    return -F.cosine_similarity(p.float(), z.detach().float(), dim=1).mean()


class CrissCrossLoss(nn.Module):
    """The six CrissCross terms on projector outputs z and predictor outputs p (spec §2.4).

    Args:
        joint, cm, ctcm: enable the intra-modal, synchronous and asynchronous cross-modal groups.
        vid_coeff, aud_coeff: λ_v, λ_a of L_v1v2 and L_a1a2 (``joint`` group).
        ct_coeff: λ_ct of the asynchronous terms. cm_coeff: λ_cm of the synchronous terms.

    ``forward(z, p)`` takes mappings ``{"v1", "v2", "a1", "a2"} -> [B, D]`` and returns
    ``{"loss": L, "loss/v1v2": ..., ...}`` with one entry per enabled term (logs detached).
    """

    def __init__(
        self,
        joint: bool = True,
        cm: bool = True,
        ctcm: bool = True,
        vid_coeff: float = 1.0,
        aud_coeff: float = 1.0,
        ct_coeff: float = 1.0,
        cm_coeff: float = 1.0,
    ) -> None:
        super().__init__()
        self.enabled = {"joint": joint, "cm": cm, "ctcm": ctcm}
        if not any(self.enabled.values()):
            raise ValueError("CrissCrossLoss: enable at least one of joint, cm, ctcm")
        self.coefficients = {
            "v1v2": vid_coeff, "a1a2": aud_coeff,
            "v1a2": ct_coeff, "a1v2": ct_coeff,
            "v1a1": cm_coeff, "v2a2": cm_coeff,
        }

    def forward(self, z: Mapping[str, Tensor], p: Mapping[str, Tensor]) -> dict[str, Tensor]:
        for name, views in (("z", z), ("p", p)):
            missing = [v for v in VIEWS if v not in views]
            if missing:
                raise KeyError(f"CrissCrossLoss: {name} lacks views {missing} (needs {list(VIEWS)})")
        logs: dict[str, Tensor] = {}
        total = 0.0
        num_terms = 0
        for group, terms in TERMS.items():
            if not self.enabled[group]:
                continue
            for term, (first, second) in terms.items():
                value = 0.5 * (negative_cosine(p[first], z[second]) + negative_cosine(p[second], z[first]))
                logs[f"loss/{term}"] = value.detach()
                total = total + self.coefficients[term] * value
                num_terms += 1
        return {"loss": total / num_terms, **logs}


@register_method("crisscross")
class CrissCross(nn.Module):
    """CrissCross pretraining (spec §2.4, §2.6): video and audio SimSiam with cross-modal terms.

    Args:
        video_encoder, audio_encoder: avssl encoders (``out_dim`` feeds the projectors).
        proj_dim: projector width and output (2048). proj_layers: 3 (or 2).
        pred_hidden_dim: predictor bottleneck (512).
        joint, cm, ctcm, vid_coeff, aud_coeff, ct_coeff, cm_coeff: see :class:`CrissCrossLoss`.
        pre_norm: L2-normalise z before the predictor (off in the released config).
        predictor_lr: learning rate of the predictors (2e-3).
        constant_predictor_lr: keep the predictors at ``predictor_lr`` instead of the schedule.

    Batch: video ``[v1, v2]`` and audio ``[a1, a2]`` (recipe ``crisscross``).
    """

    # The heads whose outputs share one space across modalities (cross-modal retrieval reads them).
    shared_space_heads = {"video": "video_projector", "audio": "audio_projector"}

    def __init__(
        self,
        video_encoder: nn.Module,
        audio_encoder: nn.Module,
        proj_dim: int = 2048,
        proj_layers: int = 3,
        pred_hidden_dim: int = 512,
        joint: bool = True,
        cm: bool = True,
        ctcm: bool = True,
        vid_coeff: float = 1.0,
        aud_coeff: float = 1.0,
        ct_coeff: float = 1.0,
        cm_coeff: float = 1.0,
        pre_norm: bool = False,
        predictor_lr: float = 2e-3,
        constant_predictor_lr: bool = True,
    ) -> None:
        super().__init__()
        if predictor_lr <= 0:
            raise ValueError(f"crisscross: predictor_lr must be positive, got {predictor_lr}")
        self.video_encoder, self.audio_encoder = video_encoder, audio_encoder
        self.video_projector = SimSiamProjector(video_encoder.out_dim, proj_dim, proj_layers)
        self.audio_projector = SimSiamProjector(audio_encoder.out_dim, proj_dim, proj_layers)
        self.video_predictor = SimSiamPredictor(proj_dim, pred_hidden_dim)
        self.audio_predictor = SimSiamPredictor(proj_dim, pred_hidden_dim)
        self.loss = CrissCrossLoss(joint, cm, ctcm, vid_coeff, aud_coeff, ct_coeff, cm_coeff)
        self.pre_norm = pre_norm
        self.predictor_lr, self.constant_predictor_lr = predictor_lr, constant_predictor_lr

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``{"loss", "loss/v1v2", "loss/a1a2", "loss/v1a2", "loss/a1v2", "loss/v1a1", ...}``."""
        videos, audios = take_av_views(batch, 2, "crisscross")
        z: dict[str, Tensor] = {}
        p: dict[str, Tensor] = {}
        branches = {"v": (self.video_encoder, self.video_projector, self.video_predictor, videos),
                    "a": (self.audio_encoder, self.audio_projector, self.audio_predictor, audios)}
        for prefix, (encoder, projector, predictor, views) in branches.items():
            for number, view in enumerate(views, start=1):
                key = f"{prefix}{number}"
                z[key] = projector(encoder(view))  # [B, proj_dim]
                p[key] = predictor(F.normalize(z[key], dim=1) if self.pre_norm else z[key])
        return self.loss(z, p)

    def param_groups(self) -> list[dict[str, Any]]:
        """``vid_base``, ``vid_predictor``, ``aud_base``, ``aud_predictor`` (spec §2.6)."""
        predictor: dict[str, Any] = {"lr_mode": "schedule"}
        if self.constant_predictor_lr:
            predictor = {"lr_mode": "constant", "lr": self.predictor_lr}

        def trainable(*modules: nn.Module) -> list[nn.Parameter]:
            return [p for m in modules for p in m.parameters() if p.requires_grad]

        return [
            {"name": "vid_base", "params": trainable(self.video_encoder, self.video_projector),
             "lr_mode": "schedule"},
            {"name": "vid_predictor", "params": trainable(self.video_predictor), **predictor},
            {"name": "aud_base", "params": trainable(self.audio_encoder, self.audio_projector),
             "lr_mode": "schedule"},
            {"name": "aud_predictor", "params": trainable(self.audio_predictor), **predictor},
        ]
