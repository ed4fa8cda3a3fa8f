"""Behaviour of XKD / XKD-MAS / XKD-MATS (spec §4) with tiny ViTs on random tensors of the view shapes.

Parity of the loss pieces with the released code is in ``test_parity_xkd.py``; here: training
steps of each variant, EMA teachers, sharing in MAS/MATS and the double EMA update, gradient
clipping, parameter groups, schedules, bf16 autocast, and the sizes of the full models.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from avssl.methods.ema import EMATeacher, cosine_momentum, ema_update_
from avssl.methods.masking import num_visible, random_masking
from avssl.methods.registry import create_method, list_methods
from avssl.methods.xkd import XKD
from avssl.methods.xkd_losses import teacher_temperature
from avssl.models.dino_head import DINOHead
from avssl.models.mae_decoder import MAEDecoder
from avssl.models.patch_embed import audio_patches, video_cuboids
from avssl.models.registry import create_encoder
from avssl.models.vit import ViTEncoder
from avssl.train.config import OptimizerConfig
from avssl.train.optim import build_param_groups

B = 2
TINY = dict(
    head_hidden_dim=32, head_bottleneck_dim=8, head_out_dim=64,
    decoder_dim=16, decoder_depth=1, decoder_heads=2,
)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    # These steps are tiny; on a shared 2-core machine two OpenMP threads wait on each other
    # (measured 25× slower under load), so run them on one thread and restore the setting after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_encoders() -> tuple[ViTEncoder, ViTEncoder]:
    """XKD's tokenisers and native grids (8×7×7 video, 20×28 audio) with a tiny transformer."""
    video = ViTEncoder(video_cuboids(32, 112, (4, 16, 16)), embed_dim=24, depth=2, num_heads=2)
    audio = ViTEncoder(audio_patches(80, 448, (4, 16)), embed_dim=24, depth=2, num_heads=2)
    return video, audio


def make_method(name: str = "xkd", **hparams) -> XKD:
    torch.manual_seed(0)
    video, audio = tiny_encoders()
    return create_method(name, video_encoder=video, audio_encoder=audio, **{**TINY, **hparams})


def make_batch(num_local_video: int = 1, seed: int = 0) -> dict:
    """Random tensors with the shapes of view recipe ``xkd``."""
    g = torch.Generator().manual_seed(seed)
    video = [torch.randn(B, 3, 32, 112, 112, generator=g)]
    video += [torch.randn(B, 3, 8, 96, 96, generator=g) for _ in range(num_local_video)]
    audio = [torch.randn(B, 1, 80, 448, generator=g), torch.randn(B, 1, 80, 112, generator=g)]
    return {"video": video, "audio": audio, "index": torch.arange(B)}


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def optimizer_for(method: XKD) -> torch.optim.Optimizer:
    groups = build_param_groups(method, OptimizerConfig(name="adamw", weight_decay=0.3))
    return torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95))


# -- training steps ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, num_local", [("xkd", 1), ("xkd_mas", 3), ("xkd_mats", 3)])
def test_training_steps_update_students_and_teachers_only_by_ema(name, num_local):
    method = make_method(name)
    optimizer = optimizer_for(method)
    batch = make_batch(num_local)
    students = nn.ModuleDict({"ve": method.video_encoder, "vh": method.video_head,
                              "ae": method.audio_encoder, "ah": method.audio_head})
    student_start = snapshot(students)
    max_steps = 10
    for step in range(2):
        teacher_before = snapshot(method.teachers)
        out = method(batch)
        assert torch.isfinite(out["loss"]) and out["loss"].ndim == 0
        assert all(torch.isfinite(v).all() for v in out.values())
        optimizer.zero_grad()
        out["loss"].backward()
        assert all(p.grad is None for p in method.teachers.parameters())
        method.on_before_optimizer_step()
        optimizer.step()
        assert all(torch.equal(v, teacher_before[k]) for k, v in method.teachers.state_dict().items())
        method.on_after_optimizer_step(step, max_steps)
        m = cosine_momentum(step, max_steps)
        # expected teacher = m·teacher_before + (1 − m)·student_after, per group (MATS: shared blocks twice)
        for group, (enc, head) in {"video": (method.video_encoder, method.video_head),
                                   "audio": (method.audio_encoder, method.audio_head)}.items():
            teacher = method.teachers[group]
            student_after = nn.ModuleDict({"encoder": enc, "head": head}).state_dict()
            for key, value in teacher.state_dict().items():
                before = teacher_before[f"groups.{group}.{key}"]
                shared_twice = name == "xkd_mats" and key.startswith("encoder.blocks.")
                mom = m * m if shared_twice else m
                expected = mom * before + (1 - mom) * student_after[key]
                torch.testing.assert_close(value, expected, atol=1e-6, rtol=1e-5, msg=f"{group}.{key}")
    changed = [k for k, v in snapshot(students).items() if not torch.equal(v, student_start[k])]
    assert len(changed) > 0.9 * len(student_start)


