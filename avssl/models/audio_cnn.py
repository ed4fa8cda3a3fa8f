"""Audio CNNs on spectrograms: CrissCross's ResNet-18 and AVID-CMA's Conv2D-10.

* :class:`AudioResNet` — CrissCross ``ResNet(18)`` with one input channel (spec §2.1): stem
  Conv 7×7 s2 + BN + ReLU + MaxPool 3 s2, four stages of torchvision ``BasicBlock`` (keys
  ``block{1..4}.N.{conv1,bn1,conv2,bn2,downsample.{0,1}}``), average pool. 11,170,240 parameters.
  For a 1×80×201 log-mel (2 s): conv5x 512×3×7.
* :class:`AudioConv2dNet` — AVID-CMA ``Conv2D(depth=10)`` = AV-SSRL ``Conv2DNet`` (spec §3A.1,
  §3B.2): stem Conv 7×7 s2 + BN + ReLU (no max-pool), four plain blocks of two 3×3 convs **without
  residual connection** (keys ``block{1..4}.{conv1,bn1,conv2,bn2}``), max pool. 4,725,696 parameters.
  AVID trained it on **time × frequency** spectrograms, AV-SSRL on frequency × time; since every
  avssl encoder takes ``B×1×F×T``, ``layout="TF"`` transposes inside (AVID) and ``"FT"`` does not.

``forward_features`` gives ``conv1, conv2x..conv5x`` (stage outputs, always returned as ``B×C×F'×T'``
whatever the internal layout) and ``pool`` (``B×512``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from avssl.models.encoder import PoolKind, check_input, global_pool, init_conv_bn
from avssl.models.input_spec import InputSpec
from avssl.models.registry import register_encoder

STAGE_NAMES = ("conv2x", "conv3x", "conv4x", "conv5x")


def check_frequency_bins(x: Tensor, freq_bins: int | None, encoder: str) -> None:
    """Refuse a spectrogram whose frequency axis (dim -2 of ``B×1×F×T``) is not ``freq_bins``.

    A CNN runs on either orientation, so a time-major spectrogram would otherwise pass silently
    and give meaningless features; the released weights fix the number of bins.
    """
    if freq_bins is None or x.shape[-2] == freq_bins:
        return
    hint = ""
    if x.shape[-1] == freq_bins:
        hint = " — it looks time-major (T×F); give x.transpose(-1, -2), the encoder handles its own layout"
    raise ValueError(
        f"{encoder}: expected B×1×F×T with F = {freq_bins} frequency bins, got shape {tuple(x.shape)}{hint}"
        " (pass freq_bins=None to the factory to accept other spectrograms)"
    )


def _resnet_stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    # torchvision ResNet._make_layer for BasicBlock: 1×1 conv + BN shortcut when the shape changes.
    downsample = None
    if stride != 1 or in_planes != planes:
        downsample = nn.Sequential(
            nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(planes),
        )
    layers = [BasicBlock(in_planes, planes, stride, downsample)]
    layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class AudioResNet(nn.Module):
    """CrissCross audio ResNet (spec §2.1); ``B×1×F×T`` -> ``B×512``.

    Args:
        pool: ``"avg"`` as in CrissCross; ``"max"`` available for experiments.
        widths: channels of block1..block4 (the stem has ``widths[0]``).
        blocks: BasicBlocks per stage, (2,2,2,2) for ResNet-18.
        freq_bins: required size of the frequency axis (``None``: any), see :func:`check_frequency_bins`.
        input_spec: what the network expects.
    """

    modality = "audio"

    def __init__(
        self,
        pool: PoolKind = "avg",
        widths: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (2, 2, 2, 2),
        freq_bins: int | None = None,
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError(f"widths and blocks need 4 entries each, got {widths} and {blocks}")
        self.freq_bins = freq_bins
        self.input_spec = input_spec or CRISSCROSS_AUDIO_SPEC
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        in_planes = widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks)):
            self.add_module(f"block{i + 1}", _resnet_stage(in_planes, width, count, 1 if i == 0 else 2))
            in_planes = width
        self.pool = global_pool(pool, 2)
        self.out_dim = widths[-1]
        init_conv_bn(self)

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """``x``: ``B×1×F×T``. Maps for 1×80×201: conv1 64×20×51, conv2x 64×20×51, conv3x 128×10×26,
        conv4x 256×5×13, conv5x 512×3×7; ``pool`` ``B×512``."""
        check_input(x, "audio", type(self).__name__)
        check_frequency_bins(x, self.freq_bins, type(self).__name__)
        feats = {"conv1": self.conv1(x)}
        h = feats["conv1"]
        for i, name in enumerate(STAGE_NAMES):
            h = feats[name] = getattr(self, f"block{i + 1}")(h)
        feats["pool"] = self.pool(h).flatten(1)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        """``B×1×F×T`` -> ``B×512``."""
        return self.forward_features(x)["pool"]


def conv5x_maxpool_feature(conv5x: Tensor) -> Tensor:
    """CrissCross's ESC-50/DCASE linear-evaluation feature (spec §2.7).

    ``MaxPool2d((1, 3), stride (1, 2))`` over time of the ``conv5x`` map, flattened:
    ``B×512×3×7`` (2 s) -> ``B×4608``. The evaluation wrapper then applies l2-norm and BN.
    """
    return F.max_pool2d(conv5x, kernel_size=(1, 3), stride=(1, 2)).flatten(1)


class PlainConvBlock(nn.Module):
    """Conv2D-10 block: ReLU(bn2(conv2(ReLU(bn1(conv1(x)))))) with 3×3 convs, stride on ``conv1``.

    No residual connection (spec §3A.1).
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(h)))


