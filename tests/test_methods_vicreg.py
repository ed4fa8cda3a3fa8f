"""Behaviour of AV-VICReg and VICReg-V (spec §3B.5) with the small CPU encoders on random tensors.

Parity with the original ``VICLoss`` is in ``test_parity_losses.py``; here: the terms computed
again from their definitions with torch's own statistics, the ``batch_size`` divisor, the
two-rank gather (variance/covariance over all ranks with full-batch gradients), training steps of
both variants, the expander layout, and input errors.
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.nn.functional as F

from avssl.methods.registry import create_method, list_methods
from avssl.methods.vicreg import VICReg, vicreg_loss
from avssl.models.heads import Expander
from avssl.models.registry import create_encoder

B = 4
SMALL_EXPANDER = dict(expander_dims=(32, 32, 32))


def make_batch(seed: int = 0, video_views: int = 1, audio_views: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    # small encoders' layouts, shortened for CPU time
    return {
        "video": [torch.randn(B, 3, 4, 32, 32, generator=g) for _ in range(video_views)],
        "audio": [torch.randn(B, 1, 80, 48, generator=g) for _ in range(audio_views)],
        "index": torch.arange(B),
        "skipped": [],
    }


def test_registered() -> None:
    assert {"vicreg", "vicreg_video"} <= set(list_methods())


def test_terms_match_their_definitions() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 6, generator=g) * 0.7, torch.randn(8, 6, generator=g) * 1.3
    out = vicreg_loss(x, y)
    torch.testing.assert_close(out["loss/invariance"], ((x - y) ** 2).mean())
    std = lambda t: torch.sqrt(t.var(dim=0, unbiased=True) + 1e-4)  # noqa: E731
    torch.testing.assert_close(out["loss/variance"], 0.5 * (F.relu(1 - std(x)).mean() + F.relu(1 - std(y)).mean()))
    off = lambda c: (c**2).sum() - (c.diagonal() ** 2).sum()  # noqa: E731
    torch.testing.assert_close(out["loss/covariance"], (off(torch.cov(x.T)) + off(torch.cov(y.T))) / 6)
    expected = 25 * out["loss/invariance"] + 25 * out["loss/variance"] + out["loss/covariance"]
    torch.testing.assert_close(out["loss"].detach(), expected)
    # the batch_size hyperparameter replaces the row count in the covariance divisor
    scaled = vicreg_loss(x, y, sim_coeff=0, std_coeff=0, batch_size=32)
    torch.testing.assert_close(scaled["loss"], out["loss/covariance"] * (7 / 31) ** 2)


def test_av_vicreg_training_steps() -> None:
    torch.manual_seed(0)
    method = create_method("vicreg", video_encoder=create_encoder("r2plus1d_small"),
                           audio_encoder=create_encoder("audio_resnet_small"), **SMALL_EXPANDER).train()
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-3)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    for step in range(2):
        out = method(make_batch(seed=step))
        assert torch.isfinite(out["loss"])
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    after = method.state_dict()
    for key in ("video_encoder.conv1.0.weight", "audio_encoder.conv1.0.weight", "video_exp.expansion.6.weight", "audio_exp.expansion.0.weight"):
        assert not torch.equal(before[key], after[key]), key
    assert set(out) == {"loss", "loss/invariance", "loss/variance", "loss/covariance"}


def test_vicreg_video_uses_one_encoder_for_both_clips() -> None:
    torch.manual_seed(0)
    method = create_method("vicreg_video", video_encoder=create_encoder("r2plus1d_small"), **SMALL_EXPANDER).train()
    assert not hasattr(method, "audio_encoder") and not hasattr(method, "audio_exp")
    calls = []
    method.video_encoder.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    batch = make_batch(video_views=2, audio_views=0)
    out = method(batch)
    out["loss"].backward()
    assert len(calls) == 2 and torch.isfinite(out["loss"])
    assert method.video_encoder.conv1[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="needs 2 video view"):
        method(make_batch(video_views=1))


def test_expander_layout() -> None:
    expander = Expander(512, (4096, 4096, 4096))
    assert sorted({k.rsplit(".", 1)[0] for k in expander.state_dict()}) == [f"expansion.{i}" for i in (0, 1, 3, 4, 6)]
    assert sum(p.numel() for p in expander.parameters()) == 35_680_256  # spec §3B.2


def test_bad_inputs_raise_clear_errors() -> None:
    video = create_encoder("r2plus1d_small")
    with pytest.raises(ValueError, match="needs an audio_encoder"):
        VICReg(video)
    with pytest.raises(ValueError, match="uses no audio encoder"):
        create_method("vicreg_video", video_encoder=video, audio_encoder=create_encoder("audio_resnet_small"))
    with pytest.raises(ValueError, match=r"x and y must both be \[B, D\]"):
        vicreg_loss(torch.randn(4, 8), torch.randn(4, 9))
    with pytest.raises(ValueError, match="at least 2 samples"):
        vicreg_loss(torch.randn(1, 8), torch.randn(1, 8))


# ------------------------------------------------------------------------------ distributed


def _gather_worker(rank: int, port: int, x_full: torch.Tensor, y_full: torch.Tensor, results) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        rows = slice(2 * rank, 2 * rank + 2)
        x = x_full[rows].clone().requires_grad_(True)
        y = y_full[rows].clone().requires_grad_(True)
        out = vicreg_loss(x, y, sim_coeff=0.0)  # variance + covariance only: the gathered terms
        out["loss"].backward()
        results[rank] = (out["loss"].detach(), x.grad, y.grad)
    finally:
        torch.distributed.destroy_process_group()


def test_two_ranks_give_the_full_batch_loss_and_gradients() -> None:
    import torch.multiprocessing as mp

    g = torch.Generator().manual_seed(0)
    x_full, y_full = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = mp.Manager().dict()
    # fork: the workers need nothing re-imported, which keeps this test to a second
    mp.start_processes(_gather_worker, args=(port, x_full, y_full, results), nprocs=2, join=True,
                       start_method="fork")
    x, y = x_full.clone().requires_grad_(True), y_full.clone().requires_grad_(True)
    single = vicreg_loss(x, y, sim_coeff=0.0)
    single["loss"].backward()
    for rank in (0, 1):
        loss, grad_x, grad_y = results[rank]
        torch.testing.assert_close(loss, single["loss"].detach())
        # each rank's gradient is the full-batch gradient of its rows (the gather's backward sums
        # the per-rank losses' gradients, i.e. world_size × the mean-loss gradient)
        torch.testing.assert_close(grad_x, 2 * x.grad[2 * rank : 2 * rank + 2])
        torch.testing.assert_close(grad_y, 2 * y.grad[2 * rank : 2 * rank + 2])
