"""Slow lane: every task's scripted expert clears the bar of docs/adding_a_task.md.

The bar: at 64 px, the expert succeeds on at least 98 % of 50 seeds spread over the task's
variations (seed ``s`` runs variation ``s % variation_count``). This runs the same machinery as
``mirror-align validate`` (through the CLI, so the command is exercised too) and reads its JSON
report. 5-50 s per task (6 min for all 18 on 2 shared cores); run with ``make test-slow``.
"""

from __future__ import annotations

import json

import pytest

from mirror_align.cli import main
from mirror_align.sim import TASK_NAMES, get_task, is_implemented

EPISODES = 50  # seeds per task
IMAGE_SIZE = 64  # pixels, as in the bar
BAR = 0.98  # minimum success rate (docs/adding_a_task.md, section 4)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASK_NAMES)
def test_expert_clears_the_bar(task: str, tmp_path) -> None:
    if not is_implemented(task):
        pytest.skip(f"{task} not implemented yet")
    report = tmp_path / "validate.json"
    argv = [
        "validate", "--tasks", task, "--episodes", str(EPISODES),
        "--image-size", str(IMAGE_SIZE), "--workers", "1", "--out", str(report),
    ]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(report.read_text())
    result = data["tasks"][task]
    assert data["image_size"] == IMAGE_SIZE and result["episodes"] == EPISODES
    # The seeds cover every variation (or 50 distinct ones when a task has more).
    variations = {e["variation"] for e in data["episodes"]}
    assert len(variations) == min(EPISODES, get_task(task).variation_count)
    assert result["success_rate"] >= BAR, (
        f"{task}: expert succeeded on {result['successes']}/{EPISODES} seeds at {IMAGE_SIZE} px "
        f"(bar {BAR:.0%}); failures (seed, variation, reason): {result['failed']}"
    )
