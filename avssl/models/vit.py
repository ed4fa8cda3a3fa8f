"""Video and audio ViT encoders as XKD defines them (spec §4.1, §4.3, §4.6).

One :class:`ViTEncoder` serves both modalities; only the tokeniser (:class:`PatchGrid`: 4×16×16
video cuboids or 4×16 spectrogram patches) and the position-embedding resize rule differ. The
transformer is timm's pre-norm ``Block`` (exact GELU, ``qkv_bias=False``, ``nn.LayerNorm`` eps
1e-5 — timm's default 1e-6 shifts the outputs beyond parity tolerance), so attention runs through
``F.scaled_dot_product_attention``.

State-dict names are XKD's *evaluation* names (``cls_token``, ``pos_embed``, ``patch_embed.proj.*``,
``blocks.N.*``, ``norm.*``); :mod:`avssl.models.checkpoints.xkd` maps the released training-side
files onto them.

What XKD pretraining needs is built in:

* ``blocks=`` injects a shared ``nn.ModuleList`` of blocks (XKD-MAS / MATS share the 12 blocks
  between the video and the audio encoder; see :func:`make_vit_blocks`);
* :meth:`ViTEncoder.forward_tokens` with ``keep_index`` runs the transformer on the visible tokens
  only (MAE-style masking after the position embedding is added);
* ``return_attention=True`` also returns the last block's attention map (teacher refinement,
  §4.3 steps 2–3), computed explicitly beside the fused path so the features do not change;
* :meth:`ViTEncoder.patchify` gives the reconstruction targets in the official patch order.
"""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
from timm.models.vision_transformer import Attention, Block
from torch import Tensor, nn

from avssl.models.encoder import check_input
from avssl.models.input_spec import IMAGENET_MEAN, IMAGENET_STD, InputSpec
from avssl.models.patch_embed import PatchEmbed, PatchGrid, audio_patches, patchify, video_cuboids
from avssl.models.pos_embed import pos_embed_for_grid
from avssl.models.registry import register_encoder

PoolMode = Literal["mean", "cls"]
LAYER_NORM_EPS = 1e-5  # XKD uses torch's nn.LayerNorm default; timm's Block would default to 1e-6


def _init_weights(module: nn.Module) -> None:
    # XKD / MAE initialisation (spec §4.1): Linear Xavier-uniform with zero bias, LayerNorm (1, 0).
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def make_vit_blocks(
    embed_dim: int = 768,
    depth: int = 12,
    num_heads: int = 12,
    mlp_ratio: float = 4.0,
    drop_path_rate: float = 0.0,
) -> nn.ModuleList:
    """The ``depth`` pre-norm transformer blocks of an XKD ViT, initialised.

    Build one list and pass it as ``blocks=`` to a video and an audio :class:`ViTEncoder` to share
    them (XKD-MAS students, XKD-MATS students and teachers). ``drop_path_rate`` rises linearly
    over depth (stochastic depth for fine-tuning; pretraining uses 0).
    """
    rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
    blocks = nn.ModuleList(
        Block(
            dim=embed_dim,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=False,
            drop_path=rate,
            norm_layer=partial(nn.LayerNorm, eps=LAYER_NORM_EPS),
            act_layer=nn.GELU,  # exact (erf) GELU, as XKD
        )
        for rate in rates
    )
    blocks.apply(_init_weights)
    return blocks


def attention_map(attn: Attention, x: Tensor) -> Tensor:
    """Softmax attention weights ``B×heads×N×N`` of a timm ``Attention`` on its input ``x`` (B×N×D).

    Recomputes q and k explicitly; the block itself keeps running fused SDPA, so asking for the
    map costs one extra qkv projection of the last block and leaves the features bit-identical.
    """
    batch, tokens, _ = x.shape
    qkv = attn.qkv(x).reshape(batch, tokens, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])  # [B, heads, N, head_dim]
    return ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # [B, heads, N, N]


def pool_tokens(tokens: Tensor, pool: PoolMode) -> Tensor:
    """``B×(1+N)×D`` (CLS first) → ``B×D``: mean over patch tokens without CLS, or the CLS token."""
    if pool == "mean":
        return tokens[:, 1:].mean(dim=1)
    if pool == "cls":
        return tokens[:, 0]
    raise ValueError(f"pool must be 'mean' or 'cls', got {pool!r}")