def test_loss_combines_terms_with_config_coefficients():
    method = make_method("xkd", align_coeff=2.0, cmkd_coeff=0.5, recon_coeff=3.0)
    out = method(make_batch())
    expected = (2.0 * out["loss/align"] + 0.5 * out["loss/kd"] + 3.0 * out["loss/recon"]) / 5.5
    torch.testing.assert_close(out["loss"].detach(), expected)
    torch.testing.assert_close(out["loss/recon"], (out["loss/recon_video"] + out["loss/recon_audio"]) / 2)
    torch.testing.assert_close(out["loss/kd"], (out["loss/kd_v2a"] + out["loss/kd_a2v"]) / 2)
    torch.testing.assert_close(out["loss/align"], (out["loss/align_students"] + out["loss/align_teachers"]) / 2)


def test_bf16_autocast_step():
    method = make_method("xkd_mats")
    optimizer = optimizer_for(method)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method(make_batch(3))
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    optimizer.zero_grad()
    out["loss"].backward()
    grads = [p.grad for p in method.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    method.on_before_optimizer_step()
    optimizer.step()
    method.on_after_optimizer_step(0, 10)
    assert all(torch.isfinite(p).all() for p in method.parameters())
    assert all(p.dtype == torch.float32 for p in method.parameters())


@pytest.mark.parametrize("teacher_view, view_index", [("local", 1), ("global", 0)])
def test_teacher_view_switch(monkeypatch, teacher_view, view_index):
    method = make_method("xkd", teacher_view=teacher_view)
    batch = make_batch()
    seen = {}
    original = method.teacher_outputs

    def spy(video, audio):
        seen["video"], seen["audio"] = video, audio
        return original(video, audio)

    monkeypatch.setattr(method, "teacher_outputs", spy)
    method(batch)
    assert seen["video"] is batch["video"][view_index]
    assert seen["audio"] is batch["audio"][view_index]


def test_students_encode_only_visible_tokens_and_heads_see_all_views():
    method = make_method("xkd_mas")
    batch = make_batch(3)
    _, latent_v = method.reconstruct("video", batch["video"][0])
    _, latent_a = method.reconstruct("audio", batch["audio"][0])
    assert latent_v.shape == (B, 1 + num_visible(392, 0.85), 24) == (B, 60, 24)
    assert latent_a.shape == (B, 1 + num_visible(560, 0.80), 24) == (B, 113, 24)
    s_v = method.student_outputs("video", latent_v, batch["video"][1:])
    assert s_v.shape == (4 * B, 64)
    # the local-view rows are the head of the local views' patch-token means, view-major
    local = method.video_encoder.forward_tokens(batch["video"][2])["tokens"][:, 1:].mean(1)
    torch.testing.assert_close(s_v[2 * B : 3 * B], method.video_head(local), atol=1e-5, rtol=1e-4)


def test_reconstruction_with_injected_noise_is_deterministic():
    method = make_method("xkd")
    x = make_batch()["audio"][0]
    noise = torch.rand(B, 560, generator=torch.Generator().manual_seed(3))
    first, _ = method.reconstruct("audio", x, noise=noise)
    second, _ = method.reconstruct("audio", x, noise=noise)
    other, _ = method.reconstruct("audio", x, noise=torch.rand(B, 560))
    assert torch.equal(first, second) and not torch.equal(first, other)


def test_bad_batch_names_the_field():
    method = make_method("xkd")
    batch = make_batch()
    batch["audio"] = batch["audio"][:1]
    with pytest.raises(ValueError, match=r"batch\['audio'\].*at least two"):
        method(batch)
    with pytest.raises(ValueError, match="teacher_view"):
        make_method("xkd", teacher_view="middle")


# -- sharing and EMA --------------------------------------------------------------------------


def _ids(module: nn.Module) -> set[int]:
    return {id(p) for p in module.parameters()}


@pytest.mark.parametrize("name", ["xkd", "xkd_mas", "xkd_mats"])
def test_exactly_which_modules_are_shared(name):
    method = make_method(name)
    tv, ta = method.teachers["video"], method.teachers["audio"]
    shared_students = name in ("xkd_mas", "xkd_mats")
    shared_teachers = name == "xkd_mats"
    assert (method.video_encoder.blocks is method.audio_encoder.blocks) == shared_students
    assert (tv["encoder"].blocks is ta["encoder"].blocks) == shared_teachers
    # the parameters common to two modules are exactly the blocks, and only where shared
    student_common = _ids(method.video_encoder) & _ids(method.audio_encoder)
    teacher_common = _ids(tv) & _ids(ta)
    assert student_common == (_ids(method.video_encoder.blocks) if shared_students else set())
    assert teacher_common == (_ids(tv["encoder"].blocks) if shared_teachers else set())
    students = nn.ModuleList([method.video_encoder, method.audio_encoder, method.video_head,
                              method.audio_head, method.video_decoder, method.audio_decoder])
    assert not _ids(students) & _ids(method.teachers)  # teachers never share with students
    assert not _ids(method.video_decoder) & _ids(method.audio_decoder)
    assert not _ids(method.video_head) & _ids(method.audio_head)
    for p in method.teachers.parameters():
        assert not p.requires_grad


@pytest.mark.parametrize("update, expected_power", [("double", 2), ("single", 1)])
def test_mats_shared_teacher_blocks_effective_momentum(update, expected_power):
    method = make_method("xkd_mats", shared_teacher_update=update)
    with torch.no_grad():  # move the students away from the teachers
        for p in nn.ModuleList([method.video_encoder, method.audio_encoder]).parameters():
            p.add_(torch.randn_like(p))
    teacher_blocks = method.teachers["video"]["encoder"].blocks
    student_blocks = method.video_encoder.blocks
    before = [p.clone() for p in teacher_blocks.parameters()]
    t_cls, s_cls = method.teachers["audio"]["encoder"].cls_token, method.audio_encoder.cls_token
    cls_before = t_cls.clone()
    step, max_steps = 0, 100
    method.on_after_optimizer_step(step, max_steps)
    m = cosine_momentum(step, max_steps) ** expected_power
    for t, t0, s in zip(teacher_blocks.parameters(), before, student_blocks.parameters()):
        torch.testing.assert_close(t, m * t0 + (1 - m) * s, atol=1e-6, rtol=1e-6)
    # the modality-specific teacher parts get one update in both modes
    m1 = cosine_momentum(step, max_steps)
    torch.testing.assert_close(t_cls, m1 * cls_before + (1 - m1) * s_cls, atol=1e-6, rtol=1e-6)


def test_cosine_momentum_schedule():
    assert cosine_momentum(0, 50) == pytest.approx(0.997)
    assert cosine_momentum(50, 50) == pytest.approx(1.0)
    for step in (7, 25, 41):
        assert cosine_momentum(step, 50) == pytest.approx(1 - 0.003 * (1 + math.cos(math.pi * step / 50)) / 2)
    with pytest.raises(ValueError):
        cosine_momentum(0, 0)


def test_ema_teacher_groups_and_update():
    shared = nn.Linear(3, 3)
    students = {"a": nn.Sequential(shared, nn.Linear(3, 2)), "b": nn.Sequential(shared, nn.Linear(3, 4))}
    separate = EMATeacher(students, share_like_students=False)
    together = EMATeacher(students, share_like_students=True)
    assert separate["a"][0] is not separate["b"][0]
    assert together["a"][0] is together["b"][0]
    t = [torch.ones(2)]
    ema_update_(t, [torch.zeros(2)], 0.75)
    assert torch.equal(t[0], torch.full((2,), 0.75))
    with pytest.raises(KeyError):
        separate.update({"a": students["a"]}, 0.9)


# -- optimiser hooks --------------------------------------------------------------------------


def test_per_tensor_gradient_clipping_of_students_only():
    method = make_method("xkd_mas")
    g = torch.Generator().manual_seed(1)
    for p in method.parameters():
        if p.requires_grad:
            p.grad = torch.randn(p.shape, generator=g) * 0.5
    before = {id(p): p.grad.clone() for p in method.parameters() if p.grad is not None}
    method.on_before_optimizer_step()
    students = nn.ModuleList([method.video_encoder, method.video_head, method.audio_encoder, method.audio_head])
    student_ids = _ids(students)
    clipped = 0
    for p in method.parameters():
        if p.grad is None:
            continue
        g0 = before[id(p)]
        if id(p) in student_ids:
            scale = min(1.0, 0.3 / (g0.norm().item() + 1e-6))
            torch.testing.assert_close(p.grad, g0 * scale)
            clipped += scale < 1
        else:  # decoders are not clipped
            assert torch.equal(p.grad, g0)
    assert clipped > 10


def test_param_groups_weight_decay_split():
    method = make_method("xkd_mas")
    groups = {g["name"]: g for g in build_param_groups(method, OptimizerConfig(name="adamw", weight_decay=0.3))}
    assert set(groups) == {"xkd", "xkd_no_decay"}
    assert groups["xkd"]["weight_decay"] == 0.3 and groups["xkd_no_decay"]["weight_decay"] == 0.0
    names = {id(p): n for n, p in method.named_parameters()}
    grouped = [id(p) for g in groups.values() for p in g["params"]]
    trainable = [id(p) for p in method.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable) and len(set(grouped)) == len(grouped)
    assert not set(grouped) & _ids(method.teachers)
    decay_names = {names[id(p)] for p in groups["xkd"]["params"]}
    no_decay_names = {names[id(p)] for p in groups["xkd_no_decay"]["params"]}
    for must_decay in ("video_encoder.cls_token", "video_encoder.pos_embed", "audio_decoder.mask_token",
                       "video_decoder.dec_pos_embed", "video_head.last_layer.weight_v"):
        assert must_decay in decay_names
    for must_not in ("video_encoder.patch_embed.proj.bias", "video_head.mlp.1.weight", "audio_encoder.norm.weight"):
        assert must_not in no_decay_names
    assert "video_head.last_layer.weight_g" not in decay_names | no_decay_names  # frozen gain


def test_teacher_temperature_warmup_per_epoch():
    method = make_method("xkd_mas")
    expected = {
        0: (0.09, 0.04),
        15: (0.09 + 0.02 * 15 / 29, 0.04 + 0.02 * 15 / 29),
        29: (0.11, 0.06),
        400: (0.11, 0.06),
    }
    for epoch, (video, audio) in expected.items():
        method.on_train_epoch_start(SimpleNamespace(epoch=epoch, max_epochs=800, global_step=0, max_steps=1))
        temps = method.teacher_temperatures()
        assert temps["video"] == pytest.approx(video) and temps["audio"] == pytest.approx(audio)
    assert make_method("xkd").teacher_temperatures() == pytest.approx({"video": 0.1, "audio": 0.07})
    assert teacher_temperature(3, 0.2, 0.4, 1) == 0.4


def test_state_dict_round_trip_keeps_teachers_centres_and_epoch():
    method = make_method("xkd_mats", video_warmup_teacher_temp=0.05, warmup_teacher_temp_epochs=11)
    method.on_train_epoch_start(SimpleNamespace(epoch=5))
    method(make_batch(3))  # moves the centres away from zero
    method.on_after_optimizer_step(3, 10)
    assert method.distill_v2a.center.abs().sum() > 0
    state = method.state_dict()
    assert "distill_v2a.center" in state and "distill_a2v.center" in state
    assert any(k.startswith("teachers.groups.audio.encoder.blocks.") for k in state)
    fresh = make_method("xkd_mats", video_warmup_teacher_temp=0.05, warmup_teacher_temp_epochs=11)
    assert fresh.teacher_temperatures()["video"] == pytest.approx(0.05)
    fresh.load_state_dict(state)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert fresh.teachers["video"]["encoder"].blocks is fresh.teachers["audio"]["encoder"].blocks
    # a run resumed mid-epoch continues the temperature warm-up where it was (epoch 5 of 11)
    assert fresh.epoch == 5 and fresh.teacher_temperatures()["video"] == pytest.approx(0.05 + 0.05 * 5 / 10)
    assert float(fresh(make_batch(3))["ema_momentum"]) == pytest.approx(cosine_momentum(3, 10))


# -- building blocks and sizes ----------------------------------------------------------------


def test_masking_keeps_the_lowest_noise_tokens_in_order():
    masks = random_masking(3, 392, 0.85)
    assert masks.keep_index.shape == (3, 59) and masks.mask.sum(1).tolist() == [333.0] * 3
    noise = torch.rand(2, 10)
    m = random_masking(2, 10, 0.6, noise=noise)
    kept = torch.gather(noise, 1, m.keep_index)
    assert torch.all(kept[:, 1:] >= kept[:, :-1]) and torch.all(kept.max(1).values < torch.gather(
        noise, 1, torch.nonzero(m.mask.bool())[:, 1].view(2, -1)).min(1).values)
    assert num_visible(560, 0.8) == 112 and num_visible(392, 0.85) == 59


def test_mae_decoder_shapes_and_resized_position_embedding():
    grid = video_cuboids(32, 112, (4, 16, 16))
    decoder = MAEDecoder(grid, encoder_dim=24, decoder_dim=16, depth=1, num_heads=2)
    masks = random_masking(B, 2 * 6 * 6, 0.75)  # an 8×96² view: 2×6×6 tokens
    latent = torch.randn(B, 1 + masks.keep_index.shape[1], 24)
    assert decoder(latent, masks.ids_restore, (2, 6, 6)).shape == (B, 72, 3072)


def test_dino_head_shares_its_hidden_norm_and_has_unit_gain():
    head = DINOHead(24, hidden_dim=32, bottleneck_dim=8, out_dim=64)
    assert head.mlp[1] is head.mlp[4]
    assert DINOHead(24, 32, 8, 64, share_hidden_norm=False).mlp[1] is not DINOHead(24, 32, 8, 64).mlp[4]
    out = head(torch.randn(5, 24))
    torch.testing.assert_close(out.mean(-1), torch.zeros(5), atol=1e-5, rtol=0)  # LayerNorm, no affine
    torch.testing.assert_close(head.last_layer.weight.norm(dim=1), torch.ones(64))
    assert not head.last_layer.weight_g.requires_grad


def test_full_size_parameter_counts_match_the_spec():
    """§4.1 totals: XKD 396.4 M (206.3 M trainable), MAS 311.3 M (121.3 M), MATS 226.3 M (121.3 M);
    head 8,405,248; decoders 8,722,560 (video) and 7,628,992 (audio). Built on the meta device."""
    spec = {"xkd": (396.4, 206.3), "xkd_mas": (311.3, 121.3), "xkd_mats": (226.3, 121.3)}
    with torch.device("meta"):
        for name, (total, trainable) in spec.items():
            method = create_method(name, video_encoder=create_encoder("vit_b_video_xkd"),
                                   audio_encoder=create_encoder("vit_b_audio_xkd"))
            params = list(method.parameters())
            assert round(sum(p.numel() for p in params) / 1e6, 1) == total
            assert round(sum(p.numel() for p in params if p.requires_grad) / 1e6, 1) == trainable
    assert sum(p.numel() for p in method.video_head.parameters()) == 8_405_248
    assert sum(p.numel() for p in method.video_decoder.parameters()) == 8_722_560
    assert sum(p.numel() for p in method.audio_decoder.parameters()) == 7_628_992


def test_registered_names():
    assert {"xkd", "xkd_mas", "xkd_mats"} <= set(list_methods("xkd*"))
