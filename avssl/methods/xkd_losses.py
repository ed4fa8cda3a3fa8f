"""The three loss terms of XKD (spec §4.3 steps 1, 5, 6): reconstruction, alignment, distillation.

All of them compute in float32 with autocast switched off: the Gaussian MMD with γ = 1000 and the
DINO soft-max at τ = 0.07 are far outside what bf16/fp16 resolves, and the inputs here are small
(B×8192 at most), so the cost is negligible.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avssl.methods.distributed import all_reduce_mean

MMD_GAMMAS: tuple[float, ...] = (1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0)
AlignmentKind = Literal["mmd", "mean_cov"]


def autocast_off(device: torch.device) -> AbstractContextManager:
    """A region where autocast is off on ``device`` (a no-op where autocast does not exist, e.g. meta)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return nullcontext()


@contextmanager
def _float32(*tensors: Tensor):
    """Autocast off on the tensors' device; yields the tensors as float32."""
    with autocast_off(tensors[0].device):
        yield tuple(t.float() for t in tensors)


# -- step 1: masked reconstruction --------------------------------------------------------------


def masked_reconstruction_loss(pred: Tensor, target: Tensor, mask: Tensor, norm_pix: bool = True) -> Tensor:
    """MSE per patch, averaged over the **masked** patches only (MAE ``forward_loss``).

    Args:
        pred: ``B×N×P`` decoder predictions.
        target: ``B×N×P`` raw patches in token order (``patchify`` of the input).
        mask: ``B×N``, 1 = masked (removed), 0 = visible.
        norm_pix: normalise each target patch as ``(t − μ)/sqrt(var + 1e-6)`` with the
            **unbiased** variance over its ``P`` values (``norm_pix_loss``, on in XKD).
    """
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(
            f"masked_reconstruction_loss: pred {tuple(pred.shape)}, target {tuple(target.shape)} "
            f"and mask {tuple(mask.shape)} do not fit (want B×N×P, B×N×P, B×N)"
        )
    with _float32(pred, target, mask) as (pred, target, mask):
        if norm_pix:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)  # unbiased, as the released code
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = (pred - target).pow(2).mean(dim=-1)  # [B, N]
        return (per_patch * mask).sum() / mask.sum()


# -- step 5: domain alignment -------------------------------------------------------------------


def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """``|x|² + |y|² − 2x·y`` for every row pair, clamped at 1e-30: ``M×D, K×D → M×K``.

    The expanded form (not ``torch.cdist``) is what the released loss uses; with γ up to 1000 its
    rounding on the diagonal is part of the reference numbers.
    """
    x_sq = x.pow(2).sum(dim=-1, keepdim=True)  # [M, 1]
    y_sq = y.pow(2).sum(dim=-1, keepdim=True)  # [K, 1]
    return torch.addmm(y_sq.T, x, y.T, alpha=-2).add_(x_sq).clamp_min_(1e-30)


def gaussian_mmd(x: Tensor, y: Tensor, gammas: Sequence[float] = MMD_GAMMAS) -> Tensor:
    """Multi-kernel Gaussian MMD (DomainBed form): ``mean k(X,X) + mean k(Y,Y) − 2 mean k(X,Y)``
    with ``k(a, b) = Σ_γ exp(−γ‖a − b‖²)``. ``x`` ``M×D``, ``y`` ``K×D`` → scalar."""

    def kernel_mean(a: Tensor, b: Tensor) -> Tensor:
        dist = squared_distances(a, b)
        return sum(torch.exp(-g * dist) for g in gammas).mean()

    with _float32(x, y) as (x, y):
        return kernel_mean(x, x) + kernel_mean(y, y) - 2 * kernel_mean(x, y)


