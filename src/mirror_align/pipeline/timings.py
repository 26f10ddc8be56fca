"""``DIR/timings.json``: seconds per stage, kept across interrupted and resumed invocations.

A stage's entry is the time spent doing its work, summed over every invocation that worked on it:
a training run interrupted at step 600 and resumed to step 1000 records both parts, and a stage
found complete (skipped) keeps the time recorded when it ran. The report is re-rendered from
scratch each time, so its entry is the latest render. ``total`` is the sum of the stage entries.
The file is rewritten after every stage, so an interruption (Ctrl-C, an exception) keeps what was
measured up to it, and every ``heartbeat_s`` seconds during a stage, so that a hard kill (SIGKILL,
the machine going down) loses at most that much of the stage in progress.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mirror_align.atomic import write_json_atomic
from mirror_align.errors import UserInputError

TOTAL = "total"
# Seconds between writes of the stage in progress: a hard kill loses at most this much.
HEARTBEAT_S = 30.0


class StageTimes:
    """The stage seconds of ``path`` (read if it exists), updated by :meth:`stage`."""

    def __init__(self, path: Path, *, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.path = path
        self.seconds: dict[str, float] = _read(path)
        self.heartbeat_s = heartbeat_s
        self._lock = threading.Lock()  # the heartbeat thread and the stage's end both write

    @contextmanager
    def stage(self, name: str, *, redone: bool = False) -> Iterator[None]:
        """Time the block as stage ``name`` and save the file, even when the block raises, and
        every ``heartbeat_s`` seconds while it runs.

        The time is added to what earlier invocations recorded, unless ``redone`` (the stage is
        done again from scratch every time, as the report is): then it replaces it.
        """
        before = 0.0 if redone else self.seconds.get(name, 0.0)
        started = time.perf_counter()

        def record() -> None:
            with self._lock:
                self.seconds[name] = before + time.perf_counter() - started
                self.save()

        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_s):
                record()

        thread = threading.Thread(target=beat, name=f"timings {name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            record()

    def rounded(self) -> dict[str, float]:
        """Stage -> seconds rounded to 0.1 s, then ``total`` (their sum): the file's content."""
        data = {k: round(v, 1) for k, v in self.seconds.items()}
        data[TOTAL] = round(sum(self.seconds.values()), 1)
        return data

    def save(self) -> None:
        """Write :meth:`rounded` to the file atomically."""
        write_json_atomic(self.path, self.rounded())


def _read(path: Path) -> dict[str, float]:
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserInputError(
            f"{path}: not valid JSON ({error}); delete it to start afresh"
        ) from error
    if not isinstance(raw, dict) or not all(isinstance(v, int | float) for v in raw.values()):
        raise UserInputError(f"{path}: expected an object of stage -> seconds")
    return {str(k): float(v) for k, v in raw.items() if k != TOTAL}
