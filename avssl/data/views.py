"""View recipes: which windows each method reads from one video, and the tensors it makes of them.

A recipe turns one media file into the views one pretext method needs (spec §6.1, §6.2 item 3):

* ``synchronous`` — AVID / AV-SSRL: one video clip placed inside a longer audio window (±offsync);
* ``crisscross`` — two video views and two audio views per sample (the ``two_clips`` submodes);
* ``global_local`` — XKD: a synchronous 4 s global window and local crops of it;
* ``video_pair`` — AV-SSRL VICReg-V: two video clips 2–8 s apart, no audio.

Every recipe works on ``k`` samples of one file at a time: it draws ``k`` sets of windows, the
decoder reads all of them in one pass (:func:`avssl.media.decode.read_video` /
:func:`~avssl.media.decode.read_audio`), and the augmentations and spectrogram front end run on the
``k`` clips as one batch. The output is a dict ``{"video": [view, ...], "audio": [view, ...]}``,
each view a tensor with ``k`` rows: video ``[k, 3, T, S, S]`` (normalised float), audio spectrograms
``[k, 1, F, T']``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from avssl.data.clip_store import DecodedClipStore
from avssl.media import decode
from avssl.media.augment import get_audio_augment, get_video_augment
from avssl.media.augment.presets import AudioAugment
from avssl.media.augment.transform import Compose
from avssl.media.color_stats import KINETICS_MEAN, KINETICS_STD
from avssl.media.sampling import (
    StreamSpan,
    Window,
    crisscross_views,
    synchronous_pair,
    vicreg_video_views,
    xkd_views,
)
from avssl.media.spectrogram import Spectrogram, get_preset

Views = dict[str, list[Tensor]]
# XKD local views are 1/4 of the global window in time (`temporal_ratio`, §4.2).
LOCAL_VIEW_RATIO = 4


def stream_span(info: decode.MediaInfo, need_audio: bool = True) -> StreamSpan:
    """Stream limits of a probed file (audio limits = video limits when audio is not needed)."""
    if not info.has_video:
        raise decode.DecodeError(f"{info.path}: no video stream")
    video = (info.video_start, info.video_start + info.video_duration)
    if not need_audio:
        return StreamSpan(*video, *video)
    if not info.has_audio:
        raise decode.DecodeError(f"{info.path}: no audio stream")
    return StreamSpan(*video, info.audio_start, info.audio_start + info.audio_duration)


@dataclass(frozen=True)
class AudioFrontend:
    """Waveform augmentation → spectrogram → spectrogram augmentation, on a batch ``[k, N]``.

    ``clip_seconds`` None: the recipe's audio window length (its local-view length for XKD's
    local front end), so changing ``audio_seconds`` in a config changes the spectrogram with it.
    """

    preset: str
    augment: str | None
    clip_seconds: float | None = None
    augment_overrides: tuple[tuple[str, object], ...] = ()

    def build(self, default_seconds: float | None = None) -> Callable[[Tensor, torch.Generator], Tensor]:
        seconds = self.clip_seconds if self.clip_seconds is not None else default_seconds
        if seconds is None:
            raise ValueError(f"AudioFrontend({self.preset!r}): no clip length (clip_seconds or the recipe's)")
        preset = get_preset(self.preset, clip_seconds=seconds)
        # AV-SSRL peak-normalises before its gain (§3B.3): do it here, not inside the front end,
        # or the front end would undo the gain.
        peak = preset.peak_normalize
        if peak is not None:
            preset = dataclasses.replace(preset, peak_normalize=None)
        spectrogram = Spectrogram(preset)
        augment: AudioAugment | None = (
            get_audio_augment(self.augment, **dict(self.augment_overrides)) if self.augment else None
        )

        def run(waveforms: Tensor, generator: torch.Generator) -> Tensor:
            if peak is not None:
                waveforms = peak * waveforms / (waveforms.abs().amax(dim=-1, keepdim=True) + 1e-9)
            if augment is not None:
                waveforms = augment.augment_waveform(waveforms, generator)
            specs = spectrogram(waveforms)
            return augment.augment_spectrogram(specs, generator) if augment is not None else specs

        return run


def _video_augment(name: str, overrides: Sequence[tuple[str, object]]) -> Compose:
    return get_video_augment(name, **dict(overrides))


@dataclass(frozen=True)
class ViewRecipe:
    """What one method reads from a file and how it turns it into views.

    ``scheme`` picks the window sampler; durations, frame rate, sample rate, augmentation presets
    (with overrides, e.g. a smaller crop for CPU runs) and the spectrogram preset are explicit so a
    config file can change any of them. ``decode_short_side`` resizes frames as they are decoded,
    which is much cheaper than cropping full-resolution frames (None keeps the native size).
    """

    name: str
    scheme: str  # synchronous | crisscross | global_local | video_pair
    video_fps: float
    video_seconds: float
    video_augment: str
    audio_seconds: float = 0.0
    audio: AudioFrontend | None = None
    max_offsync: float = 0.0
    submode: str = "overlapped"
    num_local_views: int = 1
    local_video_augment: str | None = None
    local_audio: AudioFrontend | None = None
    video_augment_overrides: tuple[tuple[str, object], ...] = ()
    local_video_augment_overrides: tuple[tuple[str, object], ...] = ()
    decode_short_side: int | None = 128

    def __post_init__(self) -> None:
        if self.scheme not in _SCHEMES:
            raise ValueError(f"ViewRecipe {self.name!r}: unknown scheme {self.scheme!r}; expected one of {sorted(_SCHEMES)}")

    @property
    def needs_audio(self) -> bool:
        return self.audio is not None

    @property
    def sample_rate(self) -> int:
        if self.audio is None:
            raise ValueError(f"ViewRecipe {self.name!r} reads no audio")
        return get_preset(self.audio.preset).sample_rate

    def with_overrides(self, **changes) -> ViewRecipe:
        """A copy with fields changed (e.g. ``video_augment_overrides=(("size", 64),)``)."""
        return dataclasses.replace(self, **changes)

    def build(self, store: DecodedClipStore | None = None) -> RecipeRunner:
        return RecipeRunner(self, store)


class RecipeRunner:
    """A recipe with its augmentations and front ends built (one per dataset worker).

    ``store``: decoded clips held in memory (:mod:`avssl.data.clip_store`); files found there are
    read from it, with the decoder's frame and sample choice, the others from disk.
    """

    def __init__(self, recipe: ViewRecipe, store: DecodedClipStore | None = None) -> None:
        self.recipe = recipe
        self.store = store
        self.video_augment = _video_augment(recipe.video_augment, recipe.video_augment_overrides)
        self.local_video_augment = (
            _video_augment(recipe.local_video_augment, recipe.local_video_augment_overrides)
            if recipe.local_video_augment
            else None
        )
        self.audio = recipe.audio.build(recipe.audio_seconds) if recipe.audio else None
        # XKD's local audio view is a quarter of the global window (§4.2: 1 s of 4 s).
        self.local_audio = (
            recipe.local_audio.build(recipe.audio_seconds / LOCAL_VIEW_RATIO) if recipe.local_audio else None
        )

    def __call__(
        self,
        path: str | Path,
        info: decode.MediaInfo,
        num_samples: int,
        rng: np.random.Generator,
        generator: torch.Generator,
        backend: str | None = None,
    ) -> Views:
        """``num_samples`` samples of one file, each view a tensor with ``num_samples`` rows."""
        return _SCHEMES[self.recipe.scheme](self, path, info, num_samples, rng, generator, backend)

    # -- shared steps ------------------------------------------------------------------------

    def read(
        self,
        path: str | Path,
        info: decode.MediaInfo,
        video_windows: list[Window],
        audio_windows: list[Window],
        backend: str | None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        r = self.recipe
        # A recipe that reads at another size or rate (e.g. XDC's clustering pass) reads the file.
        rate = r.sample_rate if audio_windows else None
        source = self.store if self.store is not None and self.store.serves(path, r.decode_short_side, rate) else decode
        video = source.read_video(
            path, video_windows, r.video_fps, backend=backend, info=info, short_side=r.decode_short_side
        )
        audio = (
            source.read_audio(path, audio_windows, r.sample_rate, backend=backend, info=info)
            if audio_windows
            else []
        )
        return video, audio

    def video_views(self, clips: list[Tensor], generator: torch.Generator, local: bool = False) -> Tensor:
        augment = self.local_video_augment if local else self.video_augment
        return augment(torch.stack(clips), generator)

    def audio_views(self, waves: list[Tensor], generator: torch.Generator, local: bool = False) -> Tensor:
        frontend = self.local_audio if local else self.audio
        return frontend(torch.stack(waves), generator)


def _synchronous(run: RecipeRunner, path, info, k, rng, generator, backend) -> Views:
    r = run.recipe
    span = stream_span(info, need_audio=r.needs_audio)
    pairs = [synchronous_pair(rng, span, r.video_seconds, r.audio_seconds, r.max_offsync) for _ in range(k)]
    video, audio = run.read(path, info, [p.video for p in pairs], [p.audio for p in pairs], backend)
    return {"video": [run.video_views(video, generator)], "audio": [run.audio_views(audio, generator)]}


def _crisscross(run: RecipeRunner, path, info, k, rng, generator, backend) -> Views:
    r = run.recipe
    span = stream_span(info)
    draws = [crisscross_views(rng, span, r.submode, r.video_seconds, r.audio_seconds) for _ in range(k)]
    video_windows = [w for d in draws for w in (d.v1, d.v2)]
    audio_windows = [w for d in draws for w in (d.a1, d.a2)]
    video, audio = run.read(path, info, video_windows, audio_windows, backend)
    # Each of the four crops is augmented independently (§2.3 step 3).
    return {
        "video": [run.video_views(video[0::2], generator), run.video_views(video[1::2], generator)],
        "audio": [run.audio_views(audio[0::2], generator), run.audio_views(audio[1::2], generator)],
    }


def _global_local(run: RecipeRunner, path, info, k, rng, generator, backend) -> Views:
    r = run.recipe
    span = stream_span(info)
    rate = r.sample_rate
    draws = [
        xkd_views(
            rng, span, r.video_seconds, r.video_fps, rate, temporal_ratio=LOCAL_VIEW_RATIO,
            num_local_views=r.num_local_views,
        )
        for _ in range(k)
    ]
    video, audio = run.read(path, info, [d.video for d in draws], [d.audio for d in draws], backend)
    views: Views = {"video": [run.video_views(video, generator)], "audio": [run.audio_views(audio, generator)]}
    for j in range(r.num_local_views):
        local_clips = [
            clip[:, d.local_video_offsets[j] : d.local_video_offsets[j] + d.local_video_frames]
            for clip, d in zip(video, draws)
        ]
        views["video"].append(run.video_views(local_clips, generator, local=True))
    # XKD has one local audio view whatever the number of local video views (§4.1).
    local_waves = [
        wave[d.local_audio_offsets[0] : d.local_audio_offsets[0] + d.local_audio_samples]
        for wave, d in zip(audio, draws)
    ]
    if r.num_local_views and run.local_audio is not None:
        views["audio"].append(run.audio_views(local_waves, generator, local=True))
    return views


def _video_pair(run: RecipeRunner, path, info, k, rng, generator, backend) -> Views:
    r = run.recipe
    start, end = info.video_start, info.video_start + info.video_duration
    draws = [vicreg_video_views(rng, start, end, r.video_seconds) for _ in range(k)]
    video, _ = run.read(path, info, [w for d in draws for w in d], [], backend)
    return {"video": [run.video_views(video[0::2], generator), run.video_views(video[1::2], generator)], "audio": []}


_SCHEMES: dict[str, Callable[..., Views]] = {
    "synchronous": _synchronous,
    "crisscross": _crisscross,
    "global_local": _global_local,
    "video_pair": _video_pair,
}

# --------------------------------------------------------------------------------- the methods' recipes

_RECIPES: dict[str, ViewRecipe] = {
    # AVID xID (§3A.2–3A.3): 8 frames at 16 fps inside 2 s of 24 kHz audio, ±0.5 s.
    "avid": ViewRecipe(
        "avid", "synchronous", video_fps=16, video_seconds=0.5, audio_seconds=2.0, max_offsync=0.5,
        video_augment="avid_pretrain_video", decode_short_side=256,
        audio=AudioFrontend("avid", "avid_pretrain_audio"),
    ),
    # AV-SSRL xID / VICReg (§3B.3): 16 frames (1 s) inside 2 s of 16 kHz audio, ±0.5 s.
    "avssrl": ViewRecipe(
        "avssrl", "synchronous", video_fps=16, video_seconds=1.0, audio_seconds=2.0, max_offsync=0.5,
        video_augment="avssrl_pretrain_video", decode_short_side=256,
        audio=AudioFrontend("avssrl", "avssrl_pretrain_audio"),
    ),
    # AV-SSRL VICReg-V (§3B.3): two 1 s clips 2–8 s apart.
    "avssrl_video_pair": ViewRecipe(
        "avssrl_video_pair", "video_pair", video_fps=16, video_seconds=1.0,
        video_augment="avssrl_pretrain_video", decode_short_side=256,
    ),
    # CrissCross (§2.2–2.5): two 8-frame views of 0.75 s, two 2 s audio views of 3 s, 112².
    "crisscross": ViewRecipe(
        "crisscross", "crisscross", video_fps=16, video_seconds=0.5, audio_seconds=2.0,
        video_augment="crisscross_pretrain_video",
        audio=AudioFrontend("crisscross", "crisscross_pretrain_audio"),
    ),
    # XDC (§1.2–1.4; the originals' pretraining inputs were never released): one synchronous pair,
    # no offset: 8 frames at 16 fps inside 2 s of 16 kHz audio -> 80-mel log spectrogram (XDC's audio
    # ResNet reads mel spectrograms, issue #4). CrissCross video augmentation, but normalised with
    # the Kinetics statistics of XDC's video encoder (§1.2, issue #2); gain-only audio augmentation
    # (§1.4 names none).
    "xdc": ViewRecipe(
        "xdc", "synchronous", video_fps=16, video_seconds=0.5, audio_seconds=2.0, max_offsync=0.0,
        video_augment="crisscross_pretrain_video",
        video_augment_overrides=(("mean", KINETICS_MEAN), ("std", KINETICS_STD)),
        audio=AudioFrontend("crisscross", "avid_pretrain_audio"),
    ),
    # XKD (§4.2): global 32 frames at 8 fps (4 s) 112² + local 8×96²; 4 s + 1 s log-mel (hop 143).
    "xkd": ViewRecipe(
        "xkd", "global_local", video_fps=8, video_seconds=4.0, audio_seconds=4.0,
        video_augment="xkd_global_video", local_video_augment="xkd_local_video",
        audio=AudioFrontend("xkd", "xkd_global_audio"),
        local_audio=AudioFrontend("xkd", "xkd_local_audio"),
        decode_short_side=112,
    ),
}


def list_view_recipes() -> list[str]:
    return sorted(_RECIPES)


def get_view_recipe(name: str, **changes) -> ViewRecipe:
    """The named recipe, with fields changed by ``changes`` (see :meth:`ViewRecipe.with_overrides`)."""
    if name not in _RECIPES:
        raise KeyError(f"unknown view recipe {name!r}; available: {', '.join(list_view_recipes())}")
    return _RECIPES[name].with_overrides(**changes) if changes else _RECIPES[name]
