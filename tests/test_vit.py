"""XKD ViT encoders: contract, sizes, masked forward, attention maps, shared blocks, small variants.

ViT-B is exercised on the meta device (shapes and parameter counts without computing anything);
numerical checks use the small registered variants. Numerical parity of ViT-B with the original
code is in test_parity_vit.py.
"""

from __future__ import annotations

import math
import time

import pytest
import torch

from avssl.models.checkpoints import CheckpointError, CheckpointMismatchError, load_checkpoint
from avssl.models.patch_embed import audio_patches, patchify, video_cuboids
from avssl.models.pos_embed import resize_patch_pos_embed
from avssl.models.registry import create_encoder, list_encoders
from avssl.models.vit import ViTEncoder, make_vit_blocks

SMALL = {"video": "vit_small_video", "audio": "vit_small_audio"}


def small(modality: str, **kwargs) -> ViTEncoder:
    torch.manual_seed(0)
    return create_encoder(SMALL[modality], **kwargs).eval()


def native_input(encoder: ViTEncoder, batch: int = 2, seed: int = 0) -> torch.Tensor:
    shape = (batch, *encoder.patch_grid.native_input_shape)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def meta_vit_b(name: str) -> ViTEncoder:
    with torch.device("meta"):
        return create_encoder(name)


# -- contract --------------------------------------------------------------------------------


def test_registry_lists_the_vit_encoders():
    assert {"vit_b_video_xkd", "vit_b_audio_xkd", "vit_small_video", "vit_small_audio"} <= set(
        list_encoders("vit_*")
    )


@pytest.mark.parametrize(
    ("name", "expected"), [("vit_b_video_xkd", 87_691_008), ("vit_b_audio_xkd", 85_509_888)]
)
def test_vit_b_parameter_count_matches_spec(name, expected):
    encoder = meta_vit_b(name)
    assert sum(p.numel() for p in encoder.parameters()) == expected
    # LayerNorm eps and bias-free qkv are what the released weights need (spec §4.1).
    assert encoder.blocks[0].norm1.eps == 1e-5 and encoder.norm.eps == 1e-5
    assert encoder.blocks[0].attn.qkv.bias is None
    assert len(encoder.blocks) == 12 and encoder.out_dim == 768


@pytest.mark.parametrize("name", ["vit_b_video_xkd", "vit_b_audio_xkd"])
def test_vit_b_input_spec_gives_the_native_grid(name):
    encoder = meta_vit_b(name)
    spec = encoder.input_spec
    assert spec.example_shape(1)[1:] == encoder.patch_grid.native_input_shape
    if spec.modality == "video":
        assert (spec.frames, spec.fps, spec.size) == (32, 8.0, 112)  # 4 s at 8 fps (spec §4.1)
    else:
        assert (spec.sample_rate, spec.duration, spec.spectrogram) == (16000, 4.0, "xkd")


def test_vit_b_state_dict_uses_xkd_evaluation_names():
    keys = list(meta_vit_b("vit_b_video_xkd").state_dict())
    assert keys[:4] == ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    assert keys[-2:] == ["norm.weight", "norm.bias"]
    assert len(keys) == 138


@pytest.mark.parametrize(
    ("name", "shape", "tokens"),
    [
        ("vit_b_video_xkd", (2, 3, 32, 112, 112), 8 * 7 * 7),  # native
        ("vit_b_video_xkd", (1, 3, 32, 224, 224), 8 * 14 * 14),  # fine-tuning size
        ("vit_b_video_xkd", (2, 3, 8, 96, 96), 2 * 6 * 6),  # local view
        ("vit_b_audio_xkd", (2, 1, 80, 448), 20 * 28),  # native
        ("vit_b_audio_xkd", (2, 1, 80, 112), 20 * 7),  # local view
    ],
)
def test_vit_b_shapes_at_native_and_interpolated_sizes(name, shape, tokens):
    encoder = meta_vit_b(name)
    with torch.device("meta"):
        features = encoder.forward_features(torch.empty(shape))
        pooled = encoder(torch.empty(shape))
    assert features["tokens"].shape == (shape[0], 1 + tokens, 768)
    assert features["pooled"].shape == pooled.shape == (shape[0], 768)


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_small_encoder_contract(modality):
    encoder = small(modality)
    x = native_input(encoder)
    spec = encoder.input_spec
    assert encoder.modality == spec.modality == modality
    assert spec.example_shape(2) == x.shape  # the spec describes exactly the native input
    if modality == "audio":
        assert spec.spectrogram == "xkd" and spec.layout == "FT"
    with torch.no_grad():
        features = encoder.forward_features(x)
        pooled = encoder(x)
    n = encoder.patch_grid.num_patches
    assert features["tokens"].shape == (2, 1 + n, encoder.out_dim)
    torch.testing.assert_close(pooled, features["tokens"][:, 1:].mean(dim=1))
    torch.testing.assert_close(features["pooled"], pooled)
    torch.testing.assert_close(features["cls"], features["tokens"][:, 0])


