"""The metrics log: one JSON object per line, appended by every evaluation.

Each line holds ``run, step, split, task, metric, value, seed``. Reports are built only from these
files. Lines are appended with flush + fsync; a torn final line (a crash mid-write) is closed by
the next append and skipped on reading and counted, never silently merged into a number.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from mirror_align.errors import UserInputError

FIELDS = ("run", "step", "split", "task", "metric", "value", "seed")


@dataclass(frozen=True)
class MetricRecord:
    """One measured number. ``task`` is a task name or ``"all"``; ``seed`` the evaluation seed."""

    run: str
    step: int
    split: str
    task: str
    metric: str
    value: float
    seed: int


def append_metrics(path: str | Path, records: Iterable[MetricRecord]) -> None:
    """Append ``records`` to the JSONL file at ``path`` (created if missing), one line each.

    A torn last line (a kill mid-append leaves no final newline) is first closed with a newline,
    so it stays one skipped torn line and cannot swallow the first new record (issue 14.8). The
    whole batch is written by one ``write``, then flushed and fsynced. This is the only writer of
    metrics files: evaluation, probing and tests all append through it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(asdict(r)) + "\n" for r in records)
    with open(path, "ab") as handle:
        if handle.tell() > 0 and not _ends_with_newline(path):
            lines = "\n" + lines
        handle.write(lines.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def read_metrics(path: str | Path) -> tuple[list[MetricRecord], int]:
    """All records of a metrics file and the number of torn lines skipped."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"metrics: {path} not found")
    records, torn = [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            torn += 1
            continue
        missing = [f for f in FIELDS if f not in raw]
        if missing:
            raise UserInputError(
                f"metrics: {path} line {number} lacks field(s) {', '.join(missing)}"
            )
        records.append(MetricRecord(**{f: raw[f] for f in FIELDS}))
    return records, torn