def coral_distance(x: Tensor, y: Tensor) -> Tensor:
    """CORAL (``mean_cov``): mean squared difference of the means plus of the (unbiased)
    covariances. ``x`` ``M×D``, ``y`` ``K×D`` → scalar."""
    with _float32(x, y) as (x, y):
        mean_x, mean_y = x.mean(0, keepdim=True), y.mean(0, keepdim=True)
        cent_x, cent_y = x - mean_x, y - mean_y
        cov_x = cent_x.T @ cent_x / (x.shape[0] - 1)  # [D, D]
        cov_y = cent_y.T @ cent_y / (y.shape[0] - 1)
        return (mean_x - mean_y).pow(2).mean() + (cov_x - cov_y).pow(2).mean()


def alignment_distance(x: Tensor, y: Tensor, kind: AlignmentKind = "mmd") -> Tensor:
    """Distance between the video and audio output distributions (``align_loss`` of the config)."""
    if kind == "mmd":
        return gaussian_mmd(x, y)
    if kind == "mean_cov":
        return coral_distance(x, y)
    raise ValueError(f"alignment kind must be 'mmd' or 'mean_cov', got {kind!r}")


# -- step 6: cross-modal distillation -----------------------------------------------------------


class CrossModalDistillLoss(nn.Module):
    """DINO cross-entropy from one modality's teacher to the other modality's student views.

    ``ℓ = mean over (teacher view, student view) pairs of batch-mean
    [−Σ_d softmax((t − c)/τ_t)_d · log softmax(s/τ_s)_d]``, with **no** same-view exclusion (the
    views belong to different modalities). After each call the centre moves towards the teacher
    batch mean, all-reduced over ranks: ``c ← m·c + (1 − m)·mean(t)``; it starts at zero.

    Args:
        out_dim: head output width (8192).
        center_momentum: ``m`` (0.9).

    Shapes: ``student`` ``(V_s·B)×D`` (rows grouped by view), ``teacher`` ``(V_t·B)×D``.
    """

    def __init__(self, out_dim: int, center_momentum: float = 0.9) -> None:
        super().__init__()
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(
        self,
        student: Tensor,
        teacher: Tensor,
        student_temp: float,
        teacher_temp: float,
        num_student_views: int,
        num_teacher_views: int = 1,
    ) -> Tensor:
        for name, out, views in (("student", student, num_student_views), ("teacher", teacher, num_teacher_views)):
            if out.ndim != 2 or out.shape[0] % views != 0 or out.shape[1] != self.center.shape[1]:
                raise ValueError(
                    f"CrossModalDistillLoss: {name} output {tuple(out.shape)} is not "
                    f"({views}·B)×{self.center.shape[1]}"
                )
        with _float32(student, teacher.detach()) as (student, teacher):
            log_p = F.log_softmax(student / student_temp, dim=-1).chunk(num_student_views)
            q = F.softmax((teacher - self.center) / teacher_temp, dim=-1).chunk(num_teacher_views)
            terms = [(-tq * sp).sum(dim=-1).mean() for tq in q for sp in log_p]
            loss = torch.stack(terms).mean()
            self.update_center(teacher)
        return loss

    @torch.no_grad()
    def update_center(self, teacher: Tensor) -> None:
        """``c ← m·c + (1 − m)·mean(t)`` with the batch mean averaged over ranks."""
        batch_center = all_reduce_mean(teacher.mean(dim=0, keepdim=True))
        self.center.mul_(self.center_momentum).add_(batch_center, alpha=1 - self.center_momentum)


def teacher_temperature(epoch: int, start: float, final: float, warmup_epochs: int) -> float:
    """DINO teacher-temperature warm-up: ``linspace(start, final, warmup_epochs)[epoch]``, then
    ``final`` (XKD: constant 0.1 video / 0.07 audio; MAS: 0.09→0.11 and 0.04→0.06 over 30 epochs)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if epoch >= warmup_epochs:
        return final
    if warmup_epochs == 1:
        return start
    return start + (final - start) * epoch / (warmup_epochs - 1)
