"""AVID / AVID-CMA checkpoints (spec §3A.5, §3A.6).

A released file is the training checkpoint ``{'epoch', 'model', 'optimizer', 'train_criterion'}``;
``model`` is the state dict of the DDP-wrapped ``AV_Wrapper``: ``module.video_model.*``,
``module.audio_model.*``, ``module.{video,audio}_proj.projection.{0,2,4}.*``. The official evaluation
strips every ``module.`` and loads strictly, then keeps ``video_model`` (or ``audio_model``). We pick
the component that matches the target encoder's ``modality`` and drop the projection heads.

AV-SSRL writes the same outer layout with renamed video keys; :func:`is_avssrl_state` tells them
apart so that each family is claimed by its own layout (``avssrl.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from avssl.models.checkpoints import CheckpointError, CheckpointLayout, StateDict, register_layout

COMPONENT_PREFIXES = ("video_model.", "audio_model.")


def wrapper_state(obj: Any) -> StateDict | None:
    """The AV wrapper's state dict with every ``module.`` removed, or ``None`` if ``obj`` is none.

    Accepts the training checkpoint (state under ``'model'``) or the bare wrapper state dict, with
    or without the DDP prefix.
    """
    if not isinstance(obj, Mapping):
        return None
    state = obj.get("model") if isinstance(obj.get("model"), Mapping) else obj
    # the official loader does k.replace('module.', ''): every occurrence, not only a prefix
    stripped = {str(k).replace("module.", ""): v for k, v in state.items()}
    if not any(k.startswith(COMPONENT_PREFIXES) for k in stripped):
        return None
    return stripped


def is_avssrl_state(state: Mapping[str, Any]) -> bool:
    """AV-SSRL names its video convs ``spatial_*/temporal_*`` and its VICReg heads ``*_exp``."""
    return any(
        ".spatial_conv" in k or ".temporal_conv" in k or k.startswith(("video_exp.", "audio_exp."))
        for k in state
    )


def select_component(state: Mapping[str, Any], encoder: nn.Module, layout: str) -> StateDict | None:
    """Entries of ``{modality}_model.`` with that prefix removed; ``None`` if the encoder has no
    ``modality``. Raises :class:`CheckpointError` when the checkpoint lacks that component."""
    modality = getattr(encoder, "modality", None)
    if modality not in ("video", "audio"):
        return None
    prefix = f"{modality}_model."
    component = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not component:
        groups = sorted({k.split(".", 1)[0] for k in state})
        raise CheckpointError(
            f"{layout}: no '{prefix}*' entries for a {modality} encoder; the checkpoint holds "
            f"{', '.join(groups)}"
        )
    return component


def _extract_avid(obj: Any, encoder: nn.Module) -> StateDict | None:
    state = wrapper_state(obj)
    if state is None or is_avssrl_state(state):
        return None
    return select_component(state, encoder, "avid")


def _extract_flat_conv2d(obj: Any, encoder: nn.Module) -> StateDict | None:
    # A bare `audio_model.state_dict()` of Conv2D-10: plain blocks have no ".0." index, unlike the
    # ResNet blocks of CrissCross ("block1.0.conv1.weight").
    if not isinstance(obj, Mapping) or "block1.conv1.weight" not in obj or "conv1.0.weight" not in obj:
        return None
    return dict(obj)


register_layout(
    CheckpointLayout(
        name="avid",
        description=(
            "AVID / AVID-CMA training checkpoint {'epoch','model','optimizer','train_criterion'}, "
            "model keys 'module.{video,audio}_model.*' (+ projection heads, dropped); the component "
            "matching the encoder's modality is loaded"
        ),
        extract=_extract_avid,
    )
)
register_layout(
    CheckpointLayout(
        name="avid-conv2d-flat",
        description="bare state dict of AVID's audio Conv2D-10 (conv1.*, block{1..4}.{conv,bn}{1,2}.*)",
        extract=_extract_flat_conv2d,
        modality="audio",
    )
)
