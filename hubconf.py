"""torch.hub entry points for avssl's encoders and the official releases.

    import torch
    model = torch.hub.load("OWNER/avssl", "xdc_video_encoder")                 # as XDC's own hubconf
    video = torch.hub.load("OWNER/avssl", "crisscross_encoder", pretraining="crisscross_kinetics400_video")
    audio = torch.hub.load("OWNER/avssl", "avid_encoder", modality="audio")
    any_ = torch.hub.load(".", "encoder", name="r2plus1d_small", source="local")

Weights come from :mod:`avssl.models.zoo` (downloaded into ``torch.hub.get_dir()/checkpoints`` and
verified where a hash is published); every load is strict (spec §1.6, pitfall 4). ``pretraining=None``
gives a randomly initialised network. Releases without a stable URL (AV-SSRL, XKD) take
``checkpoint_path=`` to a file downloaded by hand.
"""

from __future__ import annotations

from torch import nn

from avssl.models import zoo
from avssl.models.checkpoints import load_checkpoint
from avssl.models.registry import create_encoder

dependencies = ["torch", "torchvision"]


def _from_release(entry_name: str, modality: str | None, progress: bool,
                  checkpoint_path: str | None = None, **kwargs) -> nn.Module:
    """Encoder of zoo entry ``entry_name`` loaded from ``checkpoint_path`` or the fetched file."""
    entry = zoo.get_entry(entry_name)
    _, encoder_name = zoo.encoder_for(entry, modality)
    path = checkpoint_path if checkpoint_path is not None else zoo.fetch(entry_name, progress=progress)
    return create_encoder(encoder_name, checkpoint_path=path, **kwargs)


def xdc_video_encoder(
    pretraining: str | None = "r2plus1d_18_xdc_ig65m_kinetics",
    progress: bool = True,
    num_classes: int | None = 400,
    **kwargs,
) -> nn.Module:
    """XDC's R(2+1)D-18 as ``xdc.xdc_video_encoder`` builds it, working on current torchvision.

    ``pretraining``: one of XDC's keys (``r2plus1d_18_xdc_ig65m_kinetics`` (default),
    ``r2plus1d_18_xdc_ig65m_random``, ``r2plus1d_18_xdc_audioset``, ``r2plus1d_18_fs_kinetics``,
    ``r2plus1d_18_fs_imagenet``) or ``None`` for random weights. As in XDC, ``fc`` (``num_classes``
    outputs, 400 by default; ``None`` for no fc and 512-d features) is freshly initialised unless the
    file holds one of the same shape; every other layer must load — only ``fc.*`` (and BN batch
    counters) may be missing, anything else missing, unexpected or wrongly shaped is an error.
    ``kwargs`` go to the model (``bn_eps``, ``bn_momentum``).
    """
    model = create_encoder("r2plus1d_18_vmz", num_classes=num_classes, **kwargs)
    if pretraining is not None:
        entry = zoo.get_entry(pretraining)
        if entry.method != "xdc":
            raise ValueError(f"{pretraining!r} is not an XDC release; see `avssl zoo list --method xdc`")
        load_checkpoint(model, zoo.fetch(pretraining, progress=progress))
    return model


def avid_encoder(pretraining: str | None = "avid_cma_kinetics400", modality: str = "video",
                 progress: bool = True, checkpoint_path: str | None = None, **kwargs) -> nn.Module:
    """AVID / AVID-CMA encoder (``r2plus1d_18_avid`` or ``audio_conv2d10_avid``); releases
    ``avid_kinetics400``, ``avid_cma_kinetics400``, ``avid_audioset``, ``avid_cma_audioset``."""
    if pretraining is None:
        return create_encoder("r2plus1d_18_avid" if modality == "video" else "audio_conv2d10_avid", **kwargs)
    return _from_release(pretraining, modality, progress, checkpoint_path, **kwargs)


def crisscross_encoder(pretraining: str | None = "crisscross_kinetics400_video", progress: bool = True,
                       checkpoint_path: str | None = None, **kwargs) -> nn.Module:
    """CrissCross encoder; releases ``crisscross_{kinetics_sound,kinetics400,audioset}_{video,audio}``.
    Pass ``pool="max"`` for the fine-tuning configuration of the video encoder."""
    if pretraining is None:
        return create_encoder("r2plus1d_18_crisscross", **kwargs)
    return _from_release(pretraining, None, progress, checkpoint_path, **kwargs)


def avssrl_encoder(pretraining: str = "avssrl_xid_vggsound50k", modality: str = "video",
                   checkpoint_path: str | None = None, **kwargs) -> nn.Module:
    """AV-SSRL xID / AV-VICReg encoder. The releases are on Google Drive: download by hand and pass
    ``checkpoint_path``; without it the network is randomly initialised."""
    if checkpoint_path is None:
        _, name = zoo.encoder_for(zoo.get_entry(pretraining), modality)
        return create_encoder(name, **kwargs)
    return _from_release(pretraining, modality, False, checkpoint_path, **kwargs)


def xkd_encoder(pretraining: str = "xkd_kinetics400_video_student", checkpoint_path: str | None = None,
                **kwargs) -> nn.Module:
    """XKD ViT-B encoder (``vit_b_video_xkd`` / ``vit_b_audio_xkd``). The release file names are not
    listed by the authors: download by hand and pass ``checkpoint_path`` (random weights without)."""
    if checkpoint_path is None:
        _, name = zoo.encoder_for(zoo.get_entry(pretraining))
        return create_encoder(name, **kwargs)
    return _from_release(pretraining, None, False, checkpoint_path, **kwargs)


def encoder(name: str, pretrained: str | None = None, checkpoint_path: str | None = None, **kwargs) -> nn.Module:
    """Any registered encoder by name (``avssl.list_encoders()``), optionally with weights from a zoo
    entry (``pretrained``) or a local file of any supported layout (``checkpoint_path``)."""
    return create_encoder(name, checkpoint_path=checkpoint_path, pretrained=pretrained, **kwargs)
