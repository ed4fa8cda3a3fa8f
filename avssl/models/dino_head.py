"""DINO projection head as XKD configures it (``projector_cfg: '2048-gelu-3-256-8192-norm3'``, spec §4.1).

``B×in_dim`` → ``B×out_dim``::

    Linear(in, 2048) – LN – GELU – Linear(2048, 2048) – LN – GELU – Linear(2048, 256)
    → L2-normalise → weight-normalised Linear(256, 8192, no bias, gain fixed to 1)
    → LayerNorm(8192, no affine)

Quirk kept from the released code: the two hidden LayerNorms are **one module used twice**
(the original builds a single ``nn.LayerNorm`` and appends it at both places), so they share their
scale and shift. That is why the spec counts 8,405,248 parameters per head rather than 8,409,344;
``share_hidden_norm=False`` gives two independent norms.

The input is the mean of a ViT's patch tokens (CLS excluded), not the CLS token (§4.3 step 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WeightNormLinear(nn.Module):
    """Bias-free ``Linear`` with weight normalisation ``W = g · v / ‖v‖`` per output row.

    ``weight_g`` (``out×1``) is fixed to 1 and frozen, as DINO's ``norm_last_layer=True``: each
    output is the cosine between the (already unit) input and a learned prototype direction.
    Parameter names ``weight_g`` / ``weight_v`` follow ``torch.nn.utils.weight_norm``.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight_v = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_g = nn.Parameter(torch.ones(out_features, 1), requires_grad=False)
        nn.init.trunc_normal_(self.weight_v, std=0.02)

    @property
    def weight(self) -> Tensor:
        """The effective ``out×in`` weight."""
        return self.weight_g * self.weight_v / self.weight_v.norm(dim=1, keepdim=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight)  # [B, out]


class DINOHead(nn.Module):
    """XKD's DINO head (see the module docstring).

    Args:
        in_dim: input width (ViT-B: 768).
        hidden_dim: width of the two hidden layers (2048).
        bottleneck_dim: width before L2 normalisation (256).
        out_dim: number of prototypes / logits (8192).
        share_hidden_norm: use one LayerNorm at both hidden layers, as the released code does.

    Shapes: ``x`` ``B×in_dim`` → ``B×out_dim``.
    """

    def __init__(
        self,
        in_dim: int = 768,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        out_dim: int = 8192,
        share_hidden_norm: bool = True,
    ) -> None:
        super().__init__()
        self.out_dim = out_dim
        first_norm = nn.LayerNorm(hidden_dim)
        second_norm = first_norm if share_hidden_norm else nn.LayerNorm(hidden_dim)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            first_norm,
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            second_norm,
            nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )
        for module in self.mlp:
            if isinstance(module, nn.Linear):  # DINO initialisation: trunc-normal(0.02), zero bias
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        self.last_layer = WeightNormLinear(bottleneck_dim, out_dim)
        self.last_norm = nn.LayerNorm(out_dim, elementwise_affine=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2:
            raise ValueError(f"DINOHead: expected a B×{self.mlp[0].in_features} input, got {tuple(x.shape)}")
        z = F.normalize(self.mlp(x), dim=-1, p=2)  # [B, bottleneck]
        return self.last_norm(self.last_layer(z))  # [B, out_dim]
