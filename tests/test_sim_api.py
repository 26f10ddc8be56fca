"""MirrorBench API without physics: task list, instruction table, action conversion, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from mirror_align.errors import UserInputError
from mirror_align.sim import (
    CAMERAS,
    TASK_NAMES,
    WORKSPACE_BOUNDS,
    action_to_array,
    array_to_action,
    get_task,
    implemented_tasks,
    instruction_id,
    instruction_table,
    register_gym_envs,
)


def test_task_names_and_instruction_table() -> None:
    assert len(TASK_NAMES) == 18 and len(set(TASK_NAMES)) == 18
    rows = instruction_table()
    assert len(rows) == 249
    assert [r[0] for r in rows] == list(range(249))
    # tasks in TASK_NAMES order, variations ascending from 0
    order = [r[1] for r in rows]
    assert sorted(set(order), key=order.index) == TASK_NAMES
    for name in TASK_NAMES:
        vs = [r[2] for r in rows if r[1] == name]
        assert vs == list(range(len(vs)))
    assert rows[0][3] == "open the bottom drawer"
    assert instruction_id("open_drawer", 2) == 2
    push = {r[2]: r[3] for r in rows if r[1] == "push_buttons"}
    assert len(push) == 50
    assert push[0] == "push the red button"
    assert push[1] == "push the red button, then push the maroon button"
    assert push[2] == "push the red button, then push the maroon button, then push the blue button"
    stack = {r[2]: r[3] for r in rows if r[1] == "stack_blocks"}
    assert stack[0] == "stack 2 red blocks" and stack[59] == "stack 4 white blocks"


def test_constants() -> None:
    assert CAMERAS == ("front", "left_shoulder", "right_shoulder", "wrist")
    np.testing.assert_allclose(WORKSPACE_BOUNDS, [[-0.45, 0.45], [-0.45, 0.45], [0.0, 0.6]])


def test_action_array_round_trip() -> None:
    action = {
        "position": np.array([0.1, -0.2, 0.3], np.float32),
        "rotation": np.array([1.0, 0.0, 0.0, 0.0], np.float32),
        "gripper_open": 1,
        "ignore_collisions": 0,
    }
    arr = action_to_array(action)
    assert arr.dtype == np.float32 and arr.shape == (9,)
    back = array_to_action(arr)
    np.testing.assert_array_equal(back["position"], action["position"])
    np.testing.assert_array_equal(back["rotation"], action["rotation"])
    assert back["gripper_open"] == 1 and back["ignore_collisions"] == 0


def test_unknown_and_unimplemented_tasks_raise_clearly() -> None:
    with pytest.raises(UserInputError, match="valid tasks"):
        get_task("no_such_task")
    missing = [n for n in TASK_NAMES if n not in implemented_tasks()]
    if missing:
        with pytest.raises(UserInputError, match="not implemented yet"):
            get_task(missing[0])
    with pytest.raises(UserInputError, match="out of range"):
        get_task("open_drawer").instruction(3)


def test_gym_ids_registered_by_the_explicit_call() -> None:
    register_gym_envs()
    register_gym_envs()  # repeated calls are no-ops
    for name in TASK_NAMES:
        assert f"MirrorBench/{name}-v0" in gym.registry
