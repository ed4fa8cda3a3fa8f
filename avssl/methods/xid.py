"""xID: cross-modal instance discrimination with memory banks (AVID "Cross-AVID", AV-SSRL xID).

Morgado, Vasconcelos, Misra, "Audio-Visual Instance Discrimination with Cross-Modal Agreement",
CVPR 2021 (arXiv 2004.12943), spec §3A.4; AV-SSRL's RINCE variant, spec §3B.4.

Each modality's encoder feeds a :class:`~avssl.models.heads.ProjectionHead` ([512, 512, 128]); the
128-d embeddings are contrasted against two memory banks (one row per dataset instance):

* Cross-AVID (``xmodal_coeff=1, wmodal_coeff=0``, the released config): v2a and a2v;
* Self-AVID (``0, 1``): v2v and a2a; Joint-AVID (``1, 1``): all four.

Loss kinds: ``nce`` (AVID; partition constant Z set on the first call and frozen), ``infonce``,
``rince`` (AV-SSRL; q annealed per epoch from ``rince_q`` to ``rince_q_end``), optionally with
MoCHi hard-negative mixing (``hard_negatives=N_hard``). Batch: one video view ``[B, 3, T, H, W]``,
one audio view ``[B, 1, F, T]``, ``index`` ``[B]`` (recipe ``synchronous``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from avssl.methods.batch import take_av_views, take_index
from avssl.methods.memory_bank import UniformNegatives
from avssl.methods.memory_contrast import ContrastTask, HardNegativeMixing, MemoryContrast
from avssl.methods.registry import register_method
from avssl.models.heads import ProjectionHead

__all__ = ["XIDCriterion", "XID", "xid_groups"]


def xid_groups(xmodal_coeff: float, wmodal_coeff: float) -> dict[str, tuple[float, list[ContrastTask]]]:
    """The two xID task groups with their (not yet normalised) coefficients."""
    cross = [ContrastTask("v2a", "video", "audio"), ContrastTask("a2v", "audio", "video")]
    within = [ContrastTask("v2v", "video", "video"), ContrastTask("a2a", "audio", "audio")]
    return {"xmodal": (xmodal_coeff, cross), "wmodal": (wmodal_coeff, within)}


class XIDCriterion(MemoryContrast):
    """xID loss on projections: ``criterion(video_emb [B, D], audio_emb [B, D], index [B]) -> dict``.

    Args:
        num_items: dataset size N (memory-bank rows).
        xmodal_coeff, wmodal_coeff: weights of the cross-modal (v2a, a2v) and within-modal (v2v,
            a2a) groups, normalised to sum to 1 (AVID: 1 and 0).
        **kwargs: the remaining :class:`~avssl.methods.memory_contrast.MemoryContrast` arguments
            (``dim``, ``num_negatives``, ``temperature``, ``momentum``, ``loss``, RINCE settings,
            ``hard_negatives``, ``bank_seed``, ``negative_sampler``).

    Matches the parity fixtures ``avid_cma/avid_nce_loss.pt`` (nce) and ``av_ssrl/xid_loss.pt``
    (rince / infonce) including the bank updates over consecutive calls.
    """

    def __init__(
        self, num_items: int, xmodal_coeff: float = 1.0, wmodal_coeff: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(num_items, xid_groups(xmodal_coeff, wmodal_coeff), **kwargs)


class ProjectedPair(nn.Module):
    """A video and an audio encoder, each followed by a :class:`ProjectionHead` into one shared
    space: the trunk of xID and AVID-CMA (spec §3A.1). Module names (``video_encoder``,
    ``audio_encoder``, ``video_proj``, ``audio_proj``) are the state-dict names of both methods."""

    # The heads whose outputs share one space across modalities (cross-modal retrieval reads them).
    shared_space_heads = {"video": "video_proj", "audio": "audio_proj"}

    def __init__(self, video_encoder: nn.Module, audio_encoder: nn.Module, proj_dims: Sequence[int]) -> None:
        super().__init__()
        self.video_encoder, self.audio_encoder = video_encoder, audio_encoder
        self.video_proj = ProjectionHead(video_encoder.out_dim, proj_dims)
        self.audio_proj = ProjectionHead(audio_encoder.out_dim, proj_dims)

    def embed(self, batch: Mapping[str, Any], name: str) -> tuple[Tensor, Tensor, Tensor]:
        """Projected video and audio embeddings ``[B, D]`` of the batch's first views, and ``index``
        (``name`` is the method's, for error messages)."""
        (video,), (audio,) = take_av_views(batch, 1, name)
        index = take_index(batch, video.shape[0], name)
        return self.video_proj(self.video_encoder(video)), self.audio_proj(self.audio_encoder(audio)), index


@register_method("xid")
class XID(ProjectedPair):
    """xID / AVID cross-modal instance discrimination with memory banks (spec §3A.4, §3B.4).

    Args:
        video_encoder, audio_encoder: avssl encoders (``out_dim`` gives the heads' input size).
        num_items: dataset size N (``batch["index"]`` < N); the engine passes the dataset length.
        proj_dims: projection head sizes, ``(512, 512, 128)``.
        num_negatives: K (1024). temperature: τ (0.07). momentum: bank momentum (0.5).
        loss: ``"nce"`` (AVID), ``"infonce"`` or ``"rince"`` (AV-SSRL: with ``rince_q=0.001``,
            ``rince_q_end=0.4``, ``rince_lam=0.01``).
        xmodal_coeff, wmodal_coeff: Cross (1, 0), Self (0, 1) or Joint (1, 1) AVID.
        rince_anneal_epochs: epochs of the q ramp; ``None`` = the run's ``max_epochs``.
        hard_negatives: N_hard for MoCHi mixing (``None``: off, the shipped config);
            ``num_mixed`` (512), ``num_query_mixed`` (128), from epoch ``hard_neg_epoch`` (10).
        bank_seed: seed of the initial bank rows. negative_sampler: injectable draws (tests).

    State: heads, encoders and ``criterion.*`` (banks, Z, q, epoch) are all in ``state_dict()``.
    """

    def __init__(
        self,
        video_encoder: nn.Module,
        audio_encoder: nn.Module,
        num_items: int,
        proj_dims: Sequence[int] = (512, 512, 128),
        num_negatives: int = 1024,
        temperature: float = 0.07,
        momentum: float = 0.5,
        loss: str = "nce",
        xmodal_coeff: float = 1.0,
        wmodal_coeff: float = 0.0,
        rince_q: float = 0.001,
        rince_q_end: float = 0.4,
        rince_lam: float = 0.01,
        rince_anneal_epochs: int | None = None,
        hard_negatives: int | None = None,
        num_mixed: int = 512,
        num_query_mixed: int = 128,
        hard_neg_epoch: int = 10,
        bank_seed: int = 0,
        negative_sampler: UniformNegatives | None = None,
    ) -> None:
        super().__init__(video_encoder, audio_encoder, proj_dims)
        mixing = None
        if hard_negatives is not None:
            mixing = HardNegativeMixing(hard_negatives, num_mixed, num_query_mixed, hard_neg_epoch)
        self.criterion = XIDCriterion(
            num_items,
            xmodal_coeff,
            wmodal_coeff,
            dim=proj_dims[-1],
            num_negatives=num_negatives,
            temperature=temperature,
            momentum=momentum,
            loss=loss,
            rince_q=rince_q,
            rince_q_end=rince_q_end,
            rince_lam=rince_lam,
            rince_anneal_epochs=rince_anneal_epochs,
            hard_negatives=mixing,
            bank_seed=bank_seed,
            negative_sampler=negative_sampler,
        )

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``{"loss", "loss/v2a", "loss/a2v", "loss/xmodal", ...}``; updates the banks when training."""
        video_emb, audio_emb, index = self.embed(batch, "xid")
        return self.criterion(video_emb, audio_emb, index)

    def on_train_epoch_start(self, ctx: Any) -> None:
        """Anneal RINCE's q and record the epoch (hard-negative mixing start)."""
        self.criterion.set_epoch(ctx.epoch, getattr(ctx, "max_epochs", None))