def test_cls_pooling_returns_the_cls_token():
    mean_encoder = small("audio")
    cls_encoder = small("audio", pool="cls")
    cls_encoder.load_state_dict(mean_encoder.state_dict())
    x = native_input(mean_encoder)
    with torch.no_grad():
        tokens = mean_encoder.forward_features(x)["tokens"]
        torch.testing.assert_close(cls_encoder(x), tokens[:, 0])
    with pytest.raises(ValueError, match="pool must be"):
        create_encoder("vit_small_audio", pool="max")


# -- tokeniser and position embedding -----------------------------------------------------------


def test_patchify_order_channels_fastest():
    # Definition (spec §4.1): b c (t 2) (h 16) (w 16) -> b (t h w) (2·16·16·c).
    x = torch.randn(1, 3, 4, 32, 48)
    patches = patchify(x, (2, 16, 16))
    assert patches.shape == (1, 2 * 2 * 3, 2 * 16 * 16 * 3)
    for t, h, w in [(0, 0, 0), (1, 1, 2), (1, 0, 1)]:
        token = (t * 2 + h) * 3 + w
        cuboid = x[0, :, 2 * t : 2 * t + 2, 16 * h : 16 * h + 16, 16 * w : 16 * w + 16]
        torch.testing.assert_close(patches[0, token], cuboid.permute(1, 2, 3, 0).reshape(-1))


def test_resize_pos_embed_keeps_native_grid_and_constants():
    pos = torch.randn(1, 8 * 7 * 7, 16)
    assert resize_patch_pos_embed(pos, (8, 7, 7), (8, 7, 7), "trilinear") is pos
    constant = torch.full((1, 20 * 28, 4), 0.3)
    resized = resize_patch_pos_embed(constant, (20, 28), (20, 7), "bicubic", fixed_axes=(0,))
    assert resized.shape == (1, 20 * 7, 4)
    torch.testing.assert_close(resized, torch.full_like(resized, 0.3))
    for grid in [(2, 6, 6), (8, 14, 14), (1, 1, 1), (9, 13, 5)]:  # the +0.1 margin hits every size
        assert resize_patch_pos_embed(pos, (8, 7, 7), grid, "trilinear").shape == (1, math.prod(grid), 16)


def test_audio_frequency_axis_is_fixed():
    # Bicubic along time only: every frequency row of the result depends on that row alone.
    pos = torch.zeros(1, 20 * 28, 2)
    pos.view(1, 20, 28, 2)[0, 5] = torch.randn(28, 2)
    resized = resize_patch_pos_embed(pos, (20, 28), (20, 9), "bicubic", fixed_axes=(0,)).view(20, 9, 2)
    assert resized[5].abs().sum() > 0
    assert torch.count_nonzero(torch.cat([resized[:5], resized[6:]])) == 0
    encoder = small("audio")
    with pytest.raises(ValueError, match="frequency axis must have 80"):
        encoder(torch.randn(1, 1, 64, 112))


@pytest.mark.parametrize(
    ("modality", "shape", "grid"),
    [
        ("video", (2, 3, 4, 32, 48), (2, 2, 3)),
        ("video", (1, 3, 16, 80, 80), (8, 5, 5)),
        ("audio", (2, 1, 80, 48), (20, 3)),
    ],
)
def test_small_encoders_run_at_other_sizes(modality, shape, grid):
    encoder = small(modality)
    x = torch.randn(shape)
    assert encoder.token_grid(x) == grid
    with torch.no_grad():
        tokens = encoder.forward_features(x)["tokens"]
    assert tokens.shape == (shape[0], 1 + math.prod(grid), encoder.out_dim)
    assert torch.isfinite(tokens).all()
    # Nothing is cached: the native size still works after another size was seen.
    with torch.no_grad():
        assert encoder(native_input(encoder)).shape == (2, encoder.out_dim)


