"""Our xID / AVID-CMA / RINCE / VICReg / CrissCross losses against the original code's numbers.

Fixtures (parity README): ``avid_cma/avid_nce_loss.pt``, ``avid_cma/cma_loss.pt``,
``av_ssrl/xid_loss.pt``, ``av_ssrl/vicreg_loss.pt``, ``crisscross/loss.pt``. The memory-bank
fixtures run two consecutive steps on one criterion: the negative draws are replayed through our
sampler (checking the index mapping), and Z, the losses, the gradients and the banks after each
update must match. The heads (xID projection, VICReg expander) are checked on the model fixtures'
``head_output``: the official head weights load into ours under the official key names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from avssl.methods.cma import CMACriterion, cma_positive_sets
from avssl.methods.crisscross import CrissCrossLoss
from avssl.methods.memory_bank import UniformNegatives
from avssl.methods.vicreg import vicreg_loss
from avssl.methods.xid import XIDCriterion
from avssl.models.heads import Expander, ProjectionHead


def load(parity_dir: Path, name: str) -> dict:
    return torch.load(parity_dir / name, weights_only=True)


class ReplayedDraws:
    """A ``draw`` for :class:`UniformNegatives` that returns the fixture's stored raw draws in turn."""

    def __init__(self, steps: list[dict]) -> None:
        self._draws: Iterator[torch.Tensor] = iter([step["raw_draws"] for step in steps])
        self.highs: list[int] = []

    def __call__(self, shape: tuple[int, int], high: int, device: torch.device) -> torch.Tensor:
        self.highs.append(high)
        return next(self._draws).view(shape)


def set_banks(criterion, memory: dict) -> None:
    criterion.banks["video"].memory.copy_(memory["view1_mem"])
    criterion.banks["audio"].memory.copy_(memory["view2_mem"])


def run_step(criterion, step: dict) -> tuple[dict, torch.Tensor, torch.Tensor]:
    video = step["video_emb"].clone().requires_grad_(True)
    audio = step["audio_emb"].clone().requires_grad_(True)
    out = criterion(video, audio, step["index"])
    out["loss"].backward()
    return out, video.grad, audio.grad


def check_step(out: dict, grads: tuple, criterion, step: dict, loss_atol: float, atol: float, rtol: float) -> None:
    torch.testing.assert_close(out["loss"], step["loss"], atol=loss_atol, rtol=rtol)
    torch.testing.assert_close(grads[0], step["grad_video_emb"], atol=atol, rtol=rtol)
    torch.testing.assert_close(grads[1], step["grad_audio_emb"], atol=atol, rtol=rtol)
    torch.testing.assert_close(criterion.banks["video"].memory, step["view1_mem_after"], atol=atol, rtol=rtol)
    torch.testing.assert_close(criterion.banks["audio"].memory, step["view2_mem_after"], atol=atol, rtol=rtol)


def check_negatives(sampler_calls: list[torch.Tensor], step: dict) -> None:
    assert torch.equal(sampler_calls[-1], step["negative_index"])


class RecordingNegatives(UniformNegatives):
    def __init__(self, draw) -> None:
        super().__init__(draw)
        self.calls: list[torch.Tensor] = []

    def __call__(self, num_items: int, excluded: torch.Tensor, num_negatives: int) -> torch.Tensor:
        self.calls.append(super().__call__(num_items, excluded, num_negatives))
        return self.calls[-1]


