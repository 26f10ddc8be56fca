"""Spawn-process pools whose workers each build one long-lived state object and feed it jobs.

Generation (:mod:`mirror_align.data.generate`: one env per task) and rollouts
(:mod:`mirror_align.eval.rollout`: a policy plus one env per task) both need the same pool: every
worker builds its state once, calls it for each job, and closes it (its renderers) when it ends.
This module is that pool, once. It imports only the standard library, so ``data/`` and ``eval/``
can use it without importing ``pipeline/``.

Why spawn: no GL context, HDF5 handle or OpenMP pool may cross a ``fork``. Why one thread per
worker: workers are as many as the cores, and each one's OpenMP and Mesa raster threads would
otherwise oversubscribe them.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class WorkerState(Protocol):
    """What a worker builds once: called once per job, closed when the worker ends."""

    def __call__(self, job: Any) -> Any: ...

    def close(self) -> None: ...


# The state of this worker process (set by the pool's initializer; None in the parent).
_STATE: WorkerState | None = None

# Environment every worker starts with: read by OpenMP and Mesa when they load in the child.
_CHILD_THREADS = ("LP_NUM_THREADS", "OMP_NUM_THREADS")


def _start(factory: Callable[..., WorkerState], args: tuple) -> None:
    global _STATE
    _STATE = factory(*args)
    # Close the renderers when the worker ends normally (pool.close + join), before the
    # interpreter's own exit hooks tear EGL down: closing later prints EGL errors. A pool worker
    # never runs atexit hooks, hence a Finalize with a priority.
    multiprocessing.util.Finalize(_STATE, _STATE.close, exitpriority=10)


def _call(job: Any) -> Any:
    if _STATE is None:  # only reachable if a job is sent to a process without the initializer
        raise RuntimeError("worker state is not initialised")
    return _STATE(job)


@contextmanager
def single_threaded_children() -> Iterator[None]:
    """Processes started inside inherit ``LP_NUM_THREADS=1`` and ``OMP_NUM_THREADS=1``; this
    process's own environment is restored on exit."""
    saved = {name: os.environ.get(name) for name in _CHILD_THREADS}
    os.environ.update({name: "1" for name in saved})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def spawn_map(
    factory: Callable[..., WorkerState],
    args: tuple,
    jobs: Iterable[Any],
    workers: int,
    *,
    ordered: bool,
) -> Iterator[Any]:
    """Results of ``factory(*args)(job)`` for every job, computed in ``workers`` spawned processes.

    ``factory`` and ``args`` must be picklable (a module-level function or class and plain data):
    each worker calls ``factory(*args)`` once. ``ordered``: results in job order (``imap``);
    otherwise as they finish (``imap_unordered``, one job at a time so slow jobs do not queue).
    The workers exit normally, closing their state, when every result has been consumed; an
    exception (or a consumer that stops early) terminates them.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    context = multiprocessing.get_context("spawn")
    with single_threaded_children():
        pool = context.Pool(workers, initializer=_start, initargs=(factory, args))
    try:
        if ordered:
            yield from pool.imap(_call, jobs)
        else:
            yield from pool.imap_unordered(_call, jobs, chunksize=1)
        pool.close()  # let workers exit normally and close their renderers
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