@pytest.mark.parametrize(
    ("modality", "shape", "message"),
    [
        ("video", (2, 3, 8, 64), "B×3×T×H×W"),
        ("video", (2, 1, 8, 64, 64), "B×3×T×H×W"),
        ("video", (2, 3, 7, 64, 64), "time axis"),
        ("video", (2, 3, 8, 64, 60), "width axis"),
        ("audio", (2, 1, 80, 100), "time axis"),
        ("audio", (2, 2, 80, 112), "B×1×F×T"),
    ],
)
def test_bad_input_shapes_raise_clear_errors(modality, shape, message):
    encoder = small(modality)
    with pytest.raises(ValueError, match=message) as info:
        encoder(torch.randn(shape))
    assert SMALL[modality] in str(info.value) and str(tuple(shape)) in str(info.value)


def test_uint8_frames_are_refused():
    encoder = small("video")
    with pytest.raises(ValueError, match="float"):
        encoder(torch.zeros(1, 3, 8, 64, 64, dtype=torch.uint8))


# -- what XKD training needs ------------------------------------------------------------------


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_masked_forward_with_every_token_kept_equals_full_forward(modality):
    encoder = small(modality)
    x = native_input(encoder)
    n = encoder.patch_grid.num_patches
    order = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(i)) for i in range(2)])
    with torch.no_grad():
        full = encoder.forward_tokens(x)["tokens"]
        kept = encoder.forward_tokens(x, keep_index=order)["tokens"]
    expected_patches = torch.gather(full[:, 1:], 1, order.unsqueeze(-1).expand(-1, -1, full.shape[-1]))
    torch.testing.assert_close(kept[:, 0], full[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(kept[:, 1:], expected_patches, atol=1e-5, rtol=1e-5)


def test_masked_forward_never_sees_masked_tokens():
    encoder = small("audio")
    x = native_input(encoder, batch=1)
    keep = torch.tensor([[0, 3, 30, 77]])  # token (f, t) = divmod(index, 7) on the 20×7 grid
    changed = x.clone()
    changed[..., 4:8, 16:32] += 5.0  # token 1·7 + 1 = 8, not kept
    with torch.no_grad():
        before = encoder.forward_tokens(x, keep_index=keep)["tokens"]
        after = encoder.forward_tokens(changed, keep_index=keep)["tokens"]
        moved = encoder.forward_tokens(x, keep_index=torch.tensor([[0, 3, 30, 8]]))["tokens"]
    assert before.shape == (1, 1 + 4, encoder.out_dim)
    torch.testing.assert_close(before, after, atol=0, rtol=0)
    assert not torch.allclose(before, moved)
    with pytest.raises(ValueError, match="keep_index must be an integer tensor"):
        encoder.forward_tokens(x, keep_index=torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize("keep", [None, torch.tensor([[1, 5, 9, 33], [0, 2, 4, 6]])])
def test_attention_map_is_the_last_blocks_softmax(keep):
    encoder = small("video")
    x = native_input(encoder)
    with torch.no_grad():
        plain = encoder.forward_tokens(x, keep_index=keep)["tokens"]
        out = encoder.forward_tokens(x, keep_index=keep, return_attention=True)
    tokens, attention = out["tokens"], out["attention"]
    length = tokens.shape[1]
    assert attention.shape == (2, 3, length, length)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 3, length))
    torch.testing.assert_close(tokens, plain, atol=0, rtol=0)  # asking for the map changes nothing

    # timm's own non-fused path passes the softmax weights through attn_drop: capture them there.
    last = encoder.blocks[-1].attn
    captured = []
    handle = last.attn_drop.register_forward_hook(lambda _m, args, _out: captured.append(args[0]))
    last.fused_attn = False
    try:
        with torch.no_grad():
            encoder.forward_tokens(x, keep_index=keep)
    finally:
        handle.remove()
        last.fused_attn = True
    torch.testing.assert_close(attention, captured[0], atol=1e-6, rtol=1e-5)


def test_shared_blocks_are_the_same_parameters():
    blocks = make_vit_blocks(embed_dim=192, depth=3, num_heads=3)
    video = create_encoder("vit_small_video", blocks=blocks)
    audio = create_encoder("vit_small_audio", blocks=blocks)
    assert video.blocks is audio.blocks is blocks
    video_params = {id(p) for p in video.parameters()}
    audio_params = {id(p) for p in audio.parameters()}
    assert {id(p) for p in blocks.parameters()} == video_params & audio_params
    assert video.pos_embed is not audio.pos_embed and video.norm is not audio.norm

    # A step on the audio loss moves the video encoder's blocks too.
    before = video.blocks[0].attn.qkv.weight.detach().clone()
    optimiser = torch.optim.SGD(audio.parameters(), lr=0.1)
    audio(native_input(audio)).pow(2).mean().backward()
    optimiser.step()
    assert not torch.equal(video.blocks[0].attn.qkv.weight, before)

    with pytest.raises(ValueError, match="width 768"):
        create_encoder("vit_small_audio", blocks=make_vit_blocks(192, 2, 3), embed_dim=768, num_heads=12)


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_small_variant_trains_one_step_quickly(modality):
    encoder = small(modality).train()
    x = native_input(encoder, batch=4)
    target = torch.randn(4, encoder.out_dim)
    optimiser = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(2):  # the first step pays one-off allocation costs
            start = time.perf_counter()
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(encoder(x), target)
            loss.backward()
            optimiser.step()
            elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in encoder.parameters())
    assert elapsed < 2.0, f"one training step took {elapsed:.2f} s"  # ~0.1 s measured; loose for shared CPUs


