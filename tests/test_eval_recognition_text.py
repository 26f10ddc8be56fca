"""Recognition scored by exact id and by text, the duplicate-text ceiling and standard errors."""

import math

import numpy as np

from mirror_align.eval.recognition import RecognitionResult, table_ceiling, text_ceiling

# Ids 1 and 2 read the same (like push_buttons' duplicate variations).
TEXTS = ["open the drawer", "push the red button", "push the red button", "push the blue button"]
TASK_OF_ID = ["open_drawer", "push_buttons", "push_buttons", "push_buttons"]


def result() -> RecognitionResult:
    task = [
        "open_drawer",
        "open_drawer",
        "push_buttons",
        "push_buttons",
        "push_buttons",
        "push_buttons",
    ]
    truth = np.array([0, 0, 1, 2, 2, 3])
    predicted = np.array([0, 3, 1, 1, 2, 1])
    return RecognitionResult(np.arange(6), task, truth, predicted, TEXTS)


def test_exact_and_text_accuracy_per_task():
    r = result()
    assert r.per_task == {"open_drawer": 0.5, "push_buttons": 0.5}
    # The third push_buttons clip predicts id 1 for truth 2: same text, so right by text.
    assert r.per_task_text == {"open_drawer": 0.5, "push_buttons": 0.75}
    assert math.isclose(r.mean, 0.5) and math.isclose(r.mean_text, 0.625)


def test_ceiling_counts_one_id_per_text():
    r = result()
    # push_buttons: group {1, 2} has clips 1, 2, 2 -> at most the 2 clips of id 2; id 3 one clip.
    assert r.ceiling == {"open_drawer": 1.0, "push_buttons": 0.75}
    assert text_ceiling(["a"], np.array([1]), TEXTS) == {"a": 1.0}
    # Uniform over ids: open_drawer 1/1, push_buttons 2 texts / 3 ids.
    assert math.isclose(table_ceiling(TEXTS, TASK_OF_ID), (1 + 2 / 3) / 2)


def test_standard_error_of_the_mean_over_tasks():
    r = result()
    expected = math.sqrt(0.5 * 0.5 / 2 + 0.5 * 0.5 / 4) / 2
    assert math.isclose(r.stderr, expected)
    expected_text = math.sqrt(0.5 * 0.5 / 2 + 0.75 * 0.25 / 4) / 2
    assert math.isclose(r.stderr_text, expected_text)


def test_evaluate_records_and_summary_carry_both_scores():
    from mirror_align.constants import (
        RECOGNITION,
        RECOGNITION_CEILING,
        RECOGNITION_CLIPS,
        RECOGNITION_SE,
        RECOGNITION_TEXT,
    )
    from mirror_align.eval.evaluate import EvaluationSummary, _recognition_records, format_summary

    summary = EvaluationSummary("run", 5, "test")
    records = {(r.task, r.metric): r.value for r in _recognition_records(summary, result())}
    assert records["push_buttons", RECOGNITION] == 0.5
    assert records["push_buttons", RECOGNITION_TEXT] == 0.75
    assert records["push_buttons", RECOGNITION_CEILING] == 0.75
    assert math.isclose(records["all", RECOGNITION_TEXT], 0.625)
    assert math.isclose(records["all", RECOGNITION_SE], result().stderr)
    # The clips each accuracy was measured on (the report's per-task standard errors).
    assert records["open_drawer", RECOGNITION_CLIPS] == 2
    assert records["push_buttons", RECOGNITION_CLIPS] == 4
    assert records["all", RECOGNITION_CLIPS] == 6
    text = format_summary(summary)
    all_row = text.splitlines()[-1].split()
    # all: exact 50.0 ± se, by text 62.5 ± se, ceiling 87.5
    assert all_row[:8] == ["all", "50.0", "±", f"{100 * result().stderr:.1f}", "62.5", "±",
                           f"{100 * result().stderr_text:.1f}", "87.5"]  # fmt: skip
