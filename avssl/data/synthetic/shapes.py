"""Signed distance functions of the object shapes of the synthetic corpus.

Every function maps object-frame coordinates `u, v` (any equal shapes, e.g. `[T, H, W]`, in units
of the object radius, already rotated) to a signed distance in the same units: negative inside,
positive outside. Each shape fits in the unit circle, so a clip's radius bounds where it is drawn.
The distances need only be exact near the boundary, where `video.py` turns them into
anti-aliased coverage; far from it any value of the right sign will do.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ShapeFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _box(u: np.ndarray, v: np.ndarray, half_width: float, half_height: float) -> np.ndarray:
    """Axis-aligned rectangle centred at the origin."""
    qx = np.abs(u) - half_width
    qy = np.abs(v) - half_height
    outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
    inside = np.minimum(np.maximum(qx, qy), 0.0)
    return outside + inside


def _regular_polygon(u: np.ndarray, v: np.ndarray, sides: int) -> np.ndarray:
    """Regular polygon with circumradius 1, one vertex pointing up (-v)."""
    apothem = np.cos(np.pi / sides)
    # The polygon is the intersection of half-planes whose normals point at the edge midpoints.
    angles = np.pi / 2 + np.pi / sides + 2 * np.pi * np.arange(sides) / sides
    distance = np.full(u.shape, -np.inf, dtype=u.dtype)
    for angle in angles:
        np.maximum(distance, u * np.cos(angle) - v * np.sin(angle) - apothem, out=distance)
    return distance


def _segment(u: np.ndarray, v: np.ndarray, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """Unsigned distance to the segment from `a` to `b`."""
    du, dv = b[0] - a[0], b[1] - a[1]
    t = np.clip(((u - a[0]) * du + (v - a[1]) * dv) / (du * du + dv * dv), 0.0, 1.0)
    return np.hypot(u - a[0] - t * du, v - a[1] - t * dv)


def disc(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.hypot(u, v) - 1.0


def square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    half_side = float(np.sqrt(0.5))  # corners on the unit circle
    return _box(u, v, half_side, half_side)


def triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _regular_polygon(u, v, 3)


def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    arm_half_width = 0.28
    arm_half_length = float(np.sqrt(1.0 - arm_half_width**2))  # arm corners on the unit circle
    return np.minimum(
        _box(u, v, arm_half_length, arm_half_width), _box(u, v, arm_half_width, arm_half_length)
    )


def ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Annulus from radius 0.5 to 1: the only shape with a hole at its centre.
    return np.abs(np.hypot(u, v) - 0.75) - 0.25


def star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    points, inner_radius = 5, 0.45
    # Position inside a point's angular sector: 0 on a tip, 1 half-way between two tips.
    sector = np.arctan2(u, -v) * (points / (2 * np.pi))
    from_tip = 2.0 * np.abs(sector - np.round(sector))
    boundary = 1.0 - (1.0 - inner_radius) * from_tip
    # Scaled by the inner radius so the distance stays conservative near the deep valleys.
    return (np.hypot(u, v) - boundary) * inner_radius


def bars(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    half_height, spacing = 0.16, 0.6
    half_width = float(np.sqrt(1.0 - (spacing + half_height) ** 2))
    distance = _box(u, v, half_width, half_height)
    for offset in (-spacing, spacing):
        distance = np.minimum(distance, _box(u, v - offset, half_width, half_height))
    return distance


def crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # The unit disc minus a disc of radius 0.8 shifted right by 0.5.
    return np.maximum(np.hypot(u, v) - 1.0, 0.8 - np.hypot(u - 0.5, v))


def ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    minor = 0.5
    # Scaling the normalised radius by the minor semi-axis keeps the distance conservative.
    return (np.hypot(u, v / minor) - 1.0) * minor


def chevron(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    half_thickness = 0.2
    left, apex, right = (-0.7, -0.4), (0.0, 0.55), (0.7, -0.4)
    return np.minimum(_segment(u, v, left, apex), _segment(u, v, apex, right)) - half_thickness


SHAPES: dict[str, ShapeFunction] = {
    "disc": disc,
    "square": square,
    "triangle": triangle,
    "cross": cross,
    "ring": ring,
    "star": star,
    "bars": bars,
    "crescent": crescent,
    "ellipse": ellipse,
    "chevron": chevron,
}


def signed_distance(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance to `shape` at object-frame coordinates `u, v` (see module docstring)."""
    try:
        function = SHAPES[shape]
    except KeyError:
        raise ValueError(f"unknown shape {shape!r}; known shapes: {', '.join(SHAPES)}") from None
    return function(u, v)
