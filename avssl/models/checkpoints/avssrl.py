"""AV-SSRL checkpoints (xID and AV-VICReg; spec §3B.2, §3B.6).

Same outer layout as AVID (``{'epoch','model','optimizer','train_criterion'}``, DDP ``module.``
prefix) and the same networks, but the video blocks are named ``spatial_conv1/spatial_bn1/
temporal_conv1/...`` instead of AVID's ``spt_conv1/spt_bn1/tmp_conv1/...``; audio keys are AVID's.
xID files carry ``{video,audio}_proj.projection.*`` heads, VICReg files ``{video,audio}_exp.expansion.*``
(both dropped). The released files sit on Google Drive (README); the format is the training
checkpoint that the code writes and reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from avssl.models.checkpoints import CheckpointLayout, StateDict, register_layout
from avssl.models.checkpoints.avid import is_avssrl_state, select_component, wrapper_state

# AV-SSRL key fragment -> AVID / CrissCross key fragment (spec §3B.2 table)
AVSSRL_TO_AVID = {
    ".spatial_conv": ".spt_conv",
    ".spatial_bn": ".spt_bn",
    ".temporal_conv": ".tmp_conv",
    ".temporal_bn": ".tmp_bn",
}


def rename_avssrl_keys(state: Mapping[str, Any]) -> StateDict:
    """AV-SSRL block names -> our (AVID) names; other keys unchanged."""
    renamed = {}
    for key, value in state.items():
        for old, new in AVSSRL_TO_AVID.items():
            key = key.replace(old, new)
        renamed[key] = value
    return renamed


def _extract(obj: Any, encoder: nn.Module) -> StateDict | None:
    state = wrapper_state(obj)
    if state is None or not is_avssrl_state(state):
        return None
    component = select_component(state, encoder, "avssrl")
    return None if component is None else rename_avssrl_keys(component)


register_layout(
    CheckpointLayout(
        name="avssrl",
        description=(
            "AV-SSRL xID / VICReg training checkpoint (AVID layout, video keys spatial_*/temporal_* "
            "renamed to spt_*/tmp_*); the component matching the encoder's modality is loaded"
        ),
        extract=_extract,
    )
)
