"""XKD ViT-B encoders against the original code (parity fixtures shared/parity/xkd, README "XKD").

Each fixture's official state dict is regenerated with ``make_state.py``, saved in the released
nesting (a flat training-side dict, as ``<prefix>{vid,aud}_student.pth.tar``), loaded through
``create_encoder(name, checkpoint_path=...)`` and run on the fixture input. The video and the
audio weights are generated and loaded once each and shared by the native and ``*_interp`` cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avssl.models.checkpoints import CheckpointError
from avssl.models.patch_embed import patchify
from avssl.models.registry import create_encoder
from avssl.models.vit import ViTEncoder

ENCODER_FOR = {"video": "vit_b_video_xkd", "audio": "vit_b_audio_xkd"}
CASES = [("video", "video"), ("video_interp", "video"), ("audio", "audio"), ("audio_interp", "audio")]


def read_fixture(parity_dir: Path, name: str) -> dict:
    return torch.load(parity_dir / "xkd" / f"{name}.pt", weights_only=True)


@pytest.fixture(scope="module")
def released_files(parity_dir, make_state_module, tmp_path_factory) -> dict[str, Path]:
    """``{"video": path, "audio": path}``: regenerated official backbones saved as released."""
    make_state = make_state_module
    folder = tmp_path_factory.mktemp("xkd_release")
    files = {}
    for modality in ("video", "audio"):
        fixture = read_fixture(parity_dir, modality)
        state = make_state.make_state(fixture["keys"], fixture["state_seed"])
        # Tell a generator fault apart from a model fault (README "Fields of a model fixture").
        for key in list(state)[:4]:
            expected = fixture["fixture_checksums"][key]
            got = [float(state[key].double().sum()), float(state[key].double().abs().sum())]
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=key)
        assert len(state) == 138
        path = folder / ("xkd_k400_ep800" + ("vid" if modality == "video" else "aud") + "_student.pth.tar")
        torch.save(make_state.nest(fixture["layout"], state), path)
        files[modality] = path
    return files


@pytest.fixture(scope="module")
def loaded_encoders(released_files) -> dict[str, ViTEncoder]:
    return {
        modality: create_encoder(ENCODER_FOR[modality], checkpoint_path=path).eval()
        for modality, path in released_files.items()
    }


def model_input(fixture: dict) -> torch.Tensor:
    x = fixture["input"]
    if x.dtype == torch.uint8:  # README "uint8 inputs": official ClipToTensor + Normalize
        transform = fixture["input_transform"]
        mean = transform["mean"].float().view(1, 3, 1, 1, 1)
        std = transform["std"].float().view(1, 3, 1, 1, 1)
        x = ((x.float() / 255) - mean) / std
    return x


@pytest.mark.parametrize(("name", "modality"), CASES)
def test_xkd_release_matches_original_code(parity_dir, loaded_encoders, name, modality):
    fixture = read_fixture(parity_dir, name)
    encoder = loaded_encoders[modality]
    tolerance = {"atol": fixture["atol"], "rtol": fixture["rtol"]}
    with torch.no_grad():
        features = encoder.forward_features(model_input(fixture))
    torch.testing.assert_close(features["pooled"], fixture["output"], **tolerance)
    extra = fixture["extra_outputs"]
    torch.testing.assert_close(features["tokens"].norm(dim=-1), extra["token_norms"], **tolerance)
    if "cls_output" in extra:
        torch.testing.assert_close(features["cls"], extra["cls_output"], **tolerance)


def test_video_release_refused_by_audio_encoder(released_files):
    with pytest.raises(CheckpointError, match=r"vid_student\.pth\.tar.*holds a video encoder"):
        create_encoder("vit_b_audio_xkd", checkpoint_path=released_files["video"])


def test_patchify_matches_original_patch_order(parity_dir):
    cases = read_fixture(parity_dir, "recon_loss")["patchify"]
    for modality in ("video", "audio"):
        patches = patchify(cases[f"{modality}_in"], tuple(cases[f"{modality}_patch"]))
        torch.testing.assert_close(patches, cases[f"{modality}_patches"], atol=0, rtol=0)
