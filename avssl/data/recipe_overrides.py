"""A view recipe as a run's ``data`` config sets it: the named recipe with field and augmentation
overrides applied (``data.recipe``, ``data.recipe_overrides``, ``data.*_augment_overrides``).

Kept apart from the engine so that commands which only read a run's config (``avssl clusters``,
the demo's evaluation) rebuild its recipe without importing Lightning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from avssl.data.views import ViewRecipe, get_view_recipe
from avssl.train.config import DataConfig


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
