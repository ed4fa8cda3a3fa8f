"""XKD's released ViT-B backbones (spec §4.5) → :class:`avssl.models.vit.ViTEncoder`.

Each released ``<prefix>{vid,aud}_{student,teacher}.pth.tar`` is a flat state dict (no wrapper, no
prefix, 138 entries) with the *training-side* names of ``MultiViewWrapper.backbone``:
``cls_token``, ``enc_pos_embed``, ``cuboid_embed.proj.*`` (video) or ``patch_embed.proj.*`` (audio),
``encoder.blocks.{0..11}.*`` and ``encoder_norm.*``. XKD's evaluation renames them with
:data:`EVAL_KEY_MAP` before a strict load; our encoders use the evaluation names, so that map is the
whole adapter. Flat dicts already in evaluation names are accepted too (layout ``xkd_eval``).

The file's modality is read from the file itself (``cuboid_embed`` means video; in evaluation names
the position-embedding length, 393 video / 561 audio), and loading a video file into an audio
encoder, or the reverse, is refused with an explicit message instead of a list of shape mismatches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from avssl.models.checkpoints import CheckpointError, CheckpointLayout, StateDict, register_layout
from avssl.models.vit import ViTEncoder

# Applied in order to every key, as XKD's evaluation engine does (spec §4.5; fixture eval_key_map).
EVAL_KEY_MAP: tuple[tuple[str, str], ...] = (
    ("encoder.", ""),
    ("encoder_", ""),
    ("enc_pos_embed", "pos_embed"),
    ("cuboid_embed", "patch_embed"),  # video only; audio already says patch_embed
)
# Position-embedding lengths (1 + tokens) of the released ViT-B backbones.
VIDEO_POS_LEN = 1 + 8 * 7 * 7
AUDIO_POS_LEN = 1 + 20 * 28


def eval_key(train_key: str) -> str:
    """XKD training-side key → evaluation key (``encoder.blocks.3.attn.qkv.weight`` → ``blocks.3…``)."""
    for old, new in EVAL_KEY_MAP:
        train_key = train_key.replace(old, new)
    return train_key


def _flat_tensor_dict(obj: Any) -> Mapping[str, torch.Tensor] | None:
    if not isinstance(obj, Mapping) or not obj:
        return None
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return None
    return obj


# Recognise a layout by its distinctive names only; a file of the layout that lacks some keys is
# still taken, so that the strict loader lists exactly what is missing.
def _is_training_side(state: Mapping[str, torch.Tensor]) -> bool:
    return "enc_pos_embed" in state or any(k.startswith("encoder.blocks.") for k in state)


def _is_eval_side(state: Mapping[str, torch.Tensor]) -> bool:
    return "pos_embed" in state and any(k.startswith("blocks.") for k in state)


def _training_side_modality(state: Mapping[str, torch.Tensor]) -> str | None:
    if "cuboid_embed.proj.weight" in state:
        return "video"
    if "patch_embed.proj.weight" in state:
        return "audio"
    return None


def _eval_side_modality(state: Mapping[str, torch.Tensor]) -> str | None:
    # Evaluation names are the same for both modalities; the released grids tell them apart.
    pos_embed = state["pos_embed"]
    length = pos_embed.shape[1] if pos_embed.ndim == 3 else None
    return {VIDEO_POS_LEN: "video", AUDIO_POS_LEN: "audio"}.get(length)


def _refuse_other_modality(file_modality: str | None, evidence: str, encoder: ViTEncoder) -> None:
    if file_modality is not None and file_modality != encoder.modality:
        wanted = "vid_*" if encoder.modality == "video" else "aud_*"
        raise CheckpointError(
            f"XKD checkpoint holds a {file_modality} encoder ({evidence}) but the target "
            f"{encoder.name} encodes {encoder.modality}; load the matching {wanted}.pth.tar file"
        )


def extract_released(obj: Any, encoder: nn.Module) -> StateDict | None:
    """Released training-side backbone dict → our (evaluation) names, or ``None`` if not this layout."""
    state = _flat_tensor_dict(obj)
    if not isinstance(encoder, ViTEncoder) or state is None or not _is_training_side(state):
        return None
    modality = _training_side_modality(state)
    evidence = "key cuboid_embed.proj.weight" if modality == "video" else "key patch_embed.proj.weight"
    _refuse_other_modality(modality, evidence, encoder)
    return {eval_key(k): v for k, v in state.items()}


def extract_eval_names(obj: Any, encoder: nn.Module) -> StateDict | None:
    """Flat dict already in XKD evaluation names (= ours), or ``None`` if not this layout."""
    state = _flat_tensor_dict(obj)
    if not isinstance(encoder, ViTEncoder) or state is None or not _is_eval_side(state):
        return None
    modality = _eval_side_modality(state)
    _refuse_other_modality(modality, f"pos_embed {tuple(state['pos_embed'].shape)}", encoder)
    return dict(state)


register_layout(
    CheckpointLayout(
        name="xkd_backbone",
        description="XKD released {vid,aud}_{student,teacher}.pth.tar: flat training-side ViT-B "
        "backbone (cls_token, enc_pos_embed, cuboid_embed/patch_embed, encoder.blocks.*, encoder_norm)",
        extract=extract_released,
    )
)
register_layout(
    CheckpointLayout(
        name="xkd_eval",
        description="XKD ViT backbone already in evaluation names (cls_token, pos_embed, "
        "patch_embed.proj, blocks.*, norm)",
        extract=extract_eval_names,
    )
)
