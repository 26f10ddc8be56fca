"""The report's EE diagnostics (report/keyframes.py): offline keyframe table and curve, failure
counts per task and the standard errors, computed from metrics.jsonl records."""

from __future__ import annotations

import math

import pytest

from mirror_align.eval.failure_analysis import FAILURE_KINDS
from mirror_align.eval.metrics_log import MetricRecord, append_metrics
from mirror_align.eval.offline import by_keyframe_metric
from mirror_align.pipeline.manifest import RunSpec, write_manifest
from mirror_align.report import keyframes as diagnostics
from mirror_align.report.inputs import load_inputs
from mirror_align.report.tables import Missing, Table

TASKS = ("open_drawer", "push_buttons")
# run -> task -> eval seed -> (successes, failures by kind) of 20 rollouts
ROLLOUTS = {
    "ee_s0": {"open_drawer": {0: (10, {"position": 10}), 1: (8, {"position": 7, "timeout": 5})},
              "push_buttons": {0: (20, {}), 1: (19, {"planner": 1})}},
    "ee_s1": {"open_drawer": {0: (12, {"rotation": 8}), 1: (12, {"gripper": 8})},
              "push_buttons": {0: (18, {"collision": 2}), 1: (20, {})}},
}  # fmt: skip


def _write(root, name, step=100):
    records = []
    for task, by_seed in ROLLOUTS.get(name, {}).items():
        for seed, (ok, kinds) in by_seed.items():
            records.append(MetricRecord(name, step, "test", task, "success_rate", ok / 20, seed))
            records.append(MetricRecord(name, step, "test", task, "rollout_episodes", 20, seed))
            for kind in FAILURE_KINDS:
                count = kinds.get(kind, 0)
                records.append(
                    MetricRecord(name, step, "test", task, f"failures_{kind}", count, seed)
                )
    for task, cm in (("open_drawer", 3.0), ("push_buttons", 1.0), ("all", 2.0)):
        records.append(MetricRecord(name, step, "test", task, "position_error_cm_median", cm, 0))
        records.append(MetricRecord(name, step, "test", task, "gripper_accuracy", 0.9, 0))
        records.append(MetricRecord(name, step, "test", task, "stage1_position_within_5cm", 0.4, 0))
    records.append(
        MetricRecord(name, step, "test", "all", by_keyframe_metric("keyframe_count", 0), 7, 0)
    )
    records.append(
        MetricRecord(
            name, step, "test", "all", by_keyframe_metric("position_error_cm_median", 0), 4.0, 0
        )
    )
    for s, cm in ((50, 6.0), (100, 2.0)):
        records.append(MetricRecord(name, s, "val", "all", "position_error_cm_median", cm, 0))
    append_metrics(root / "runs" / name / "metrics.jsonl", records)


@pytest.fixture
def folder(tmp_path):
    runs = [
        RunSpec(f"ee_s{s}", "ee", s, "main", "instruction", 0.1, "linear", False) for s in (0, 1)
    ]
    write_manifest(tmp_path, "quick", [0, 1], runs)
    for name in ("ee_s0", "ee_s1"):
        _write(tmp_path, name)
    return load_inputs(tmp_path)


def test_failure_counts_per_task_sum_over_seeds(folder):
    table = diagnostics.failure_table(folder)
    assert isinstance(table, Table)
    rows = {(r[0], r[1]): r[2:] for r in table.rows}
    # open_drawer EE: 80 rollouts, 80 - (10 + 8 + 12 + 12) = 38 failed.
    od = dict(zip(["rollouts", "failed", *FAILURE_KINDS], rows[("open_drawer", "EE")], strict=True))
    assert od == {"rollouts": "80", "failed": "38", "position": "17", "rotation": "8",
                  "gripper": "8", "collision": "0", "planner": "0", "timeout": "5"}  # fmt: skip
    assert rows[("push_buttons", "EE")][:2] == ["80", "3"]


def test_standard_errors_of_the_mean_success(folder):
    table = diagnostics.precision_table(folder)
    assert isinstance(table, Table)
    row = table.rows[0]
    means, ses = [], []
    for name in ("ee_s0", "ee_s1"):
        rates = [sum(ok for ok, _ in ROLLOUTS[name][t].values()) / 40 for t in TASKS]
        means.append(sum(rates) / 2)
        ses.append(math.sqrt(sum(p * (1 - p) / 40 for p in rates)) / 2)
    se_rollouts = math.sqrt(sum(s**2 for s in ses)) / 2
    spread = math.sqrt(sum((m - sum(means) / 2) ** 2 for m in means) / 1) / math.sqrt(2)
    assert row[:3] == ["EE", "2", "20"]
    assert row[3] == f"{100 * sum(means) / 2:.1f}"
    assert row[4] == f"{100 * se_rollouts:.1f}" and row[5] == f"{100 * spread:.1f}"


def test_keyframe_table_index_table_and_curve(folder):
    table = diagnostics.keyframe_table(folder)
    rows = {(r[0], r[1]): r for r in table.rows}
    assert rows[("open_drawer", "EE")][2] == "3.0" and rows[("all", "EE")][2] == "2.0"
    header = dict(zip(table.headers, rows[("all", "EE")], strict=True))
    assert header["gripper %"] == "90.0" and header["stage 1 ≤5 cm %"] == "40"
    index = diagnostics.keyframe_index_table(folder)
    assert index.rows[0][:4] == ["0", "EE", "7", "4.0"]
    assert diagnostics.keyframe_curve(folder)[:4] == b"\x89PNG"


def test_no_sections_for_a_folder_without_diagnostics(tmp_path):
    runs = [RunSpec("ee_s0", "ee", 0, "main", "instruction", 0.1, "linear", False)]
    write_manifest(tmp_path, "quick", [0], runs)
    append_metrics(
        tmp_path / "runs" / "ee_s0" / "metrics.jsonl",
        [MetricRecord("ee_s0", 1, "test", "all", "success_rate", 0.5, 0)],
    )
    inputs = load_inputs(tmp_path)
    assert diagnostics.sections(inputs, {}, lambda a, t: None) == []
    assert isinstance(diagnostics.failure_table(inputs), Missing)
