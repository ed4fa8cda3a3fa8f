"""Channels-last convolution weights: same values and gradients, the layout the engine asks for."""

from __future__ import annotations

import copy

import pytest
import torch

from avssl.models.registry import create_encoder
from avssl.train.memory_format import convolutions_to_channels_last

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Every encoder family, at inputs small enough for a CPU test (the encoders accept other sizes).
ENCODER_INPUTS = {
    "r2plus1d_small": (2, 3, 4, 32, 32),
    "r2plus1d_18_avid": (2, 3, 4, 32, 32),
    "r2plus1d_18_vmz": (2, 3, 4, 32, 32),
    "audio_resnet_small": (2, 1, 80, 64),
    "audio_conv2d10_avid": (2, 1, 257, 48),
}


@pytest.mark.parametrize("name", sorted(ENCODER_INPUTS))
def test_channels_last_encoder_gives_the_same_features_and_gradients(name):
    torch.manual_seed(0)
    reference = create_encoder(name).eval()  # batch statistics of 2 clips at 1×1 late maps are degenerate
    converted = copy.deepcopy(reference)
    count = convolutions_to_channels_last(converted)
    convolutions = [m for m in converted.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert count == len(convolutions) > 0
    for conv in convolutions:
        layout = torch.channels_last if conv.weight.dim() == 4 else torch.channels_last_3d
        assert conv.weight.is_contiguous(memory_format=layout)
    # 1×1 kernels and one-channel stems are both layouts at once; the others must have moved
    assert any(not conv.weight.is_contiguous() for conv in convolutions)
    x = torch.randn(ENCODER_INPUTS[name])
    out_ref, out_cl = reference(x), converted(x)
    torch.testing.assert_close(out_cl, out_ref, rtol=1e-4, atol=1e-4)
    out_ref.pow(2).sum().backward()
    out_cl.pow(2).sum().backward()
    for (key, p_ref), (_, p_cl) in zip(reference.named_parameters(), converted.named_parameters()):
        torch.testing.assert_close(p_cl.grad, p_ref.grad, rtol=1e-3, atol=1e-4, msg=key)


def test_a_model_without_convolutions_is_left_alone():
    vit = create_encoder("vit_small_video")  # patches are embedded by a linear layer
    before = {k: v.stride() for k, v in vit.state_dict().items()}
    assert convolutions_to_channels_last(vit) == 0
    assert {k: v.stride() for k, v in vit.state_dict().items()} == before
