"""Parity of the CNN encoders with the original code (fixtures in shared/parity, README "Using a fixture").

For every model fixture of a CNN: regenerate the official state dict (``make_state``'s rule), write it
in the released nesting with ``torch.save``, load it through ``create_encoder(name,
checkpoint_path=file)`` — so the checkpoint adapter is tested too — and compare the output, the
encoder's extra outputs and the per-stage means with what the original code computed.

Fixtures are discovered by their fields (``keys``, ``state_seed``, ``input``, ``output``,
``layout``), so any folder of the same layout works (``AVSSL_PARITY_DIR``). Only the mapping from
the fixture's ``(method, component)`` to our encoder name is written here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.models.audio_cnn import conv5x_maxpool_feature
from avssl.models.encoder import count_parameters
from avssl.models.registry import create_encoder
from conftest import PARITY_DIR

# (method, component) of a fixture -> our encoder. XKD's ViTs are tested in test_parity_vit.py.
ENCODER_FOR = {
    ("xdc", "video"): "r2plus1d_18_vmz",
    ("avid_cma", "video"): "r2plus1d_18_avid",
    ("avid_cma", "audio"): "audio_conv2d10_avid",
    ("crisscross", "video"): "r2plus1d_18_crisscross",
    ("crisscross", "audio"): "audio_resnet18_crisscross",
    ("av_ssrl", "xid_video"): "r2plus1d_18_avssrl",
    ("av_ssrl", "vicreg_video"): "r2plus1d_18_avssrl",
    ("av_ssrl", "xid_audio"): "audio_conv2d10_avssrl",
    ("av_ssrl", "vicreg_audio"): "audio_conv2d10_avssrl",
}
NOT_CNN = {"xkd"}
MODEL_FIELDS = {"keys", "state_seed", "input", "output", "layout", "atol", "rtol"}
# Names the original code gives its stages -> ours (VMZ: stem/layer*, AV-SSRL audio: block*).
STAGE_ALIASES = {"stem": "conv1", **{f"layer{i}": f"conv{i + 1}x" for i in range(1, 5)},
                 **{f"block{i}": f"conv{i + 1}x" for i in range(1, 5)}}


def _model_fixture_paths() -> list[Path]:
    # Collection-time discovery: a cheap pass over the .pt files, keeping the model fixtures.
    if not PARITY_DIR.is_dir():
        return []
    found = []
    for path in sorted(PARITY_DIR.glob("*/*.pt")):
        fixture = torch.load(path, weights_only=True, map_location="cpu")
        if isinstance(fixture, dict) and MODEL_FIELDS <= fixture.keys() and fixture.get("method") not in NOT_CNN:
            found.append(path)
    return found


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


FIXTURES = _model_fixture_paths()


def _regenerate(make_state_module, fixture: dict) -> dict[str, torch.Tensor]:
    """The official state dict, in official order, with real values for the encoder's component.

    Entry i is drawn with seed ``seed_for(state_seed, i)`` (README "Weights"), independently of the
    other entries, so the component can be generated alone. The other entries (projection heads,
    VICReg's 4096-wide expanders, the other modality) keep their names and shapes but hold a
    zero-stride zero tensor: the adapter must find and drop them, their values never matter, and
    this keeps the test fast and the written file small.
    """
    prefix = fixture["layout"].get("component_prefix", "")
    state = {}
    for index, (name, shape, dtype) in enumerate(fixture["keys"]):
        if name.startswith(prefix):
            seed = make_state_module.seed_for(fixture["state_seed"], index)
            state[name] = make_state_module.make_tensor(name, shape, dtype, seed)
        else:
            state[name] = torch.zeros((), dtype=make_state_module._DTYPES[dtype]).expand(tuple(shape))
    return state


def _check_generator(make_state_module, fixture: dict, state: dict[str, torch.Tensor]) -> None:
    """Compare the regenerated component with ``fixture_checksums`` before blaming the model."""
    assert list(state) == [name for name, _, _ in fixture["keys"]]
    prefix = fixture["layout"].get("component_prefix", "")
    component = {k: v for k, v in state.items() if k.startswith(prefix)}
    expected = fixture["fixture_checksums"]
    for name, sums in make_state_module.checksums(component).items():
        np.testing.assert_allclose(
            sums, expected[name], rtol=1e-9, atol=1e-9,
            err_msg=f"{name}: regenerated weights differ from fixture_checksums (generator fault, not model)",
        )


def _load_fixture(parity_dir: Path, path: Path) -> dict:
    # the parametrisation was discovered in PARITY_DIR; follow the `parity_dir` fixture if they differ
    return torch.load(parity_dir / path.relative_to(PARITY_DIR), weights_only=True, map_location="cpu")


def _encoder_name(fixture: dict) -> str:
    key = (fixture["method"], fixture["component"])
    if key not in ENCODER_FOR:
        pytest.fail(f"model fixture {key} has no encoder mapping in test_parity_models.ENCODER_FOR")
    return ENCODER_FOR[key]


def _encoder_input(fixture: dict) -> torch.Tensor:
    x = fixture["input"]
    # AVID's spectrogram is stored time-major ("B x 1 x T x F"); our encoders take B×1×F×T
    time_major = re.search(r"\bT\s*x\s*F\b", fixture.get("input_layout", ""))
    return x.transpose(-1, -2) if time_major else x


def _factory_kwargs(fixture: dict) -> dict:
    # XDC's fixture was computed with a 400-way fc; build it so that fc.* loads and logits compare
    classes = fixture.get("model_config", {}).get("num_classes")
    return {"num_classes": classes} if classes is not None else {}


@pytest.mark.skipif(not FIXTURES, reason=f"no CNN model fixtures under {PARITY_DIR}")
@pytest.mark.parametrize("path", FIXTURES, ids=_ids(FIXTURES))
def test_encoder_matches_original_code(parity_dir, make_state_module, tmp_path, path: Path) -> None:
    fixture = _load_fixture(parity_dir, path)
    state = _regenerate(make_state_module, fixture)
    _check_generator(make_state_module, fixture, state)
    released = make_state_module.nest(fixture["layout"], state)
    checkpoint = tmp_path / "released.pth.tar"
    torch.save(released, checkpoint)

    name = _encoder_name(fixture)
    kwargs = _factory_kwargs(fixture)
    encoder = create_encoder(name, checkpoint_path=checkpoint, **kwargs).eval()
    x = _encoder_input(fixture)
    tolerance = {"atol": fixture["atol"], "rtol": fixture["rtol"]}
    with torch.no_grad():
        features = encoder.forward_features(x)
        output = encoder(x)

    pooled = features["pool"]
    torch.testing.assert_close(pooled, fixture["output"], **tolerance)
    if "logits" in features:
        torch.testing.assert_close(output, fixture["extra_outputs"]["logits_num_classes_400"], **tolerance)
    else:
        torch.testing.assert_close(output, fixture["output"], **tolerance)

    for stage, expected in fixture["intermediates"].items():
        ours = features[STAGE_ALIASES.get(stage, stage)]
        means = ours.flatten(2).mean(-1) if ours.ndim > 2 else ours
        torch.testing.assert_close(means, expected, **tolerance, msg=lambda m, s=stage: f"stage {s}: {m}")

    extra = fixture.get("extra_outputs", {})
    if "conv5x_maxpool_feature" in extra:
        torch.testing.assert_close(conv5x_maxpool_feature(features["conv5x"]), extra["conv5x_maxpool_feature"],
                                   **tolerance)
    if "maxpool_output" in extra:  # CrissCross fine-tuning swaps in max pooling
        max_pooled = create_encoder(name, checkpoint_path=checkpoint, pool="max").eval()
        with torch.no_grad():
            torch.testing.assert_close(max_pooled(x), extra["maxpool_output"], **tolerance)


@pytest.mark.skipif(not FIXTURES, reason=f"no CNN model fixtures under {PARITY_DIR}")
@pytest.mark.parametrize("path", FIXTURES, ids=_ids(FIXTURES))
def test_parameter_count_matches_official_key_list(parity_dir, path: Path) -> None:
    """Our parameters = the official tensors of the component, minus BN buffers (and XDC's fc)."""
    fixture = _load_fixture(parity_dir, path)
    prefix = fixture["layout"].get("component_prefix", "")
    official = sum(
        int(np.prod(shape)) for key, shape, dtype in fixture["keys"]
        if key.startswith(prefix) and dtype.startswith("float") and not key.split(".")[-1].startswith(
            ("running_", "num_batches")) and not key.startswith("fc.")
    )
    with torch.device("meta"):
        encoder = create_encoder(_encoder_name(fixture))
    assert count_parameters(encoder) == official
