"""R(2+1)D-18 in both of its definitions (landscape §0 item 6: "R(2+1)D-18 names two networks").

* :class:`R2Plus1dVMZ` — the VMZ/Caffe2 network that XDC released (spec §1.2, §1.6): torchvision
  ``VideoResNet`` pieces with a (2+1)D convolution whose middle width is recomputed *per conv*,
  ``mid = floor(in·out·27 / (9·in + 3·out))``, and BatchNorm eps 1e-3. State-dict keys are
  torchvision's (``stem.*``, ``layer{1..4}.*``, optional ``fc.*``). 33,165,639 parameters without
  ``fc``. XDC weights do not fit torchvision's ``r2plus1d_18`` (its ``layer{2,3,4}.0.conv2`` mid
  widths are 230/460/921 instead of 288/576/1152).
* :class:`R2Plus1dAVID` — the AVID-CMA network, also used by CrissCross and AV-SSRL (spec §2.1,
  §3A.1, §3B.2): a 3-D 3×7×7 stem with max-pool, no mid-plane widening, ``out_bn`` after the residual
  sum and a BN-free 1×1×1 shortcut. Keys ``conv1.*``, ``conv{2..5}x.N.{spt,tmp}_{conv,bn}{1,2}``,
  ``out_bn``, ``res_conv``. 15,379,136 parameters. One class for all three methods: ``pool="max"``
  (AVID, AV-SSRL, CrissCross fine-tuning) or ``"avg"`` (CrissCross pretraining).

Both take ``B×3×T×H×W`` clips and return ``B×512``; ``forward_features`` gives
``conv1, conv2x..conv5x`` (``B×C×T'×H'×W'``) and ``pool`` (``B×512``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, R2Plus1dStem

from avssl.models.encoder import PoolKind, check_input, global_pool, init_conv_bn
from avssl.models.input_spec import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD, InputSpec
from avssl.models.registry import register_encoder

STAGE_NAMES = ("conv2x", "conv3x", "conv4x", "conv5x")


# ----------------------------------------------------------------------------------------------
# VMZ / XDC definition (spec §1.2)


def vmz_midplanes(in_planes: int, out_planes: int) -> int:
    """Middle width of XDC's (2+1)D conv: as many parameters as a full 3×3×3 conv (§1.2)."""
    return (in_planes * out_planes * 27) // (9 * in_planes + 3 * out_planes)


class VMZConv2Plus1d(Conv2Plus1D):
    """torchvision's ``Conv2Plus1D`` (keys ``0`` spatial conv, ``1`` BN, ``3`` temporal conv) with
    the middle width recomputed from this conv's own in/out widths.

    torchvision's ``BasicBlock`` computes one ``midplanes`` per block and passes it to both convs;
    XDC's conv ignores it, which is why ``layer{2,3,4}.0.conv2`` is wider than torchvision's.
    """

    def __init__(
        self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1,
        padding: int = 1,
    ) -> None:
        del midplanes  # recomputed below on purpose (XDC Conv2Plus1D)
        super().__init__(in_planes, out_planes, vmz_midplanes(in_planes, out_planes), stride, padding)


