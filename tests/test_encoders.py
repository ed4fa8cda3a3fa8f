"""Encoder contract for every registered encoder, plus the CNN definitions of spec §1.2, §2.1, §3A.1.

Full-size networks are checked on the ``meta`` device (shapes only, no compute); numerical
behaviour is checked on the small variants here and on the full networks by the parity tests.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time

import pytest
import torch
from torch import nn

from avssl.models.audio_cnn import AudioConv2dNet, AudioResNet, conv5x_maxpool_feature
from avssl.models.encoder import Encoder, count_parameters, standard_input_shape
from avssl.models.r2plus1d import R2Plus1dAVID, R2Plus1dVMZ, vmz_midplanes
from avssl.models.registry import create_encoder, describe_encoder, list_encoders
from conftest import REPO_ROOT

ALL_ENCODERS = list_encoders()
CNN_CLASSES = (R2Plus1dVMZ, R2Plus1dAVID, AudioResNet, AudioConv2dNet)
SMALL_ENCODERS = ["r2plus1d_small", "audio_resnet_small"]
CNN_MAPS = ["conv1", "conv2x", "conv3x", "conv4x", "conv5x", "pool"]


def _model_table():
    """benchmarks/model_table.py (a script, not a package) imported as a module."""
    name = "avssl_benchmark_model_table"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / "model_table.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return create_encoder(name, **kwargs).eval()


# ---------------------------------------------------------------------------------------------
# generic contract, generated from the registry


@pytest.mark.parametrize("name", ALL_ENCODERS)
def test_contract_at_standard_input(name: str) -> None:
    encoder = _meta(name)
    assert isinstance(encoder, Encoder)
    assert encoder.modality in ("video", "audio")
    assert encoder.input_spec.modality == encoder.modality
    json.dumps(encoder.input_spec.to_dict())  # the header of saved checkpoints needs it JSON-able
    assert encoder.registry_name == name and encoder.registry_kwargs == {}
    assert describe_encoder(name)

    shape = standard_input_shape(encoder, batch=2)
    assert shape[:2] == ((2, 3) if encoder.modality == "video" else (2, 1))
    x = torch.empty(shape, device="meta")
    out = encoder(x)
    assert tuple(out.shape) == (2, encoder.out_dim)
    features = encoder.forward_features(x)
    assert features and all(isinstance(v, torch.Tensor) and v.shape[0] == 2 for v in features.values())


@pytest.mark.parametrize("name", [n for n in ALL_ENCODERS if n.startswith(("r2plus1d", "audio_"))])
def test_cnn_feature_maps_and_pool(name: str) -> None:
    encoder = _meta(name)
    assert isinstance(encoder, CNN_CLASSES)
    features = encoder.forward_features(torch.empty(standard_input_shape(encoder, 2), device="meta"))
    assert list(features) == CNN_MAPS
    assert tuple(features["pool"].shape) == (2, encoder.out_dim)
    if encoder.modality == "audio":
        assert standard_input_shape(encoder)[2] == encoder.freq_bins  # frequency first (B×1×F×T)


@pytest.mark.parametrize("name", SMALL_ENCODERS)
def test_small_encoder_is_deterministic_and_batch_independent(name: str) -> None:
    torch.manual_seed(0)
    encoder = create_encoder(name).eval()
    x = torch.randn(standard_input_shape(encoder, 2))
    with torch.no_grad():
        out = encoder(x)
        torch.testing.assert_close(encoder(x), out, rtol=0, atol=0)
        torch.testing.assert_close(encoder(x[1:]), out[1:], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(encoder.forward_features(x)["pool"], out)


@pytest.mark.parametrize("name", SMALL_ENCODERS)
def test_small_encoder_trains_on_cpu(name: str) -> None:
    torch.manual_seed(0)
    encoder = create_encoder(name).train()
    assert 100_000 < count_parameters(encoder) < 1_000_000
    x = torch.randn(standard_input_shape(encoder, 8))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        encoder(x).square().mean().backward()  # warm-up (allocator, kernels)
        encoder.zero_grad()
        start = time.perf_counter()
        encoder(x).square().mean().backward()
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    grads = [p.grad for p in encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # brief: "well under a second on one core"; 3 s leaves room for a loaded shared machine
    assert elapsed < 3.0, f"{name}: forward+backward of a batch of 8 took {elapsed:.2f} s"


@pytest.mark.parametrize("name", ["r2plus1d_small", "audio_resnet_small", "audio_conv2d10_avid"])
def test_bad_input_is_refused_with_a_clear_message(name: str) -> None:
    encoder = _meta(name)
    wrong = torch.empty((2, 3, 64, 64), device="meta") if encoder.modality == "video" else torch.empty(
        (2, 2, 80, 101), device="meta")
    with pytest.raises(ValueError, match=r"expected a (video|audio) tensor B×"):
        encoder(wrong)
    with pytest.raises(ValueError, match="float"):
        encoder(torch.zeros(standard_input_shape(encoder), dtype=torch.uint8))


def test_time_major_spectrogram_is_refused() -> None:
    encoder = _meta("audio_conv2d10_avid")
    with pytest.raises(ValueError, match=r"F = 257.*time-major"):
        encoder(torch.empty((1, 1, 200, 257), device="meta"))
    relaxed = _meta("audio_conv2d10_avid", freq_bins=None)
    assert relaxed(torch.empty((1, 1, 200, 257), device="meta")).shape == (1, 512)


# ---------------------------------------------------------------------------------------------
# parameter counts and FLOPs


def test_parameter_counts_match_the_spec() -> None:
    table = _model_table()
    for name, (expected, section) in table.SPEC_PARAMETERS.items():
        assert count_parameters(_meta(name)) == expected, f"{name} vs spec {section}"


def test_flop_convention_is_two_per_multiply_add() -> None:
    """model_table's FLOPs equal 2 × the multiply-adds of every conv, counted here by hooks."""
    table = _model_table()
    encoder = create_encoder("r2plus1d_small").eval()
    macs = []

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        kernel = math.prod(module.kernel_size)
        macs.append(output.numel() * (module.in_channels // module.groups) * kernel)

    hooks = [m.register_forward_hook(count) for m in encoder.modules() if isinstance(m, nn.Conv3d)]
    shape = (1, 3, 4, 32, 32)
    flops = table.count_flops(encoder, shape)
    for hook in hooks:
        hook.remove()
    assert flops == 2 * sum(macs)


def test_landscape_flop_figures_are_reproduced() -> None:
    """Landscape §0 item 6: 6.2 G (AVID definition) and 40.5 G (torchvision/VMZ) at 8×112²."""
    table = _model_table()
    assert round(table.measure("r2plus1d_18_avid", (3, 8, 112, 112)).gflops, 1) == 6.2
    assert round(table.measure("torchvision r2plus1d_18", (3, 8, 112, 112)).gflops, 1) == 40.5
    # XDC's own VMZ variant has wider mid-planes, hence more FLOPs than torchvision's
    assert table.measure("r2plus1d_18_vmz", (3, 8, 112, 112)).gflops > 40.6


# ---------------------------------------------------------------------------------------------
# VMZ / XDC definition (spec §1.2)


def test_vmz_mid_planes_are_recomputed_per_conv() -> None:
    encoder = _meta("r2plus1d_18_vmz")
    for layer, (cin, cout) in {"layer2": (64, 128), "layer3": (128, 256), "layer4": (256, 512)}.items():
        block = getattr(encoder, layer)[0]
        conv1_mid = block.conv1[0][0].out_channels
        conv2_mid = block.conv2[0][0].out_channels
        assert conv1_mid == vmz_midplanes(cin, cout) == (cin * cout * 27) // (9 * cin + 3 * cout)
        assert conv2_mid == (cout * cout * 27) // (9 * cout + 3 * cout)
        torchvision_mid = (cin * cout * 27) // (9 * cin + 3 * cout)  # one value per block
        assert conv2_mid != torchvision_mid


def test_vmz_batchnorm_and_classifier_options() -> None:
    encoder = _meta("r2plus1d_18_vmz")
    norms = [m for m in encoder.modules() if isinstance(m, nn.BatchNorm3d)]
    assert norms and all(m.eps == 1e-3 and m.momentum == 0.1 for m in norms)
    caffe2 = _meta("r2plus1d_18_vmz", bn_momentum=0.9)
    assert all(m.momentum == 0.9 for m in caffe2.modules() if isinstance(m, nn.BatchNorm3d))
    assert not any(k.startswith("fc.") for k in encoder.state_dict()) and encoder.out_dim == 512

    with_fc = _meta("r2plus1d_18_vmz", num_classes=400)
    x = torch.empty((2, 3, 8, 112, 112), device="meta")
    features = with_fc.forward_features(x)
    assert with_fc(x).shape == (2, 400) and features["pool"].shape == (2, 512)
    assert with_fc.out_dim == 400


def test_vmz_stage_shapes() -> None:
    features = _meta("r2plus1d_18_vmz").forward_features(torch.empty((1, 3, 32, 112, 112), device="meta"))
    assert features["conv1"].shape == (1, 64, 32, 56, 56)  # no max-pool in the stem
    assert features["conv3x"].shape == (1, 128, 16, 28, 28)
    assert features["conv4x"].shape == (1, 256, 8, 14, 14)
    assert features["conv5x"].shape == (1, 512, 4, 7, 7)


# ---------------------------------------------------------------------------------------------
# AVID definition and the audio CNNs (spec §2.1, §3A.1)


@pytest.mark.parametrize("size, last", [(112, 4), (224, 7)])
def test_avid_stage_shapes(size: int, last: int) -> None:
    features = _meta("r2plus1d_18_avid").forward_features(torch.empty((1, 3, 8, size, size), device="meta"))
    assert features["conv1"].shape == (1, 64, 8, size // 4, size // 4)
    assert features["conv2x"].shape == (1, 64, 8, size // 4, size // 4)
    assert features["conv3x"].shape == (1, 128, 4, size // 8, size // 8)
    assert features["conv5x"].shape == (1, 512, 1, last, last)


def test_pool_kinds_reduce_conv5x() -> None:
    torch.manual_seed(0)
    encoder = create_encoder("r2plus1d_small", pool="avg").eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        features = encoder.forward_features(x)
        torch.testing.assert_close(features["pool"], features["conv5x"].mean(dim=(2, 3, 4)))
        encoder_max = create_encoder("r2plus1d_small", pool="max").eval()
        encoder_max.load_state_dict(encoder.state_dict())
        features = encoder_max.forward_features(x)
        torch.testing.assert_close(features["pool"], features["conv5x"].amax(dim=(2, 3, 4)))
    with pytest.raises(ValueError, match="'max' or 'avg'"):
        create_encoder("r2plus1d_small", pool="mean")


@pytest.mark.parametrize("frames, conv5x", [(201, (3, 7)), (501, (3, 16)), (101, (3, 4))])
def test_audio_resnet_conv5x_shapes(frames: int, conv5x: tuple[int, int]) -> None:
    features = _meta("audio_resnet18_crisscross").forward_features(torch.empty((1, 1, 80, frames), device="meta"))
    assert features["conv5x"].shape == (1, 512, *conv5x)
    if frames == 201:  # the ESC-50 feature of the 2 s configs is 4608-d (spec §2.10)
        assert conv5x_maxpool_feature(features["conv5x"]).shape == (1, 4608)


def test_conv2d10_maps_are_returned_frequency_first() -> None:
    # AVID's 1×200×257 (T×F) gives conv5x 512×13×17 (spec §3A.1); we take and return F×T.
    features = _meta("audio_conv2d10_avid").forward_features(torch.empty((1, 1, 257, 200), device="meta"))
    assert features["conv5x"].shape == (1, 512, 17, 13)
    assert features["conv2x"].shape == (1, 64, 65, 50)


def test_conv2d10_time_major_layout_is_a_transpose() -> None:
    torch.manual_seed(0)
    small = {"widths": (8, 8, 16, 16, 32)}
    time_major = AudioConv2dNet("TF", **small).eval()
    freq_major = AudioConv2dNet("FT", **small).eval()
    freq_major.load_state_dict(time_major.state_dict())
    x = torch.randn(2, 1, 40, 30)  # B×1×F×T
    with torch.no_grad():
        torch.testing.assert_close(time_major(x), freq_major(x.transpose(-1, -2)))
        maps_tf = time_major.forward_features(x)
        maps_ft = freq_major.forward_features(x.transpose(-1, -2))
        torch.testing.assert_close(maps_tf["conv5x"], maps_ft["conv5x"].transpose(-1, -2))


def test_conv2d10_has_no_residual_connection() -> None:
    block = _meta("audio_conv2d10_avid").block4
    assert sorted(name for name, _ in block.named_children()) == ["bn1", "bn2", "conv1", "conv2", "relu"]
