"""Classifier heads of the downstream protocols and the encoder + head models they form.

* :class:`ClassifierHead` — optional dropout → ``Linear(D, C)``. Initialisation ``"orthogonal"``
  (zero bias) as CrissCross's ``VideoClassifier`` (spec §2.7) and XKD's video head (§4.6), or
  ``"normal"`` N(0, 0.01) as XKD's audio fine-tuning head (§4.6).
* :class:`FeatureProbe` — one probe on one named feature of ``encoder.forward_features``: optional
  adaptive max-pool of a map to a fixed grid (AVID's per-layer Kinetics probes, §3A.7: ``conv2x`` →
  (1,12,12), ``conv3x`` → (1,8,8), ``conv4x`` → (1,6,6), ``conv5x`` → (1,4,4)), flatten, optional
  BatchNorm1d, then a :class:`ClassifierHead`.
* :class:`EncoderClassifier` — an encoder with one or several probes; ``forward(x)`` returns
  ``{probe name: logits [B, C]}``. Full fine-tuning uses one probe on the pooled feature; linear
  probes freeze the encoder (:mod:`avssl.evaluate.linear`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

HeadInit = Literal["orthogonal", "normal"]

# The name ``forward_features`` gives the pooled vector: "pool" for CNNs, "pooled" for ViTs.
POOLED_FEATURE_NAMES = ("pool", "pooled")


class ClassifierHead(nn.Module):
    """Dropout (if ``dropout > 0``) → ``Linear(in_dim, num_classes)``; input ``[B, in_dim]``."""

    def __init__(self, in_dim: int, num_classes: int, dropout: float = 0.0, init: HeadInit = "orthogonal") -> None:
        super().__init__()
        if num_classes < 1 or in_dim < 1:
            raise ValueError(f"ClassifierHead: in_dim and num_classes must be >= 1, got {in_dim}, {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ClassifierHead: dropout must lie in [0, 1), got {dropout}")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_dim, num_classes)
        if init == "orthogonal":
            nn.init.orthogonal_(self.fc.weight)
        elif init == "normal":
            nn.init.normal_(self.fc.weight, std=0.01)
        else:
            raise ValueError(f"ClassifierHead: init must be 'orthogonal' or 'normal', got {init!r}")
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.dropout(x))


@dataclass(frozen=True)
class ProbeSpec:
    """Where a probe reads and what it does before its head.

    ``feature``: a key of ``encoder.forward_features`` (``"pool"``/``"pooled"`` is the pooled vector;
    ``"conv2x"``..``"conv5x"`` CNN maps). ``pool_size``: adaptive max-pool output size for a map
    (3 numbers for video ``B×C×T×H×W``, 2 for audio ``B×C×F×T``), ``None`` for a vector feature.
    """

    feature: str = "pool"
    pool_size: tuple[int, ...] | None = None
    batch_norm: bool = False
    dropout: float = 0.0
    init: HeadInit = "orthogonal"

    @classmethod
    def from_mapping(cls, raw: Mapping, where: str = "probe") -> ProbeSpec:
        """Build from a preset mapping (``{"feature": "conv2x", "pool_size": [1, 12, 12], ...}``)."""
        unknown = sorted(set(raw) - {"feature", "pool_size", "batch_norm", "dropout", "init"})
        if unknown:
            raise ValueError(f"{where}: unknown probe field(s) {unknown}")
        pool = raw.get("pool_size")
        return cls(
            feature=str(raw.get("feature", "pool")),
            pool_size=tuple(int(v) for v in pool) if pool is not None else None,
            batch_norm=bool(raw.get("batch_norm", False)),
            dropout=float(raw.get("dropout", 0.0)),
            init=raw.get("init", "orthogonal"),
        )


# AVID's Kinetics linear protocol (spec §3A.7): one probe per stage, ~8–9 k dims each, with BN.
AVID_LAYER_PROBES: dict[str, ProbeSpec] = {
    "conv2x": ProbeSpec("conv2x", (1, 12, 12), batch_norm=True),
    "conv3x": ProbeSpec("conv3x", (1, 8, 8), batch_norm=True),
    "conv4x": ProbeSpec("conv4x", (1, 6, 6), batch_norm=True),
    "conv5x": ProbeSpec("conv5x", (1, 4, 4), batch_norm=True),
}


def probe_pooling(spec: ProbeSpec) -> nn.Module:
    """Adaptive max-pool of a map to ``spec.pool_size`` (3-D for video, 2-D for audio), or identity."""
    if spec.pool_size is None:
        return nn.Identity()
    if len(spec.pool_size) == 3:
        return nn.AdaptiveMaxPool3d(spec.pool_size)
    if len(spec.pool_size) == 2:
        return nn.AdaptiveMaxPool2d(spec.pool_size)
    raise ValueError(f"probe on {spec.feature!r}: pool_size needs 2 or 3 numbers, got {spec.pool_size}")


class FeatureProbe(nn.Module):
    """``[max-pool to pool_size] → flatten → [BatchNorm1d] → ClassifierHead`` on one feature."""

    def __init__(self, spec: ProbeSpec, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.spec = spec
        self.pool = probe_pooling(spec)
        self.norm = nn.BatchNorm1d(in_dim) if spec.batch_norm else nn.Identity()
        self.head = ClassifierHead(in_dim, num_classes, spec.dropout, spec.init)

    def forward(self, feature: Tensor) -> Tensor:
        return self.head(self.norm(self.pool(feature).flatten(1)))


def _pooled_feature(features: Mapping[str, Tensor], name: str) -> Tensor:
    if name in features:
        return features[name]
    if name in POOLED_FEATURE_NAMES:  # "pool" and "pooled" mean the same across CNNs and ViTs
        for alias in POOLED_FEATURE_NAMES:
            if alias in features:
                return features[alias]
    raise KeyError(f"encoder has no feature {name!r}; forward_features gives {sorted(features)}")


class EncoderClassifier(nn.Module):
    """An encoder and named probes on its features; ``forward(x) -> {name: logits [B, C]}``.

    Args:
        encoder: an avssl encoder (``forward_features`` contract).
        probes: probe name → :class:`ProbeSpec`.
        num_classes: classes of every probe.
        example_input: one input batch used once to measure each probe's input width (the
            encoder runs on it in eval mode without gradients).
    """

    def __init__(
        self, encoder: nn.Module, probes: Mapping[str, ProbeSpec], num_classes: int, example_input: Tensor
    ) -> None:
        super().__init__()
        if not probes:
            raise ValueError("EncoderClassifier: at least one probe is needed")
        self.encoder = encoder
        widths = self._probe_widths(encoder, probes, example_input)
        self.probes = nn.ModuleDict(
            {name: FeatureProbe(spec, widths[name], num_classes) for name, spec in probes.items()}
        )

    @staticmethod
    def _probe_widths(encoder: nn.Module, probes: Mapping[str, ProbeSpec], example: Tensor) -> dict[str, int]:
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            features = encoder.forward_features(example)
        encoder.train(was_training)
        return {
            name: probe_pooling(spec)(_pooled_feature(features, spec.feature)).flatten(1).shape[1]
            for name, spec in probes.items()
        }

    def features(self, x: Tensor) -> dict[str, Tensor]:
        """The encoder features each probe reads (``x``: the encoder's input layout)."""
        wanted = {spec.feature for spec in self.probe_specs.values()}
        if wanted <= set(POOLED_FEATURE_NAMES):
            pooled = self.encoder(x)  # the cheap path: no intermediate maps are kept
            return {name: pooled for name in wanted}
        features = self.encoder.forward_features(x)
        return {name: _pooled_feature(features, name) for name in wanted}

    @property
    def probe_specs(self) -> dict[str, ProbeSpec]:
        return {name: probe.spec for name, probe in self.probes.items()}

    def classify(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {name: probe(features[probe.spec.feature]) for name, probe in self.probes.items()}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.classify(self.features(x))

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.probes.parameters())

    def probe_names(self) -> Sequence[str]:
        return list(self.probes)
