"""How many samples per second a data pipeline delivers (used by the demo and benchmarks/loader.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.data import DataLoader

from avssl.data.datasets import PretrainingDataset, collate_views


@dataclass(frozen=True)
class Throughput:
    samples: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("inf")


def time_calls(make_samples: Callable[[int], int], num_calls: int, warmup: int = 1) -> Throughput:
    """Run ``make_samples(i)`` (which returns how many samples it made) ``num_calls`` times, timed
    after ``warmup`` untimed calls (JIT compilation, file-system caches, lazy initialisation)."""
    for i in range(warmup):
        make_samples(i)
    samples = 0
    start = time.perf_counter()
    for i in range(num_calls):
        samples += make_samples(warmup + i)
    return Throughput(samples, time.perf_counter() - start)


def measure_dataset(dataset: PretrainingDataset, num_items: int, warmup: int = 1, num_workers: int = 0) -> Throughput:
    """Samples per second from ``dataset`` (``clips_per_video`` samples per item).

    With ``num_workers=0`` items are made in this process, one after the other; otherwise a
    DataLoader with that many worker processes delivers them (start-up excluded by the warm-up).
    """
    if num_workers == 0:
        return time_calls(lambda i: len(dataset[i % len(dataset)]["index"]), num_items, warmup)
    loader = DataLoader(
        dataset, batch_size=1, shuffle=False, num_workers=num_workers, collate_fn=collate_views,
        persistent_workers=True,
    )
    iterator = iter(loader)

    def next_batch(_: int) -> int:
        nonlocal iterator
        try:
            return len(next(iterator)["index"])
        except StopIteration:
            iterator = iter(loader)
            return len(next(iterator)["index"])

    return time_calls(next_batch, num_items, warmup=max(warmup, num_workers))
