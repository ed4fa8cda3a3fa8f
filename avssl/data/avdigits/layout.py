"""Which clips the corpus holds: train/test splits, recording-image pairs and clip seeds.

The test split is disjoint from train in both modalities: its recordings come from speakers never
heard in train (`config.test_speakers`) and its images from a per-digit share of MNIST never seen
in train (`config.mnist_test_fraction`, drawn with the corpus seed). Each recording makes
`num_clips_per_recording` clips, each paired with an image of the same digit from its split's
share: the share is walked through in a shuffled order, reshuffled when used up, so images repeat
only once every one has been used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avssl.data.avdigits.config import AVDigitsConfig
from avssl.data.avdigits.sources import FsddRecordings, MnistDigits, Recording

SPLITS = ("train", "test")
# Spawn keys of the corpus seed's independent streams; clip i uses (CLIP_STREAM, i).
MNIST_SPLIT_STREAM, PAIRING_STREAM, CLIP_STREAM = 0, 1, 2


@dataclass(frozen=True)
class CorpusEntry:
    """One clip's place in the corpus, decided before anything is rendered."""

    index: int
    recording: Recording
    repeat: int  # which of the recording's clips (0 .. num_clips_per_recording - 1)
    mnist_index: int  # row of the MNIST arrays
    split: str
    clip_seed: int

    @property
    def name(self) -> str:
        stem = self.recording.file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return f"{stem}_{self.repeat}"

    @property
    def relative_path(self) -> str:
        return f"clips/{self.recording.digit}/{self.name}.mp4"


def _stream(config: AVDigitsConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))


def split_mnist(config: AVDigitsConfig, mnist: MnistDigits) -> dict[str, dict[int, np.ndarray]]:
    """MNIST row indices per split and digit (sorted): `mnist_test_fraction` of each digit is test."""
    rng = _stream(config, MNIST_SPLIT_STREAM)
    shares: dict[str, dict[int, np.ndarray]] = {split: {} for split in SPLITS}
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(mnist.labels == digit))
        num_test = round(config.mnist_test_fraction * len(members))
        if num_test == 0 or num_test == len(members):
            raise ValueError(
                f"{mnist.path}: field 'labels': digit {digit} has {len(members)} images, too few for a "
                f"train and a test share at mnist_test_fraction = {config.mnist_test_fraction}"
            )
        shares["test"][digit] = np.sort(members[:num_test])
        shares["train"][digit] = np.sort(members[num_test:])
    return shares


def split_of_speaker(config: AVDigitsConfig, fsdd: FsddRecordings) -> dict[str, str]:
    """Each FSDD speaker's split; every test speaker must be present, and some speaker left for train."""
    speakers = fsdd.speakers
    missing = [s for s in config.test_speakers if s not in speakers]
    if missing:
        raise ValueError(
            f"{fsdd.manifest}: field 'speaker': test speakers {missing} (AVDigitsConfig.test_speakers) "
            f"have no recordings; speakers present: {speakers}"
        )
    if set(speakers) <= set(config.test_speakers):
        raise ValueError(
            f"{fsdd.manifest}: field 'speaker': every speaker ({speakers}) is a test speaker; "
            "none is left for the train split"
        )
    return {s: "test" if s in config.test_speakers else "train" for s in speakers}


def _cycled(pool: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` draws from `pool`: successive shuffles of the whole pool, concatenated."""
    rounds = -(-count // len(pool))
    return np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:count]


def _clip_seed(config: AVDigitsConfig, index: int) -> int:
    # 63 bits, so the seed fits a signed 64-bit integer column in any CSV reader.
    state = np.random.SeedSequence(config.seed, spawn_key=(CLIP_STREAM, index)).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def plan_corpus(config: AVDigitsConfig, mnist: MnistDigits, fsdd: FsddRecordings) -> list[CorpusEntry]:
    """Every clip's recording, image, split and seed, in the (digit, speaker, take) order of `fsdd`."""
    shares = split_mnist(config, mnist)
    split_of = split_of_speaker(config, fsdd)
    slots = [(r, k) for r in fsdd.recordings for k in range(config.num_clips_per_recording)]

    # Images per (split, digit) group, handed out in slot order.
    rng = _stream(config, PAIRING_STREAM)
    images = np.empty(len(slots), dtype=np.int64)
    for split in SPLITS:
        for digit in range(10):
            members = [i for i, (r, _) in enumerate(slots) if r.digit == digit and split_of[r.speaker] == split]
            if members:
                images[members] = _cycled(shares[split][digit], len(members), rng)

    return [
        CorpusEntry(
            index=i,
            recording=recording,
            repeat=repeat,
            mnist_index=int(images[i]),
            split=split_of[recording.speaker],
            clip_seed=_clip_seed(config, i),
        )
        for i, (recording, repeat) in enumerate(slots)
    ]
