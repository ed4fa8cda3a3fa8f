"""The encoder contract shared by every backbone (DESIGN.md "Contracts", spec §6.2 item 1).

No base class: an encoder is any ``nn.Module`` with

* ``forward(x) -> Tensor[B, out_dim]`` — the pooled representation;
* ``forward_features(x) -> dict[str, Tensor]`` — named intermediate maps. CNNs use
  ``conv1, conv2x, conv3x, conv4x, conv5x`` (stage outputs, channels first) and ``pool`` (``B×D``);
* attributes ``out_dim`` (int), ``modality`` (``"video"`` or ``"audio"``) and ``input_spec``
  (:class:`avssl.models.input_spec.InputSpec`).

Inputs are ``B×3×T×H×W`` for video and ``B×1×F×T`` spectrograms for audio; an encoder whose original
network wants another layout converts inside. This module holds the few pieces several encoders
share: the :class:`Encoder` protocol (for type hints and ``isinstance`` checks), the input check with
its error message, and the global pooling choice.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from torch import Tensor, nn

from avssl.models.input_spec import InputSpec

Modality = Literal["video", "audio"]
PoolKind = Literal["max", "avg"]

# channels and number of dimensions of the input each modality accepts
_INPUT_FORMAT: dict[str, tuple[int, int, str]] = {
    "video": (5, 3, "B×3×T×H×W"),
    "audio": (4, 1, "B×1×F×T"),
}


@runtime_checkable
class Encoder(Protocol):
    """Structural type of every avssl encoder (see the module docstring)."""

    out_dim: int
    modality: Modality
    input_spec: InputSpec

    def forward(self, x: Tensor) -> Tensor: ...

    def forward_features(self, x: Tensor) -> dict[str, Tensor]: ...


def check_input(x: Tensor, modality: str, encoder: str) -> None:
    """Raise a ``ValueError`` naming ``encoder``, the expected layout and the shape received."""
    ndim, channels, layout = _INPUT_FORMAT[modality]
    if not isinstance(x, Tensor):
        raise TypeError(f"{encoder}: expected a {layout} tensor, got {type(x).__name__}")
    if x.ndim != ndim or x.shape[1] != channels:
        raise ValueError(
            f"{encoder}: expected a {modality} tensor {layout}, got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"{encoder}: expected a float tensor, got {x.dtype} "
            "(convert uint8 frames to float and normalise with input_spec.mean/std first)"
        )


def global_pool(kind: PoolKind, spatial_dims: Literal[2, 3]) -> nn.Module:
    """``AdaptiveMaxPool{2,3}d(1)`` or ``AdaptiveAvgPool{2,3}d(1)``.

    AVID/AV-SSRL pool by max, CrissCross pretraining by average (spec §2.1, §3A.1, pitfall 5).
    """
    pools: dict[tuple[str, int], type[nn.Module]] = {
        ("max", 2): nn.AdaptiveMaxPool2d,
        ("avg", 2): nn.AdaptiveAvgPool2d,
        ("max", 3): nn.AdaptiveMaxPool3d,
        ("avg", 3): nn.AdaptiveAvgPool3d,
    }
    if (kind, spatial_dims) not in pools:
        raise ValueError(f"pool must be 'max' or 'avg', got {kind!r}")
    return pools[(kind, spatial_dims)](1)


def init_conv_bn(module: nn.Module) -> None:
    """Kaiming-normal (fan_out, ReLU) convolutions, BatchNorm scale 1 and shift 0.

    The initialisation of torchvision's ResNets, also used by CrissCross's audio ResNet (§2.1);
    it only matters when training from scratch — released weights overwrite it.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in module.parameters())



def standard_input_shape(encoder: nn.Module, batch: int = 1) -> tuple[int, ...]:
    """Shape of a standard input batch for ``encoder`` in the contract layout.

    Video: ``B×3×T×H×W`` from ``input_spec``. Audio: ``B×1×F×T`` from the spectrogram preset's
    output for ``input_spec.duration`` (every preset emits frequency first).
    """
    return encoder.input_spec.example_shape(batch)
