"""Rollout failure analysis (issue 11.8) against the real scripted expert, and the standard errors
of success rates (issue 11.9)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mirror_align.eval.failure_analysis import (
    FAILURE_KINDS,
    diagnose,
    failure_counts,
    keyframe_deviations,
)
from mirror_align.eval.precision import binomial_se, mean_rate_se, pooled_rate


@pytest.fixture(scope="module")
def expert_plan():
    """The scripted expert's keyframes ``[M, 9]`` for one real open_drawer scene."""
    from mirror_align.sim import action_to_array, make_env

    env = make_env("open_drawer", image_size=32)
    try:
        env.reset(seed=20_000_000, options={"variation": 1})
        return np.array([action_to_array(a) for a in env.expert_keyframes()])
    finally:
        env.close()


def _rotate_z(action: np.ndarray, degrees: float) -> np.ndarray:
    from mirror_align.data.geometry import quat_multiply

    half = np.deg2rad(degrees) / 2
    out = action.copy()
    out[3:7] = quat_multiply(np.array([0.0, 0.0, np.sin(half), np.cos(half)]), action[3:7])
    return out


def test_first_wrong_keyframe_and_its_kind(expert_plan):
    assert len(expert_plan) >= 3
    policy = expert_plan.copy()
    policy[1, 2] += 0.05  # keyframe 1 is 5 cm too high
    policy[2, 7] = 1 - policy[2, 7]  # keyframe 2's gripper flag is wrong too, but later
    found = diagnose(policy, expert_plan, None)
    assert (found.keyframe, found.kind) == (1, "position")
    assert "position 5.0 cm" in found.detail

    policy = expert_plan.copy()
    policy[0] = _rotate_z(policy[0], 30.0)
    assert diagnose(policy, expert_plan, None).kind == "rotation"
    policy[0] = _rotate_z(expert_plan[0], 6.0)  # within the 10-degree tolerance
    policy[0, 8] = 1 - policy[0, 8]
    assert diagnose(policy, expert_plan, None).kind == "collision"

    policy = expert_plan.copy()
    policy[0, :3] += 0.01  # 1.7 cm: within tolerance
    policy[2, 7] = 1 - policy[2, 7]
    assert (
        diagnose(policy, expert_plan, None).keyframe,
        diagnose(policy, expert_plan, None).kind,
    ) == (2, "gripper")
    assert keyframe_deviations(expert_plan[0], expert_plan[0]) == []


def test_failures_on_the_expert_path_are_the_planners_or_a_timeout(expert_plan):
    rejected = diagnose(expert_plan[:2], expert_plan, "target pose unreachable")
    assert (rejected.keyframe, rejected.kind) == (-1, "planner")
    assert "unreachable" in rejected.detail
    # The expert's keyframes all taken, then 20 more: the plan ran out, the step budget too.
    longer = np.concatenate([expert_plan, np.tile(expert_plan[-1], (20, 1))])
    assert diagnose(longer, expert_plan, None).kind == "timeout"


def test_failure_counts_per_task_and_seed():
    records = [
        {"task": "a", "eval_seed": 0, "success": False, "failure_kind": "position"},
        {"task": "a", "eval_seed": 0, "success": False, "failure_kind": "position"},
        {"task": "a", "eval_seed": 0, "success": True, "failure_kind": ""},
        {"task": "a", "eval_seed": 1, "success": False, "failure_kind": "timeout"},
        {"task": "b", "eval_seed": 0, "success": True, "failure_kind": ""},
    ]
    counts = failure_counts(records)
    assert counts["a"][0]["position"] == 2 and sum(counts["a"][0].values()) == 2
    assert counts["a"][1]["timeout"] == 1
    assert counts["b"][0] == dict.fromkeys(FAILURE_KINDS, 0)


def test_standard_errors():
    p, n = pooled_rate({0: 0.5, 1: 0.25}, {0: 20, 1: 20})
    assert (p, n) == (0.375, 40)
    assert binomial_se(0.5, 40) == pytest.approx(math.sqrt(0.25 / 40))
    assert binomial_se(0.0, 40) == 0.0 and math.isnan(binomial_se(0.5, 0))
    # The mean of two tasks: sqrt(se1^2 + se2^2) / 2.
    expected = math.sqrt(0.25 / 40 + 0.09 / 40) / 2
    assert mean_rate_se([(0.5, 40), (0.1, 40)]) == pytest.approx(expected)
    assert math.isnan(mean_rate_se([]))
