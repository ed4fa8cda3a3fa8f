"""Render a clip's picture: a handwritten digit that appears on its onset frame and moves.

Frames before `plan.onset_frame` show the background alone; from that frame to the end the MNIST
digit is composited over it, scaled, rotated and moving at constant velocity with bounces, so its
appearance is the picture's one event and its position carries no class information.
"""

from __future__ import annotations

import numpy as np

from avssl.data.avdigits.background import render_background
from avssl.data.avdigits.config import AVDigitsConfig
from avssl.data.avdigits.plan import MNIST_INK_SIDE, ClipPlan
from avssl.data.avdigits.sources import MNIST_SIDE
from avssl.data.synthetic.video import bounce


def digit_centres(config: AVDigitsConfig, plan: ClipPlan) -> np.ndarray:
    """(x, y) of the digit's centre on every frame, `[T, 2]` pixels (frame j shows time j / fps)."""
    height, width = config.size
    t = np.arange(config.num_frames) / config.fps  # [T]
    x = bounce(plan.start_position[0] + plan.velocity[0] * t, plan.margin, width - plan.margin)
    y = bounce(plan.start_position[1] + plan.velocity[1] * t, plan.margin, height - plan.margin)
    return np.stack([x, y], axis=1)


def sample_bilinear(image: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """`image` `[h, w]` interpolated at fractional (row, column) indices (any equal shapes); 0 outside."""
    h, w = image.shape
    padded = np.pad(image.astype(np.float32), 1)  # a zero border: indices past it are clipped onto it
    r0, c0 = np.floor(rows), np.floor(columns)
    fr, fc = (rows - r0).astype(np.float32), (columns - c0).astype(np.float32)
    r0, c0 = r0.astype(np.int64) + 1, c0.astype(np.int64) + 1  # +1: index into the padded image
    # Both neighbours are clipped separately, so that far outside both land on the zero border.
    r1, c1 = np.clip(r0 + 1, 0, h + 1), np.clip(c0 + 1, 0, w + 1)
    r0, c0 = np.clip(r0, 0, h + 1), np.clip(c0, 0, w + 1)
    top = padded[r0, c0] * (1 - fc) + padded[r0, c1] * fc
    bottom = padded[r1, c0] * (1 - fc) + padded[r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def digit_patch(
    config: AVDigitsConfig, plan: ClipPlan, digit: np.ndarray, centre: np.ndarray
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The MNIST `digit` (uint8 `[28, 28]`) centred at `centre` (x, y): the part of the frame it can
    cover (row and column slices) and its opacity there, `[h, w]` in [0, 1].

    Each frame pixel is mapped back into the MNIST cell (inverse rotation and scale about the
    cell's centre, where MNIST puts each digit's centre of mass) and the ink read bilinearly.
    Only the box around the rotated cell is computed: about a third of the frame on average.
    """
    height, width = config.size
    scale = plan.digit_size / MNIST_INK_SIDE  # frame pixels per MNIST pixel
    cos, sin = np.cos(plan.digit_angle), np.sin(plan.digit_angle)
    reach = 0.5 * MNIST_SIDE * scale * (abs(cos) + abs(sin)) + 1.0  # half the rotated cell, + 1 px
    left, top = (max(int(np.floor(c - reach)), 0) for c in centre)
    right, bottom = min(int(np.ceil(centre[0] + reach)), width), min(int(np.ceil(centre[1] + reach)), height)
    dx = (np.arange(left, right) + 0.5 - centre[0])[None, :]  # [1, w], from the centre to pixel centres
    dy = (np.arange(top, bottom) + 0.5 - centre[1])[:, None]  # [h, 1]
    half = MNIST_SIDE / 2
    u = (cos * dx + sin * dy) / scale + half  # [h, w], MNIST x (column) coordinate
    v = (cos * dy - sin * dx) / scale + half  # [h, w], MNIST y (row) coordinate
    # Pixel centres sit at index + 0.5 in these coordinates.
    opacity = sample_bilinear(digit / np.float32(255.0), v - 0.5, u - 0.5)
    return (slice(top, bottom), slice(left, right)), opacity


def render_video(config: AVDigitsConfig, plan: ClipPlan, digit: np.ndarray) -> np.ndarray:
    """The clip's frames: uint8 `[T, H, W, 3]` RGB, the digit visible from `plan.onset_frame` on."""
    rng = np.random.default_rng([plan.render_seed, 0])
    background = 255.0 * render_background(config, plan.base_colour, rng)  # [H, W, 3], 0-255
    frames = np.broadcast_to(background, (config.num_frames, *background.shape)).copy()  # [T, H, W, 3]

    colour = 255.0 * np.asarray(plan.digit_colour, dtype=np.float32)
    centres = digit_centres(config, plan)  # [T, 2]
    for j in range(plan.onset_frame, config.num_frames):
        box, opacity = digit_patch(config, plan, digit, centres[j])
        patch = frames[j][box]
        patch += opacity[..., None] * (colour - patch)  # alpha blend in place

    frames += 0.5  # so that the truncating cast rounds
    return np.clip(frames, 0.0, 255.0, out=frames).astype(np.uint8)
