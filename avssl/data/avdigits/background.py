"""A clip's cluttered background: a base colour with a gradient, soft blobs and faint pen strokes.

The clutter makes the digit something to find rather than the only thing in the picture: the
strokes are curves of about the digit's stroke width, so an encoder cannot detect the digit by
"any line at all". Everything deviates from the base colour by at most `clutter_contrast` (plus a
faint grain), well below the digit's `min_digit_contrast`, and is drawn from the clip's render
seed only, never from the digit. The background is static; only the digit moves.
"""

from __future__ import annotations

import numpy as np

from avssl.data.avdigits.config import AVDigitsConfig

BLOB_SIGMA = (0.05, 0.2)  # blob radius (Gaussian sigma) as a fraction of the frame's short side
STROKE_WIDTH_PX = (1.5, 3.5)  # full width of a background stroke
STROKE_SPAN = (0.15, 0.5)  # distance between a stroke's end points, fraction of the short side
STROKE_POINTS = 12  # points along each quadratic Bézier curve (11 straight pieces)
GRAIN = 0.02  # static per-pixel grey noise amplitude


def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates: x `[1, W]` and y `[H, 1]`."""
    return (np.arange(width) + 0.5)[None, :], (np.arange(height) + 0.5)[:, None]


def _distance_to_polyline(x: np.ndarray, y: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from each pixel (x `[1, W]`, y `[H, 1]`) to the polyline through `points` `[P, 2]`: `[H, W]`."""
    distance = np.full(np.broadcast_shapes(x.shape, y.shape), np.inf)
    for (ax, ay), (bx, by) in zip(points[:-1], points[1:], strict=True):
        dx, dy = bx - ax, by - ay
        t = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        np.minimum(distance, np.hypot(x - ax - t * dx, y - ay - t * dy), out=distance)
    return distance


def _stroke_points(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """`[STROKE_POINTS, 2]` (x, y) points of a random quadratic Bézier curve inside the frame."""
    short_side = min(height, width)
    start = rng.uniform((0.0, 0.0), (width, height))
    heading = rng.uniform(0.0, 2 * np.pi)
    end = start + rng.uniform(*STROKE_SPAN) * short_side * np.array([np.cos(heading), np.sin(heading)])
    # The control point off the chord's middle bends the stroke by up to about half its length.
    bend = rng.uniform(-0.5, 0.5) * (end - start)[::-1] * np.array([1.0, -1.0])
    control = (start + end) / 2 + bend
    s = np.linspace(0.0, 1.0, STROKE_POINTS)[:, None]
    return (1 - s) ** 2 * start + 2 * (1 - s) * s * control + s**2 * end


def render_background(
    config: AVDigitsConfig, base_colour: tuple[float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """The static background, float32 `[H, W, 3]` in [0, 1]."""
    height, width = config.size
    contrast = config.clutter_contrast
    x, y = _pixel_grid(height, width)
    short_side = min(height, width)
    # A linear gradient across the frame in a random direction and colour, plus soft blobs.
    heading = rng.uniform(0.0, 2 * np.pi)
    ramp = ((x - width / 2) * np.cos(heading) + (y - height / 2) * np.sin(heading)) / short_side  # [H, W]
    deviation = ramp[..., None] * rng.uniform(-contrast, contrast, size=3)  # [H, W, 3]
    for _ in range(int(rng.integers(config.clutter_blobs[0], config.clutter_blobs[1] + 1))):
        centre = rng.uniform((0.0, 0.0), (width, height))
        sigma = rng.uniform(*BLOB_SIGMA) * short_side
        weight = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))  # [H, W]
        deviation = deviation + weight[..., None] * rng.uniform(-contrast, contrast, size=3)
    # Overlapping blobs may add up: the bound on the contrast is what keeps the digit the salient object.
    image = np.asarray(base_colour) + np.clip(deviation, -contrast, contrast)  # [H, W, 3]

    for _ in range(int(rng.integers(config.clutter_strokes[0], config.clutter_strokes[1] + 1))):
        points = _stroke_points(rng, height, width)  # [P, 2]
        half_width = rng.uniform(*STROKE_WIDTH_PX) / 2
        colour = np.asarray(base_colour) + rng.uniform(-contrast, contrast, size=3)
        # Only the stroke's bounding box can be covered: a fraction of the frame, and the costliest step.
        left, top = np.maximum(np.floor(points.min(axis=0) - half_width - 1), 0).astype(int)
        right, bottom = np.minimum(np.ceil(points.max(axis=0) + half_width + 1), (width, height)).astype(int)
        if right <= left or bottom <= top:
            continue
        distance = _distance_to_polyline(x[:, left:right], y[top:bottom], points)  # [h, w]
        # A one-pixel linear ramp across the edge: anti-aliasing, as in the digit's own strokes.
        coverage = np.clip(half_width + 0.5 - distance, 0.0, 1.0)[..., None]  # [h, w, 1]
        box = image[top:bottom, left:right]
        box += coverage * (colour - box)

    image += GRAIN * rng.uniform(-1.0, 1.0, size=(height, width, 1))
    return np.clip(image, 0.0, 1.0).astype(np.float32)
