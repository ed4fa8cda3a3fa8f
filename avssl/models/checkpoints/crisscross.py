"""CrissCross releases (spec §2.8).

Six ``{vid,aud}_crisscross_{kinetics_sound,kinetics_400,audioset}.pth.tar.zip`` archives, each holding
the ``.pth.tar`` that pretraining wrote with ``torch.save(model.module.{video,audio}_backbone.
state_dict())``: a **flat** backbone state dict, no prefix, no heads (the zip is opened by
:func:`avssl.models.checkpoints.read_checkpoint`). The official evaluation loads it strictly.

* video (201 entries): ``conv1.{0,1}.*``, ``conv{2..5}x.{0,1}.{spt,tmp}_{conv,bn}{1,2}.*``, ``out_bn``,
  ``conv{3,4,5}x.0.res_conv.weight`` — the same names as AVID's ``video_model``, so a bare AVID
  video state dict is read by this layout too;
* audio (120 entries): ``conv1.{0,1}.*``, ``block{1..4}.{0,1}.{conv1,bn1,conv2,bn2}.*``,
  ``block{2,3,4}.0.downsample.{0,1}.*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from avssl.models.checkpoints import CheckpointLayout, StateDict, register_layout


def _flat_with(obj: Any, *required: str) -> StateDict | None:
    if not isinstance(obj, Mapping) or not all(key in obj for key in required):
        return None
    return dict(obj)


def _extract_video(obj: Any, encoder: nn.Module) -> StateDict | None:
    return _flat_with(obj, "conv1.0.weight", "conv2x.0.spt_conv1.weight")


def _extract_audio(obj: Any, encoder: nn.Module) -> StateDict | None:
    return _flat_with(obj, "conv1.0.weight", "block1.0.conv1.weight")


register_layout(
    CheckpointLayout(
        name="crisscross-video",
        description=(
            "flat R(2+1)D-18 state dict in AVID/CrissCross names (vid_crisscross_*.pth.tar[.zip], "
            "or a bare AVID video_model state dict)"
        ),
        extract=_extract_video,
        modality="video",
    )
)
register_layout(
    CheckpointLayout(
        name="crisscross-audio",
        description="flat audio ResNet-18 state dict (aud_crisscross_*.pth.tar[.zip])",
        extract=_extract_audio,
        modality="audio",
    )
)
