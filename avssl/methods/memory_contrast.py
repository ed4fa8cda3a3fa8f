"""Contrast of projected embeddings against two memory banks: the engine of xID and AVID-CMA.

Morgado, Vasconcelos, Misra, "Audio-Visual Instance Discrimination with Cross-Modal Agreement"
(CVPR 2021), spec §3A.4, §3B.4. A *task* scores the embeddings of one modality (the query) against
one bank (``v2a``: video queries, audio bank); its positive is the instance's own row or, for
AVID-CMA, the rows of its positive set; its negatives are ``K`` rows drawn uniformly over the
instances not excluded. Tasks form *groups* (``xmodal``: v2a + a2v; ``wmodal``: v2v + a2a); a
group's loss is the mean of its tasks and the total is the coefficient-weighted sum of the groups,
the coefficients normalised to sum to 1. One set of negative draws per call serves every task.

Order of one call, as in the original criteria (parity ``avid_nce_loss``): draw negatives → score
every task with the banks as they are → (``nce``: set Z from the first task scored if not yet set)
→ loss → momentum update of both banks with the all-gathered embeddings (training only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avssl.methods import distributed
from avssl.methods.instance_losses import info_nce_loss, nce_loss, rince_loss
from avssl.methods.memory_bank import MemoryBank, UniformNegatives, score_rows

__all__ = [
    "ContrastTask",
    "HardNegativeMixing",
    "MemoryContrast",
    "mix_hard_negatives",
    "rince_q_schedule",
    "single_visit_warning",
]

LOSS_KINDS = ("nce", "infonce", "rince")
MODALITIES = ("video", "audio")
Groups = Mapping[str, tuple[float, Sequence["ContrastTask"]]]


@dataclass(frozen=True)
class ContrastTask:
    """One scored direction: ``query`` embeddings against the ``bank`` of a modality.

    ``positives``: ``"instance"`` (the instance's own row) or ``"neighbours"`` (its positive set,
    AVID-CMA). ``num_negatives``: use only the first n of the drawn negatives (AVID-CMA's
    within-modal tasks); ``None`` uses all.
    """

    name: str
    query: str
    bank: str
    positives: str = "instance"
    num_negatives: int | None = None


@dataclass(frozen=True)
class HardNegativeMixing:
    """MoCHi-style synthetic negatives (Kalantidis et al., NeurIPS 2020; AV-SSRL, spec §3B.4).

    From epoch ``start_epoch`` on, the ``num_hard`` bank rows nearest to each query (excluding the
    instance) give ``num_mixed`` convex mixtures of two of them (weight ~ U(0, 1)) and
    ``num_query_mixed`` mixtures of the query with one of them (query weight ~ U(0,
    ``max_query_weight``)), L2-normalised and appended to the negatives.
    """

    num_hard: int
    num_mixed: int = 512
    num_query_mixed: int = 128
    start_epoch: int = 10
    max_query_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.num_hard < 2 or self.num_mixed < 0 or self.num_query_mixed < 0:
            raise ValueError(f"HardNegativeMixing: need num_hard >= 2 and counts >= 0, got {self}")
        if not 0.0 <= self.max_query_weight <= 1.0:
            raise ValueError(
                f"HardNegativeMixing: max_query_weight must be in [0, 1], got {self.max_query_weight}"
            )


@torch.no_grad()
def mix_hard_negatives(
    query: Tensor, bank: MemoryBank, index: Tensor, mixing: HardNegativeMixing
) -> Tensor:
    """Synthetic hard negatives for unit queries ``[B, D]`` -> ``[B, S, D]``, S = mixed + query-mixed.

    Nearest by Euclidean distance equals highest cosine for unit vectors. No gradient flows into
    the mixtures (they are constants, like bank rows).
    """
    query = query.detach()
    similarity = query @ bank.memory.T  # [B, N]
    similarity.scatter_(1, index[:, None], float("-inf"))  # never the instance itself
    num_hard = min(mixing.num_hard, bank.num_items - 1)
    hard = bank.memory[similarity.topk(num_hard, dim=1).indices]  # [B, H, D]
    batch = hard.shape[0]
    rows = torch.arange(batch, device=query.device)[:, None]

    def pick(count: int) -> Tensor:  # [B, count, D], hard rows drawn uniformly
        return hard[rows, torch.randint(0, num_hard, (batch, count), device=query.device)]

    weight = torch.rand(batch, mixing.num_mixed, 1, device=query.device)
    mixed = weight * pick(mixing.num_mixed) + (1 - weight) * pick(mixing.num_mixed)
    query_weight = torch.rand(batch, mixing.num_query_mixed, 1, device=query.device)
    query_weight = mixing.max_query_weight * query_weight
    query_mixed = query_weight * query[:, None] + (1 - query_weight) * pick(mixing.num_query_mixed)
    return F.normalize(torch.cat([mixed, query_mixed], dim=1), dim=2)


def rince_q_schedule(epoch: int, q_start: float, q_end: float, num_epochs: int) -> float:
    """AV-SSRL's per-epoch RINCE q, ``q_start + epoch·(q_end − q_start)/(num_epochs − 1)``.

    Held at ``q_end`` after ``num_epochs − 1``; with ``num_epochs`` ≤ 1 there is nothing to
    anneal over and q stays ``q_start``.
    """
    if num_epochs <= 1:
        return q_start
    return q_start + min(epoch, num_epochs - 1) * (q_end - q_start) / (num_epochs - 1)


def single_visit_warning(method: nn.Module, repeats: int) -> str | None:
    """Why ``method`` should see every file more than once per epoch; ``None`` when that is moot.

    With ``repeats == 1`` an epoch is one permutation of the files, so when an instance comes up
    its bank rows are older than those of every instance already visited in the epoch: the
    positive is never among the freshest rows. The loss can then fall by telling fresh rows from
    stale ones rather than one clip from another, and the embeddings collapse onto a few
    directions (AV-Digits, docs/benchmarks.md: a loss that falls within every epoch and jumps back
    at its start; after 43 epochs the mean of the unit bank rows has norm 0.98). AVID and AV-SSRL
    visit every video 10 or 5 times per epoch (their loaders' ``clips_per_video``), at random
    places.
    """
    if repeats > 1 or not any(isinstance(module, MemoryContrast) for module in method.modules()):
        return None
    return (
        f"{type(method).__name__} keeps memory banks but data.repeats is {repeats}: every file is "
        "visited once per epoch, so an instance's own bank row is always older than the rows of the "
        "files already visited, and the loss can learn that age instead of the content (a collapse on "
        "small corpora). Set data.repeats to 5-10, as the original loaders' clips_per_video."
    )


class MemoryContrast(nn.Module):
    """Memory-bank contrast over groups of :class:`ContrastTask` (see the module docstring).

    Args:
        num_items: N, dataset instances (rows of each bank).
        groups: ``{group name: (coefficient, tasks)}``; coefficients ≥ 0, normalised to sum to 1;
            groups with coefficient 0 are not computed.
        dim: embedding size D (128).
        num_negatives: K negatives drawn per sample (1024).
        temperature: τ (0.07).
        momentum: bank momentum m (0.5).
        loss: ``"nce"`` (AVID, Z frozen after the first call), ``"infonce"`` or ``"rince"``.
        rince_q, rince_q_end, rince_lam: RINCE q at epoch 0, q after annealing, λ.
        rince_anneal_epochs: epochs over which q goes from ``rince_q`` to ``rince_q_end``; ``None``
            = the run's ``max_epochs`` (given to :meth:`set_epoch`).
        hard_negatives: optional :class:`HardNegativeMixing` (``infonce`` / ``rince`` only).
        bank_seed: seed of the initial rows (video bank ``bank_seed``, audio ``bank_seed + 1``).
        negative_sampler: a :class:`~avssl.methods.memory_bank.UniformNegatives` (injectable).

    Buffers (all in ``state_dict()``): ``banks.{video,audio}.memory`` ``[N, D]``, ``partition``
    (Z, −1 until set), ``rince_q``, ``epoch``.
    """

    partition: Tensor
    rince_q: Tensor
    epoch: Tensor

    def __init__(
        self,
        num_items: int,
        groups: Groups,
        dim: int = 128,
        num_negatives: int = 1024,
        temperature: float = 0.07,
        momentum: float = 0.5,
        loss: str = "nce",
        rince_q: float = 0.001,
        rince_q_end: float = 0.4,
        rince_lam: float = 0.01,
        rince_anneal_epochs: int | None = None,
        hard_negatives: HardNegativeMixing | None = None,
        bank_seed: int = 0,
        negative_sampler: UniformNegatives | None = None,
    ) -> None:
        super().__init__()
        self._check_settings(num_items, groups, num_negatives, temperature, loss, rince_q,
                             rince_q_end, hard_negatives)
        total = sum(float(c) for c, _ in groups.values())
        self.groups = {g: (c / total, tuple(tasks)) for g, (c, tasks) in groups.items() if c > 0}
        self.num_items, self.dim, self.num_negatives = num_items, dim, num_negatives
        self.temperature, self.loss_kind = temperature, loss
        self.rince_q_start, self.rince_q_end, self.rince_lam = rince_q, rince_q_end, rince_lam
        self.rince_anneal_epochs = rince_anneal_epochs
        self.hard_negatives = hard_negatives
        self.negative_sampler = negative_sampler or UniformNegatives()
        self.banks = nn.ModuleDict({
            modality: MemoryBank(num_items, dim, momentum, seed=bank_seed + i)
            for i, modality in enumerate(MODALITIES)
        })
        self.register_buffer("partition", torch.tensor(-1.0))
        self.register_buffer("rince_q", torch.tensor(float(rince_q)))
        self.register_buffer("epoch", torch.tensor(0, dtype=torch.long))
        self._banks_synced = False

    def _check_settings(self, num_items: int, groups: Groups, num_negatives: int, temperature: float,
                        loss: str, rince_q: float, rince_q_end: float,
                        hard_negatives: HardNegativeMixing | None) -> None:
        name = type(self).__name__
        if loss not in LOSS_KINDS:
            raise ValueError(f"{name}: loss must be one of {LOSS_KINDS}, got {loss!r}")
        if not 1 <= num_negatives < num_items:
            raise ValueError(
                f"{name}: num_negatives must be in [1, num_items={num_items}), got {num_negatives}"
            )
        if temperature <= 0:
            raise ValueError(f"{name}: temperature must be positive, got {temperature}")
        if hard_negatives is not None and loss == "nce":
            raise ValueError(
                f"{name}: hard-negative mixing needs loss 'infonce' or 'rince' "
                "(NCE's Z assumes K real negatives)"
            )
        if loss == "rince" and not (0.0 <= rince_q <= 1.0 and 0.0 <= rince_q_end <= 1.0):
            raise ValueError(
                f"{name}: rince_q and rince_q_end must be in [0, 1], got {rince_q}, {rince_q_end}"
            )
        coefficients = {g: float(c) for g, (c, _) in groups.items()}
        if any(c < 0 for c in coefficients.values()) or sum(coefficients.values()) <= 0:
            raise ValueError(
                f"{name}: group coefficients must be >= 0 with a positive sum, got {coefficients}"
            )
        for _, tasks in groups.values():
            for task in tasks:
                if task.query not in MODALITIES or task.bank not in MODALITIES:
                    raise ValueError(f"{name}: task {task.name!r} must use modalities {MODALITIES}")

    # ----------------------------------------------------------------------------- hooks
    def set_epoch(self, epoch: int, max_epochs: int | None = None) -> None:
        """Record the epoch (hard-negative start) and anneal RINCE's q for it."""
        self.epoch.fill_(epoch)
        num_epochs = self.rince_anneal_epochs or max_epochs or 1
        self.rince_q.fill_(rince_q_schedule(epoch, self.rince_q_start, self.rince_q_end, num_epochs))

    @torch.no_grad()
    def load_official_state(self, train_criterion: Mapping[str, Tensor]) -> None:
        """Banks and Z from an AVID / AV-SSRL checkpoint's ``train_criterion`` state dict.

        Keys are matched by suffix: ``view1_mem`` (video bank), ``view2_mem`` (audio bank) and,
        when present, ``avg_exp_score`` (Z). Missing banks or a shape mismatch raise.
        """
        wanted = {"view1_mem": self.banks["video"].memory, "view2_mem": self.banks["audio"].memory}
        for suffix, target in wanted.items():
            found = [k for k in train_criterion if k.endswith(suffix)]
            if len(found) != 1:
                raise KeyError(
                    f"train_criterion: expected one key ending in {suffix!r}, found {found} "
                    f"among {sorted(train_criterion)}"
                )
            value = train_criterion[found[0]]
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(
                    f"train_criterion[{found[0]!r}]: shape {tuple(value.shape)}, "
                    f"expected {tuple(target.shape)} (num_items × dim)"
                )
            target.copy_(value)
        partition = [k for k in train_criterion if k.endswith("avg_exp_score")]
        if partition:
            self.partition.copy_(torch.as_tensor(train_criterion[partition[0]]).reshape(()))

    # -------------------------------------------------------------------- overridable rules
    def excluded(self, index: Tensor) -> Tensor:
        """Sorted ids each sample's negatives must avoid, ``[B, m]``: the instance itself."""
        return index[:, None]

    def positive_index(self, index: Tensor, kind: str) -> Tensor:
        """Bank rows that are positives, ``[B, P]``."""
        if kind == "instance":
            return index[:, None]
        raise ValueError(f"{type(self).__name__}: positives {kind!r} not available")

    # ------------------------------------------------------------------------- forward
    def forward(
        self, video_emb: Tensor, audio_emb: Tensor, index: Tensor, update_memory: bool | None = None
    ) -> dict[str, Tensor]:
        """Loss of one batch.

        Args:
            video_emb, audio_emb: ``[B, D]`` projection outputs (any norm; L2-normalised here).
            index: ``[B]`` dataset instance ids.
            update_memory: update the banks after scoring; default ``self.training``.

        Returns ``{"loss": scalar, "loss/<task>": ..., "loss/<group>": ...}`` (logs detached).
        """
        self._check_inputs(video_emb, audio_emb, index)
        update_memory = self.training if update_memory is None else update_memory
        if update_memory and not self._banks_synced:
            for bank in self.banks.values():
                bank.sync_from_rank0()
            self._banks_synced = True
        # Scores reach 1/τ ≈ 14 and Z is a mean of exponentials: keep all of it in float32.
        with torch.autocast(device_type=video_emb.device.type, enabled=False):
            queries = {
                "video": F.normalize(video_emb.float(), dim=1),
                "audio": F.normalize(audio_emb.float(), dim=1),
            }
            excluded = self.excluded(index)
            negatives = self.negative_sampler(self.num_items, excluded, self.num_negatives)  # [B, K]
            logs: dict[str, Tensor] = {}
            total = video_emb.new_zeros((), dtype=torch.float32)
            for group, (coefficient, tasks) in self.groups.items():
                losses = [self._task_loss(t, queries[t.query], index, negatives) for t in tasks]
                for task, value in zip(tasks, losses, strict=True):
                    logs[f"loss/{task.name}"] = value.detach()
                group_loss = torch.stack(losses).mean()
                logs[f"loss/{group}"] = group_loss.detach()
                total = total + coefficient * group_loss
        if update_memory:
            self.banks["video"].update(video_emb.detach(), index)
            self.banks["audio"].update(audio_emb.detach(), index)
        return {"loss": total, **logs}

    def _task_loss(self, task: ContrastTask, query: Tensor, index: Tensor, negatives: Tensor) -> Tensor:
        bank = self.banks[task.bank]
        if task.num_negatives is not None:
            negatives = negatives[:, : task.num_negatives]
        positives = self.positive_index(index, task.positives)
        positive = score_rows(query, bank, positives, self.temperature)  # [B, P]
        negative = score_rows(query, bank, negatives, self.temperature)  # [B, K]
        if self.loss_kind == "nce":
            partition = self.partition
            if float(partition) < 0:
                # AVID sets Z once, from the first task scored, and never again (pitfall 12). An
                # evaluation call before training (e.g. a sanity check) uses its estimate unstored.
                partition = distributed.all_reduce_mean(negative.detach().exp().mean())
                if self.training:
                    self.partition.copy_(partition)
            return nce_loss(positive, negative, partition)
        mixing = self.hard_negatives
        if mixing is not None and int(self.epoch) >= mixing.start_epoch:
            synthetic = mix_hard_negatives(query, bank, index, mixing)  # [B, S, D]
            mixed = torch.einsum("bd,bsd->bs", query, synthetic) / self.temperature  # [B, S]
            negative = torch.cat([negative, mixed], dim=1)
        if self.loss_kind == "infonce":
            return info_nce_loss(positive, negative)
        return rince_loss(positive, negative, float(self.rince_q), self.rince_lam)

    def _check_inputs(self, video_emb: Tensor, audio_emb: Tensor, index: Tensor) -> None:
        name = type(self).__name__
        for label, emb in (("video_emb", video_emb), ("audio_emb", audio_emb)):
            if emb.ndim != 2 or emb.shape[1] != self.dim:
                raise ValueError(f"{name}: {label} must be [B, {self.dim}], got {tuple(emb.shape)}")
        if video_emb.shape[0] != audio_emb.shape[0]:
            raise ValueError(
                f"{name}: video_emb and audio_emb batch sizes differ "
                f"({video_emb.shape[0]} vs {audio_emb.shape[0]})"
            )
        self.banks["video"].check_index(index, name)
        if index.shape[0] != video_emb.shape[0]:
            raise ValueError(
                f"{name}: index has {index.shape[0]} ids for a batch of {video_emb.shape[0]}"
            )
