"""AV-Digits: a real-data audio-visual benchmark corpus built from MNIST and spoken digits.

Each 2 s clip pairs a Free Spoken Digit Dataset recording with an MNIST image of the same digit:
the handwritten digit appears on the frame where the spoken word starts and moves over a cluttered
background, while the word plays over coloured noise and hum. Class lives in both modalities
(handwriting, speech); timing ties them (onset); everything else (colour, size, angle, motion,
clutter, loudness, noise) is drawn independently of the class. The test split holds speakers and
MNIST images never used in train. Clips are H.264/AAC mp4 files with an avssl manifest, so the
whole pipeline (decode, sample, augment, pretrain, evaluate) runs on them.

    from avssl.data.avdigits import build_avdigits
    manifest = build_avdigits("data/avdigits", mnist="mnist5k/mnist5k.npz", fsdd="fsdd")
"""

from __future__ import annotations

from avssl.data.avdigits.clip import METADATA_COLUMNS, render_entry
from avssl.data.avdigits.config import AVDigitsConfig
from avssl.data.avdigits.layout import CorpusEntry, plan_corpus
from avssl.data.avdigits.plan import ClipPlan, sample_clip_plan
from avssl.data.avdigits.sources import load_fsdd, load_mnist

__all__ = [
    "MANIFEST_EXTRA_COLUMNS",
    "METADATA_COLUMNS",
    "AVDigitsConfig",
    "ClipPlan",
    "CorpusEntry",
    "build_avdigits",
    "load_fsdd",
    "load_mnist",
    "plan_corpus",
    "render_entry",
    "sample_clip_plan",
]


def __getattr__(name: str):
    # Imported lazily: `corpus.py` writes the manifest, which imports torch (through
    # avssl.media.decode), and the worker processes that render clips import this package.
    if name in ("build_avdigits", "MANIFEST_EXTRA_COLUMNS"):
        from avssl.data.avdigits import corpus

        return getattr(corpus, name)
    raise AttributeError(f"module 'avssl.data.avdigits' has no attribute {name!r}")