@pytest.mark.parametrize("case_index", [0, 1], ids=["cross_avid_config", "joint_avid"])
def test_avid_nce_two_steps(parity_dir: Path, case_index: int) -> None:
    fx = load(parity_dir, "avid_cma/avid_nce_loss.pt")
    case = fx["cases"][case_index]
    hp = case["hyperparams"]
    draws = ReplayedDraws(case["steps"])
    sampler = RecordingNegatives(draws)
    criterion = XIDCriterion(
        hp["num_data"], hp["xModal_coeff"], hp["wModal_coeff"], dim=hp["embedding_dim"],
        num_negatives=hp["num_negatives"], temperature=hp["temperature"], momentum=hp["momentum"],
        loss="nce", negative_sampler=sampler,
    ).train()
    set_banks(criterion, fx["initial_memory"])
    for step in case["steps"]:
        assert float(criterion.partition) == pytest.approx(step["Z_before"], abs=1e-5)
        out, *grads = run_step(criterion, step)
        check_negatives(sampler.calls, step)
        assert float(criterion.partition) == pytest.approx(step["Z_after"], rel=1e-5)
        for key, expected in step["log"].items():
            ours = out.get(key.lower())
            if ours is None:  # groups with coefficient 0 are not computed; the original logs 0
                assert float(expected) == 0.0, key
                continue
            torch.testing.assert_close(ours, torch.as_tensor(expected), atol=fx["atol"], rtol=fx["rtol"])
        check_step(out, tuple(grads), criterion, step, fx["atol"], fx["atol"], fx["rtol"])
    assert draws.highs == [hp["num_data"] - 1] * 2  # draws over the N − 1 other instances


@pytest.mark.parametrize("case_index", [0, 1, 2], ids=["q_config_start", "q_annealed_end", "infonce_q0"])
def test_xid_rince_two_steps(parity_dir: Path, case_index: int) -> None:
    fx = load(parity_dir, "av_ssrl/xid_loss.pt")
    case = fx["cases"][case_index]
    hp = fx["hyperparams"]
    sampler = RecordingNegatives(ReplayedDraws(case["steps"]))
    criterion = XIDCriterion(
        hp["num_instances"], dim=hp["embedding_dim"], num_negatives=hp["num_negatives"],
        temperature=hp["temperature"], momentum=hp["momentum"], loss="rince",
        rince_q=case["q"], rince_lam=case["lam"], negative_sampler=sampler,
    ).train()
    set_banks(criterion, fx["initial_memory"])
    for step in case["steps"]:
        out, *grads = run_step(criterion, step)
        check_negatives(sampler.calls, step)
        check_step(out, tuple(grads), criterion, step, case["atol"], fx["atol"], fx["rtol"])
    assert float(criterion.partition) == -1.0  # RINCE has no partition constant


def test_cma_positive_sets(parity_dir: Path) -> None:
    fx = load(parity_dir, "avid_cma/cma_loss.pt")
    memory = fx["initial_memory"]
    for mode, expected in fx["positive_sets"].items():
        ours = cma_positive_sets(memory["view1_mem"], memory["view2_mem"], fx["hyperparams"]["pos_k"], mode)
        assert torch.equal(ours, expected), mode


def test_cma_two_steps(parity_dir: Path) -> None:
    fx = load(parity_dir, "avid_cma/cma_loss.pt")
    hp = fx["hyperparams"]
    sampler = RecordingNegatives(ReplayedDraws(fx["steps"]))
    criterion = CMACriterion(
        hp["num_data"], pos_k=hp["pos_k"], num_negatives_within=hp["num_negatives_within"],
        xmodal_inst_coeff=hp["xModalInstCoeff"], wmodal_inst_coeff=hp["wModalInstCoeff"],
        xmodal_pos_coeff=hp["xModalPosCoeff"], wmodal_pos_coeff=hp["wModalPosCoeff"],
        dim=hp["embedding_dim"], num_negatives=hp["num_negatives"], temperature=hp["temperature"],
        momentum=hp["momentum"], negative_sampler=sampler,
    ).train()
    # restored as from an AVID train_criterion: banks + frozen Z
    criterion.load_official_state({
        "nce_average.view1_mem": fx["initial_memory"]["view1_mem"],
        "nce_average.view2_mem": fx["initial_memory"]["view2_mem"],
        "criterion.avg_exp_score": torch.tensor(hp["Z_restored"]),
    })
    criterion.refresh_positives()
    assert torch.equal(criterion.positives, fx["positive_sets"]["consensus"])
    for step in fx["steps"]:
        assert torch.equal(criterion.positives[step["index"]], step["positive_index"])
        out, *grads = run_step(criterion, step)
        check_negatives(sampler.calls, step)
        for key, expected in step["log"].items():
            torch.testing.assert_close(out[key.lower()], expected, atol=fx["atol"], rtol=fx["rtol"])
        check_step(out, tuple(grads), criterion, step, fx["atol"], fx["atol"], fx["rtol"])
    assert float(criterion.partition) == hp["Z_restored"]


