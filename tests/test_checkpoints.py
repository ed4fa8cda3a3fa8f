"""Checkpoint layouts of the CNN releases and avssl's own format (spec §1.6, §2.8, §3A.5–6, §3B.2, §3B.6).

Files are built here from our own (small, random) encoders in each release's nesting; the parity
tests do the same with the official key lists and weights.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch
from torch import nn

from avssl.models.audio_cnn import AudioConv2dNet
from avssl.models.checkpoints import (
    CheckpointError,
    CheckpointMismatchError,
    list_layouts,
    load_checkpoint,
    read_checkpoint,
)
from avssl.models.checkpoints.avssl_native import load_encoder, save_encoder
from avssl.models.checkpoints.avssrl import AVSSRL_TO_AVID
from avssl.models.registry import create_encoder

SMALL_CONV2D = {"widths": (8, 8, 16, 16, 32)}


class NotAllowed:
    """A custom class: unpickling it would need code, so weights_only=True must refuse it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def _random_state(encoder: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in encoder.state_dict().items():
        if value.is_floating_point():
            value = torch.randn(value.shape, generator=generator) * 0.1 + (1.0 if "running_var" in key else 0.0)
            value = value.abs() if "running_var" in key else value
        state[key] = value.clone()
    return state


def _outputs(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return encoder.eval()(x)


def _save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


@pytest.fixture(scope="module")
def video_state() -> dict[str, torch.Tensor]:
    return _random_state(create_encoder("r2plus1d_small"), seed=1)


@pytest.fixture(scope="module")
def audio_state() -> dict[str, torch.Tensor]:
    return _random_state(AudioConv2dNet("TF", **SMALL_CONV2D), seed=2)


def _avid_checkpoint(video: Mapping, audio: Mapping, rename_video: bool = False) -> dict:
    """AVID training checkpoint nesting: DDP prefixes, both encoders, projection heads."""
    model = {}
    for key, value in video.items():
        if rename_video:
            for ours, theirs in AVSSRL_TO_AVID.items():
                key = key.replace(theirs, ours)
        model[f"module.video_model.{key}"] = value
    model.update({f"module.audio_model.{k}": v for k, v in audio.items()})
    model["module.video_proj.projection.0.weight"] = torch.zeros(128, 128)
    model["module.audio_proj.projection.0.weight"] = torch.zeros(128, 32)
    return {"epoch": 3, "model": model, "optimizer": {}, "train_criterion": {}}


def _claiming_layouts(obj: object, encoder: nn.Module) -> list[str]:
    return [layout.name for layout in list_layouts() if layout.extract(obj, encoder) is not None]


# ---------------------------------------------------------------------------------------------
# each release layout loads, and only its own layout claims it


def test_avid_checkpoint_loads_the_component_of_the_encoder_modality(tmp_path, video_state, audio_state) -> None:
    path = _save(_avid_checkpoint(video_state, audio_state), tmp_path / "avid.pth.tar")
    video = create_encoder("r2plus1d_small", checkpoint_path=path)
    reference = create_encoder("r2plus1d_small")
    reference.load_state_dict(video_state)
    x = torch.randn(2, 3, 8, 32, 32)
    torch.testing.assert_close(_outputs(video, x), _outputs(reference, x), rtol=0, atol=0)

    audio = AudioConv2dNet("TF", **SMALL_CONV2D)
    report = load_checkpoint(audio, path)
    assert report.layout == "avid" and report.loaded_keys == len(audio_state)
    for key, value in audio.state_dict().items():
        torch.testing.assert_close(value, audio_state[key])
    assert _claiming_layouts(read_checkpoint(path), video) == ["avid"]


def test_avssrl_checkpoint_renames_video_keys(tmp_path, video_state, audio_state) -> None:
    obj = _avid_checkpoint(video_state, audio_state, rename_video=True)
    assert any(".spatial_conv1." in k for k in obj["model"]) and not any(".spt_conv1" in k for k in obj["model"])
    path = _save(obj, tmp_path / "avssrl.pth.tar")
    video = create_encoder("r2plus1d_small")
    assert load_checkpoint(video, path).layout == "avssrl"
    for key, value in video.state_dict().items():
        torch.testing.assert_close(value, video_state[key])
    audio = AudioConv2dNet("FT", **SMALL_CONV2D)
    assert load_checkpoint(audio, path).layout == "avssrl"  # audio keys are AVID's; the file is AV-SSRL's
    assert _claiming_layouts(read_checkpoint(path), video) == ["avssrl"]


def test_crisscross_flat_and_zipped_files(tmp_path, video_state) -> None:
    flat = _save(video_state, tmp_path / "vid_crisscross_test.pth.tar")
    archive = tmp_path / "vid_crisscross_test.pth.tar.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(flat, arcname="vid_crisscross_test.pth.tar")
    x = torch.randn(1, 3, 8, 32, 32)
    from_flat = create_encoder("r2plus1d_small", checkpoint_path=flat)
    from_zip = create_encoder("r2plus1d_small", checkpoint_path=archive)
    torch.testing.assert_close(_outputs(from_flat, x), _outputs(from_zip, x), rtol=0, atol=0)
    assert _claiming_layouts(video_state, from_flat) == ["crisscross-video"]

    audio_encoder = create_encoder("audio_resnet_small")
    audio_state = _random_state(audio_encoder, seed=3)
    assert _claiming_layouts(audio_state, audio_encoder) == ["crisscross-audio"]
    assert load_checkpoint(audio_encoder, audio_state).layout == "crisscross-audio"


@pytest.fixture(scope="module")
def xdc_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(4)
    return {k: v.clone() for k, v in create_encoder("r2plus1d_18_vmz", num_classes=400).state_dict().items()}


def test_xdc_file_with_and_without_optional_keys(xdc_state) -> None:
    full = create_encoder("r2plus1d_18_vmz", num_classes=400)
    assert load_checkpoint(full, xdc_state).absent_optional_keys == []
    torch.testing.assert_close(full.fc.weight, xdc_state["fc.weight"])
    assert _claiming_layouts(xdc_state, full) == ["xdc"]

    # XDC's README: fc is not part of the release; BN counters may be absent (torch < 0.4.1 files)
    bare = {k: v for k, v in xdc_state.items() if not k.startswith("fc.") and "num_batches" not in k}
    report = load_checkpoint(create_encoder("r2plus1d_18_vmz", num_classes=400), bare)
    assert set(report.absent_optional_keys) >= {"fc.weight", "fc.bias"}
    assert any(k.endswith("num_batches_tracked") for k in report.absent_optional_keys)
    assert load_checkpoint(create_encoder("r2plus1d_18_vmz"), bare).absent_optional_keys == [
        k for k in report.absent_optional_keys if not k.startswith("fc.")]

    # a 400-way fc is dropped for an encoder without fc or with another class count (re-initialised)
    features_only = create_encoder("r2plus1d_18_vmz")
    assert load_checkpoint(features_only, xdc_state).loaded_keys == len(xdc_state) - 2
    other = create_encoder("r2plus1d_18_vmz", num_classes=42)
    initial_fc = other.fc.weight.detach().clone()
    assert load_checkpoint(other, xdc_state).absent_optional_keys == ["fc.weight", "fc.bias"]
    torch.testing.assert_close(other.fc.weight, initial_fc, rtol=0, atol=0)
    torch.testing.assert_close(other.stem[0].weight, xdc_state["stem.0.weight"], rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# mismatches name the offending keys


def test_xdc_weights_into_the_avid_encoder_name_the_keys(xdc_state) -> None:
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(create_encoder("r2plus1d_small"), xdc_state)
    error = info.value
    assert "conv1.0.weight" in error.missing and "conv2x.0.spt_conv1.weight" in error.missing
    assert "stem.0.weight" in error.unexpected and "layer4.1.conv2.1.bias" in error.unexpected
    message = str(error)
    assert "xdc layout" in message and "r2plus1d_small" in message
    assert "missing keys" in message and "stem.0.weight" in message


def test_torchvision_r2plus1d_weights_do_not_fit_xdc() -> None:
    from torchvision.models.video import r2plus1d_18

    with torch.device("meta"):
        torchvision_state = r2plus1d_18().state_dict()
        encoder = create_encoder("r2plus1d_18_vmz", num_classes=400)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(encoder, torchvision_state)
    wrong = {key for key, _, _ in info.value.wrong_shape}
    # spec §1.6: 18 tensors differ, all in the second (2+1)D conv of layer{2,3,4}.0
    assert len(wrong) == 18 and all(k.split(".conv2.")[0] in ("layer2.0", "layer3.0", "layer4.0") for k in wrong)
    assert not info.value.missing and not info.value.unexpected


def test_one_wrongly_shaped_tensor_is_named(video_state) -> None:
    broken = dict(video_state)
    broken["conv3x.0.tmp_conv1.weight"] = torch.zeros(5, 5, 3, 1, 1)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(create_encoder("r2plus1d_small"), broken)
    assert info.value.wrong_shape == [("conv3x.0.tmp_conv1.weight", (5, 5, 3, 1, 1), (32, 32, 3, 1, 1))]
    assert "wrong shape: conv3x.0.tmp_conv1.weight" in str(info.value)


def test_audio_file_into_video_encoder_says_so() -> None:
    audio_encoder = create_encoder("audio_resnet_small")
    with pytest.raises(CheckpointMismatchError, match=r"holds audio weights .* is a video encoder"):
        load_checkpoint(create_encoder("r2plus1d_small"), audio_encoder.state_dict())


def test_avid_checkpoint_without_the_needed_component(video_state) -> None:
    obj = {"epoch": 0, "model": {f"module.video_model.{k}": v for k, v in video_state.items()}}
    with pytest.raises(CheckpointError, match=r"no 'audio_model\.\*' entries .* video_model"):
        load_checkpoint(AudioConv2dNet("TF", **SMALL_CONV2D), obj)


def test_unknown_layout_is_reported() -> None:
    with pytest.raises(CheckpointError, match="no known layout fits encoder r2plus1d_small"):
        load_checkpoint(create_encoder("r2plus1d_small"), {"weights": torch.zeros(3)})


# ---------------------------------------------------------------------------------------------
# unreadable files


def test_truncated_file_is_reported_with_its_path(tmp_path, video_state) -> None:
    path = _save(video_state, tmp_path / "truncated.pth")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pth: cannot be read"):
        create_encoder("r2plus1d_small", checkpoint_path=path)
    with pytest.raises(CheckpointError, match="no such file"):
        create_encoder("r2plus1d_small", checkpoint_path=tmp_path / "absent.pth")


def test_pickled_code_is_refused(tmp_path) -> None:
    path = _save({"state_dict": {}, "extra": NotAllowed()}, tmp_path / "custom.pth")
    with pytest.raises(CheckpointError, match=r"custom\.pth: refused .*weights_only=True"):
        read_checkpoint(path)


# ---------------------------------------------------------------------------------------------
# avssl's own format


def test_native_round_trip(tmp_path) -> None:
    torch.manual_seed(5)
    encoder = create_encoder("r2plus1d_small", pool="avg")
    encoder.load_state_dict(_random_state(encoder, seed=6))
    path = save_encoder(encoder, tmp_path / "sub" / "encoder.pt", method="xid", extra={"epochs": 2})
    assert [p.name for p in path.parent.iterdir()] == ["encoder.pt"]  # no temporary file left

    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "avssl-encoder" and raw["version"] == 1
    header = raw["header"]
    assert header["encoder"] == "r2plus1d_small" and header["kwargs"] == {"pool": "avg"}
    assert header["method"] == "xid" and header["extra"] == {"epochs": 2}
    assert header["input_spec"]["frames"] == encoder.input_spec.frames
    assert header["avssl_version"]

    loaded = load_encoder(path)
    assert loaded.registry_kwargs == {"pool": "avg"} and loaded.pool_kind == "avg"
    x = torch.randn(2, 3, 8, 32, 32)
    torch.testing.assert_close(_outputs(loaded, x), _outputs(encoder, x), rtol=0, atol=0)
    assert load_checkpoint(create_encoder("r2plus1d_small"), path).layout == "avssl"


def test_native_format_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="not built by avssl.create_encoder"):
        save_encoder(AudioConv2dNet("TF", **SMALL_CONV2D), tmp_path / "x.pt")
    encoder = create_encoder("audio_resnet_small")
    with pytest.raises(ValueError, match="extra must be JSON-serialisable"):
        save_encoder(encoder, tmp_path / "x.pt", extra={"bad": object()})
    path = save_encoder(encoder, tmp_path / "future.pt")
    raw = torch.load(path, weights_only=True)
    raw["version"] = 99
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"future\.pt: field 'version' is 99"):
        load_encoder(path)
    with pytest.raises(CheckpointError, match="not an avssl encoder file"):
        load_encoder(_save(encoder.state_dict(), tmp_path / "plain.pt"))