class ViTEncoder(nn.Module):
    """ViT encoder of one modality: tokeniser, CLS, learned position embedding, blocks, final LN.

    Args:
        patch_grid: how the input is cut into tokens and the native token grid
            (:func:`video_cuboids` / :func:`audio_patches`).
        embed_dim, depth, num_heads, mlp_ratio: transformer size (ViT-B: 768, 12, 12, 4).
        pool: what :meth:`forward` returns — ``"mean"`` of the patch tokens (XKD's ``feat_op:
            pool``, CLS excluded) or the ``"cls"`` token, both after the final LayerNorm.
        blocks: an existing ``nn.ModuleList`` of blocks to use (shared between modalities);
            built fresh with :func:`make_vit_blocks` when ``None``.
        drop_path_rate: stochastic depth of freshly built blocks.
        input_spec: the input the encoder was designed for (see :class:`InputSpec`).
        name: registry name, used in error messages.

    Inputs are video ``B×3×T×H×W`` or audio log-mel ``B×1×F×T`` (frequency first).
    """

    def __init__(
        self,
        patch_grid: PatchGrid,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        pool: PoolMode = "mean",
        blocks: nn.ModuleList | None = None,
        drop_path_rate: float = 0.0,
        input_spec: InputSpec | None = None,
        name: str = "ViTEncoder",
    ) -> None:
        super().__init__()
        if pool not in ("mean", "cls"):
            raise ValueError(f"{name}: pool must be 'mean' or 'cls', got {pool!r}")
        self.name = name
        self.patch_grid = patch_grid
        self.modality = patch_grid.modality
        self.out_dim = embed_dim
        self.pool = pool
        self.input_spec = input_spec
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + patch_grid.num_patches, embed_dim))
        self.patch_embed = PatchEmbed(patch_grid, embed_dim)
        if blocks is None:
            blocks = make_vit_blocks(embed_dim, depth, num_heads, mlp_ratio, drop_path_rate)
        else:
            self._check_shared_blocks(blocks, embed_dim)
        self.blocks = blocks
        self.norm = nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS)
        self._init_own_weights()

    def _check_shared_blocks(self, blocks: nn.ModuleList, embed_dim: int) -> None:
        if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
            raise TypeError(
                f"{self.name}: blocks must be a non-empty nn.ModuleList, got {type(blocks).__name__}"
            )
        for i, block in enumerate(blocks):
            width = getattr(getattr(block, "norm1", None), "normalized_shape", None)
            if not isinstance(block, Block) or tuple(width or ()) != (embed_dim,):
                raise ValueError(
                    f"{self.name}: shared block {i} must be a timm Block of width {embed_dim} "
                    f"(got {type(block).__name__} with norm1 shape {width})"
                )

    def _init_own_weights(self) -> None:
        # Injected shared blocks keep their weights; everything modality-specific is initialised here.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=0.02)
        _init_weights(self.patch_embed.proj)
        _init_weights(self.norm)

    # -- tokens ------------------------------------------------------------------------------

    def token_grid(self, x: Tensor) -> tuple[int, ...]:
        """Token grid of input ``x`` (video ``(t, h, w)``, audio ``(f, t)``); raises on bad input."""
        check_input(x, self.modality, self.name)
        return self.patch_grid.grid_for(x.shape, self.name)

    def patchify(self, x: Tensor) -> Tensor:
        """``x`` → ``B×N×patch_dim`` raw patches in token order (the MAE reconstruction target)."""
        self.token_grid(x)
        return patchify(x, self.patch_grid.patch_size)

    def pos_embed_for(self, grid: tuple[int, ...]) -> Tensor:
        """Position embedding ``1×(1+N)×D`` for a token grid (CLS slot first), resized if needed."""
        g = self.patch_grid
        return pos_embed_for_grid(self.pos_embed, g.grid, grid, g.pos_interp_mode, g.fixed_axes)

    def forward_tokens(
        self,
        x: Tensor,
        keep_index: Tensor | None = None,
        return_attention: bool = False,
    ) -> dict[str, Tensor]:
        """Run the encoder on all tokens, or on the visible ones given by ``keep_index``.

        Args:
            x: video ``B×3×T×H×W`` or spectrogram ``B×1×F×T``.
            keep_index: optional ``B×L`` integer indices (into the ``N`` patch tokens, in token
                order) of the tokens to keep, per sample. Position embeddings are added before
                the selection, so each kept token carries its own position (MAE masking, §4.3).
            return_attention: also return the last block's softmax attention.

        Returns:
            ``tokens``: ``B×(1+L)×D`` after the final LayerNorm, CLS first (``L = N`` without
            ``keep_index``); with ``return_attention``, ``attention``: ``B×heads×(1+L)×(1+L)``.
        """
        grid = self.token_grid(x)
        pos = self.pos_embed_for(grid)  # [1, 1+N, D]
        tokens = self.patch_embed(x) + pos[:, 1:]  # [B, N, D]
        if keep_index is not None:
            tokens = self._keep_tokens(tokens, keep_index)  # [B, L, D]
        cls = (self.cls_token + pos[:, :1]).expand(tokens.shape[0], -1, -1)  # [B, 1, D]
        h = torch.cat([cls, tokens], dim=1)  # [B, 1+L, D]
        for block in self.blocks[:-1]:
            h = block(h)
        last = self.blocks[-1]
        out: dict[str, Tensor] = {}
        if return_attention:
            out["attention"] = attention_map(last.attn, last.norm1(h))
        out["tokens"] = self.norm(last(h))
        return out

    def _keep_tokens(self, tokens: Tensor, keep_index: Tensor) -> Tensor:
        batch, _, dim = tokens.shape
        is_integer = keep_index.dtype in (torch.int64, torch.int32)
        if not is_integer or keep_index.ndim != 2 or keep_index.shape[0] != batch:
            raise ValueError(
                f"{self.name}: keep_index must be an integer tensor B×L with B={batch}, "
                f"got {keep_index.dtype} of shape {tuple(keep_index.shape)}"
            )
        index = keep_index.to(torch.int64).unsqueeze(-1).expand(-1, -1, dim)  # [B, L, D]
        return torch.gather(tokens, 1, index)

    # -- contract ----------------------------------------------------------------------------

    def forward_features(self, x: Tensor) -> dict[str, Tensor]:
        """All tokens and poolings: ``tokens`` B×(1+N)×D (final LN, CLS first), ``cls`` B×D,
        ``patch_mean`` B×D (mean over patch tokens, CLS excluded) and ``pooled`` (per ``pool``)."""
        tokens = self.forward_tokens(x)["tokens"]
        features = {
            "tokens": tokens,
            "cls": pool_tokens(tokens, "cls"),
            "patch_mean": pool_tokens(tokens, "mean"),
        }
        features["pooled"] = features["patch_mean"] if self.pool == "mean" else features["cls"]
        return features

    def forward(self, x: Tensor) -> Tensor:
        """Pooled feature ``B×D`` (XKD ``feat_op='pool'``: final LN, mean of patch tokens)."""
        return pool_tokens(self.forward_tokens(x)["tokens"], self.pool)


