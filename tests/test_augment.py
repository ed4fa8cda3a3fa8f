"""Tests of avssl.media.augment: geometry and colour against torchvision, quirks against the spec's formulas,
temporal consistency, per-sample independence, determinism, and the method presets."""

from __future__ import annotations

import math
import time

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

from avssl.media.augment import (
    CenterCrop,
    ColorJitter,
    Compose,
    CropBoxes,
    Cutout,
    FrequencyMask,
    GaussianBlur,
    Normalize,
    RandomColouredNoise,
    RandomGain,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ResizeShortSide,
    SpectrogramRandomResizeCrop,
    ThreeCrop,
    TimeMask,
    TimeWarp,
    VariableSpectrogramMask,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    get_audio_augment,
    get_augment_preset,
    get_video_augment,
    list_augment_presets,
    resized_crop,
)
from avssl.media.augment.video_color import JitterParams
from avssl.media.augment.video_cutout import CutoutParams
from avssl.models.input_spec import IMAGENET_MEAN, IMAGENET_STD

REQUIRED_VIDEO = {
    "crisscross_pretrain_video", "avid_pretrain_video", "avssrl_pretrain_video", "xkd_global_video",
    "xkd_local_video", "eval_video",
}
REQUIRED_AUDIO = {
    "crisscross_pretrain_audio", "avid_pretrain_audio", "avssrl_pretrain_audio", "xkd_global_audio",
    "xkd_local_audio",
}
TRAINING_VIDEO = sorted(set(list_augment_presets("video")) - {"eval_video", "eval_video_three_crop"})


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_clips(
    batch: int = 2, frames: int = 3, height: int = 40, width: int = 56, seed: int = 0
) -> torch.Tensor:
    return torch.rand(batch, 3, frames, height, width, generator=seeded(seed))


def still_clips(batch: int = 3, frames: int = 4, height: int = 40, width: int = 56) -> torch.Tensor:
    """Clips whose frames are all the same picture (different per clip)."""
    return random_clips(batch, 1, height, width, seed=1).expand(-1, -1, frames, -1, -1).contiguous()


def frames_as_images(clip: torch.Tensor) -> torch.Tensor:
    """``[C, T, H, W]`` -> torchvision's video layout ``[T, C, H, W]``."""
    return clip.permute(1, 0, 2, 3)


# ---------------------------------------------------------------- presets, shapes, dtypes, input checks


def test_required_presets_are_registered_with_their_spec_section():
    assert REQUIRED_VIDEO <= set(list_augment_presets("video"))
    assert REQUIRED_AUDIO <= set(list_augment_presets("audio"))
    both = set(list_augment_presets("video")) | set(list_augment_presets("audio"))
    assert set(list_augment_presets()) == both
    for name in list_augment_presets():
        assert get_augment_preset(name).spec_section.startswith("§")


@pytest.mark.parametrize("name", list_augment_presets("video"))
def test_video_presets_give_float_clips_of_the_preset_size(name):
    aug = get_video_augment(name)
    clips = (random_clips(2, 3, 60, 80) * 255).to(torch.uint8)
    out = aug(clips, seeded())
    preset = get_augment_preset(name)
    size = preset.defaults["size"]
    expected = (2, 3, 3, 3, size, size) if preset.defaults.get("three_crop") else (2, 3, 3, size, size)
    assert out.shape == expected
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    single = aug(clips[0], seeded())
    assert single.shape == expected[1:]


@pytest.mark.parametrize("name", list_augment_presets("audio"))
def test_audio_presets_keep_waveform_and_spectrogram_shapes(name):
    aug = get_audio_augment(name)
    waveforms = torch.randn(3, 1600, generator=seeded())
    spectrograms = torch.randn(3, 1, 40, 101, generator=seeded(1))
    out_wave = aug.augment_waveform(waveforms, seeded())
    out_spec = aug.augment_spectrogram(spectrograms, seeded())
    assert out_wave.shape == waveforms.shape and out_wave.dtype == torch.float32
    assert out_spec.shape == spectrograms.shape and out_spec.dtype == torch.float32
    assert aug.augment_spectrogram(spectrograms[0], seeded()).shape == spectrograms.shape[1:]


