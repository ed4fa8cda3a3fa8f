"""Every pretraining config parses, builds its recipe and its method, and states the spec's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avssl.train.config import parse_config
from avssl.data.recipe_overrides import build_recipe
from avssl.train.runner import build_method

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "pretrain"
ALL_CONFIGS = sorted(CONFIGS.glob("*/*.yaml"))
KINETICS_SIZE = 232_067  # memory-bank rows of the original Kinetics runs (§3A.4); any N works here


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_builds_recipe_and_method(path):
    cfg = parse_config(["--config", str(path)])
    build_recipe(cfg.data)
    with torch.device("meta"):  # full-size models without allocating their weights
        method = build_method(cfg.method, num_items=KINETICS_SIZE)
    assert sum(p.numel() for p in method.parameters()) > 0


# Parameter counts of the original models (spec §2.4, §3A.1, §3B.2) and the recipes' optimisation
# settings (§2.6, §3A.5, §3B.6): global batch = per-device batch x devices x nodes.
PARAMS = {
    "avid/kinetics400": 21_286_784, "avid/audioset": 21_286_784, "avssrl/xid_vggsound": 21_286_784,
    "avssrl/vicreg_vggsound": 91_465_344, "avssrl/vicreg_video_vggsound": 15_379_136 + 35_680_256,
    "crisscross/kinetics400": 49_662_080,
}
RECIPES = {
    #                            lr     wd     epochs repeats global batch precision
    "avid/kinetics400": (2e-4, 1e-5, 30, 10, 256, "32"),
    "avid/audioset": (5e-4, 1e-5, 40, 5, 160, "32"),
    "avssrl/xid_vggsound": (5e-4, 1e-5, 100, 5, 32, "32"),
    "avssrl/vicreg_vggsound": (5e-4, 1e-6, 100, 5, 32, "16-mixed"),
    "avssrl/vicreg_video_vggsound": (5e-4, 1e-6, 100, 5, 32, "16-mixed"),
    "crisscross/kinetics400": (2e-4, 1e-4, 100, 5, 2048, "16-mixed"),
}


def _load(name: str):
    return parse_config(["--config", str(CONFIGS / f"{name}.yaml")])


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_original_model_sizes(name):
    with torch.device("meta"):
        method = build_method(_load(name).method, num_items=KINETICS_SIZE)
    assert sum(p.numel() for p in method.parameters()) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_original_optimisation_settings(name):
    cfg = _load(name)
    lr, wd, epochs, repeats, batch, precision = RECIPES[name]
    t = cfg.trainer
    assert (cfg.optimizer.lr, cfg.optimizer.weight_decay, t.max_epochs, cfg.data.repeats, t.precision) == (
        lr, wd, epochs, repeats, precision
    )
    assert cfg.data.batch_size * t.devices * t.num_nodes == batch


def test_schedules_of_the_original_recipes():
    crisscross = _load("crisscross/kinetics400")
    assert crisscross.optimizer.larc and crisscross.optimizer.larc_trust_coefficient == 1e-3
    s = crisscross.schedule
    assert (s.kind, s.warmup_epochs, s.warmup_start_lr, s.final_lr) == ("warmup_cosine", 2, 0.0, 1e-4)
    assert crisscross.method.kwargs["predictor_lr"] == 2e-3 and crisscross.method.kwargs["constant_predictor_lr"]
    for name in ("avssrl/xid_vggsound", "avssrl/vicreg_vggsound", "avssrl/vicreg_video_vggsound"):
        s = _load(name).schedule
        assert (s.kind, s.milestones, s.gamma) == ("multistep", [10, 20, 30, 40, 50, 60, 70, 80, 90], 0.9)
    assert _load("avid/kinetics400").schedule.kind == "constant"
