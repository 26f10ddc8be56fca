"""Local-first training logs: ``RUN/train_log.jsonl`` plus TensorBoard event files in ``RUN/tb``.

Only rank 0 writes. On resume, lines logged after the checkpoint being resumed are dropped first,
so the loss curve continues the first run without duplicated or orphaned steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mirror_align.atomic import write_text_atomic


class RunLog:
    """Append step records to JSONL and TensorBoard."""

    def __init__(self, run_dir: str | Path, *, enabled: bool = True) -> None:
        self.path = Path(run_dir) / "train_log.jsonl"
        self.enabled = enabled
        self._tb = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tb"))

    def truncate_after(self, step: int) -> None:
        """Drop records with ``step`` > the resumed checkpoint's step (and any torn last line)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError):
                continue
        write_text_atomic(self.path, "".join(k + "\n" for k in kept))

    def write(self, step: int, values: dict[str, Any]) -> None:
        """Log ``values`` (numbers) at ``step``."""
        if not self.enabled:
            return
        record = {"step": step, **values}
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in values.items():
            if isinstance(value, (int, float)):
                self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_run_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of ``RUN/train_log.jsonl`` in order (empty when the run logged nothing)."""
    path = Path(run_dir) / "train_log.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
