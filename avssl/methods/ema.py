"""EMA teachers: frozen copies of student modules that follow them by exponential moving average.

Used by XKD (spec §4.3 step 8) and reusable by any teacher–student method:

* :func:`cosine_momentum` — the per-iteration schedule ``m(it) = 1 − (1 − m₀)(1 + cos(π·it/I))/2``
  (0.997 → 1 over the run in XKD);
* :class:`EMATeacher` — teacher copies of named groups of student modules, initialised from the
  students, without gradients, and updated in place by :meth:`EMATeacher.update`.

Sharing. Students may share sub-modules (XKD-MAS: one set of transformer blocks for the video and
the audio student). ``share_like_students=True`` copies all groups in one ``deepcopy``, which keeps
those sub-modules shared in the teacher too (XKD-MATS); ``False`` copies each group separately, so
every teacher group owns its weights (XKD, XKD-MAS). When a shared teacher tensor belongs to
several groups, the released XKD-MATS code updates it once per group — two EMA steps per iteration
for the shared blocks, an effective momentum ``m²`` — which is the default
(``update_shared_once=False``); ``True`` updates each teacher tensor exactly once.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from avssl.train.schedules import cosine_decay


def cosine_momentum(step: int, max_steps: int, base: float = 0.997, final: float = 1.0) -> float:
    """Teacher momentum at optimiser step ``step`` (0-based) of ``max_steps``: a half cosine from
    ``base`` (step 0) to ``final`` (step ``max_steps`` and after), DINO/BYOL style."""
    if max_steps <= 0:
        raise ValueError(f"max_steps must be positive, got {max_steps}")
    return cosine_decay(step, max_steps, base, final)


@torch.no_grad()
def ema_update_(teacher: list[Tensor], student: list[Tensor], momentum: float) -> None:
    """In place, for every pair: ``t ← m·t + (1 − m)·s`` (one fused multi-tensor kernel each)."""
    if len(teacher) != len(student):
        raise ValueError(f"ema_update_: {len(teacher)} teacher tensors but {len(student)} student tensors")
    if not teacher:
        return
    torch._foreach_mul_(teacher, momentum)
    torch._foreach_add_(teacher, [s.detach() for s in student], alpha=1 - momentum)


class EMATeacher(nn.Module):
    """Frozen EMA copies of named groups of student modules.

    Args:
        students: ``{group name: student module}`` (e.g. ``{"video": ModuleDict(encoder=…, head=…)}``).
            The students are copied, not registered, so they stay owned by the caller.
        share_like_students: copy all groups in one ``deepcopy`` so that sub-modules shared
            between student groups are shared between teacher groups as well.

    ``teacher[name]`` returns the teacher copy of a group. Teacher parameters have
    ``requires_grad=False``; buffers are copied at construction and not averaged.
    """

    def __init__(self, students: Mapping[str, nn.Module], share_like_students: bool = False) -> None:
        super().__init__()
        if share_like_students:
            copies = copy.deepcopy(nn.ModuleDict(dict(students)))
        else:
            copies = nn.ModuleDict({name: copy.deepcopy(module) for name, module in students.items()})
        self.groups = copies
        self.groups.requires_grad_(False)

    def __getitem__(self, name: str) -> nn.Module:
        return self.groups[name]

    def names(self) -> list[str]:
        return list(self.groups.keys())

    @torch.no_grad()
    def update(
        self, students: Mapping[str, nn.Module], momentum: float, update_shared_once: bool = False
    ) -> None:
        """EMA step of every group, in the order of ``students`` (XKD: video, then audio).

        ``students`` must hold the same groups, with the same structure, as at construction.
        With ``update_shared_once`` a teacher tensor reached again through a later group is skipped.
        """
        if set(students) != set(self.groups.keys()):
            raise KeyError(f"EMATeacher.update: groups {sorted(students)} != {sorted(self.groups.keys())}")
        done: set[int] = set()
        for name, student in students.items():
            pairs = list(zip(self.groups[name].parameters(), student.parameters(), strict=True))
            if update_shared_once:
                pairs = [(t, s) for t, s in pairs if id(t) not in done]
                done.update(id(t) for t, _ in pairs)
            ema_update_([t for t, _ in pairs], [s for _, s in pairs], momentum)
