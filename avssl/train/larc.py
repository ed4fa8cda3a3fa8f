"""LARC: layer-wise adaptive rate control around any optimiser, as CrissCross uses it (spec §2.6).

For every parameter ``w`` with gradient ``g`` in a group with learning rate ``lr`` and weight decay
``wd``, when ``‖w‖ > 0`` and ``‖g‖ > 0``::

    r = η·‖w‖ / (‖g‖ + wd·‖w‖ + eps)          (η = trust_coefficient, 0.001)
    r = min(r / lr, 1)                          (clip=True: LARC only ever lowers the step)
    g ← (g + wd·w) · r                          (weight decay moves into the gradient)

and the wrapped optimiser then steps with weight decay 0 (restored afterwards, so schedules and
checkpoints see the configured value). Parameters with a zero weight or gradient norm keep their
gradient untouched and get no weight decay on that step, as in the original. Under Adam the
rescaling is largely normalised away (§2.6); it is reproduced for exactness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer


class LARC(Optimizer):
    """Wrap ``optimizer`` with LARC. Shares its ``param_groups`` and ``state`` (so LR schedules,
    ``GradScaler`` and Lightning see one optimiser) and delegates ``state_dict``.

    Args:
        optimizer: the inner optimiser (Adam in CrissCross).
        trust_coefficient: η (0.001).
        clip: ``True`` → the adaptive rate is ``min(r / lr, 1)``; ``False`` → the gradient is scaled
            by ``r`` itself (the "scale" mode of LARS).
        eps: added to the denominator (1e-8).
    """

    def __init__(
        self, optimizer: Optimizer, trust_coefficient: float = 1e-3, clip: bool = True, eps: float = 1e-8
    ) -> None:
        if trust_coefficient <= 0:
            raise ValueError(f"LARC: trust_coefficient must be > 0, got {trust_coefficient}")
        self.optimizer = optimizer
        self.trust_coefficient = trust_coefficient
        self.clip = clip
        self.eps = eps
        # Optimizer.__init__ re-registers the same group dicts (not copies), so a change of
        # group["lr"] made through either object is seen by both.
        super().__init__(optimizer.param_groups, optimizer.defaults)
        self.state = optimizer.state

    def __repr__(self) -> str:
        return f"LARC(trust_coefficient={self.trust_coefficient}, clip={self.clip}, eps={self.eps}, {self.optimizer!r})"

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state_dict)
        # load_state_dict rebuilds the group dicts: share the new ones again.
        self.param_groups = self.optimizer.param_groups
        self.state = self.optimizer.state

    @torch.no_grad()
    def apply_adaptive_rates(self) -> list[float]:
        """Rewrite every gradient in place (formula above); returns the groups' weight decays,
        which are set to 0 until :meth:`step` restores them."""
        weight_decays = []
        for group in self.param_groups:
            weight_decay = group.get("weight_decay", 0.0)
            weight_decays.append(weight_decay)
            group["weight_decay"] = 0.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                param_norm = torch.linalg.vector_norm(p)
                grad_norm = torch.linalg.vector_norm(p.grad)
                if param_norm == 0 or grad_norm == 0:
                    continue
                rate = self.trust_coefficient * param_norm / (grad_norm + weight_decay * param_norm + self.eps)
                if self.clip:
                    rate = torch.clamp(rate / group["lr"], max=1.0) if group["lr"] > 0 else torch.ones_like(rate)
                p.grad.add_(p, alpha=weight_decay).mul_(rate)
        return weight_decays

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        weight_decays = self.apply_adaptive_rates()
        try:
            self.optimizer.step()
        finally:
            for group, weight_decay in zip(self.param_groups, weight_decays):
                group["weight_decay"] = weight_decay
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)
