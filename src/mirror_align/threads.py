"""CPU threading for torch processes on a machine that runs other work too (issue 14.10).

The cause of the collapse: torch's OpenMP pool (GNU libgomp in the pip wheels; Intel's in MKL
builds) spin-waits at every parallel-region barrier. Alone, that saves microseconds; beside any
other busy process, the spinning threads burn the CPU share that the thread they wait for needs,
and a 2-thread EE step ran at 0.27x of its unloaded speed beside one other 2-thread job (0.59x
with ``OMP_WAIT_POLICY=PASSIVE``). The wait policy is read once, when the OpenMP runtime loads with
torch, so :func:`configure_cpu_threads` must run before ``import torch``: the CLI entry point calls
it first, and worker processes inherit the environment it sets.

Thread-count rule (``train.threads=0`` and every command without its own ``--threads``):
``min(usable CPUs, MAX_DEFAULT_THREADS)`` where usable CPUs honours the process's CPU affinity
(taskset, cgroup cpusets) rather than the machine's core count. The cap: the models' per-step
matrices are small (batch 32, widths <= 512), so past a few threads each step is dominated by
fork/join cost, and every extra thread is one more that a barrier waits for when the machine is
shared. Independent runs are better run as parallel 1-thread processes.
``benchmarks/bench_contention.py`` measures the effect.
"""

from __future__ import annotations

import os
import sys

MAX_DEFAULT_THREADS = 8

# Set only where the user has not: a value in the environment always wins.
#   OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning (libgomp and Intel).
#   KMP_BLOCKTIME=0: Intel OpenMP's own spin time before sleeping, in ms (ignored by libgomp).
WAIT_SETTINGS: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def default_threads(cpus: int | None = None) -> int:
    """Torch threads when none are asked for: ``min(cpus, MAX_DEFAULT_THREADS)``, at least 1."""
    return max(1, min(usable_cpus() if cpus is None else int(cpus), MAX_DEFAULT_THREADS))


def configure_cpu_threads() -> dict[str, str]:
    """Set the OpenMP wait policy and the default thread count before torch is imported.

    Sets ``OMP_WAIT_POLICY=PASSIVE``, ``KMP_BLOCKTIME=0`` and ``OMP_NUM_THREADS`` =
    :func:`default_threads` in ``os.environ`` where unset (child processes inherit them) and
    returns what it set. If torch is already imported the wait policy cannot take effect in this
    process any more; the variables are still set for its children.
    """
    wanted = {**WAIT_SETTINGS, "OMP_NUM_THREADS": str(default_threads())}
    applied = {name: value for name, value in wanted.items() if name not in os.environ}
    os.environ.update(applied)
    return applied


def torch_already_imported() -> bool:
    """True when ``configure_cpu_threads`` came too late for this process's own OpenMP pool."""
    return "torch" in sys.modules
