"""A view recipe as a run's ``data`` config sets it: the named recipe with field and augmentation
overrides applied (``data.recipe``, ``data.recipe_overrides``, ``data.*_augment_overrides``).

:func:`trained_input_specs` turns the same config into what the run fed its encoders (frames,
rate, crop, normalisation, spectrogram), so that exported encoders and evaluations feed them alike.

Kept apart from the engine so that commands which only read a run's config (``avssl clusters``,
the demo's evaluation) rebuild its recipe without importing Lightning.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from avssl.data.views import ViewRecipe, get_view_recipe
from avssl.media.augment.presets import get_augment_preset
from avssl.media.spectrogram import get_preset
from avssl.train.config import DataConfig, PretrainConfig


def _frozen(value: Any) -> Any:
    # Recipes are frozen dataclasses holding tuples; YAML gives lists.
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _merged(existing: tuple[tuple[str, object], ...], overrides: Mapping[str, Any]) -> tuple[tuple[str, object], ...]:
    return tuple({**dict(existing), **{k: _frozen(v) for k, v in overrides.items()}}.items())


def build_recipe(cfg: DataConfig) -> ViewRecipe:
    """``cfg.recipe`` with the config's field and augmentation overrides applied."""
    recipe = get_view_recipe(cfg.recipe)
    fields = {f.name for f in dataclasses.fields(ViewRecipe)}
    unknown = set(cfg.recipe_overrides) - fields
    if unknown:
        raise ValueError(f"data.recipe_overrides: unknown ViewRecipe fields {sorted(unknown)}; known: {sorted(fields)}")
    changes: dict[str, Any] = {k: _frozen(v) for k, v in cfg.recipe_overrides.items()}
    if cfg.video_augment_overrides:
        changes["video_augment_overrides"] = _merged(recipe.video_augment_overrides, cfg.video_augment_overrides)
    if cfg.local_video_augment_overrides:
        if recipe.local_video_augment is None:
            raise ValueError(f"data.local_video_augment_overrides: recipe {cfg.recipe!r} has no local video views")
        changes["local_video_augment_overrides"] = _merged(
            recipe.local_video_augment_overrides, cfg.local_video_augment_overrides
        )
    for key, frontend_field in (("audio_augment_overrides", "audio"), ("local_audio_augment_overrides", "local_audio")):
        overrides = getattr(cfg, key)
        if not overrides:
            continue
        frontend = getattr(recipe, frontend_field)
        if frontend is None:
            raise ValueError(f"data.{key}: recipe {cfg.recipe!r} has no {frontend_field.replace('_', ' ')} views")
        changes[frontend_field] = dataclasses.replace(
            frontend, augment_overrides=_merged(frontend.augment_overrides, overrides)
        )
    return recipe.with_overrides(**changes) if changes else recipe


def trained_input_specs(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What a pretraining run fed its encoders, as :class:`~avssl.models.input_spec.InputSpec`
    field changes per modality, from the run's ``data`` config (view recipe and overrides).

    An encoder's own ``input_spec`` describes its original release; a run may feed it differently
    (the xID demo trains ``audio_resnet_small`` on recipe ``avid``'s 257-bin spectrogram), and
    clips for evaluation must be made as in training.
    """
    if not config.get("data"):
        return {}
    recipe = build_recipe(DataConfig(**config["data"]) if isinstance(config["data"], Mapping) else config["data"])
    preset = get_augment_preset(recipe.video_augment)
    defaults = {name: p.default for name, p in inspect.signature(preset.factory).parameters.items()}
    video = {**defaults, **preset.defaults, **dict(recipe.video_augment_overrides)}
    specs = {"video": {"fps": recipe.video_fps, "frames": round(recipe.video_seconds * recipe.video_fps),
                       "size": int(video["size"]), "mean": tuple(video["mean"]), "std": tuple(video["std"])}}
    if recipe.audio is not None:
        # A front end without its own length uses the recipe's audio window (avssl.data.views).
        seconds = recipe.audio.clip_seconds or recipe.audio_seconds
        specs["audio"] = {"spectrogram": recipe.audio.preset, "duration": seconds,
                          "sample_rate": get_preset(recipe.audio.preset).sample_rate}
    return specs


def record_trained_input_specs(method: nn.Module, config: PretrainConfig) -> None:
    """Set each encoder of ``method`` (``video_encoder`` / ``audio_encoder``) to the ``input_spec``
    its run fed it (:func:`trained_input_specs` of the run's ``PretrainConfig``), so that exported
    encoder files and evaluations feed them alike."""
    for modality, changes in trained_input_specs(config.to_dict()).items():
        encoder = getattr(method, f"{modality}_encoder", None)
        if encoder is not None and getattr(encoder, "input_spec", None) is not None:
            encoder.input_spec = dataclasses.replace(encoder.input_spec, **changes)
