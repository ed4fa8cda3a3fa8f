"""AVID-CMA: cross-modal agreement on top of a trained xID model (spec §3A.4, last paragraph).

Morgado, Vasconcelos, Misra, "Audio-Visual Instance Discrimination with Cross-Modal Agreement",
CVPR 2021. Starting from an xID model and its memory banks (and frozen NCE constant Z), each
instance gets a *positive set*: the ``pos_k`` instances most similar to it in **both** memory
spaces (consensus = min of the video and audio cosine similarities), recomputed every
``resample_every`` epochs. The loss (config ``InstX-N1024-PosW-N64-Top32``) adds, to cross-modal
instance discrimination (inst-v2a, inst-a2v), within-modal *positive* discrimination (pos-v2v,
pos-a2a: the positive set as positives, the first ``num_negatives_within`` negatives). Negatives are
drawn past the instance's positives (they may hit the instance itself, as in the original).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avssl.methods import distributed
from avssl.methods.memory_bank import UniformNegatives
from avssl.methods.memory_contrast import ContrastTask, MemoryContrast
from avssl.methods.registry import register_method
from avssl.methods.xid import ProjectedPair
from avssl.models.checkpoints import load_checkpoint, load_state_strict, read_checkpoint
from avssl.models.checkpoints.avid import wrapper_state

__all__ = ["cma_positive_sets", "CMACriterion", "AVIDCMA", "POSITIVE_MODES"]

POSITIVE_MODES = ("consensus", "union", "video", "audio")
_SIMILARITY_BUDGET = 2**26  # elements of one [rows, N] similarity block (256 MB in float32)


@torch.no_grad()
def cma_positive_sets(
    video_memory: Tensor, audio_memory: Tensor, pos_k: int, mode: str = "consensus"
) -> Tensor:
    """Positive set of every bank row ``[N, pos_k]``, indices sorted ascending.

    Similarity of rows i and j is ``min`` (``consensus``) or ``max`` (``union``) of their video and
    audio cosine similarities, or one of them (``video``, ``audio``). The top ``pos_k + 1`` are
    kept and the first (the row itself) dropped. Banks are ``[N, D]`` unit rows. Rows are processed
    in blocks, split across ranks when distributed, so N may be a full dataset.
    """
    if mode not in POSITIVE_MODES:
        raise ValueError(f"cma_positive_sets: mode must be one of {POSITIVE_MODES}, got {mode!r}")
    if video_memory.shape != audio_memory.shape or video_memory.ndim != 2:
        raise ValueError(
            "cma_positive_sets: banks must be [N, D] of equal shape, "
            f"got {tuple(video_memory.shape)} and {tuple(audio_memory.shape)}"
        )
    num_items = video_memory.shape[0]
    if not 1 <= pos_k < num_items:
        raise ValueError(f"cma_positive_sets: pos_k must be in [1, {num_items}), got {pos_k}")
    per_rank = math.ceil(num_items / distributed.world_size())
    start = min(num_items, distributed.rank() * per_rank)
    stop = min(num_items, start + per_rank)
    block = max(1, _SIMILARITY_BUDGET // num_items)
    local = torch.zeros(per_rank, pos_k, dtype=torch.long, device=video_memory.device)
    for first in range(start, stop, block):
        last = min(stop, first + block)
        video_sim = video_memory[first:last] @ video_memory.T  # [rows, N]
        audio_sim = audio_memory[first:last] @ audio_memory.T
        if mode == "consensus":
            similarity = torch.minimum(video_sim, audio_sim)
        elif mode == "union":
            similarity = torch.maximum(video_sim, audio_sim)
        else:
            similarity = video_sim if mode == "video" else audio_sim
        top = similarity.topk(pos_k + 1, dim=1).indices[:, 1:]  # drop the row itself
        local[first - start : last - start] = top.sort(dim=1).values
    return distributed.all_gather_no_grad(local)[:num_items]


def cma_groups(
    xmodal_inst: float,
    wmodal_inst: float,
    xmodal_pos: float,
    wmodal_pos: float,
    num_negatives_within: int,
) -> dict[str, tuple[float, list[ContrastTask]]]:
    """AVID-CMA's four task groups with their (not yet normalised) coefficients."""
    cross = [("v2a", "video", "audio"), ("a2v", "audio", "video")]
    within = [("v2v", "video", "video"), ("a2a", "audio", "audio")]

    def pair(prefix: str, directions: list, positives: str, negatives: int | None) -> list[ContrastTask]:
        return [ContrastTask(f"{prefix}-{name}", query, bank, positives, negatives)
                for name, query, bank in directions]

    return {
        "inst_xmodal": (xmodal_inst, pair("inst", cross, "instance", None)),
        "inst_wmodal": (wmodal_inst, pair("inst", within, "instance", None)),
        "pos_xmodal": (xmodal_pos, pair("pos", cross, "neighbours", None)),
        "pos_wmodal": (wmodal_pos, pair("pos", within, "neighbours", num_negatives_within)),
    }


