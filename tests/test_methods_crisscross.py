"""Behaviour of CrissCross (spec §2.4, §2.6) with the small CPU encoders on random tensors.

Parity of the loss with the released code is in ``test_parity_losses.py``; here: training steps,
the loss composition (computed again in the test from D), the stop-gradient, ``pre_norm``, the
parameter groups, head sizes and input errors.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avssl.methods.crisscross import CrissCross, CrissCrossLoss, negative_cosine
from avssl.methods.registry import create_method, list_methods
from avssl.models.heads import SimSiamPredictor, SimSiamProjector
from avssl.models.registry import create_encoder

B = 4
SMALL_HEADS = dict(proj_dim=64, pred_hidden_dim=16)


def make_batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    # recipe ``crisscross``: 2 video + 2 audio views, small encoders' layouts shortened for CPU time
    return {
        "video": [torch.randn(B, 3, 4, 32, 32, generator=g) for _ in range(2)],
        "audio": [torch.randn(B, 1, 80, 48, generator=g) for _ in range(2)],
        "index": torch.arange(B),
        "skipped": [],
    }


def make_method(**hparams) -> CrissCross:
    torch.manual_seed(0)
    video, audio = create_encoder("r2plus1d_small"), create_encoder("audio_resnet_small")
    return create_method("crisscross", video_encoder=video, audio_encoder=audio, **{**SMALL_HEADS, **hparams})


def random_views(dim: int = 32) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(3)
    z = {v: torch.randn(B, dim, generator=g) for v in ("v1", "v2", "a1", "a2")}
    p = {v: torch.randn(B, dim, generator=g, requires_grad=True) for v in ("v1", "v2", "a1", "a2")}
    return z, p


def test_registered() -> None:
    assert "crisscross" in list_methods()


def test_training_steps_change_every_part() -> None:
    method = make_method().train()
    groups = method.param_groups()
    optimizer = torch.optim.Adam([{"params": g["params"], "lr": g.get("lr", 1e-3)} for g in groups])
    before = {k: v.clone() for k, v in method.state_dict().items()}
    for step in range(2):
        out = method(make_batch(seed=step))
        assert torch.isfinite(out["loss"])
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    after = method.state_dict()
    for key in ("video_encoder.conv1.0.weight", "audio_encoder.conv1.0.weight", "video_projector.layers.0.weight",
                "audio_predictor.layers.3.weight"):
        assert not torch.equal(before[key], after[key]), key
    assert set(out) == {"loss", "loss/v1v2", "loss/a1a2", "loss/v1a2", "loss/a1v2", "loss/v1a1", "loss/v2a2"}


@pytest.mark.parametrize(
    "flags",
    [dict(), dict(cm=False, vid_coeff=0.5, aud_coeff=2.0, ct_coeff=1.5), dict(joint=False, ctcm=False, cm_coeff=3.0)],
)
def test_loss_composition(flags: dict) -> None:
    loss = CrissCrossLoss(**flags)
    z, p = random_views()

    def term(a: str, b: str) -> torch.Tensor:
        cos = lambda x, y: F.cosine_similarity(x, y, dim=1).mean()  # noqa: E731
        return -0.5 * cos(p[a], z[b]) - 0.5 * cos(p[b], z[a])

    groups = {
        "joint": [("v1", "v2", flags.get("vid_coeff", 1.0)), ("a1", "a2", flags.get("aud_coeff", 1.0))],
        "ctcm": [("v1", "a2", flags.get("ct_coeff", 1.0)), ("a1", "v2", flags.get("ct_coeff", 1.0))],
        "cm": [("v1", "a1", flags.get("cm_coeff", 1.0)), ("v2", "a2", flags.get("cm_coeff", 1.0))],
    }
    enabled = [g for g in groups if flags.get(g, True)]
    expected = sum(c * term(a, b) for g in enabled for a, b, c in groups[g]) / (2 * len(enabled))
    out = loss(z, p)
    torch.testing.assert_close(out["loss"], expected)
    assert len(out) == 1 + 2 * len(enabled)


def test_stop_gradient_on_z() -> None:
    z = torch.randn(B, 8, requires_grad=True)
    p = torch.randn(B, 8, requires_grad=True)
    negative_cosine(p, z).backward()
    assert z.grad is None and p.grad is not None


def test_pre_norm_feeds_unit_vectors_to_the_predictor() -> None:
    method = make_method(pre_norm=True).train()
    norms = []
    handle = method.video_predictor.register_forward_pre_hook(lambda m, args: norms.append(args[0].norm(dim=1)))
    with torch.no_grad():
        method(make_batch())
    handle.remove()
    assert len(norms) == 2
    for n in norms:
        torch.testing.assert_close(n, torch.ones(B))


def test_param_groups() -> None:
    method = make_method(predictor_lr=3e-3)
    groups = method.param_groups()
    assert [g["name"] for g in groups] == ["vid_base", "vid_predictor", "aud_base", "aud_predictor"]
    by_name = {g["name"]: g for g in groups}
    for name in ("vid_predictor", "aud_predictor"):
        assert by_name[name]["lr_mode"] == "constant" and by_name[name]["lr"] == 3e-3
    for name in ("vid_base", "aud_base"):
        assert by_name[name]["lr_mode"] == "schedule" and "lr" not in by_name[name]
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped))
    assert set(grouped) == {id(p) for p in method.parameters()}
    assert {id(p) for p in by_name["vid_predictor"]["params"]} == {id(p) for p in method.video_predictor.parameters()}
    scheduled = make_method(constant_predictor_lr=False).param_groups()
    assert all(g["lr_mode"] == "schedule" for g in scheduled)


def test_head_sizes_match_the_spec() -> None:
    # spec §2.4: 9,455,616 parameters per projector, 2,100,736 per predictor (from 512-d features)
    assert sum(p.numel() for p in SimSiamProjector(512, 2048, 3).parameters()) == 9_455_616
    assert sum(p.numel() for p in SimSiamPredictor(2048, 512).parameters()) == 2_100_736
    two_layers = SimSiamProjector(512, 2048, 2)
    assert [type(m).__name__ for m in two_layers.layers] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]


def test_bad_inputs_raise_clear_errors() -> None:
    method = make_method()
    batch = make_batch()
    with pytest.raises(ValueError, match="needs 2 video view"):
        method({**batch, "video": batch["video"][:1]})
    with pytest.raises(KeyError, match="no 'audio' entry"):
        method({k: v for k, v in batch.items() if k != "audio"})
    with pytest.raises(ValueError, match="different batch sizes"):
        method({**batch, "audio": [a[:2] for a in batch["audio"]]})
    with pytest.raises(ValueError, match="enable at least one"):
        CrissCrossLoss(joint=False, cm=False, ctcm=False)
    with pytest.raises(KeyError, match=r"lacks views \['a2'\]"):
        z, p = random_views()
        CrissCrossLoss()(z, {k: v for k, v in p.items() if k != "a2"})
    with pytest.raises(ValueError, match="num_layers must be 2 or 3"):
        make_method(proj_layers=4)