# -- registered encoders ----------------------------------------------------------------------

XKD_VIDEO_SPEC = InputSpec(
    modality="video", frames=32, fps=8.0, size=112, mean=IMAGENET_MEAN, std=IMAGENET_STD,
    notes={"source": "XKD §4.1/§4.6: 32 frames at 8 fps (4 s), 112², ImageNet statistics"},
)
XKD_AUDIO_SPEC = InputSpec(
    modality="audio", sample_rate=16000, duration=4.0, spectrogram="xkd", layout="FT",
    notes={"source": "XKD §4.2: 4 s mono at 16 kHz, 80 mel × 448 frames (hop 143)"},
)


@register_encoder("vit_b_video_xkd")
def vit_b_video_xkd(**kwargs) -> ViTEncoder:
    """XKD video ViT-B: 32×112² clips, 4×16×16 cuboids (8×7×7 tokens), 87,691,008 parameters."""
    return ViTEncoder(
        video_cuboids(32, 112, (4, 16, 16)), input_spec=XKD_VIDEO_SPEC, name="vit_b_video_xkd", **kwargs
    )


@register_encoder("vit_b_audio_xkd")
def vit_b_audio_xkd(**kwargs) -> ViTEncoder:
    """XKD audio ViT-B: 80×448 log-mel, 4×16 patches (20×28 tokens), 85,509,888 parameters."""
    return ViTEncoder(
        audio_patches(80, 448, (4, 16)), input_spec=XKD_AUDIO_SPEC, name="vit_b_audio_xkd", **kwargs
    )


# Small variants with the same structure, for CPU tests and the demo (not an XKD release).
SMALL_SIZE = {"embed_dim": 192, "depth": 3, "num_heads": 3}


@register_encoder("vit_small_video")
def vit_small_video(**kwargs) -> ViTEncoder:
    """Small video ViT: 8×64² clips, 2×16×16 cuboids (4×4×4 tokens), dim 192, depth 3, 3 heads."""
    spec = InputSpec(
        modality="video", frames=8, fps=8.0, size=64, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        notes={"source": "avssl small variant for CPU tests, not a released model"},
    )
    return ViTEncoder(
        video_cuboids(8, 64, (2, 16, 16)), input_spec=spec, name="vit_small_video", **{**SMALL_SIZE, **kwargs}
    )


@register_encoder("vit_small_audio")
def vit_small_audio(**kwargs) -> ViTEncoder:
    """Small audio ViT: 80×112 log-mel (1 s with XKD's hop 143), 4×16 patches (20×7 tokens)."""
    spec = InputSpec(
        modality="audio", sample_rate=16000, duration=1.0, spectrogram="xkd", layout="FT",
        notes={"source": "avssl small variant for CPU tests, not a released model"},
    )
    return ViTEncoder(
        audio_patches(80, 112, (4, 16)), input_spec=spec, name="vit_small_audio", **{**SMALL_SIZE, **kwargs}
    )
