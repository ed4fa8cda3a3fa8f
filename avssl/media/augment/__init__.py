"""Augmentations for video clips and audio, batched and device-agnostic (spec §6.2 item 4).

Video ops take clips ``[B, C, T, H, W]`` (or one clip ``[C, T, H, W]``) in [0, 1] — uint8 is converted —
and give every frame of a clip the same parameters, each clip of a batch its own. Audio ops take
waveforms ``[B, N]`` / ``[B, C, N]`` (gain, before the spectrogram front end) or spectrograms
``[B, 1, F, T]`` (masks, warps, after it). Every random op takes an optional ``torch.Generator``;
parameters are drawn on the generator's device (the CPU by default), so a seeded CPU generator gives
the same augmentation on the CPU and on a GPU.

Method pipelines are named presets: :func:`get_video_augment`, :func:`get_audio_augment`,
:func:`list_augment_presets`.
"""

from .presets import (
    AudioAugment,
    AugmentPreset,
    audio_augment,
    get_audio_augment,
    get_augment_preset,
    get_video_augment,
    list_augment_presets,
    register_augment_preset,
    video_eval_augment,
    video_training_augment,
)
from .spectrogram_masks import FrequencyMask, SpectrogramMask, TimeMask, VariableSpectrogramMask
from .spectrogram_warps import SpectrogramRandomResizeCrop, TimeWarp
from .transform import BatchTransform, Compose, SpectrogramTransform, VideoTransform, WaveformTransform
from .video_blur import GaussianBlur
from .video_color import (
    ColorJitter,
    Normalize,
    RandomGrayscale,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    rgb_to_grayscale,
)
from .video_cutout import Cutout
from .video_geometry import (
    CenterCrop,
    CropBoxes,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ResizeShortSide,
    ThreeCrop,
    resized_crop,
)
from .waveform import RandomColouredNoise, RandomGain

__all__ = [
    "AudioAugment",
    "AugmentPreset",
    "BatchTransform",
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "CropBoxes",
    "Cutout",
    "FrequencyMask",
    "GaussianBlur",
    "Normalize",
    "RandomColouredNoise",
    "RandomGain",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "ResizeShortSide",
    "SpectrogramMask",
    "SpectrogramRandomResizeCrop",
    "SpectrogramTransform",
    "ThreeCrop",
    "TimeMask",
    "TimeWarp",
    "VariableSpectrogramMask",
    "VideoTransform",
    "WaveformTransform",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "audio_augment",
    "get_audio_augment",
    "get_augment_preset",
    "get_video_augment",
    "list_augment_presets",
    "register_augment_preset",
    "resized_crop",
    "rgb_to_grayscale",
    "video_eval_augment",
    "video_training_augment",
]
