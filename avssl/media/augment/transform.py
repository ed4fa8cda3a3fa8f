"""The calling convention shared by every augmentation: one sample or a batch in, same layout out.

Each transform works on a whole batch at once (parameters drawn per sample, applied with batched tensor
ops), on any device. A single sample is accepted too and is given a batch axis of one on the way in and
stripped of it on the way out. Random transforms take an optional ``torch.Generator`` so that a seeded
generator gives the same result every time (spec §6.2 item 4: composable, temporally consistent ops).

Layouts (DESIGN.md "Contracts"):

* video clip ``[C, T, H, W]``, batch ``[B, C, T, H, W]``; float in [0, 1] (uint8 in [0, 255] is converted).
  Steps that first cut a small window out of the frames (random resized crop) take uint8 as it is and
  convert only the window: converting whole decoded frames to float costs more than the crop itself.
* spectrogram ``[C, F, T]`` (``C`` = 1), batch ``[B, C, F, T]``;
* waveform ``[N]``, batch ``[B, N]`` or ``[B, C, N]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import Tensor


class BatchTransform:
    """One augmentation step over a batch; subclasses implement :meth:`forward_batch`.

    Random subclasses also expose ``sample_params(shape, generator)`` and ``apply_params(batch, params)``
    so that a caller (or a test) can see and reuse the parameters drawn for each sample.
    """

    input_name: ClassVar[str] = "tensor"
    single_layout: ClassVar[str] = ""
    batch_layout: ClassVar[str] = ""
    single_ndim: ClassVar[int] = 0
    batch_ndims: ClassVar[tuple[int, ...]] = ()
    converts_uint8: ClassVar[bool] = False
    # True: forward_batch takes uint8 clips itself (and gives float ones unless it changes nothing).
    takes_uint8: ClassVar[bool] = False

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        batch, was_single = self.to_batch(x)
        out = self.forward_batch(batch, generator)
        if out.dtype == torch.uint8 and self.converts_uint8:  # a step that takes uint8 changed nothing
            out = to_unit_float(out)
        return out[0] if was_single else out

    def forward_batch(self, batch: Tensor, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward_batch")

    def to_batch(self, x: Tensor) -> tuple[Tensor, bool]:
        """Check ``x`` and return it as a float batch, plus whether it was a single sample."""
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor {self.input_name}, got {type(x).__name__}")
        if x.dtype == torch.uint8 and self.converts_uint8 and not self.takes_uint8:
            # Decoded frames arrive as uint8; the ops are defined on [0, 1] floats.
            x = to_unit_float(x)
        if not x.is_floating_point() and not (x.dtype == torch.uint8 and self.takes_uint8):
            allowed = "floating-point (or uint8)" if self.converts_uint8 else "floating-point"
            raise TypeError(f"{name}: the {self.input_name} must be a {allowed} tensor, got dtype {x.dtype}")
        if x.ndim == self.single_ndim:
            return x.unsqueeze(0), True
        if x.ndim in self.batch_ndims:
            return x, False
        raise ValueError(
            f"{name}: expected a {self.input_name} {self.single_layout} or a batch {self.batch_layout}, "
            f"got shape {tuple(x.shape)}"
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def to_unit_float(clips: Tensor) -> Tensor:
    """uint8 clips in [0, 255] as float32 in [0, 1]."""
    return clips.float().div_(255.0)


class VideoTransform(BatchTransform):
    """A transform of video clips ``[B, C, T, H, W]``; every frame of a clip gets the same parameters."""

    input_name = "video clip"
    single_layout = "[C, T, H, W]"
    batch_layout = "[B, C, T, H, W]"
    single_ndim = 4
    batch_ndims = (5,)
    converts_uint8 = True


class SpectrogramTransform(BatchTransform):
    """A transform of spectrograms ``[B, C, F, T]`` (``C`` = 1 for every method here)."""

    input_name = "spectrogram"
    single_layout = "[C, F, T]"
    batch_layout = "[B, C, F, T]"
    single_ndim = 3
    batch_ndims = (4,)


class WaveformTransform(BatchTransform):
    """A transform of waveforms ``[B, N]`` or ``[B, C, N]``; a 1-D tensor is one waveform."""

    input_name = "waveform"
    single_layout = "[N]"
    batch_layout = "[B, N] or [B, C, N]"
    single_ndim = 1
    batch_ndims = (2, 3)


_CONTRACT = ("input_name", "single_layout", "batch_layout", "single_ndim", "batch_ndims", "converts_uint8")


class Compose(BatchTransform):
    """Apply ``transforms`` in order; the input is checked and batched once, not at every step.

    ``kind`` (e.g. ``SpectrogramTransform``) fixes the input contract; it is taken from the members
    when omitted and is required for an empty composition (a preset stage that does nothing).
    """

    def __init__(self, transforms: Sequence[BatchTransform], kind: type[BatchTransform] | None = None):
        self.transforms = list(transforms)
        if kind is None:
            if not self.transforms:
                raise ValueError("Compose: an empty composition needs kind= (e.g. SpectrogramTransform)")
            kind = type(self.transforms[0])
        mismatched = [t for t in self.transforms if t.input_name != kind.input_name]
        if mismatched:
            names = ", ".join(f"{type(t).__name__} (takes a {t.input_name})" for t in mismatched)
            raise ValueError(f"Compose: every transform must take a {kind.input_name}; got {names}")
        # Take the input contract of the members, so that Compose checks exactly what they expect.
        for attr in _CONTRACT:
            setattr(self, attr, getattr(kind, attr))
        # uint8 clips are converted by forward_batch, as late as the steps allow.
        self.takes_uint8 = self.converts_uint8

    def forward_batch(self, batch: Tensor, generator: torch.Generator | None) -> Tensor:
        for transform in self.transforms:
            if batch.dtype == torch.uint8 and not transform.takes_uint8:
                batch = to_unit_float(batch)
            batch = transform.forward_batch(batch, generator)
        return to_unit_float(batch) if batch.dtype == torch.uint8 else batch

    def __repr__(self) -> str:
        if not self.transforms:
            return f"Compose([], {self.input_name})"
        inner = ",\n".join(f"  {t!r}" for t in self.transforms)
        return f"Compose([\n{inner}\n])"


def apply_by_group(
    batch: Tensor, groups: Tensor, fn: Callable[[Tensor, Tensor, int], Tensor]
) -> Tensor:
    """Return ``batch`` with each group of samples replaced by ``fn(batch[idx], idx, group)``.

    ``groups`` is a CPU int tensor ``[B]``: samples with the same value ≥ 0 are processed together,
    samples with −1 are left as they are. Parameters live on the host, so finding the indices needs no
    device synchronisation; ``fn`` gets the CPU indices to pick its samples' parameters. The batch is
    written once: each group's result goes straight into a fresh output, and only the samples left as
    they are (−1) are copied over (copying the whole batch first cost ~4 % of an XKD sample).
    """
    group_ids = groups.unique().tolist()
    if group_ids == [-1]:
        return batch
    if len(group_ids) == 1:
        return fn(batch, torch.arange(batch.shape[0]), group_ids[0])
    out = torch.empty_like(batch)
    for group in group_ids:
        index = (groups == group).nonzero().squeeze(1)
        device_index = index.to(batch.device)
        rows = batch.index_select(0, device_index)
        out.index_copy_(0, device_index, rows if group < 0 else fn(rows, index, group).to(out.dtype))
    return out


def apply_to_selected(batch: Tensor, selected: Tensor, fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """Return ``batch`` with ``fn(batch[idx], idx)`` written back where ``selected`` (CPU bool ``[B]``)."""
    groups = torch.where(selected, 0, -1)
    return apply_by_group(batch, groups, lambda sub, index, _: fn(sub, index))


def check_probability(owner: str, field: str, p: float) -> float:
    """``p`` as a float in [0, 1], or a ValueError naming ``owner.field``."""
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{owner}: {field} must be a probability in [0, 1], got {p!r}")
    return float(p)


def check_interval(
    owner: str, field: str, value: Sequence[float], minimum: float | None = None,
    maximum: float | None = None,
) -> tuple[float, float]:
    """``value`` as an ordered pair ``(low, high)`` inside ``[minimum, maximum]``."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {field} must be a pair (low, high), got {value!r}") from None
    if low > high:
        raise ValueError(f"{owner}: {field} must have low <= high, got {value!r}")
    if (minimum is not None and low < minimum) or (maximum is not None and high > maximum):
        raise ValueError(f"{owner}: {field} must lie in [{minimum}, {maximum}], got {value!r}")
    return low, high


def check_positive_int(owner: str, field: str, value: int, allow_zero: bool = False) -> int:
    """``value`` as an int ≥ 1 (≥ 0 with ``allow_zero``)."""
    least = 0 if allow_zero else 1
    if isinstance(value, bool) or int(value) != value or int(value) < least:
        raise ValueError(f"{owner}: {field} must be an integer >= {least}, got {value!r}")
    return int(value)


def check_size(owner: str, field: str, size: int | Sequence[int]) -> tuple[int, int]:
    """An output size as ``(height, width)``; an int means a square."""
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2:
        raise ValueError(f"{owner}: {field} must be an int or (height, width), got {size!r}")
    return check_positive_int(owner, field, size[0]), check_positive_int(owner, field, size[1])