class AudioConv2dNet(nn.Module):
    """AVID-CMA ``Conv2D(depth=10)`` / AV-SSRL ``Conv2DNet`` (spec §3A.1, §3B.2); ``B×1×F×T`` -> ``B×512``.

    Args:
        layout: ``"TF"`` — the weights were trained on time × frequency input (AVID): the
            ``B×1×F×T`` input is transposed before the first conv and the maps transposed back.
            ``"FT"`` — trained on frequency × time (AV-SSRL): no transpose.
        pool: ``"max"`` as in AVID / AV-SSRL.
        widths: stem width, then block1..block4 widths.
        strides: strides of block1..block4.
        freq_bins: required size of the frequency axis of the ``B×1×F×T`` input (``None``: any);
            catches a spectrogram given time-major, which a CNN would otherwise accept silently.
        input_spec: what the network expects.
    """

    modality = "audio"

    def __init__(
        self,
        layout: Literal["TF", "FT"] = "TF",
        pool: PoolKind = "max",
        widths: Sequence[int] = (64, 64, 128, 256, 512),
        strides: Sequence[int] = (2, 2, 2, 1),
        freq_bins: int | None = None,
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        if layout not in ("TF", "FT"):
            raise ValueError(f"layout must be 'TF' or 'FT', got {layout!r}")
        if len(widths) != 5 or len(strides) != 4:
            raise ValueError(f"widths needs 5 entries and strides 4, got {widths} and {strides}")
        self.layout = layout
        self.freq_bins = freq_bins
        self.input_spec = input_spec or AVID_AUDIO_SPEC
        self.conv1 = nn.Sequential(
            nn.Conv2d(1, widths[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        for i, stride in enumerate(strides):
            self.add_module(f"block{i + 1}", PlainConvBlock(widths[i], widths[i + 1], stride))
        self.pool = global_pool(pool, 2)
        self.out_dim = widths[-1]
        init_conv_bn(self)

    def _to_internal(self, x: Tensor) -> Tensor:
        # AVID's weights saw T×F; a transpose is its own inverse, so this also maps back to F×T.
        return x.transpose(-1, -2) if self.layout == "TF" else x

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """``x``: ``B×1×F×T``. Maps (returned as ``B×C×F'×T'``) for AVID's 257×200: conv1 64×129×100,
        conv2x 64×65×50, conv3x 128×33×25, conv4x 256×17×13, conv5x 512×17×13; ``pool`` ``B×512``."""
        check_input(x, "audio", type(self).__name__)
        check_frequency_bins(x, self.freq_bins, type(self).__name__)
        h = self.conv1(self._to_internal(x))
        feats = {"conv1": h}
        for i, name in enumerate(STAGE_NAMES):
            h = feats[name] = getattr(self, f"block{i + 1}")(h)
        feats["pool"] = self.pool(h).flatten(1)
        return {name: (m if name == "pool" else self._to_internal(m)) for name, m in feats.items()}

    def forward(self, x: Tensor) -> Tensor:
        """``B×1×F×T`` -> ``B×512``."""
        return self.forward_features(x)["pool"]


# ----------------------------------------------------------------------------------------------
# Registered encoders. Input specs: spec §2.2 (CrissCross), §3A.2 (AVID), §3B.3 (AV-SSRL).

CRISSCROSS_AUDIO_SPEC = InputSpec(
    modality="audio", sample_rate=16000, duration=2.0, spectrogram="crisscross", layout="FT",
)
AVID_AUDIO_SPEC = InputSpec(
    modality="audio", sample_rate=24000, duration=2.0, spectrogram="avid", layout="TF",
    notes={"layout": "give B×1×F×T (1×257×200 for 2 s); the encoder transposes to AVID's T×F"},
)
AVSSRL_AUDIO_SPEC = InputSpec(
    modality="audio", sample_rate=16000, duration=2.0, spectrogram="avssrl", layout="FT",
)
SMALL_AUDIO_SPEC = InputSpec(
    modality="audio", sample_rate=16000, duration=1.0, spectrogram="crisscross", layout="FT",
    notes={"purpose": "small network for CPU tests and the demo (1×80×101 for 1 s)"},
)


@register_encoder("audio_resnet18_crisscross")
def audio_resnet18_crisscross(pool: PoolKind = "avg", freq_bins: int | None = 80) -> AudioResNet:
    """CrissCross audio ResNet-18, 2 s log-mel 1×80×201."""
    return AudioResNet(pool, freq_bins=freq_bins, input_spec=CRISSCROSS_AUDIO_SPEC)


@register_encoder("audio_conv2d10_avid")
def audio_conv2d10_avid(pool: PoolKind = "max", freq_bins: int | None = 257) -> AudioConv2dNet:
    """AVID-CMA Conv2D-10 on the 257-bin log-spectrogram (given F×T 1×257×200, transposed inside)."""
    return AudioConv2dNet("TF", pool, freq_bins=freq_bins, input_spec=AVID_AUDIO_SPEC)


@register_encoder("audio_conv2d10_avssrl")
def audio_conv2d10_avssrl(pool: PoolKind = "max", freq_bins: int | None = 128) -> AudioConv2dNet:
    """AV-SSRL Conv2DNet on the 128-mel log-spectrogram 1×128×125 (F×T, no transpose)."""
    return AudioConv2dNet("FT", pool, freq_bins=freq_bins, input_spec=AVSSRL_AUDIO_SPEC)


@register_encoder("audio_resnet_small")
def audio_resnet_small(pool: PoolKind = "avg", freq_bins: int | None = 80) -> AudioResNet:
    """Audio ResNet, widths 16/32/64/128 and one block per stage, for CPU runs (1×80×101)."""
    return AudioResNet(
        pool, widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), freq_bins=freq_bins, input_spec=SMALL_AUDIO_SPEC
    )