def test_crisscross_and_xkd_presets_hold_the_spec_numbers():
    steps = {type(t).__name__: t for t in get_video_augment("crisscross_pretrain_video").transforms}
    assert list(steps) == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "RandomGrayscale",
                           "GaussianBlur", "Normalize", "Cutout"]  # §2.5 order: cutout after normalising
    assert steps["RandomResizedCrop"].size == (112, 112) and steps["RandomResizedCrop"].scale == (0.08, 1.0)
    jitter = steps["ColorJitter"]
    strengths = (jitter.brightness, jitter.contrast, jitter.saturation, jitter.hue, jitter.p)
    assert strengths == (0.4, 0.4, 0.4, 0.2, 1.0)
    assert steps["RandomGrayscale"].p == 0.2
    assert (steps["GaussianBlur"].kernel_size, steps["GaussianBlur"].sigma, steps["GaussianBlur"].p) == (
        112 // 20 * 2 + 1, (0.1, 2.0), 0.5)
    assert (steps["Cutout"].max_size, steps["Cutout"].p, steps["Cutout"].mode) == (20, 1.0, "mean_multiply")
    local = {type(t).__name__: t for t in get_video_augment("xkd_local_video").transforms}
    assert local["RandomResizedCrop"].size == (96, 96) and local["RandomResizedCrop"].scale == (0.08, 0.4)
    assert local["GaussianBlur"].kernel_size == 9 and "Cutout" not in local
    audio = get_audio_augment("crisscross_pretrain_audio")
    assert audio.waveform.transforms[0].gain == (0.8, 1.2)
    freq, time_, crop = audio.spectrogram.transforms
    assert (freq.axis, freq.num_masks, freq.max_width, freq.fill) == ("freq", 2, 10, "mean")
    assert (time_.axis, time_.num_masks, time_.max_width, time_.fill) == ("time", 2, 20, "mean")
    assert crop.virtual_crop_scale == (1.0, 1.5) and crop.scale == (0.6, 1.5)
    assert get_audio_augment("avssrl_pretrain_audio").waveform.transforms[0].gain == (0.7, 1.0)
    assert get_audio_augment("avid_pretrain_audio").spectrogram.transforms == []


def test_uint8_clips_are_converted_to_unit_range():
    clips = (random_clips() * 255).round().to(torch.uint8)
    aug = get_video_augment("crisscross_pretrain_video")
    torch.testing.assert_close(aug(clips, seeded(3)), aug(clips.float() / 255, seeded(3)))


def test_preset_overrides_and_bad_names_give_clear_errors():
    eval_112 = get_video_augment("eval_video", size=112)
    assert eval_112.transforms[0].size == round(112 / 0.875)  # short side 128 before the 112 crop
    assert eval_112(random_clips(1, 2, 150, 200)).shape == (1, 3, 2, 112, 112)
    with pytest.raises(KeyError, match="unknown augmentation preset 'nope'"):
        get_video_augment("nope")
    with pytest.raises(TypeError, match="unknown override"):
        get_video_augment("eval_video", colour=1)
    with pytest.raises(ValueError, match="audio preset; use get_audio_augment"):
        get_video_augment("xkd_local_audio")


def test_bad_inputs_and_arguments_are_named_in_the_error():
    with pytest.raises(ValueError, match=r"RandomResizedCrop: expected a video clip \[C, T, H, W\]"):
        RandomResizedCrop(8)(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="floating-point"):
        TimeMask()(torch.zeros(1, 1, 8, 40, dtype=torch.int16))
    with pytest.raises(ValueError, match="p must be a probability"):
        RandomGrayscale(p=1.5)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        GaussianBlur(4)
    with pytest.raises(ValueError, match="every transform must take a video clip"):
        Compose([RandomHorizontalFlip(), TimeMask()])
    with pytest.raises(ValueError, match="ColorJitter: needs RGB clips"):
        ColorJitter(0.4)(torch.rand(1, 1, 2, 8, 8))
    with pytest.raises(ValueError, match="TimeWarp: window 20 needs at least 41 frames"):
        TimeWarp(20)(torch.rand(1, 1, 8, 30))


# ---------------------------------------------------------------- consistency, independence, determinism


@pytest.mark.parametrize("name", TRAINING_VIDEO)
def test_every_frame_of_a_clip_gets_the_same_augmentation(name):
    out = get_video_augment(name)(still_clips(), seeded(5))
    for t in range(1, out.shape[2]):
        torch.testing.assert_close(out[:, :, t], out[:, :, 0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["crisscross_pretrain_video", "xkd_local_video"])
def test_clips_of_a_batch_get_different_augmentations(name):
    one = random_clips(1, 2)
    out = get_video_augment(name)(one.expand(5, -1, -1, -1, -1), seeded(2))
    for i in range(5):
        for j in range(i + 1, 5):
            assert (out[i] - out[j]).abs().max() > 1e-3


def test_audio_samples_of_a_batch_get_different_augmentations():
    aug = get_audio_augment("crisscross_pretrain_audio")
    waves = aug.augment_waveform(torch.ones(4, 100), seeded())
    assert len(set(waves[:, 0].tolist())) == 4
    spec = torch.randn(1, 1, 40, 101, generator=seeded()).expand(4, -1, -1, -1)
    out = aug.augment_spectrogram(spec, seeded())
    assert all((out[i] - out[j]).abs().max() > 1e-3 for i in range(4) for j in range(i + 1, 4))


def test_seeded_generator_makes_augmentation_deterministic():
    clips = random_clips(3)
    video = get_video_augment("crisscross_pretrain_video")
    torch.testing.assert_close(video(clips, seeded(7)), video(clips, seeded(7)), atol=0, rtol=0)
    assert (video(clips, seeded(7)) - video(clips, seeded(8))).abs().max() > 1e-3
    audio = get_audio_augment("crisscross_svm_audio")
    spec = torch.randn(3, 1, 40, 101, generator=seeded())
    first = audio.augment_spectrogram(spec, seeded(7))
    torch.testing.assert_close(audio.augment_spectrogram(spec, seeded(7)), first, atol=0, rtol=0)
    assert (audio.augment_spectrogram(spec, seeded(8)) - first).abs().max() > 0


# ---------------------------------------------------------------- geometry


def coordinate_image(height: int = 40, width: int = 56) -> torch.Tensor:
    """A clip ``[1, 3, 2, H, W]`` whose pixels encode their own position and channel."""
    rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.float32)[None, :].expand(height, width)
    image = torch.stack([rows / height, cols / width, (rows * width + cols) / (height * width)])
    return image[None, :, None].expand(1, 3, 2, height, width).contiguous()


def test_crop_of_output_size_is_an_exact_window_and_flip_mirrors_it():
    clip = coordinate_image()
    boxes = CropBoxes(torch.tensor([7]), torch.tensor([11]), torch.tensor([16]), torch.tensor([16]))
    crop = RandomResizedCrop(16).apply_params(clip, boxes)
    torch.testing.assert_close(crop, clip[..., 7:23, 11:27], atol=1e-6, rtol=0)
    flip = RandomHorizontalFlip()
    torch.testing.assert_close(flip.apply_params(crop, torch.tensor([True])), clip[..., 7:23, 11:27].flip(-1),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(flip.apply_params(crop, torch.tensor([False])), crop, atol=0, rtol=0)


def test_batched_resized_crop_matches_torchvision_per_clip():
    clips = random_clips(4, 2, 40, 56)
    boxes = CropBoxes(
        top=torch.tensor([0, 5, 10, 3]), left=torch.tensor([0, 7, 30, 1]),
        height=torch.tensor([40, 20, 9, 33]), width=torch.tensor([56, 31, 12, 17]),
    )
    out = resized_crop(clips, boxes, (24, 18))  # shrinks some boxes, enlarges others
    for b in range(4):
        expected = TF.resized_crop(
            frames_as_images(clips[b]), int(boxes.top[b]), int(boxes.left[b]), int(boxes.height[b]),
            int(boxes.width[b]), [24, 18], antialias=True,
        )
        torch.testing.assert_close(frames_as_images(out[b]), expected, atol=1e-5, rtol=0)


def test_random_resized_crop_boxes_follow_the_torchvision_rule():
    rrc = RandomResizedCrop(16, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
    boxes = rrc.sample_params(torch.Size([400, 3, 1, 60, 80]), seeded())
    assert (boxes.top >= 0).all() and (boxes.left >= 0).all()
    assert (boxes.top + boxes.height <= 60).all() and (boxes.left + boxes.width <= 80).all()
    area = (boxes.height * boxes.width).double() / (60 * 80)
    aspect = boxes.width.double() / boxes.height
    # Rounding width and height to whole pixels moves area and ratio slightly off the sampled values.
    assert area.min() >= 0.08 * 0.7 and area.max() <= 1.0
    assert aspect.min() >= 3 / 4 * 0.8 and aspect.max() <= 4 / 3 * 1.25
    assert len(set(boxes.top.tolist())) > 20  # positions vary across the batch
    # No box with ratio in (2, 3) fits a square at scale 1: the fallback is the centred full-width box.
    fallback = RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(2.0, 3.0)).sample_params(
        torch.Size([3, 3, 1, 30, 30]), seeded())
    assert fallback.width.tolist() == [30] * 3 and fallback.height.tolist() == [round(30 / 2.0)] * 3
    assert fallback.top.tolist() == [(30 - 15) // 2] * 3 and fallback.left.tolist() == [0] * 3


def test_eval_resize_centre_crop_and_three_crop_match_torchvision():
    clip = random_clips(1, 2, 48, 72)
    resized = ResizeShortSide(32)(clip)
    expected = TF.resize(frames_as_images(clip[0]), [32], antialias=True)
    torch.testing.assert_close(frames_as_images(resized[0]), expected, atol=1e-5, rtol=0)
    centre = CenterCrop(24)(resized)
    torch.testing.assert_close(frames_as_images(centre[0]), TF.center_crop(expected, [24]), atol=1e-5, rtol=0)
    three = ThreeCrop(32)(resized)
    assert three.shape == (1, 3, 3, 2, 32, 32)
    width = resized.shape[-1]
    middle = round((width - 32) / 2)
    for view, left in enumerate([0, middle, width - 32]):
        torch.testing.assert_close(three[0, view], resized[0, ..., left : left + 32], atol=0, rtol=0)
    portrait = torch.rand(3, 1, 40, 16, generator=seeded())  # one clip: top / centre / bottom
    crops = ThreeCrop(16)(portrait)
    for view, top in enumerate([0, 12, 24]):
        torch.testing.assert_close(crops[view], portrait[..., top : top + 16, :], atol=0, rtol=0)


# ---------------------------------------------------------------- colour


@pytest.mark.parametrize(
    "ours, theirs, factor",
    [
        (adjust_brightness, TF.adjust_brightness, 1.35),
        (adjust_brightness, TF.adjust_brightness, 0.6),
        (adjust_contrast, TF.adjust_contrast, 0.65),
        (adjust_contrast, TF.adjust_contrast, 1.4),
        (adjust_saturation, TF.adjust_saturation, 0.0),
        (adjust_saturation, TF.adjust_saturation, 1.3),
        (adjust_hue, TF.adjust_hue, 0.2),
        (adjust_hue, TF.adjust_hue, -0.13),
        (adjust_hue, TF.adjust_hue, 0.5),
    ],
)
def test_colour_adjustments_match_torchvision(ours, theirs, factor):
    clip = random_clips(1, 2, 24, 30)
    clip[0, :, 0, :4, :4] = 0.5  # gray pixels (no hue)
    clip[0, 0, 0, 4:8] = clip[0, 1, 0, 4:8]  # red == green ties
    out = ours(clip, torch.tensor([factor], dtype=torch.float64))
    expected = theirs(frames_as_images(clip[0]), factor)
    torch.testing.assert_close(frames_as_images(out[0]), expected, atol=1e-5, rtol=0)


def test_colour_jitter_applies_the_drawn_order_and_factors_per_clip():
    clips = random_clips(2, 2, 20, 24)
    order = torch.tensor([[3, 0, 2, 1], [1, 2, 0, 3]])
    factors = torch.tensor([[1.3, 0.7, 1.2, 0.15], [0.8, 1.25, 0.6, -0.1]], dtype=torch.float64)
    params = JitterParams(order=order, factors=factors, applied=torch.tensor([True, True]))
    out = ColorJitter(0.4, 0.4, 0.4, 0.2).apply_params(clips, params)
    reference = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for b in range(2):
        expected = frames_as_images(clips[b])
        for op in order[b].tolist():
            expected = reference[op](expected, float(factors[b, op]))
        torch.testing.assert_close(frames_as_images(out[b]), expected, atol=1e-5, rtol=0)


def test_colour_jitter_draws_factors_in_the_torchvision_ranges():
    params = ColorJitter(0.4, 0.3, 0.2, 0.1).sample_params(torch.Size([500]), seeded())
    for column, (low, high) in enumerate([(0.6, 1.4), (0.7, 1.3), (0.8, 1.2), (-0.1, 0.1)]):
        values = params.factors[:, column]
        assert values.min() >= low and values.max() <= high
        assert values.max() - values.min() > 0.9 * (high - low)
    assert all(sorted(row) == [0, 1, 2, 3] for row in params.order.tolist())
    assert len({tuple(row) for row in params.order.tolist()}) == 24  # every order occurs


def test_grayscale_uses_the_luma_formula_on_all_three_channels():
    clips = random_clips(2)
    gray = RandomGrayscale(p=1.0)(clips)
    r, g, b = clips.unbind(1)
    luma = 0.2989 * r + 0.587 * g + 0.114 * b
    for channel in range(3):
        torch.testing.assert_close(gray[:, channel], luma, atol=1e-6, rtol=0)
    torch.testing.assert_close(RandomGrayscale(p=0.0)(clips), clips, atol=0, rtol=0)


def test_gaussian_blur_matches_torchvision_with_the_drawn_sigma():
    clips = random_clips(3, 2, 24, 30)
    blur = GaussianBlur(9, sigma=(0.1, 2.0), p=1.0)
    params = blur.sample_params(clips.shape, seeded())
    out = blur.apply_params(clips, params)
    for b in range(3):
        sigma = float(params.sigma[b])
        expected = TF.gaussian_blur(frames_as_images(clips[b]), [9, 9], [sigma, sigma])
        torch.testing.assert_close(frames_as_images(out[b]), expected, atol=1e-5, rtol=0)


def test_normalize_uses_imagenet_statistics():
    clips = random_clips(1)
    out = Normalize()(clips)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    torch.testing.assert_close(out, (clips - mean) / std)


# ---------------------------------------------------------------- cutout


def test_cutout_mean_multiply_scales_the_square_by_the_clip_mean():
    clips = Normalize()(random_clips(2, 3, 20, 24))
    params = CutoutParams(side=torch.tensor([5, 20]), row=torch.tensor([10, 2]), col=torch.tensor([3, 23]),
                          applied=torch.tensor([True, True]))
    out = Cutout(20, mode="mean_multiply").apply_params(clips, params)
    for b, (top, bottom, left, right) in enumerate([(8, 13, 1, 6), (0, 12, 13, 24)]):
        mean = clips[b].mean()
        expected = clips[b].clone()
        expected[..., top:bottom, left:right] *= mean
        torch.testing.assert_close(out[b], expected, atol=1e-6, rtol=1e-6)
    filled = Cutout(20, mode="fill", fill_value=0.0).apply_params(clips, params)
    assert (filled[0, ..., 8:13, 1:6] == 0).all()
    torch.testing.assert_close(filled[0, ..., 13:, :], clips[0, ..., 13:, :], atol=0, rtol=0)


def test_cutout_sizes_and_probability():
    cutout = Cutout(max_size=6, p=0.5)
    params = cutout.sample_params(torch.Size([400, 3, 2, 30, 30]), seeded())
    assert params.side.min() == 1 and params.side.max() == 6
    assert 0.35 < params.applied.float().mean() < 0.65
    masks = cutout.square_masks(params, 30, 30, torch.device("cpu"))
    counts = masks.flatten(1).sum(1)
    assert (counts[~params.applied] == 0).all()
    assert (counts[params.applied] <= params.side[params.applied] ** 2).all()


# ---------------------------------------------------------------- audio


def test_gain_multiplies_each_waveform_by_one_factor_in_range():
    gain = RandomGain((0.7, 1.0))
    waves = torch.randn(50, 2, 64, generator=seeded())
    factors = gain.sample_params(waves.shape, seeded(1))
    assert factors.min() >= 0.7 and factors.max() <= 1.0
    torch.testing.assert_close(gain.apply_params(waves, factors), waves * factors.float().view(-1, 1, 1))
    assert RandomGain.from_volume(0.2).gain == (0.8, 1.2)


def test_coloured_noise_is_added_at_the_drawn_snr_with_the_drawn_spectral_slope():
    noise = RandomColouredNoise(snr_db=(-5.0, 15.0), exponent=(0.0, 2.0))
    waves = torch.randn(6, 16000, generator=seeded()) * torch.linspace(0.1, 2.0, 6).unsqueeze(1)
    params = noise.sample_params(waves.shape, seeded(1))
    added = noise.apply_params(waves, params) - waves
    snr = 20 * torch.log10(waves.pow(2).mean(1).sqrt() / added.pow(2).mean(1).sqrt())
    torch.testing.assert_close(snr, params["snr_db"].float(), atol=1e-3, rtol=0)
    # Power ∝ 1/f^β: the slope of log power against log frequency (averaged in octave-wide bands) is −β.
    power = torch.fft.rfft(added, dim=1).abs().pow(2)
    edges = [2**k for k in range(3, 13)]
    centres = torch.tensor([math.log((a * b) ** 0.5) for a, b in zip(edges[:-1], edges[1:])])
    for row, beta in zip(power, params["exponent"].float()):
        band_power = torch.stack([row[a:b].mean().log() for a, b in zip(edges[:-1], edges[1:])])
        slope = torch.linalg.lstsq(torch.stack([centres, torch.ones_like(centres)], 1), band_power.unsqueeze(1))
        assert abs(slope.solution[0, 0] + beta) < 0.1


def test_coloured_noise_respects_p_channels_silence_and_the_seed():
    waves = torch.randn(8, 2, 4000, generator=seeded())
    assert torch.equal(RandomColouredNoise(p=0.0)(waves, seeded(1)), waves)
    noisy = RandomColouredNoise((0.0, 0.0))(waves, seeded(1))
    added = noisy - waves
    torch.testing.assert_close(added[:, 0], added[:, 1])  # one noise for all channels of a waveform
    assert not torch.allclose(added[0, 0], added[1, 0])  # drawn per waveform
    assert torch.equal(noisy, RandomColouredNoise((0.0, 0.0))(waves, seeded(1)))
    assert torch.equal(RandomColouredNoise()(torch.zeros(2, 100), seeded(2)), torch.zeros(2, 100))
    with pytest.raises(ValueError, match="exponent"):
        RandomColouredNoise(exponent=(-1.0, 1.0))


def test_audio_augment_adds_the_noise_only_when_asked():
    plain = get_audio_augment("avid_pretrain_audio").waveform.transforms
    assert not any(isinstance(t, RandomColouredNoise) for t in plain)
    augment = get_audio_augment("avid_pretrain_audio", noise_snr_db=(0.0, 10.0), noise_exponent=(1.0, 1.0))
    steps = augment.waveform.transforms
    assert isinstance(steps[0], RandomGain) and isinstance(steps[-1], RandomColouredNoise)
    assert steps[-1].snr_db == (0.0, 10.0) and steps[-1].exponent == (1.0, 1.0)


def distinct_spectrograms(batch: int = 2, freqs: int = 40, frames: int = 101) -> torch.Tensor:
    # Strictly increasing values: a masked cell is recognisable because no original cell equals the fill.
    values = torch.arange(batch * freqs * frames, dtype=torch.float32) / 1000.0 + 0.5
    return values.reshape(batch, 1, freqs, frames)


@pytest.mark.parametrize("fill", ["mean", "min", "zero"])
def test_frequency_and_time_masks_fill_their_bands(fill):
    spec = distinct_spectrograms()
    for mask in (FrequencyMask(1, max_width=10, fill=fill), TimeMask(1, max_width=20, fill=fill)):
        bands = mask.sample_params(spec.shape, seeded())
        out = mask.apply_params(spec, bands)
        for b in range(2):
            start, width = int(bands.starts[b, 0]), int(bands.widths[b, 0])
            value = {"mean": spec[b].mean(), "min": spec[b].min(), "zero": torch.tensor(0.0)}[fill]
            band = (slice(None), slice(start, start + width)) if mask.axis == "freq" else (
                slice(None), slice(None), slice(start, start + width))
            assert torch.allclose(out[b][band], value.expand_as(out[b][band]))
            assert (out[b] != spec[b]).sum() == width * (101 if mask.axis == "freq" else 40)


def test_mask_widths_and_starts_stay_in_bounds():
    mask = TimeMask(num_masks=2, max_width=20)
    bands = mask.sample_params(torch.Size([500, 1, 40, 101]), seeded())
    assert bands.widths.shape == (500, 2)
    assert bands.widths.min() == 0 and bands.widths.max() == 19
    assert (bands.starts >= 0).all() and (bands.starts + bands.widths <= 101).all()


def test_variable_masking_follows_the_avssrl_counts_and_fills_with_the_minimum():
    spec = distinct_spectrograms(batch=64, freqs=128, frames=125)
    mask = VariableSpectrogramMask()
    params = mask.sample_params(spec.shape, seeded())
    time_counts = (params.time_ratio * 125).floor().long() // 5
    freq_counts = (params.freq_ratio * 128).floor().long() // 3
    assert params.time_ratio.max() <= 0.2 and params.freq_ratio.max() <= 0.2
    assert ((params.time_bands.widths > 0).sum(1) == time_counts).all()
    assert ((params.freq_bands.widths > 0).sum(1) == freq_counts).all()
    used_t, used_f = params.time_bands.widths > 0, params.freq_bands.widths > 0
    assert params.time_bands.widths[used_t].min() >= 1 and params.time_bands.widths.max() <= 5
    assert params.freq_bands.widths[used_f].min() >= 1 and params.freq_bands.widths.max() <= 3
    for b in range(64):
        starts = params.time_bands.starts[b][used_t[b]].tolist()
        assert len(set(starts)) == len(starts)
    out = mask.apply_params(spec, params)
    changed = out != spec
    minimum = spec.amin(dim=(1, 2, 3), keepdim=True).expand_as(spec)
    assert torch.equal(out[changed], minimum[changed])
    assert changed.any()


def test_spectrogram_resize_crop_reads_the_zero_canvas_like_byol_a():
    # float64 throughout, so that the comparison checks the interpolation, not float32 rounding.
    spec = torch.randn(6, 1, 20, 41, generator=seeded(), dtype=torch.float64)
    crop = SpectrogramRandomResizeCrop(virtual_crop_scale=(1.0, 1.5), scale=(0.6, 1.5))
    params = crop.sample_params(spec.shape, seeded(4))
    out = crop.apply_params(spec, params)
    assert out.shape == spec.shape
    canvas_h, canvas_w = 20, int(41 * 1.5)
    assert (params.height >= int(0.6 * 20)).all() and (params.height <= canvas_h).all()
    assert (params.width >= int(0.6 * 41)).all() and (params.width <= canvas_w).all()
    for b in range(6):
        canvas = torch.zeros(1, 1, canvas_h, canvas_w, dtype=torch.float64)
        top, left = params.canvas_top, params.canvas_left
        canvas[..., top : top + 20, left : left + 41] = spec[b]
        top, left, height, width = (int(v[b]) for v in (params.top, params.left, params.height, params.width))
        window = canvas[..., top : top + height, left : left + width]
        expected = F.interpolate(window, size=(20, 41), mode="bicubic", align_corners=True)[0]
        torch.testing.assert_close(out[b], expected, atol=1e-10, rtol=0)


def test_time_warp_keeps_shape_and_ends_and_stretches_two_segments():
    spec = torch.randn(5, 1, 16, 60, generator=seeded(), dtype=torch.float64)
    warp = TimeWarp(window=10)
    params = warp.sample_params(spec.shape, seeded(2))
    out = warp.apply_params(spec, params)
    assert out.shape == spec.shape
    torch.testing.assert_close(out[..., [0, -1]], spec[..., [0, -1]], atol=1e-12, rtol=0)
    assert ((params.centre >= 10) & (params.centre <= 49)).all()
    assert ((params.target - params.centre).abs() <= 10).all()
    for b in range(5):
        centre, target = int(params.centre[b]), int(params.target[b])
        left = F.interpolate(spec[b : b + 1, ..., : centre + 1], size=(16, target + 1), mode="bicubic",
                             align_corners=True)
        right = F.interpolate(spec[b : b + 1, ..., centre:], size=(16, 60 - target), mode="bicubic",
                              align_corners=True)
        expected = torch.cat([left[..., :target], right], dim=-1)[0]
        torch.testing.assert_close(out[b], expected, atol=1e-10, rtol=0)


# ---------------------------------------------------------------- devices and throughput


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_gives_the_cpu_result_for_the_same_seed():
    clips = random_clips(3)
    video = get_video_augment("crisscross_pretrain_video")
    on_gpu = video(clips.cuda(), seeded(9))
    assert on_gpu.is_cuda
    torch.testing.assert_close(on_gpu.cpu(), video(clips, seeded(9)), atol=1e-4, rtol=1e-4)
    spec = torch.randn(3, 1, 40, 101, generator=seeded())
    audio = get_audio_augment("crisscross_svm_audio")
    torch.testing.assert_close(audio.augment_spectrogram(spec.cuda(), seeded(9)).cpu(),
                               audio.augment_spectrogram(spec, seeded(9)), atol=1e-4, rtol=1e-4)


def test_crisscross_video_preset_throughput_on_cpu():
    """Prints clips/s of crisscross_pretrain_video on an 8×3×8×128×170 batch (run with -s to see it)."""
    clips = torch.rand(8, 3, 8, 128, 170, generator=seeded())
    video = get_video_augment("crisscross_pretrain_video")
    video(clips, seeded())  # warm-up
    timings = []
    for seed in range(3):
        start = time.perf_counter()
        out = video(clips, seeded(seed))
        timings.append(time.perf_counter() - start)
    assert out.shape == (8, 3, 8, 112, 112)
    best = min(timings)
    print(f"\ncrisscross_pretrain_video, batch 8x3x8x128x170 on CPU ({torch.get_num_threads()} threads): "
          f"best {best * 1e3:.0f} ms/batch = {8 / best:.1f} clips/s; "
          f"runs {[round(t * 1e3) for t in timings]} ms")
    assert math.isfinite(best)
