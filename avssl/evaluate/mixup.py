"""Mixup / CutMix with label smoothing for fine-tuning (XKD, spec §4.6).

XKD's video fine-tuning mixes every batch (``prob 1``, batch mode): with probability
``switch_prob`` CutMix, else Mixup; targets are label-smoothed one-hot vectors mixed with the same
weight, and the loss is soft-target cross-entropy. UCF101 / K400 use mixup α 0.6, cutmix α 0.5;
HMDB51 1.0 / 1.0; label smoothing 0.1.

One CutMix box is cut per batch over the spatial axes (every frame of a clip, every clip of the
batch), pasted from the batch in reverse order; the mixing weight is corrected to the box's true
area after clipping at the borders. Works for video ``[B, C, T, H, W]`` and spectrograms
``[B, 1, F, T]`` (the box spans the last two axes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def smoothed_one_hot(labels: Tensor, num_classes: int, smoothing: float) -> Tensor:
    """``[B]`` integer labels → ``[B, num_classes]`` with ``1 − s + s/C`` on the label, ``s/C`` elsewhere."""
    off = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return targets.scatter_(1, labels.unsqueeze(1), 1.0 - smoothing + off)


def soft_target_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over the batch of ``−Σ_c targets · log_softmax(logits)``; ``[B, C]`` each."""
    return torch.sum(-targets * F.log_softmax(logits.float(), dim=-1), dim=-1).mean()


@dataclass(frozen=True)
class MixupCutmix:
    """Batch-mode Mixup/CutMix (module docstring). ``alpha = 0`` disables that branch."""

    num_classes: int
    mixup_alpha: float = 0.6
    cutmix_alpha: float = 0.5
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ValueError(f"MixupCutmix: alphas must be >= 0, got {self.mixup_alpha}, {self.cutmix_alpha}")
        if not 0 <= self.prob <= 1 or not 0 <= self.switch_prob <= 1:
            raise ValueError(
                f"MixupCutmix: prob and switch_prob must lie in [0, 1], got {self.prob}, {self.switch_prob}"
            )

    def _draw(self, generator: torch.Generator | None) -> tuple[float, bool]:
        """``(lam, use_cutmix)``; ``lam = 1`` means "leave the batch as it is"."""
        if torch.rand((), generator=generator).item() >= self.prob:
            return 1.0, False
        use_cutmix = self.cutmix_alpha > 0 and (
            self.mixup_alpha == 0 or torch.rand((), generator=generator).item() < self.switch_prob
        )
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        if alpha == 0:
            return 1.0, False
        # torch's Beta sampler takes no generator; draw it with numpy, seeded from the generator's stream.
        seed = int(torch.randint(0, 2**31 - 1, (), generator=generator).item())
        lam = float(np.random.default_rng(seed).beta(alpha, alpha))
        return lam, use_cutmix

    def __call__(self, x: Tensor, labels: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Mixed inputs (same shape as ``x``) and soft targets ``[B, num_classes]``."""
        lam, use_cutmix = self._draw(generator)
        targets = smoothed_one_hot(labels, self.num_classes, self.label_smoothing)
        if lam >= 1.0:
            return x, targets
        flipped = x.flip(0)
        if use_cutmix:
            x, lam = self._paste_box(x, flipped, lam, generator)
        else:
            x = x * lam + flipped * (1.0 - lam)
        return x, targets * lam + targets.flip(0) * (1.0 - lam)

    @staticmethod
    def _paste_box(x: Tensor, flipped: Tensor, lam: float, generator: torch.Generator | None) -> tuple[Tensor, float]:
        height, width = x.shape[-2:]
        cut = (1.0 - lam) ** 0.5
        box_h, box_w = int(height * cut), int(width * cut)
        cy = int(torch.randint(0, height, (), generator=generator).item())
        cx = int(torch.randint(0, width, (), generator=generator).item())
        top, bottom = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
        left, right = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
        mixed = x.clone()
        mixed[..., top:bottom, left:right] = flipped[..., top:bottom, left:right]
        area = (bottom - top) * (right - left)
        return mixed, 1.0 - area / float(height * width)
