"""Kinetics-Sound: the Kinetics-400 classes whose action can be heard (Arandjelović & Zisserman 2017).

Papers disagree on the class list (spec landscape §2.5: 31, 32, 33 or 34 classes), so the list is
versioned and chosen by name (``class_list=``); the default is the 32-class list of CrissCross and
XKD. Layout and file lookup are Kinetics-400's (:mod:`avssl.data.benchmarks.kinetics400`); the
benchmark trains on the K400 ``train`` split and tests on ``val`` (XKD §4.6: 22,713 / 1,593 clips).

Class lists (names as in Kinetics-400, spaces for underscores):

* ``crisscross32`` (default) — given by the CrissCross/XKD author in pritamqu/CrissCross issue #4
  (2023-03-21): the 31 classes below plus ``strumming guitar``. XKD's own list (its
  ``datasets/cache/kinetics_sound``) is absent from the public snapshot; that it is the same 32 is
  an assumption (same author, same class count) — **unverified**.
* ``adamml31`` — given by the AdaMML authors in IBM/AdaMML issue #3 (2022-03-22), 22,521 / 1,532
  clips. Verified against that thread.
* ``l3_34`` — the 34 classes of the L3-Net paper (Look, Listen and Learn, ICCV 2017), which used
  pre-release Kinetics names; several (``fingerpicking``, ``patting``, ``typing``, ...) have no
  Kinetics-400 class and are reported as missing. Written from the paper's table as recalled, not
  checked against the PDF here — **unverified**.
"""

from __future__ import annotations

from pathlib import Path

from avssl.data.benchmarks import Annotations, Benchmark, register_benchmark
from avssl.data.benchmarks.kinetics400 import normalise_class_name, read_kinetics

_COMMON_31 = (
    "blowing nose", "blowing out candles", "bowling", "chopping wood", "dribbling basketball", "laughing",
    "mowing lawn", "playing accordion", "playing bagpipes", "playing bass guitar", "playing clarinet",
    "playing drums", "playing guitar", "playing harmonica", "playing keyboard", "playing organ", "playing piano",
    "playing saxophone", "playing trombone", "playing trumpet", "playing violin", "playing xylophone",
    "ripping paper", "shoveling snow", "shuffling cards", "singing", "stomping grapes", "tap dancing",
    "tapping guitar", "tapping pen", "tickling",
)

CLASS_LISTS: dict[str, tuple[str, ...]] = {
    "crisscross32": tuple(sorted(_COMMON_31 + ("strumming guitar",))),
    "adamml31": _COMMON_31,
    "l3_34": (
        "blowing nose", "bowling", "chopping wood", "ripping paper", "shuffling cards", "singing", "tapping pen",
        "typing", "blowing out", "dribbling ball", "laughing", "mowing the lawn by pushing lawnmower",
        "shoveling snow", "stomping", "tap dancing", "tapping guitar", "tickling", "fingerpicking", "patting",
        "playing accordion", "playing bagpipes", "playing bass guitar", "playing clarinet", "playing drums",
        "playing guitar", "playing harmonica", "playing keyboard", "playing organ", "playing piano",
        "playing saxophone", "playing trombone", "playing trumpet", "playing violin", "playing xylophone",
    ),
}
VERIFIED = {"crisscross32": True, "adamml31": True, "l3_34": False}
DEFAULT_CLASS_LIST = "crisscross32"


def build(root: Path, class_list: str = DEFAULT_CLASS_LIST, annotations: str | Path | None = None) -> Annotations:
    """Read the Kinetics-Sound subset of the Kinetics-400 layout under ``root``."""
    if class_list not in CLASS_LISTS:
        raise KeyError(f"kinetics_sound: unknown class_list {class_list!r}; choose from {sorted(CLASS_LISTS)}")
    wanted = {normalise_class_name(n) for n in CLASS_LISTS[class_list]}
    rows, found, missing, total = read_kinetics(root, annotations, keep_classes=wanted)
    absent = sorted(wanted - {normalise_class_name(c) for c in found})
    if absent:
        missing = [f"class '{c}' (no training clip)" for c in absent] + missing
    return Annotations(rows, found, missing, total)


KINETICS_SOUND = register_benchmark(Benchmark(
    name="kinetics_sound", modalities=("video", "audio"), folds=(), multi_label=False,
    source="Arandjelović & Zisserman 2017 (L3-Net); class lists: see avssl.data.benchmarks.kinetics_sound",
    build=build, train_split="train", test_split="val",
))