# -- XKD checkpoint layouts on small encoders ------------------------------------------------


def training_side_names(state: dict[str, torch.Tensor], modality: str) -> dict[str, torch.Tensor]:
    """Our (evaluation) names → XKD's training-side names, the inverse of the eval key map."""
    tokeniser = "cuboid_embed" if modality == "video" else "patch_embed"
    renamed = {}
    for key, value in state.items():
        if key.startswith("blocks."):
            key = "encoder." + key
        elif key.startswith("norm."):
            key = "encoder_" + key
        elif key == "pos_embed":
            key = "enc_pos_embed"
        elif key.startswith("patch_embed."):
            key = tokeniser + key[len("patch_embed") :]
        renamed[key] = value
    return renamed


@pytest.mark.parametrize("modality", ["video", "audio"])
def test_xkd_layouts_load_training_and_evaluation_names(modality, tmp_path):
    source = small(modality)
    x = native_input(source)
    for layout, state in [
        ("xkd_backbone", training_side_names(source.state_dict(), modality)),
        ("xkd_eval", source.state_dict()),
    ]:
        path = tmp_path / f"{layout}.pth.tar"
        torch.save(state, path)
        target = create_encoder(SMALL[modality]).eval()  # different random init
        report = load_checkpoint(target, path)
        assert report.layout == layout and report.loaded_keys == len(source.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(target(x), source(x), atol=0, rtol=0)


def test_xkd_layout_refuses_the_other_modality(tmp_path):
    video_state = training_side_names(small("video").state_dict(), "video")
    path = tmp_path / "vid_student.pth.tar"
    torch.save(video_state, path)
    with pytest.raises(CheckpointError, match="holds a video encoder .*cuboid_embed.*encodes audio"):
        load_checkpoint(small("audio"), path)
    # Evaluation names carry no modality key; the strict loader still lists the misfit tensors.
    torch.save(small("video").state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match="wrong shape: patch_embed.proj.weight"):
        load_checkpoint(small("audio"), path)


def test_xkd_layout_lists_missing_keys(tmp_path):
    state = training_side_names(small("audio").state_dict(), "audio")
    del state["encoder.blocks.2.mlp.fc2.bias"]
    path = tmp_path / "aud_teacher.pth.tar"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError, match=r"missing keys \(1\): blocks.2.mlp.fc2.bias"):
        load_checkpoint(small("audio"), path)


def test_patch_grids_of_the_released_models():
    video, audio = video_cuboids(), audio_patches()
    assert (video.grid, video.patch_dim, video.num_patches) == ((8, 7, 7), 3072, 392)
    assert (audio.grid, audio.patch_dim, audio.num_patches) == ((20, 28), 64, 560)
