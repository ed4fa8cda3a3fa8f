"""The embedded demo corpus: labelled, synchronised audio-visual clips generated on the spot.

Ten classes, each a visual shape paired with a sound kind (`classes.py`). Every clip has 2-5
events; at each one the shape flashes and pops on exactly the frame where its sound starts, so
sound and picture share both meaning (class) and timing. Colour, size, motion, background,
loudness and noise vary independently of the class. Clips are real H.264/AAC mp4 files, so the
whole media pipeline (probe, decode, sample, augment) runs on them as on downloaded datasets.

    from avssl.data.synthetic import generate_corpus
    corpus = generate_corpus("data/synthetic")   # ~1,000 clips; reused when already there
"""

from avssl.data.synthetic.audio import render_audio
from avssl.data.synthetic.classes import CLASS_NAMES, CLASSES, SyntheticClass
from avssl.data.synthetic.config import SyntheticConfig
from avssl.data.synthetic.corpus import (
    METADATA_COLUMNS,
    CorpusEntry,
    generate_corpus,
    is_complete_corpus,
    plan_corpus,
    write_corpus,
)
from avssl.data.synthetic.plan import ClipPlan, sample_clip_plan
from avssl.data.synthetic.video import render_video

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "METADATA_COLUMNS",
    "ClipPlan",
    "CorpusEntry",
    "SyntheticClass",
    "SyntheticConfig",
    "generate_corpus",
    "is_complete_corpus",
    "plan_corpus",
    "render_audio",
    "render_video",
    "sample_clip_plan",
    "write_corpus",
]
