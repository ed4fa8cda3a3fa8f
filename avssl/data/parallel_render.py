"""Render the clips of a generated corpus in worker processes, with a progress bar.

Shared by `avssl.data.synthetic` and `avssl.data.avdigits`: each clip is one task whose result (its
metadata row) comes back in task order, so the output does not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

Task = TypeVar("Task")
Result = TypeVar("Result")


def _map_tasks(
    function: Callable[[Task], Result], tasks: Sequence[Task], workers: int
) -> Iterator[Result]:
    if workers <= 1:
        yield from map(function, tasks)
        return
    # "spawn": workers must not inherit a parent's threads (torch, OpenMP) through fork.
    context = multiprocessing.get_context("spawn")
    # A few chunks per worker: large enough to amortise the pickling, small enough to balance.
    chunk = max(1, len(tasks) // (workers * 8))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield from pool.map(function, tasks, chunksize=chunk)


def render_in_workers(
    function: Callable[[Task], Result],
    tasks: Sequence[Task],
    *,
    workers: int,
    desc: str,
    progress: bool = True,
) -> list[Result]:
    """`[function(task) for task in tasks]`, in `workers` processes (1: in this one).

    `function` must be a module-level function (it is pickled by reference). Workers start with
    "spawn", so a script calling this with `workers > 1` needs the `if __name__ == "__main__":` guard.
    """
    return list(
        tqdm(
            _map_tasks(function, tasks, workers),
            total=len(tasks),
            desc=desc,
            unit="clip",
            disable=not progress,
        )
    )
