"""XDC releases (spec §1.6): ``r2plus1d_18_{xdc_ig65m_kinetics,xdc_ig65m_random,xdc_audioset,
fs_kinetics,fs_imagenet}-<sha256[:8]>.pth``.

Each is a flat state dict in torchvision ``VideoResNet`` names (``stem.*``, ``layer{1..4}.*``,
maybe ``fc.*``), no prefix. The official loader uses ``load_state_dict(strict=False)`` and the README
says ``fc`` is not loaded (the cluster heads were never shared), so a file may lack ``fc.*`` and
``*.num_batches_tracked``: both are optional here. Everything else is checked strictly — the fix
spec §1.6 asks for instead of ``strict=False``.

``fc.*`` found in a file is kept only when the encoder has an ``fc`` of the same shape; for an
encoder without ``fc`` (``num_classes=None``) or with another class count it is dropped, which is
XDC's "fc re-initialised" behaviour (``LoadReport.absent_optional_keys`` then lists ``fc.*``).
Weights of torchvision's own ``r2plus1d_18`` use the same names but other shapes
(``layer{2,3,4}.0.conv2``); they are reported as wrongly shaped, not loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from avssl.models.checkpoints import CheckpointLayout, StateDict, register_layout

CLASSIFIER_KEYS = ("fc.weight", "fc.bias")


def is_optional(key: str) -> bool:
    """Keys an XDC file may lack: the classifier and BatchNorm batch counters."""
    return key in CLASSIFIER_KEYS or key.endswith("num_batches_tracked")


def _extract(obj: Any, encoder: nn.Module) -> StateDict | None:
    if not isinstance(obj, Mapping) or "stem.0.weight" not in obj:
        return None
    if not any(str(k).startswith("layer1.") for k in obj):
        return None
    own = encoder.state_dict()
    state = dict(obj)
    for key in CLASSIFIER_KEYS:
        if key in state and (key not in own or own[key].shape != state[key].shape):
            del state[key]
    return state


register_layout(
    CheckpointLayout(
        name="xdc",
        description=(
            "XDC / VMZ flat R(2+1)D-18 state dict in torchvision VideoResNet names "
            "(stem.*, layer*.*, optional fc.* and num_batches_tracked)"
        ),
        extract=_extract,
        optional=is_optional,
        modality="video",
    )
)