@pytest.mark.parametrize("case", ["total_config", "repr_only", "std_only", "cov_only"])
def test_vicreg_loss(parity_dir: Path, case: str) -> None:
    fx = load(parity_dir, "av_ssrl/vicreg_loss.pt")
    expected = fx["cases"][case]
    x = fx["inputs"]["x"].clone().requires_grad_(True)
    y = fx["inputs"]["y"].clone().requires_grad_(True)
    out = vicreg_loss(x, y, **expected["coeffs"], batch_size=fx["hyperparams"]["batch_size"])
    out["loss"].backward()
    torch.testing.assert_close(out["loss"], expected["loss"], atol=fx["atol"], rtol=fx["rtol"])
    torch.testing.assert_close(x.grad, expected["grad_x"], atol=fx["atol"], rtol=fx["rtol"])
    torch.testing.assert_close(y.grad, expected["grad_y"], atol=fx["atol"], rtol=fx["rtol"])


@pytest.mark.parametrize("case_index", [0, 1], ids=["pretext_config", "variant"])
def test_crisscross_loss(parity_dir: Path, case_index: int) -> None:
    fx = load(parity_dir, "crisscross/loss.pt")
    case = fx["cases"][case_index]
    hp = case["hyperparams"]
    loss = CrissCrossLoss(hp["joint"], hp["cm"], hp["ctcm"], hp["vid_coeff"], hp["aud_coeff"], hp["ct_coeff"], hp["cm_coeff"])
    z = {v: fx["inputs"][f"z{v}"] for v in ("v1", "v2", "a1", "a2")}
    p = {v: fx["inputs"][f"p{v}"].clone().requires_grad_(True) for v in ("v1", "v2", "a1", "a2")}
    out = loss(z, p)
    out["loss"].backward()
    torch.testing.assert_close(out["loss"], case["loss"], atol=fx["atol"], rtol=fx["rtol"])
    for term, expected in case["terms"].items():
        ours = out.get(f"loss/{term[1:]}")  # 'Lv1v2' -> 'loss/v1v2'
        if ours is None:
            assert float(expected) == 0.0, term  # disabled group
        else:
            torch.testing.assert_close(ours, torch.as_tensor(expected), atol=fx["atol"], rtol=fx["rtol"])
    for view, grad in case["grads"].items():
        torch.testing.assert_close(p[view[1:]].grad, grad, atol=fx["grad_atol"], rtol=fx["rtol"])


# model fixture -> (our method attribute holding the head = the official module name, head class)
HEAD_FIXTURES = {
    "avid_cma/video.pt": ("video_proj", ProjectionHead),
    "avid_cma/audio.pt": ("audio_proj", ProjectionHead),
    "av_ssrl/xid_video.pt": ("video_proj", ProjectionHead),
    "av_ssrl/xid_audio.pt": ("audio_proj", ProjectionHead),
    "av_ssrl/vicreg_video.pt": ("video_exp", Expander),
    "av_ssrl/vicreg_audio.pt": ("audio_exp", Expander),
}


@pytest.mark.parametrize("fixture_name", list(HEAD_FIXTURES))
def test_official_heads(parity_dir: Path, make_state_module, fixture_name: str) -> None:
    fx = load(parity_dir, fixture_name)
    attribute, head_class = HEAD_FIXTURES[fixture_name]
    generator = make_state_module
    prefix = f"module.{attribute}."
    state = {
        key[len(prefix):]: generator.make_tensor(key, shape, dtype, generator.seed_for(fx["state_seed"], i))
        for i, (key, shape, dtype) in enumerate(fx["keys"]) if key.startswith(prefix)
    }
    head = head_class(fx["output"].shape[1]).eval()
    head.load_state_dict(state, strict=True)  # the official key names, nothing missing or extra
    with torch.no_grad():
        ours = head(fx["output"])  # the encoder's pooled output -> the wrapper's head output
    extra = fx["extra_outputs"]
    torch.testing.assert_close(ours, extra["head_output"], atol=extra["head_atol"], rtol=fx["rtol"])
