"""``timings.json`` across interruptions: Ctrl-C, a hard kill (SIGKILL) and resuming (issue 15)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from mirror_align.pipeline.timings import StageTimes

KILLED = """
import sys, time
from pathlib import Path
from mirror_align.pipeline.timings import StageTimes
times = StageTimes(Path(sys.argv[1]), heartbeat_s=0.1)
with times.stage("train mn_s0"):
    print("started", flush=True)
    time.sleep(60)
"""


def test_a_hard_kill_keeps_the_stage_in_progress_up_to_one_heartbeat(tmp_path):
    path = tmp_path / "timings.json"
    path.write_text(json.dumps({"data": 12.5, "total": 12.5}))  # an earlier invocation's stage
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "started"
    time.sleep(1.5)
    child.send_signal(signal.SIGKILL)  # no finally block, no atexit: only the heartbeat wrote
    child.wait(timeout=30)
    killed = json.loads(path.read_text())
    assert killed["data"] == 12.5
    assert 1.0 <= killed["train mn_s0"] <= 30.0
    assert killed["total"] == pytest.approx(killed["data"] + killed["train mn_s0"], abs=0.11)

    resumed = StageTimes(path, heartbeat_s=0.1)  # the next invocation continues the stage
    with resumed.stage("train mn_s0"):
        time.sleep(0.3)
    after = json.loads(path.read_text())
    assert killed["train mn_s0"] + 0.3 <= after["train mn_s0"] <= killed["train mn_s0"] + 5.0


def test_an_exception_keeps_its_time_and_a_redone_stage_replaces_it(tmp_path):
    path = tmp_path / "timings.json"
    times = StageTimes(path, heartbeat_s=0.05)
    with pytest.raises(KeyboardInterrupt), times.stage("evaluate ee_s0"):
        time.sleep(0.2)
        raise KeyboardInterrupt
    first = json.loads(path.read_text())["evaluate ee_s0"]
    assert first >= 0.2
    for _ in range(2):
        with times.stage("report", redone=True):
            time.sleep(0.3)
    again = json.loads(path.read_text())
    assert 0.3 <= again["report"] < 0.6  # the latest render, not the sum of the two
    assert again["evaluate ee_s0"] == pytest.approx(first, abs=0.05)
