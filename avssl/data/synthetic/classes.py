"""The classes of the synthetic demo corpus: each pairs a visual object kind with a sound kind.

A class is readable from the picture alone (the object's shape) and from the sound alone (pitch
band and timbre), but never from a cue that is also a nuisance: colour, size, position, loudness and
background are drawn independently of the class (see `plan.py`).

The pitch bands are spaced by a factor of about 1.36 (0.44 octave) from 300 Hz to 4.8 kHz, so that
with the ±0.1 octave per-clip pitch jitter of `plan.py` neighbouring bands never overlap at their
centres, and all content stays below the 8 kHz Nyquist limit of 16 kHz audio (and inside the
0–8 kHz mel range the methods of spec/methods.md use).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyntheticClass:
    """One class: the object drawn in the picture and the sound it makes at each event.

    Attributes:
        shape: name of a shape in `shapes.SHAPES` (drawn in a unit circle, rotated per clip).
        sound: name of a sound kind in `sounds.SOUND_KINDS`.
        centre_hz: centre of the class's pitch band before per-clip jitter.
    """

    shape: str
    sound: str
    centre_hz: float

    @property
    def name(self) -> str:
        return f"{self.shape}_{self.sound}"


# Shapes and sounds are paired so that neither the shape's area nor the band's pitch follow the
# class order: a model cannot shortcut one modality's class through a monotone size/pitch ranking.
CLASSES: tuple[SyntheticClass, ...] = (
    SyntheticClass("disc", "tone", 560.0),
    SyntheticClass("square", "harmonics", 300.0),
    SyntheticClass("triangle", "chirp_up", 1030.0),
    SyntheticClass("cross", "rattle", 4800.0),
    SyntheticClass("ring", "am_tone", 760.0),
    SyntheticClass("star", "noise_band", 3500.0),
    SyntheticClass("bars", "odd_harmonics", 410.0),
    SyntheticClass("crescent", "dyad", 2600.0),
    SyntheticClass("ellipse", "vibrato", 1900.0),
    SyntheticClass("chevron", "chirp_down", 1400.0),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
