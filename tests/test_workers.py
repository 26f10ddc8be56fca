"""`mirror_align.workers.spawn_map`: real spawned processes, one state per worker."""

import os
from pathlib import Path

import pytest

from mirror_align.workers import spawn_map


class Tagger:
    """A worker state: answers (job, pid, its OMP_NUM_THREADS) and leaves a file when closed."""

    def __init__(self, folder: str, fail_on: int) -> None:
        self.folder, self.fail_on = Path(folder), fail_on

    def __call__(self, job: int) -> tuple[int, int, str | None]:
        if job == self.fail_on:
            raise ValueError(f"job {job} failed")
        return job, os.getpid(), os.environ.get("OMP_NUM_THREADS")

    def close(self) -> None:
        (self.folder / f"closed_{os.getpid()}").touch()


def test_spawn_map_orders_closes_and_runs_workers_single_threaded(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    results = list(spawn_map(Tagger, (str(tmp_path), -1), range(12), 2, ordered=True))
    assert [job for job, _, _ in results] == list(range(12))
    assert {pid for _, pid, _ in results} <= {int(p.name.split("_")[1]) for p in tmp_path.iterdir()}
    assert all(threads == "1" for _, _, threads in results)
    assert os.environ["OMP_NUM_THREADS"] == "7"  # the parent's environment is restored
    unordered = spawn_map(Tagger, (str(tmp_path), -1), range(6), 2, ordered=False)
    assert sorted(job for job, _, _ in unordered) == list(range(6))


def test_spawn_map_raises_a_jobs_error_and_stops_the_workers(tmp_path):
    with pytest.raises(ValueError, match="job 3 failed"):
        list(spawn_map(Tagger, (str(tmp_path), 3), range(8), 2, ordered=True))
    with pytest.raises(ValueError, match="workers must be >= 1"):
        list(spawn_map(Tagger, (str(tmp_path), 3), range(8), 0, ordered=True))