class CMACriterion(MemoryContrast):
    """AVID-CMA loss on projection outputs; NCE with the (restored) frozen Z.

    Args:
        num_items: dataset size N.
        pos_k: positive-set size (32).
        positive_mode: ``consensus`` (the released config), ``union``, ``video`` or ``audio``.
        num_negatives_within: negatives of the within-modal positive tasks (64; the first drawn).
        xmodal_inst_coeff, wmodal_inst_coeff, xmodal_pos_coeff, wmodal_pos_coeff: group weights,
            normalised to sum to 1 (released config 1, 0, 0, 1).
        **kwargs: further :class:`~avssl.methods.memory_contrast.MemoryContrast` arguments
            (``dim``, ``num_negatives`` (1024), ``temperature``, ``momentum``, ``bank_seed``,
            ``negative_sampler``).

    Buffers: those of :class:`MemoryContrast` plus ``positives`` ``[N, pos_k]`` and
    ``positives_epoch`` (epoch of the last search, −1 before the first). Matches
    ``avid_cma/cma_loss.pt``.
    """

    positives: Tensor
    positives_epoch: Tensor

    def __init__(
        self,
        num_items: int,
        pos_k: int = 32,
        positive_mode: str = "consensus",
        num_negatives_within: int = 64,
        xmodal_inst_coeff: float = 1.0,
        wmodal_inst_coeff: float = 0.0,
        xmodal_pos_coeff: float = 0.0,
        wmodal_pos_coeff: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("loss", "nce") != "nce":
            raise ValueError("CMACriterion: AVID-CMA uses the NCE loss only")
        if positive_mode not in POSITIVE_MODES:
            raise ValueError(
                f"CMACriterion: positive_mode must be one of {POSITIVE_MODES}, got {positive_mode!r}"
            )
        num_negatives = kwargs.get("num_negatives", 1024)
        if not 1 <= num_negatives_within <= num_negatives:
            raise ValueError(
                f"CMACriterion: num_negatives_within must be in [1, num_negatives={num_negatives}], "
                f"got {num_negatives_within}"
            )
        if not 1 <= pos_k < num_items:
            raise ValueError(f"CMACriterion: pos_k must be in [1, num_items={num_items}), got {pos_k}")
        groups = cma_groups(xmodal_inst_coeff, wmodal_inst_coeff, xmodal_pos_coeff,
                            wmodal_pos_coeff, num_negatives_within)
        super().__init__(num_items, groups, **kwargs)
        self.pos_k, self.positive_mode = pos_k, positive_mode
        self.register_buffer("positives", torch.zeros(num_items, pos_k, dtype=torch.long))
        self.register_buffer("positives_epoch", torch.tensor(-1, dtype=torch.long))

    @torch.no_grad()
    def refresh_positives(self, epoch: int = 0) -> None:
        """Recompute every instance's positive set from the current banks."""
        video, audio = self.banks["video"].memory, self.banks["audio"].memory
        self.positives.copy_(cma_positive_sets(video, audio, self.pos_k, self.positive_mode))
        self.positives_epoch.fill_(epoch)

    def excluded(self, index: Tensor) -> Tensor:
        # Negatives skip the positives, not the instance itself (parity README ``cma_loss``).
        return self.positives[index]

    def positive_index(self, index: Tensor, kind: str) -> Tensor:
        return self.positives[index] if kind == "neighbours" else super().positive_index(index, kind)

    def forward(
        self, video_emb: Tensor, audio_emb: Tensor, index: Tensor, update_memory: bool | None = None
    ) -> dict[str, Tensor]:
        if int(self.positives_epoch) < 0:
            self.refresh_positives(int(self.epoch))
        return super().forward(video_emb, audio_emb, index, update_memory)


@register_method("avid_cma")
class AVIDCMA(ProjectedPair):
    """AVID-CMA: xID plus cross-modal-agreement positives (spec §3A.4; 20 epochs, LR 2e-4).

    Args:
        video_encoder, audio_encoder: avssl encoders.
        num_items: dataset size N.
        init_from: an xID model to start from: a path or an already-read object, either an avssl
            ``XID`` state dict (optionally nested under ``"state_dict"`` or prefixed) or an official
            AVID / AV-SSRL training checkpoint (``model`` + ``train_criterion``). ``None``: start
            from the given encoders and fresh banks (Z is then set on the first call).
        proj_dims: projection head sizes (512, 512, 128).
        pos_k (32), positive_mode, num_negatives (1024), num_negatives_within (64), coefficients:
            see :class:`CMACriterion`.
        resample_every: positive sets are recomputed at epochs divisible by this (5).
        temperature (0.07), momentum (0.5), bank_seed, negative_sampler: as in xID.
    """

    def __init__(
        self,
        video_encoder: nn.Module,
        audio_encoder: nn.Module,
        num_items: int,
        init_from: str | Path | Mapping[str, Any] | None = None,
        proj_dims: Sequence[int] = (512, 512, 128),
        pos_k: int = 32,
        positive_mode: str = "consensus",
        num_negatives: int = 1024,
        num_negatives_within: int = 64,
        xmodal_inst_coeff: float = 1.0,
        wmodal_inst_coeff: float = 0.0,
        xmodal_pos_coeff: float = 0.0,
        wmodal_pos_coeff: float = 1.0,
        resample_every: int = 5,
        temperature: float = 0.07,
        momentum: float = 0.5,
        bank_seed: int = 0,
        negative_sampler: UniformNegatives | None = None,
    ) -> None:
        if resample_every < 1:
            raise ValueError(f"avid_cma: resample_every must be >= 1, got {resample_every}")
        super().__init__(video_encoder, audio_encoder, proj_dims)
        self.resample_every = resample_every
        self.criterion = CMACriterion(
            num_items,
            pos_k=pos_k,
            positive_mode=positive_mode,
            num_negatives_within=num_negatives_within,
            xmodal_inst_coeff=xmodal_inst_coeff,
            wmodal_inst_coeff=wmodal_inst_coeff,
            xmodal_pos_coeff=xmodal_pos_coeff,
            wmodal_pos_coeff=wmodal_pos_coeff,
            dim=proj_dims[-1],
            num_negatives=num_negatives,
            temperature=temperature,
            momentum=momentum,
            bank_seed=bank_seed,
            negative_sampler=negative_sampler,
        )
        if init_from is not None:
            self.load_xid(init_from)

    def load_xid(self, checkpoint: str | Path | Mapping[str, Any]) -> None:
        """Encoders, heads, banks and Z from an xID checkpoint (see ``init_from``), strictly."""
        source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "<xid state>"
        obj = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
        if isinstance(obj, Mapping) and "train_criterion" in obj:  # official AVID / AV-SSRL file
            for encoder in (self.video_encoder, self.audio_encoder):
                load_checkpoint(encoder, obj, source=source)
            wrapper = wrapper_state(obj) or {}
            for name in ("video_proj", "audio_proj"):
                head = {k[len(name) + 1 :]: v for k, v in wrapper.items() if k.startswith(name + ".")}
                load_state_strict(getattr(self, name), head, f"{source} ({name})")
            self.criterion.load_official_state(obj["train_criterion"])
        else:
            self._load_xid_state(obj, source)
        self.criterion.positives_epoch.fill_(-1)  # positive sets must come from the loaded banks

    def _load_xid_state(self, obj: Any, source: str) -> None:
        state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
        anchor = "criterion.banks.video.memory"
        prefixes = [k[: -len(anchor)] for k in (state or {}) if k.endswith(anchor)]
        if len(prefixes) != 1:
            raise ValueError(
                f"avid_cma: {source} is neither an official AVID checkpoint nor an xID state dict "
                f"(no unique '*{anchor}' key)"
            )
        prefix = prefixes[0]
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        for name in ("video_encoder", "audio_encoder", "video_proj", "audio_proj"):
            part = {k[len(name) + 1 :]: v for k, v in state.items() if k.startswith(name + ".")}
            load_state_strict(getattr(self, name), part, f"{source} ({name})")
        for bank in ("video", "audio"):
            rows, target = state[f"criterion.banks.{bank}.memory"], self.criterion.banks[bank].memory
            if rows.shape != target.shape:
                raise ValueError(
                    f"avid_cma: {source} has a {bank} bank of shape {tuple(rows.shape)}, this model "
                    f"expects {tuple(target.shape)} (num_items × embedding size)"
                )
            target.copy_(rows)
        self.criterion.partition.copy_(state["criterion.partition"])

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """``{"loss", "loss/inst-v2a", "loss/inst-a2v", "loss/pos-v2v", "loss/pos-a2a", ...}``."""
        video_emb, audio_emb, index = self.embed(batch, "avid_cma")
        return self.criterion(video_emb, audio_emb, index)

    def on_train_epoch_start(self, ctx: Any) -> None:
        """Recompute the positive sets every ``resample_every`` epochs (and after a fresh load)."""
        self.criterion.set_epoch(ctx.epoch, getattr(ctx, "max_epochs", None))
        if ctx.epoch % self.resample_every == 0 or int(self.criterion.positives_epoch) < 0:
            self.criterion.refresh_positives(ctx.epoch)
