"""Named augmentation pipelines of the five methods, created by name with optional overrides.

``get_video_augment("crisscross_pretrain_video")`` returns a :class:`Compose` over clips
``[B, 3, T, H, W]`` in [0, 1]; ``get_audio_augment("crisscross_pretrain_audio")`` returns an
:class:`AudioAugment` whose ``waveform`` stage runs before the spectrogram front end
(:mod:`avssl.media.spectrogram`) and whose ``spectrogram`` stage runs on its output ``[B, 1, F, T]``.
Keyword overrides change a preset's parameters (``get_video_augment("eval_video", size=112)``).

Every preset names the spec section (shared/spec/methods.md) its numbers come from. Frame counts and
clip durations are the sampler's business (:mod:`avssl.media.sampling`), not the augmentation's: the
ops here work on any number of frames.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from avssl.media.color_stats import IMAGENET_MEAN, IMAGENET_STD

from .spectrogram_masks import FillMode, FrequencyMask, TimeMask, VariableSpectrogramMask
from .spectrogram_warps import SpectrogramRandomResizeCrop, TimeWarp
from .transform import BatchTransform, Compose, SpectrogramTransform, WaveformTransform
from .video_blur import GaussianBlur
from .video_color import ColorJitter, Normalize, RandomGrayscale
from .video_cutout import Cutout
from .video_geometry import CenterCrop, RandomHorizontalFlip, RandomResizedCrop, ResizeShortSide, ThreeCrop
from .waveform import RandomColouredNoise, RandomGain

# Evaluation resizes the short side to size / 0.875 before the centre crop (224 → 256, 112 → 128).
EVAL_CROP_FRACTION = 0.875


@dataclass(frozen=True)
class AudioAugment:
    """An audio pipeline in two stages: ``waveform`` (``[B, N]``, before the front end) and
    ``spectrogram`` (``[B, 1, F, T]``, after it). Either stage may be empty.

    AV-SSRL (§3B.3) peak-normalises the waveform *before* its gain; a front end that peak-normalises
    internally would undo the gain, so run that normalisation first and the front end without it.
    """

    waveform: Compose
    spectrogram: Compose

    def augment_waveform(self, waveforms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.waveform(waveforms, generator)

    def augment_spectrogram(self, spectrograms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.spectrogram(spectrograms, generator)


def video_training_augment(
    size: int = 112,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    resize_short_side: int | None = None,
    flip_p: float = 0.5,
    jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.2),
    jitter_p: float = 1.0,
    grayscale_p: float = 0.0,
    blur_p: float = 0.0,
    blur_kernel: int | None = None,
    blur_sigma: Sequence[float] = (0.1, 2.0),
    cutout_p: float = 0.0,
    cutout_size: int = 20,
    cutout_mode: Literal["mean_multiply", "fill"] = "mean_multiply",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Compose:
    """[resize short side] → RRC → flip → jitter → grayscale → blur → normalise → cutout.

    Steps with probability 0 are left out. ``blur_kernel`` defaults to ``size // 20 * 2 + 1`` (11 for
    112, CrissCross §2.5). Cutout follows normalisation, as in CrissCross.
    """
    steps: list[BatchTransform] = []
    if resize_short_side is not None:
        steps.append(ResizeShortSide(resize_short_side))
    steps.append(RandomResizedCrop(size, scale=scale, ratio=ratio))
    if flip_p > 0:
        steps.append(RandomHorizontalFlip(flip_p))
    if len(jitter) != 4:
        raise ValueError(
            f"video_training_augment: jitter must be (brightness, contrast, saturation, hue), got {jitter!r}"
        )
    if jitter_p > 0 and any(v > 0 for v in jitter):
        brightness, contrast, saturation, hue = jitter
        steps.append(ColorJitter(brightness, contrast, saturation, hue, p=jitter_p))
    if grayscale_p > 0:
        steps.append(RandomGrayscale(grayscale_p))
    if blur_p > 0:
        kernel = blur_kernel if blur_kernel is not None else size // 20 * 2 + 1
        steps.append(GaussianBlur(kernel, sigma=blur_sigma, p=blur_p))
    steps.append(Normalize(mean, std))
    if cutout_p > 0:
        steps.append(Cutout(cutout_size, p=cutout_p, mode=cutout_mode))
    return Compose(steps)


def video_eval_augment(
    size: int = 224,
    resize: int | None = None,
    three_crop: bool = False,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Compose:
    """Resize the short side to ``resize`` (default ``round(size / 0.875)``) → normalise → centre crop
    ``size``, or the three crops of :class:`ThreeCrop` (output ``[B, 3, C, T, size, size]``)."""
    resize = resize if resize is not None else round(size / EVAL_CROP_FRACTION)
    crop = ThreeCrop(size) if three_crop else CenterCrop(size)
    # Normalising before cropping is equivalent and keeps the crop last (ThreeCrop adds an axis).
    return Compose([ResizeShortSide(resize), Normalize(mean, std), crop])


def audio_augment(
    gain: Sequence[float] | None = None,
    time_warp: int = 0,
    freq_masks: int = 0,
    freq_mask_width: int = 10,
    time_masks: int = 0,
    time_mask_width: int = 20,
    mask_fill: FillMode = "mean",
    variable_masking: bool = False,
    resize_crop: bool = False,
    resize_crop_scale: Sequence[float] = (0.6, 1.5),
    noise_snr_db: Sequence[float] | None = None,
    noise_exponent: Sequence[float] = (0.0, 2.0),
) -> AudioAugment:
    """Waveform: gain × U(``gain``) → [coloured noise at SNR ~ U(``noise_snr_db``) dB, power ∝ 1/f^β with
    β ~ U(``noise_exponent``); in no method's recipe, off unless ``noise_snr_db`` is given].
    Spectrogram: time warp → frequency masks → time masks → [AV-SSRL variable masking] → BYOL-A random
    resize crop (the CrissCross order, §2.5)."""
    waveform_steps: list[BatchTransform] = [] if gain is None else [RandomGain(gain)]
    if noise_snr_db is not None:
        waveform_steps.append(RandomColouredNoise(noise_snr_db, noise_exponent))
    spectrogram_steps: list[BatchTransform] = []
    if time_warp > 0:
        spectrogram_steps.append(TimeWarp(time_warp))
    if freq_masks > 0:
        spectrogram_steps.append(FrequencyMask(freq_masks, freq_mask_width, fill=mask_fill))
    if time_masks > 0:
        spectrogram_steps.append(TimeMask(time_masks, time_mask_width, fill=mask_fill))
    if variable_masking:
        spectrogram_steps.append(VariableSpectrogramMask())
    if resize_crop:
        spectrogram_steps.append(SpectrogramRandomResizeCrop(scale=resize_crop_scale))
    return AudioAugment(
        waveform=Compose(waveform_steps, kind=WaveformTransform),
        spectrogram=Compose(spectrogram_steps, kind=SpectrogramTransform),
    )


@dataclass(frozen=True)
class AugmentPreset:
    """A named pipeline: a factory plus the defaults that make it one method's recipe."""

    name: str
    modality: Literal["video", "audio"]
    spec_section: str
    summary: str
    factory: Callable[..., Compose | AudioAugment]
    defaults: dict

    def build(self, **overrides) -> Compose | AudioAugment:
        accepted = inspect.signature(self.factory).parameters
        unknown = sorted(set(overrides) - set(accepted))
        if unknown:
            raise TypeError(
                f"augmentation preset {self.name!r}: unknown override(s) {unknown}; "
                f"accepted: {', '.join(accepted)}"
            )
        return self.factory(**{**self.defaults, **overrides})


_PRESETS: dict[str, AugmentPreset] = {}


def register_augment_preset(
    name: str, modality: Literal["video", "audio"], spec_section: str, summary: str,
    factory: Callable[..., Compose | AudioAugment], **defaults,
) -> AugmentPreset:
    """Register ``factory`` with ``defaults`` under ``name`` (names are unique)."""
    if name in _PRESETS:
        raise ValueError(f"augmentation preset {name!r} is registered twice")
    preset = AugmentPreset(name, modality, spec_section, summary, factory, defaults)
    _PRESETS[name] = preset
    return preset


def get_augment_preset(name: str) -> AugmentPreset:
    """The registered preset ``name`` (its factory, defaults and spec section)."""
    if name not in _PRESETS:
        available = ", ".join(list_augment_presets())
        raise KeyError(f"unknown augmentation preset {name!r}; available: {available}")
    return _PRESETS[name]


def list_augment_presets(modality: Literal["video", "audio"] | None = None) -> list[str]:
    """Names of the registered presets, sorted; only one modality's when ``modality`` is given."""
    return sorted(n for n, p in _PRESETS.items() if modality is None or p.modality == modality)


def _get(name: str, modality: str, **overrides) -> Compose | AudioAugment:
    preset = get_augment_preset(name)
    if preset.modality != modality:
        other = "get_audio_augment" if preset.modality == "audio" else "get_video_augment"
        raise ValueError(f"augmentation preset {name!r} is a {preset.modality} preset; use {other}")
    return preset.build(**overrides)


def get_video_augment(name: str, **overrides) -> Compose:
    """Video pipeline ``name`` (see :func:`list_augment_presets`), with keyword overrides."""
    return _get(name, "video", **overrides)


def get_audio_augment(name: str, **overrides) -> AudioAugment:
    """Audio pipeline ``name`` (waveform and spectrogram stages), with keyword overrides."""
    return _get(name, "audio", **overrides)


_CRISSCROSS_VIDEO = dict(
    scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.4, 0.2), grayscale_p=0.2, cutout_p=1.0, cutout_size=20,
    cutout_mode="mean_multiply",
)
register_augment_preset(
    "crisscross_pretrain_video", "video", "§2.5",
    "RRC 112 (0.08, 1), flip, jitter 0.4/0.4/0.4/0.2, gray 0.2, blur 0.5 k11, normalise, cutout ≤20 ×mean",
    video_training_augment, size=112, blur_p=0.5, **_CRISSCROSS_VIDEO,
)
register_augment_preset(
    "crisscross_finetune_video", "video", "§2.7",
    "UCF/HMDB fine-tuning: as pretraining at 224 without blur",
    video_training_augment, size=224, blur_p=0.0, **_CRISSCROSS_VIDEO,
)
_MSC_COLOR = dict(scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.4, 0.2))
register_augment_preset(
    "avid_pretrain_video", "video", "§3A.3",
    "msc+color: RRC 224 (0.08, 1), flip, jitter 0.4/0.4/0.4/0.2, normalise",
    video_training_augment, size=224, **_MSC_COLOR,
)
register_augment_preset(
    "avssrl_pretrain_video", "video", "§3B.3",
    "as avid_pretrain_video (the sampler gives 16 frames)",
    video_training_augment, size=224, **_MSC_COLOR,
)
register_augment_preset(
    "xkd_global_video", "video", "§4.2",
    "short side 112, RRC 112 (0.2, 1), flip, jitter, normalise",
    video_training_augment, resize_short_side=112, size=112, scale=(0.2, 1.0), jitter=(0.4, 0.4, 0.4, 0.2),
)
register_augment_preset(
    "xkd_local_video", "video", "§4.2",
    "short side 112, RRC 96 (0.08, 0.4), flip, jitter, gray 0.2, blur 0.5 k9, normalise",
    video_training_augment, resize_short_side=112, size=96, scale=(0.08, 0.4), jitter=(0.4, 0.4, 0.4, 0.2),
    grayscale_p=0.2, blur_p=0.5, blur_kernel=9,
)
register_augment_preset(
    "xkd_svm_video", "video", "§4.6",
    "SVM training clips: RRC 112 (0.08, 1), flip, jitter, gray 0.2, normalise",
    video_training_augment, size=112, scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.4, 0.2), grayscale_p=0.2,
)
register_augment_preset(
    "eval_video", "video", "§2.7, §3A.3, §4.6",
    "short side 256 → centre 224 (size=112 gives 128 → 112), normalise",
    video_eval_augment, size=224,
)
register_augment_preset(
    "eval_video_three_crop", "video", "§4.6",
    "short side 224 → left/centre/right 224 crops, normalise",
    video_eval_augment, size=224, resize=224, three_crop=True,
)
register_augment_preset(
    "crisscross_pretrain_audio", "audio", "§2.5",
    "gain U(0.8, 1.2); 2 freq masks < 10, 2 time masks < 20 (mean fill), BYOL-A resize crop",
    audio_augment, gain=(0.8, 1.2), freq_masks=2, time_masks=2, mask_fill="mean", resize_crop=True,
)
register_augment_preset(
    "crisscross_svm_audio", "audio", "§2.7",
    "ESC-50 SVM training clips: as pretraining plus time warp 20",
    audio_augment, gain=(0.8, 1.2), time_warp=20, freq_masks=2, time_masks=2, mask_fill="mean",
    resize_crop=True,
)
register_augment_preset(
    "avid_pretrain_audio", "audio", "§3A.3",
    "gain U(0.9, 1.1); no spectrogram augmentation",
    audio_augment, gain=(0.9, 1.1),
)
register_augment_preset(
    "avssrl_pretrain_audio", "audio", "§3B.3",
    "gain U(0.7, 1.0) after the 0.95 peak normalisation; variable time-frequency masking (min fill)",
    audio_augment, gain=(0.7, 1.0), variable_masking=True,
)
register_augment_preset(
    "xkd_global_audio", "audio", "§4.2",
    "gain U(0.9, 1.1); no spectrogram augmentation",
    audio_augment, gain=(0.9, 1.1),
)
register_augment_preset(
    "xkd_local_audio", "audio", "§4.2",
    "gain U(0.8, 1.2); BYOL-A resize crop",
    audio_augment, gain=(0.8, 1.2), resize_crop=True,
)
register_augment_preset(
    "xkd_finetune_audio", "audio", "§4.6",
    "ESC-50 / FSD50K fine-tuning: gain U(0.8, 1.2), time warp 20, 2 × 2 masks (mean), resize crop",
    audio_augment, gain=(0.8, 1.2), time_warp=20, freq_masks=2, time_masks=2, mask_fill="mean",
    resize_crop=True,
)
