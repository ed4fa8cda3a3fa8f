"""What an encoder expects as input: the contract between the media pipeline and the models."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from avssl.media.color_stats import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD

__all__ = ["InputSpec", "IMAGENET_MEAN", "IMAGENET_STD", "KINETICS_MEAN", "KINETICS_STD"]


@dataclass(frozen=True)
class InputSpec:
    """Input an encoder was designed and trained for.

    Video encoders take float tensors ``B×3×T×H×W``: RGB in [0, 1] normalised with ``mean``/``std``.
    Audio encoders take spectrograms ``B×1×F×T`` produced by the named ``spectrogram`` preset of
    :mod:`avssl.media.spectrogram` from ``duration`` seconds of mono audio at ``sample_rate``;
    ``layout`` says how the encoder itself orders the two axes (``"TF"`` encoders transpose inside).
    """

    modality: Literal["video", "audio"]
    # video
    frames: int | None = None
    fps: float | None = None
    size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    # audio
    sample_rate: int | None = None
    duration: float | None = None
    spectrogram: str | None = None
    layout: Literal["FT", "TF"] | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def example_shape(self, batch: int = 1) -> tuple[int, ...]:
        """Shape of a standard input batch; audio shapes come from the spectrogram preset."""
        if self.modality == "video":
            if self.frames is None or self.size is None:
                raise ValueError("video InputSpec needs frames and size")
            return (batch, 3, self.frames, self.size, self.size)
        from avssl.media.spectrogram import get_preset

        preset = get_preset(self.spectrogram)
        return (batch, 1, *preset.output_shape(self.duration))
