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