def _vmz_stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    # torchvision VideoResNet._make_layer: the first block carries stride and a 1×1×1 conv + BN
    # shortcut (stride (s,s,s)) when the shape changes.
    downsample = None
    if stride != 1 or in_planes != planes:
        downsample = nn.Sequential(
            nn.Conv3d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm3d(planes),
        )
    layers = [BasicBlock(in_planes, planes, VMZConv2Plus1d, stride, downsample)]
    layers += [BasicBlock(planes, planes, VMZConv2Plus1d) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class R2Plus1dVMZ(nn.Module):
    """XDC's R(2+1)D-18 (VMZ definition), spec §1.2.

    Args:
        num_classes: ``None`` (default) builds no ``fc``: ``forward`` returns the 512-d pooled
            feature. An integer adds ``fc = Linear(512, num_classes)`` and ``forward`` returns its
            logits (XDC's ``xdc_video_encoder`` behaviour); the pooled feature stays in
            ``forward_features(x)["pool"]``.
        bn_eps: XDC sets every ``BatchNorm3d.eps`` to 1e-3 (a 1e-5 eps moves outputs by ~2e-3).
        bn_momentum: PyTorch semantics (weight of the *new* batch statistic). XDC writes 0.9 with
            the comment "exact Caffe2 momentum", but Caffe2's momentum weighs the *old* running
            value, so Caffe2 0.9 is PyTorch 0.1 — our default. Pass 0.9 to reproduce the official
            loader bit for bit (running statistics then follow every fine-tuning batch almost
            entirely). Irrelevant in eval mode.
        input_spec: what the network expects (default: 32×112² Kinetics-normalised clips).
    """

    modality = "video"

    def __init__(
        self,
        num_classes: int | None = None,
        bn_eps: float = 1e-3,
        bn_momentum: float = 0.1,
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        self.input_spec = input_spec or VMZ_SPEC
        self.stem = R2Plus1dStem()  # 1×7×7 conv 3→45, BN, ReLU, 3×1×1 conv 45→64, BN, ReLU
        self.layer1 = _vmz_stage(64, 64, 2, stride=1)
        self.layer2 = _vmz_stage(64, 128, 2, stride=2)
        self.layer3 = _vmz_stage(128, 256, 2, stride=2)
        self.layer4 = _vmz_stage(256, 512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(512, num_classes) if num_classes is not None else None
        self.feature_dim = 512
        self.out_dim = num_classes if num_classes is not None else 512
        init_conv_bn(self)
        if self.fc is not None:
            nn.init.normal_(self.fc.weight, 0, 0.01)
            nn.init.zeros_(self.fc.bias)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.eps, m.momentum = bn_eps, bn_momentum

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """``x``: ``B×3×T×H×W``. Maps for 8×112²: conv1 64×8×56², conv2x 64×8×56², conv3x 128×4×28²,
        conv4x 256×2×14², conv5x 512×1×7²; ``pool`` ``B×512``; ``logits`` when ``fc`` exists."""
        check_input(x, "video", type(self).__name__)
        feats = {"conv1": self.stem(x)}
        h = feats["conv1"]
        for name, stage in zip(STAGE_NAMES, (self.layer1, self.layer2, self.layer3, self.layer4)):
            h = feats[name] = stage(h)
        feats["pool"] = self.avgpool(h).flatten(1)
        if self.fc is not None:
            feats["logits"] = self.fc(feats["pool"])
        return feats

    def forward(self, x: Tensor) -> Tensor:
        """``B×3×T×H×W`` -> ``B×512`` (or ``B×num_classes`` logits when built with an ``fc``)."""
        feats = self.forward_features(x)
        return feats["logits"] if self.fc is not None else feats["pool"]


# ----------------------------------------------------------------------------------------------
# AVID / CrissCross / AV-SSRL definition (spec §2.1, §3A.1)


class R2Plus1dBlock(nn.Module):
    """AVID's basic (2+1)D block; ``stride`` s means spatial (1,s,s) then temporal (s,1,1).

    main = tmp_conv2(ReLU(spt_bn2(spt_conv2(ReLU(tmp_bn1(tmp_conv1(ReLU(spt_bn1(spt_conv1(x))))))))))
    out  = ReLU(out_bn(main + shortcut)), shortcut = res_conv(x) (1×1×1, stride (s,s,s), no BN)
    when the shape changes, else x. The second temporal conv has no BN of its own: ``out_bn``
    normalises the sum.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int = 1) -> None:
        super().__init__()
        self.spt_conv1 = nn.Conv3d(in_planes, out_planes, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.spt_bn1 = nn.BatchNorm3d(out_planes)
        self.tmp_conv1 = nn.Conv3d(out_planes, out_planes, (3, 1, 1), (stride, 1, 1), (1, 0, 0), bias=False)
        self.tmp_bn1 = nn.BatchNorm3d(out_planes)
        self.spt_conv2 = nn.Conv3d(out_planes, out_planes, (1, 3, 3), 1, (0, 1, 1), bias=False)
        self.spt_bn2 = nn.BatchNorm3d(out_planes)
        self.tmp_conv2 = nn.Conv3d(out_planes, out_planes, (3, 1, 1), 1, (1, 0, 0), bias=False)
        self.out_bn = nn.BatchNorm3d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.res_conv = (
            nn.Conv3d(in_planes, out_planes, 1, stride, bias=False)
            if in_planes != out_planes or stride != 1
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.relu(self.spt_bn1(self.spt_conv1(x)))
        h = self.relu(self.tmp_bn1(self.tmp_conv1(h)))
        h = self.relu(self.spt_bn2(self.spt_conv2(h)))
        h = self.tmp_conv2(h)
        shortcut = self.res_conv(x) if self.res_conv is not None else x
        return self.relu(self.out_bn(h + shortcut))


class R2Plus1dAVID(nn.Module):
    """AVID-CMA's ``R2Plus1D`` (CrissCross ``R2Plus1D``, AV-SSRL ``R2Plus1d``), spec §2.1 / §3A.1.

    Args:
        pool: ``"max"`` (AVID, AV-SSRL; every CrissCross fine-tuning config) or ``"avg"``
            (CrissCross pretraining).
        widths: output channels of conv2x..conv5x (the stem has ``widths[0]``).
        blocks: blocks per stage — (2,2,2,2) is depth 18, (1,1,1,1) depth 10, (3,4,6,3) depth 34.
        input_spec: what the network expects.
    """

    modality = "video"

    def __init__(
        self,
        pool: PoolKind = "max",
        widths: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (2, 2, 2, 2),
        input_spec: InputSpec | None = None,
    ) -> None:
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError(f"widths and blocks need 4 entries each, got {widths} and {blocks}")
        self.input_spec = input_spec or AVID_VIDEO_SPEC
        stem = widths[0]
        self.conv1 = nn.Sequential(
            nn.Conv3d(3, stem, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
            nn.BatchNorm3d(stem),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        )
        in_planes = stem
        for i, (name, width, count) in enumerate(zip(STAGE_NAMES, widths, blocks)):
            stride = 1 if i == 0 else 2
            layers = [R2Plus1dBlock(in_planes, width, stride)]
            layers += [R2Plus1dBlock(width, width) for _ in range(count - 1)]
            self.add_module(name, nn.Sequential(*layers))
            in_planes = width
        self.pool = global_pool(pool, 3)
        self.pool_kind = pool
        self.out_dim = widths[-1]
        init_conv_bn(self)

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """``x``: ``B×3×T×H×W``. Maps for 8×112²: conv1 64×8×28², conv2x 64×8×28², conv3x
        128×4×14², conv4x 256×2×7², conv5x 512×1×4²; ``pool`` ``B×512``."""
        check_input(x, "video", type(self).__name__)
        feats = {"conv1": self.conv1(x)}
        h = feats["conv1"]
        for name in STAGE_NAMES:
            h = feats[name] = getattr(self, name)(h)
        feats["pool"] = self.pool(h).flatten(1)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        """``B×3×T×H×W`` -> ``B×512``."""
        return self.forward_features(x)["pool"]


# ----------------------------------------------------------------------------------------------
# Registered encoders. Input specs: spec §1.2 (XDC), §2.2 (CrissCross), §3A.2 (AVID), §3B.3 (AV-SSRL).

VMZ_SPEC = InputSpec(
    modality="video", frames=32, fps=None, size=112, mean=KINETICS_MEAN, std=KINETICS_STD,
    notes={
        "frames": "VMZ fine-tuning convention 32×112² (XDC paper values unverified, spec §1.5)",
        "fps": "native frame rate (VMZ does not resample)",
        "normalisation": "torchvision Kinetics statistics, not ImageNet (XDC issue #2)",
    },
)
AVID_VIDEO_SPEC = InputSpec(
    modality="video", frames=8, fps=16.0, size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD,
)
CRISSCROSS_VIDEO_SPEC = InputSpec(
    modality="video", frames=8, fps=16.0, size=112, mean=IMAGENET_MEAN, std=IMAGENET_STD,
    notes={"pool": "average pooling as pretrained; fine-tuning configs use pool='max'"},
)
AVSSRL_VIDEO_SPEC = InputSpec(
    modality="video", frames=16, fps=16.0, size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD,
    notes={"downstream": "evaluation protocols use 8 frames @16 fps (spec §3B.7)"},
)
SMALL_VIDEO_SPEC = InputSpec(
    modality="video", frames=8, fps=16.0, size=64, mean=IMAGENET_MEAN, std=IMAGENET_STD,
    notes={"purpose": "small network for CPU tests and the demo"},
)


@register_encoder("r2plus1d_18_vmz")
def r2plus1d_18_vmz(
    num_classes: int | None = None, bn_eps: float = 1e-3, bn_momentum: float = 0.1
) -> R2Plus1dVMZ:
    """XDC's R(2+1)D-18 (VMZ definition); releases: XDC ``r2plus1d_18_*.pth``."""
    return R2Plus1dVMZ(num_classes, bn_eps, bn_momentum, VMZ_SPEC)


@register_encoder("r2plus1d_18_avid")
def r2plus1d_18_avid(pool: PoolKind = "max") -> R2Plus1dAVID:
    """AVID / AVID-CMA video encoder: max pool, 8 frames @16 fps, 224²."""
    return R2Plus1dAVID(pool, input_spec=AVID_VIDEO_SPEC)


@register_encoder("r2plus1d_18_crisscross")
def r2plus1d_18_crisscross(pool: PoolKind = "avg") -> R2Plus1dAVID:
    """CrissCross video encoder: average pool (as pretrained), 8 frames @16 fps, 112²."""
    return R2Plus1dAVID(pool, input_spec=CRISSCROSS_VIDEO_SPEC)


@register_encoder("r2plus1d_18_avssrl")
def r2plus1d_18_avssrl(pool: PoolKind = "max") -> R2Plus1dAVID:
    """AV-SSRL video encoder (xID, AV-VICReg): max pool, 16 frames @16 fps, 224²."""
    return R2Plus1dAVID(pool, input_spec=AVSSRL_VIDEO_SPEC)


@register_encoder("r2plus1d_small")
def r2plus1d_small(pool: PoolKind = "max") -> R2Plus1dAVID:
    """AVID-style R(2+1)D, widths 16/32/64/128 and one block per stage, for CPU runs (8×64²)."""
    return R2Plus1dAVID(pool, widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), input_spec=SMALL_VIDEO_SPEC)
