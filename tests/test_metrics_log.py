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


def test_append_after_a_torn_line_keeps_every_new_record(tmp_path):
    """Issue 14.8: a kill mid-append leaves a torn last line; the next append must not glue its
    first record onto it (the reader would then drop that record as torn)."""
    path = tmp_path / "metrics.jsonl"
    kept = [MetricRecord("ee", 5, "test", t, "success_rate", 0.5, 0) for t in ("a", "b", "c")]
    append_metrics(path, kept)
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # the third line, cut in the middle
        handle.truncate(size - 20)
    new = [MetricRecord("ee", 6, "test", t, "success_rate", 0.75, 1) for t in ("a", "all")]
    append_metrics(path, new)
    records, torn = read_metrics(path)
    assert records == kept[:2] + new and torn == 1
    append_metrics(path, [kept[2]])  # a clean tail gets no extra blank line
    assert read_metrics(path) == (kept[:2] + new + [kept[2]], 1)
    assert "\n\n" not in path.read_text()


def test_append_to_an_empty_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.touch()
    record = MetricRecord("au", 1, "val", "all", "recognition_accuracy", 0.1, 0)
    append_metrics(path, [record])
    assert path.read_text().count("\n") == 1 and read_metrics(path) == ([record], 0)
