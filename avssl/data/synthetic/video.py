"""Render a clip's picture from its plan: one shape on a textured background, flashing on events.

The object's coverage is computed for all frames at once on a pixel grid around it (`[T, B, B]`
arrays), without per-pixel loops, then blended into the static background. The object moves at constant velocity, bouncing off the frame margins, and turns slowly; on each event
it becomes opaque and grows by `pop_scale`, both following the frame's mean event activity (see
`events.py`), so the largest frame-to-frame change is at each onset frame.
"""

from __future__ import annotations

import numpy as np

from avssl.data.synthetic import events
from avssl.data.synthetic.plan import ClipPlan
from avssl.data.synthetic.shapes import signed_distance


def bounce(position: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold unbounded positions into [low, high] as a ball bouncing between two walls would."""
    span = high - low
    folded = np.mod(position - low, 2.0 * span)
    return low + span - np.abs(folded - span)


def _bilinear_matrix(num_pixels: int, cells: int) -> np.ndarray:
    """`[num_pixels, cells + 1]` weights that interpolate a coarse grid linearly onto pixel centres."""
    position = (np.arange(num_pixels) + 0.5) / num_pixels * cells
    left = np.minimum(np.floor(position).astype(np.int64), cells - 1)
    fraction = position - left
    matrix = np.zeros((num_pixels, cells + 1))
    matrix[np.arange(num_pixels), left] = 1.0 - fraction
    matrix[np.arange(num_pixels), left + 1] = fraction
    return matrix


def _background(plan: ClipPlan, rng: np.random.Generator) -> np.ndarray:
    """Static background `[H, W, 3]`: flat colour + smooth colour blobs + grey grain."""
    height, width = plan.size
    coarse = rng.standard_normal((plan.texture_cells + 1, plan.texture_cells + 1, 3))
    rows = _bilinear_matrix(height, plan.texture_cells)  # [H, cells + 1]
    columns = _bilinear_matrix(width, plan.texture_cells)  # [W, cells + 1]
    blobs = np.stack([rows @ coarse[..., c] @ columns.T for c in range(3)], axis=-1)  # [H, W, 3]
    grain = rng.uniform(-1.0, 1.0, size=(height, width, 1))
    background = (
        np.asarray(plan.background_colour)
        + plan.texture_amplitude * blobs
        + plan.grain_amplitude * grain
    )
    return background.astype(np.float32)


def _object_boxes(
    plan: ClipPlan, intensity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Where the object is drawn: top-left corners (x, y) `[T]` and coverage `[T, B, B]` of B×B boxes.

    Only a box around the object is rendered: it is a quarter of the frame on average, and the
    signed distances are the costliest part of a clip. The box side B fits the fully popped object
    and, since the centre keeps `motion_margin` from the edges, the box always lies in the frame.
    """
    height, width = plan.size
    t = np.arange(plan.num_frames) / plan.fps  # [T]
    margin = plan.motion_margin
    centre_x = bounce(plan.start_position[0] + plan.velocity[0] * t, margin, width - margin)
    centre_y = bounce(plan.start_position[1] + plan.velocity[1] * t, margin, height - margin)
    radius = plan.object_radius * (1.0 + plan.pop_scale * intensity)  # [T], pixels
    angle = plan.rotation + plan.angular_speed * t  # [T]

    box = 2 * int(np.ceil(plan.object_radius * (1.0 + plan.pop_scale) + 1.0))
    left = np.floor(centre_x - box / 2).astype(np.int64)  # [T]
    top = np.floor(centre_y - box / 2).astype(np.int64)  # [T]
    # Pixel centres relative to the object centre, rotated into the object frame, in radii.
    offsets = np.arange(box) + 0.5
    dx = (left[:, None] + offsets[None, :] - centre_x[:, None])[:, None, :]  # [T, 1, B]
    dy = (top[:, None] + offsets[None, :] - centre_y[:, None])[:, :, None]  # [T, B, 1]
    cos = (np.cos(angle) / radius)[:, None, None]
    sin = (np.sin(angle) / radius)[:, None, None]
    u = (cos * dx + sin * dy).astype(np.float32)  # [T, B, B]
    v = (cos * dy - sin * dx).astype(np.float32)  # [T, B, B]

    distance_px = signed_distance(plan.synthetic_class.shape, u, v) * radius[:, None, None]
    # A one-pixel linear ramp across the edge: anti-aliasing, so edges survive H.264 cleanly.
    coverage = np.clip(0.5 - distance_px, 0.0, 1.0).astype(np.float32)
    return left, top, coverage, box


def render_video(plan: ClipPlan) -> np.ndarray:
    """The clip's frames: uint8 `[T, H, W, 3]` RGB."""
    rng = np.random.default_rng([plan.render_seed, 0])
    boundaries = events.frame_boundaries(plan.num_frames, plan.fps, plan.sample_rate)
    intensity = events.frame_activity(plan.activity(), boundaries)  # [T] in [0, 1]
    height, width = plan.size

    frames = np.empty((plan.num_frames, height, width, 3), dtype=np.float32)
    frames[:] = 255.0 * _background(plan, rng)  # work in 0-255: the last step is one cast
    colour = 255.0 * np.asarray(plan.object_colour, dtype=np.float32)
    opacity = plan.base_opacity + (1.0 - plan.base_opacity) * intensity  # [T]
    left, top, coverage, box = _object_boxes(plan, intensity)
    for j in range(plan.num_frames):
        weight = (opacity[j] * coverage[j])[..., None]  # [B, B, 1]
        patch = frames[j, top[j] : top[j] + box, left[j] : left[j] + box]
        patch += weight * (colour - patch)  # alpha blend in place

    frames += 0.5  # so that the truncating cast rounds
    return np.clip(frames, 0.0, 255.0, out=frames).astype(np.uint8)
