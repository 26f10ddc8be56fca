"""The benchmark scripts still build their models: each one's cheapest mode runs for real.

Benchmarks print ratios and are never timed here; this only catches an API change that would
break them silently (bench_contention's worker once called a removed model signature).
"""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_contention_worker_runs_a_training_step():
    for model in ("ee", "mn"):
        out = subprocess.run(
            [sys.executable, str(BENCH / "bench_contention.py"), "--worker", model,
             "--seconds", "0.2", "--threads", "1", "--preset", "tiny", "--batch", "2"],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        assert json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"] > 0
