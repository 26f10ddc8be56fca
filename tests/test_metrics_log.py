"""The JSONL metrics log."""

import pytest

from mirror_align.errors import UserInputError
from mirror_align.eval.metrics_log import MetricRecord, append_metrics, read_metrics


def test_append_and_read_back(tmp_path):
    path = tmp_path / "metrics.jsonl"
    first = MetricRecord("ee", 10, "test", "open_drawer", "success", 0.5, 0)
    second = MetricRecord("ee", 10, "test", "all", "success", 0.25, 1)
    append_metrics(path, [first])
    append_metrics(path, [second])
    records, torn = read_metrics(path)
    assert records == [first, second] and torn == 0


def test_torn_last_line_is_counted_not_read(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_metrics(path, [MetricRecord("au", 1, "val", "all", "accuracy", 0.1, 0)])
    with open(path, "a") as handle:
        handle.write('{"run": "au", "step": 2, "spl')
    records, torn = read_metrics(path)
    assert len(records) == 1 and torn == 1


def test_missing_field_is_named(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"run": "x", "step": 1}\n')
    with pytest.raises(UserInputError, match="line 1 lacks field"):
        read_metrics(path)
