"""Schedules, LARC and parameter groups of the pretraining engine (avssl/train/{schedules,larc,optim}.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avssl.train.config import OptimizerConfig, ScheduleConfig
from avssl.train.larc import LARC
from avssl.train.optim import (
    GroupScheduler,
    build_lr_schedule,
    build_optimizer,
    build_param_groups,
    build_weight_decay_schedule,
)
from avssl.train.schedules import Constant, MultiStep, WarmupCosine, cosine_decay

# -- schedules -----------------------------------------------------------------------------------


def test_warmup_cosine_follows_its_formula():
    base, final, total, warmup = 2e-4, 1e-4, 50, 10
    schedule = WarmupCosine(base, final, total, warmup)
    for step in range(total + 5):
        if step < warmup:
            expected = base * step / warmup
        elif step <= total:
            expected = final + (base - final) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        else:
            expected = final
        assert schedule(step) == pytest.approx(expected, rel=1e-12, abs=1e-15), step
    assert schedule(warmup) == pytest.approx(base)
    assert schedule(total) == pytest.approx(final)


def test_warmup_start_value_and_no_warmup():
    schedule = WarmupCosine(1.0, 0.0, 10, warmup_steps=4, warmup_start=0.2)
    assert schedule(0) == pytest.approx(0.2)
    assert schedule(2) == pytest.approx(0.2 + 0.8 * 2 / 4)
    cosine_only = WarmupCosine(0.3, 0.3, 7)  # XKD weight decay: 0.3 -> 0.3
    assert all(cosine_only(s) == pytest.approx(0.3) for s in range(10))


def test_multistep_and_constant():
    # AV-SSRL: x0.9 at epochs 10, 20, ... with 3 steps per epoch.
    schedule = MultiStep(5e-4, milestones=(30, 60), gamma=0.9)
    assert [schedule(s) for s in (0, 29, 30, 59, 60, 1000)] == pytest.approx(
        [5e-4, 5e-4, 5e-4 * 0.9, 5e-4 * 0.9, 5e-4 * 0.81, 5e-4 * 0.81]
    )
    assert Constant(2e-4)(12345) == 2e-4
    assert Constant(1.0, warmup_steps=4)(1) == pytest.approx(0.25)


def test_schedule_errors():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(1.0, 0.0, total_steps=5, warmup_steps=6)
    with pytest.raises(ValueError, match="increasing"):
        MultiStep(1.0, milestones=(5, 2))
    with pytest.raises(ValueError, match=">= 0"):
        Constant(1.0)(-1)


def test_build_lr_schedule_converts_epochs():
    cfg = ScheduleConfig(kind="warmup_cosine", warmup_epochs=2, final_lr=1e-4)
    schedule = build_lr_schedule(cfg, 2e-4, steps_per_epoch=5, total_steps=100)
    assert schedule.warmup_steps == 10 and schedule.total_steps == 100
    multistep = build_lr_schedule(ScheduleConfig(kind="multistep", milestones=[10, 20], gamma=0.9), 5e-4, 3, 100)
    assert multistep.milestones == (30, 60)
    wd = build_weight_decay_schedule(ScheduleConfig(final_weight_decay=0.0), 0.3, total_steps=10)
    assert wd(5) == pytest.approx(cosine_decay(5, 10, 0.3, 0.0))


# -- LARC ----------------------------------------------------------------------------------------


def _larc_reference(w: torch.Tensor, g: torch.Tensor, lr: float, wd: float, trust: float, eps: float, clip: bool):
    """The gradient LARC hands to the inner optimiser (spec §2.6), written from the formula."""
    w_norm, g_norm = w.norm().item(), g.norm().item()
    rate = trust * w_norm / (g_norm + wd * w_norm + eps)
    if clip:
        rate = min(rate / lr, 1.0)
    return (g + wd * w) * rate


@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("lr", [1e-2, 1e-6])  # with clip: rate < 1 (rescaled) and rate capped at 1
def test_larc_matches_its_formula_under_sgd(clip, lr):
    torch.manual_seed(0)
    w0, g = torch.randn(5, 3), torch.randn(5, 3) * 10
    wd, trust, eps = 1e-4, 1e-3, 1e-8
    param = nn.Parameter(w0.clone())
    param.grad = g.clone()
    optimizer = LARC(torch.optim.SGD([param], lr=lr, weight_decay=wd), trust, clip, eps)
    optimizer.step()
    expected_grad = _larc_reference(w0, g, lr, wd, trust, eps, clip)
    torch.testing.assert_close(param.detach(), w0 - lr * expected_grad, rtol=1e-6, atol=1e-9)
    # The configured weight decay is back after the step (the inner optimiser ran with 0).
    assert optimizer.param_groups[0]["weight_decay"] == wd


def test_larc_wraps_adam_and_round_trips_state():
    torch.manual_seed(2)
    model = nn.Linear(4, 3)
    zero = nn.Parameter(torch.zeros(3))  # zero norm: gradient untouched, no weight decay
    optimizer = LARC(torch.optim.Adam([*model.parameters(), zero], lr=1e-3, weight_decay=1e-4))
    for _ in range(2):
        optimizer.zero_grad()
        (model(torch.randn(6, 4)).pow(2).mean() + zero.sum()).backward()
        optimizer.step()
    state = optimizer.state_dict()
    assert len(state["state"]) == 3 and state["param_groups"][0]["weight_decay"] == 1e-4
    fresh = LARC(torch.optim.Adam([*model.parameters(), zero], lr=5.0, weight_decay=0.0))
    fresh.load_state_dict(state)
    assert fresh.param_groups is fresh.optimizer.param_groups and fresh.param_groups[0]["lr"] == 1e-3
    fresh.param_groups[0]["lr"] = 0.5  # a schedule writing through the wrapper reaches the inner optimiser
    assert fresh.optimizer.param_groups[0]["lr"] == 0.5


# -- parameter groups ----------------------------------------------------------------------------


class _TwoHeads(nn.Module):
    """A toy method declaring groups the way CrissCross does (spec §2.6)."""

    def __init__(self, constant_predictor: bool = True) -> None:
        super().__init__()
        self.base = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.predictor = nn.Linear(4, 4)
        self.teacher = nn.Linear(4, 4).requires_grad_(False)
        self.constant_predictor = constant_predictor

    def param_groups(self):
        mode = {"lr_mode": "constant", "lr": 2e-3} if self.constant_predictor else {}
        return [
            {"name": "base", "params": list(self.base.parameters())},
            {"name": "predictor", "params": list(self.predictor.parameters()), **mode},
        ]


def _lr_by_group(optimizer) -> dict[str, float]:
    return {g["name"]: g["lr"] for g in optimizer.param_groups}


def test_constant_predictor_lr_while_base_follows_the_schedule():
    cfg = OptimizerConfig(name="adam", lr=2e-4, weight_decay=1e-4, larc=True)
    method = _TwoHeads()
    optimizer = build_optimizer(build_param_groups(method, cfg), cfg)
    assert isinstance(optimizer, LARC)
    schedule = WarmupCosine(2e-4, 1e-4, total_steps=40, warmup_steps=8)
    scheduler = GroupScheduler(schedule, Constant(1e-4), base_lr=2e-4, base_weight_decay=1e-4)
    for step in (0, 3, 8, 20, 40):
        scheduler.apply(optimizer, step)
        lrs = _lr_by_group(optimizer)
        assert lrs["base"] == pytest.approx(schedule(step))
        assert lrs["predictor"] == 2e-3
    scheduled = _TwoHeads(constant_predictor=False)
    optimizer = build_optimizer(build_param_groups(scheduled, cfg), cfg)
    scheduler.apply(optimizer, 20)
    assert _lr_by_group(optimizer)["predictor"] == pytest.approx(schedule(20))


def test_group_lr_scales_with_the_schedule_and_weight_decay_follows_its_schedule():
    class Scaled(_TwoHeads):
        def param_groups(self):
            groups = super().param_groups()
            groups[1] = {"name": "predictor", "params": groups[1]["params"], "lr": 1e-3, "weight_decay": 0.5}
            return groups

    cfg = OptimizerConfig(name="sgd", lr=1e-2, weight_decay=0.1)
    optimizer = build_optimizer(build_param_groups(Scaled(), cfg), cfg)
    scheduler = GroupScheduler(Constant(5e-3), WarmupCosine(0.1, 0.0, 10), base_lr=1e-2, base_weight_decay=0.1)
    scheduler.apply(optimizer, 5)
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["predictor"]["lr"] == pytest.approx(1e-3 * 5e-3 / 1e-2)
    wd_factor = cosine_decay(5, 10, 0.1, 0.0) / 0.1
    assert groups["base"]["weight_decay"] == pytest.approx(0.1 * wd_factor)
    assert groups["predictor"]["weight_decay"] == pytest.approx(0.5 * wd_factor)


def test_default_group_excludes_frozen_and_bias_norm_split():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
            self.frozen = nn.Linear(4, 2).requires_grad_(False)

    cfg = OptimizerConfig(name="adamw", lr=1e-4, weight_decay=0.3, exclude_bias_and_norm=True)
    groups = build_param_groups(Plain(), cfg)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"all", "all_no_decay"}
    assert [p.shape for p in by_name["all"]["params"]] == [torch.Size([4, 4])]
    assert len(by_name["all_no_decay"]["params"]) == 3 and by_name["all_no_decay"]["weight_decay"] == 0.0
    assert by_name["all"]["weight_decay"] == 0.3


def test_param_group_errors_name_the_problem():
    method = _TwoHeads()

    def overlapping():
        return [{"name": "a", "params": list(method.base.parameters())}, {"name": "b", "params": list(method.base.parameters())}]

    method.param_groups = overlapping
    with pytest.raises(ValueError, match=r"base\.0\.weight is in groups 'a' and 'b'"):
        build_param_groups(method, OptimizerConfig())
    method.param_groups = lambda: [{"name": "a", "params": list(method.base.parameters())}]
    with pytest.raises(ValueError, match=r"in no group: predictor\.weight"):
        build_param_groups(method, OptimizerConfig())
    method.param_groups = lambda: [{"name": "a", "params": list(method.parameters()), "lr_mode": "cosine"}]
    with pytest.raises(ValueError, match="lr_mode 'cosine'"):
        build_param_groups(method, OptimizerConfig())
    method.param_groups = lambda: [{"name": "a", "params": list(method.parameters()), "momentum": 0.9}]
    with pytest.raises(ValueError, match="unknown keys"):
        build_param_groups(method, OptimizerConfig())


def test_crisscross_predictors_stay_constant_while_the_rest_follows_the_schedule():
    # The real method of configs/pretrain/crisscross/demo_cpu.yaml (spec §2.6).
    from pathlib import Path

    from avssl.train.config import parse_config
    from avssl.train.runner import build_method

    config = Path(__file__).resolve().parent.parent / "configs" / "pretrain" / "crisscross" / "demo_cpu.yaml"
    cfg = parse_config(["--config", str(config)])
    method = build_method(cfg.method, num_items=10)
    optimizer = build_optimizer(build_param_groups(method, cfg.optimizer), cfg.optimizer)
    assert [g["name"] for g in optimizer.param_groups] == ["vid_base", "vid_predictor", "aud_base", "aud_predictor"]
    steps_per_epoch, total = 10, 200
    schedule = build_lr_schedule(cfg.schedule, cfg.optimizer.lr, steps_per_epoch, total)
    scheduler = GroupScheduler(schedule, Constant(cfg.optimizer.weight_decay), cfg.optimizer.lr, cfg.optimizer.weight_decay)
    for step, expected_base in ((0, 0.0), (10, 1e-4), (20, 2e-4), (total, 1e-4)):
        scheduler.apply(optimizer, step)
        lrs = _lr_by_group(optimizer)
        assert lrs["vid_base"] == lrs["aud_base"] == pytest.approx(expected_base)
        assert lrs["vid_predictor"] == lrs["aud_predictor"] == 2e-3
