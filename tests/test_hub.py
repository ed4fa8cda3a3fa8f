"""hubconf.py at the repository root: torch.hub entry points (spec §1.6, pitfall 1).

XDC's own hubconf breaks on torchvision >= 0.13; ours must build XDC's model on the installed
torchvision, re-initialise ``fc`` and load every other layer strictly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import subprocess
import sys

import pytest
import torch

from avssl.models import zoo
from avssl.models.checkpoints import CheckpointMismatchError
from avssl.models.checkpoints.avssl_native import save_encoder
from avssl.models.registry import create_encoder
from conftest import REPO_ROOT

XDC_ENTRY = "r2plus1d_18_xdc_ig65m_kinetics"


def _hub_load(model: str, **kwargs):
    return torch.hub.load(str(REPO_ROOT), model, source="local", **kwargs)


def test_documented_command_runs_from_the_repo_root() -> None:
    command = (
        "import torch; m = torch.hub.load('.', 'xdc_video_encoder', source='local', pretraining=None, "
        "num_classes=42); print(type(m).__name__, m.fc.out_features, m(torch.zeros(1, 3, 4, 32, 32)).shape)"
    )
    result = subprocess.run([sys.executable, "-c", command], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["R2Plus1dVMZ", "42", "torch.Size([1,", "42])"]


@pytest.fixture(scope="module")
def xdc_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(11)
    return {k: v.clone() for k, v in create_encoder("r2plus1d_18_vmz", num_classes=400).state_dict().items()}


def _serve(state: dict, path, monkeypatch) -> None:
    """Make XDC's default release point to ``path`` (file:// URL) with that file's hash prefix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    entry = dataclasses.replace(zoo.get_entry(XDC_ENTRY), url=path.as_uri(), sha256_prefix=digest[:8])
    monkeypatch.setitem(zoo._BY_NAME, XDC_ENTRY, entry)


@pytest.fixture
def xdc_release(xdc_state, tmp_path, monkeypatch) -> dict[str, torch.Tensor]:
    """A local stand-in for XDC's default release, and a private torch.hub folder."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    _serve(xdc_state, tmp_path / "server" / "xdc.pth", monkeypatch)
    return xdc_state


def test_xdc_video_encoder_reinitialises_fc_and_loads_the_rest(xdc_release) -> None:
    state = xdc_release
    model = _hub_load("xdc_video_encoder", num_classes=42, progress=False)
    assert model.fc.out_features == 42
    loaded = model.state_dict()
    for key, value in state.items():
        if not key.startswith("fc."):
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)
    assert all(m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d))

    same_classes = _hub_load("xdc_video_encoder", progress=False)  # 400 classes: the file's fc fits
    torch.testing.assert_close(same_classes.fc.weight, state["fc.weight"], rtol=0, atol=0)


def test_xdc_video_encoder_refuses_anything_but_missing_fc(xdc_state, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    broken = {k: v for k, v in xdc_state.items() if k != "layer3.1.conv1.0.0.weight"}
    _serve(broken, tmp_path / "server" / "broken.pth", monkeypatch)
    with pytest.raises(CheckpointMismatchError, match=r"missing keys \(1\): layer3\.1\.conv1\.0\.0\.weight"):
        _hub_load("xdc_video_encoder", progress=False)
    with pytest.raises(ValueError, match="not an XDC release"):
        _hub_load("xdc_video_encoder", pretraining="avid_kinetics400")


def test_entry_points_of_every_family(tmp_path) -> None:
    # torch.hub.list reads GitHub repositories only, so the local hubconf is imported directly
    spec = importlib.util.spec_from_file_location("avssl_hubconf", REPO_ROOT / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    assert hubconf.dependencies == ["torch", "torchvision"]
    for entry in ("xdc_video_encoder", "avid_encoder", "crisscross_encoder", "avssrl_encoder", "xkd_encoder",
                  "encoder"):
        assert callable(getattr(hubconf, entry)), entry

    with torch.device("meta"):
        assert type(_hub_load("avid_encoder", pretraining=None, modality="audio")).__name__ == "AudioConv2dNet"
        assert _hub_load("crisscross_encoder", pretraining=None).pool_kind == "avg"
        assert _hub_load("avssrl_encoder", modality="audio").registry_name == "audio_conv2d10_avssrl"
        assert _hub_load("xkd_encoder", pretraining="xkd_kinetics400_audio_teacher").modality == "audio"

    small = create_encoder("r2plus1d_small")
    path = save_encoder(small, tmp_path / "small.pt")
    reloaded = _hub_load("encoder", name="r2plus1d_small", checkpoint_path=str(path))
    torch.testing.assert_close(reloaded.conv1[0].weight, small.conv1[0].weight, rtol=0, atol=0)
