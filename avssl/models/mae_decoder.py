"""MAE decoder of XKD's masked reconstruction (``base_decoder``, spec §4.1, §4.3 step 1).

The encoder has seen only the visible tokens (CLS first). The decoder::

    mid_proj (Linear enc_dim → 384) → append mask tokens → un-shuffle with ``ids_restore``
    → CLS back in front → + decoder position embedding → 4 ViT blocks (384, 12 heads, qkv no bias)
    → out_proj (Linear 384 → patch_dim) → drop CLS → ``B×N×patch_dim``

There is no LayerNorm before ``out_proj`` (the released decoder has none: video 8,722,560 and audio
7,628,992 parameters, which this module reproduces). The decoder position embedding is learned,
sized for the encoder's native grid (plus the CLS slot), and resized like the encoder's for other
grids (:func:`avssl.models.pos_embed.pos_embed_for_grid`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from avssl.models.patch_embed import PatchGrid
from avssl.models.pos_embed import pos_embed_for_grid
from avssl.models.vit import make_vit_blocks


class MAEDecoder(nn.Module):
    """Lightweight transformer decoder predicting the raw patches of every token.

    Args:
        patch_grid: the encoder's tokeniser (patch size, native grid, resize rule).
        encoder_dim: width of the encoder tokens (ViT-B: 768).
        decoder_dim, depth, num_heads, mlp_ratio: decoder size (XKD ``base_decoder``: 384, 4, 12, 4).

    Shapes (``forward``): ``latent`` ``B×(1+L)×encoder_dim`` (CLS first, the ``L`` visible tokens
    in the order of ``keep_index``), ``ids_restore`` ``B×N`` → ``B×N×patch_dim``.
    """

    def __init__(
        self,
        patch_grid: PatchGrid,
        encoder_dim: int = 768,
        decoder_dim: int = 384,
        depth: int = 4,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.patch_grid = patch_grid
        self.mid_proj = nn.Linear(encoder_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.dec_pos_embed = nn.Parameter(torch.zeros(1, 1 + patch_grid.num_patches, decoder_dim))
        self.blocks = make_vit_blocks(decoder_dim, depth, num_heads, mlp_ratio)
        self.out_proj = nn.Linear(decoder_dim, patch_grid.patch_dim)
        for linear in (self.mid_proj, self.out_proj):  # MAE / XKD: Xavier-uniform, zero bias
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.dec_pos_embed, std=0.02)

    def forward(self, latent: Tensor, ids_restore: Tensor, grid: Sequence[int]) -> Tensor:
        """Predict all ``N`` patches from the encoded visible tokens.

        Args:
            latent: encoder output ``B×(1+L)×encoder_dim`` on the visible tokens, CLS first.
            ids_restore: ``B×N`` permutation that puts the ``[visible; masked]`` sequence back
                in token order (from :func:`avssl.methods.masking.random_masking`).
            grid: token grid of the input (e.g. ``(8, 7, 7)``), for the position embedding.
        """
        x = self.mid_proj(latent)  # [B, 1+L, Dd]
        batch, visible_plus_cls, dim = x.shape
        num_tokens = ids_restore.shape[1]
        if visible_plus_cls - 1 > num_tokens:
            raise ValueError(
                f"MAEDecoder: {visible_plus_cls - 1} visible tokens but ids_restore has only {num_tokens}"
            )
        masked = self.mask_token.to(x.dtype).expand(batch, num_tokens - (visible_plus_cls - 1), dim)
        shuffled = torch.cat([x[:, 1:], masked], dim=1)  # [B, N, Dd] in keep-then-masked order
        index = ids_restore.unsqueeze(-1).expand(-1, -1, dim)
        tokens = torch.gather(shuffled, 1, index)  # [B, N, Dd] in token order
        g = self.patch_grid
        pos = pos_embed_for_grid(self.dec_pos_embed, g.grid, tuple(grid), g.pos_interp_mode, g.fixed_axes)
        h = torch.cat([x[:, :1], tokens], dim=1) + pos  # [B, 1+N, Dd]
        for block in self.blocks:
            h = block(h)
        return self.out_proj(h)[:, 1:]  # [B, N, patch_dim]
