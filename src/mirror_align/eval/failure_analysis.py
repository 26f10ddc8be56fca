"""Why a rollout failed: the first keyframe that left the expert's plan, and how (issue 11.8).

The policy never sees simulator state; only the evaluator does, to diagnose. For each rollout the
evaluator asks the task's scripted expert for its keyframes in the *same scene* (``env.reset`` with
the rollout's seed and variation, then ``env.expert_keyframes()``, which reads the initial layout
and changes nothing). Keyframe ``k`` of the policy is compared with keyframe ``k`` of that plan:

* **position**: 3D distance above :data:`POSITION_TOLERANCE_CM` (2 cm: the keyframe-noise replay
  of DESIGN.md §6 / issue 11 dropped expert success to 45% at sigma = 2 cm per axis);
* **rotation**: geodesic angle above :data:`ROTATION_TOLERANCE_DEGREES` (10 degrees: twice the
  5-degree token bin, and yaw noise of 10 degrees left 88% success);
* **gripper** / **collision**: the open or ignore-collisions flag differs from the expert's.

The first keyframe with any of these is the *first bad keyframe*; its kind is the first of
position, rotation, gripper, collision that it breaks (the detail string lists all of them). When
every keyframe the policy took agrees with the plan (or the plan ran out first), the failure is the
env's: **planner** when the env rejected a keyframe (``info["failure_reason"]``: unreachable pose,
a collision it was told not to ignore, an unstable simulation), else **timeout** (the step budget,
25 keyframes, ran out). So "position" means "this was the first keyframe where the policy's target
was more than 2 cm from the expert's", not a proof that position caused the failure; and a task
that several orders of keyframes solve (the expert scripts one) can count a different valid order
as a deviation. Both limits are stated wherever these counts are shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

FAILURE_KINDS: tuple[str, ...] = (
    "position",
    "rotation",
    "gripper",
    "collision",
    "planner",
    "timeout",
)
# metrics.jsonl names of the rollout counts, per task and evaluation seed (eval/evaluate.py).
ROLLOUT_EPISODES = "rollout_episodes"
POSITION_TOLERANCE_CM = 2.0
ROTATION_TOLERANCE_DEGREES = 10.0


def failure_metric(kind: str) -> str:
    """The metric name of the count of failed rollouts of ``kind`` (``failures_<kind>``)."""
    return f"failures_{kind}"


@dataclass(frozen=True)
class Diagnosis:
    """The first keyframe (0-based step of the rollout) that went wrong and how; ``keyframe`` is
    -1 for planner/timeout failures whose keyframes all agreed with the expert's plan."""

    keyframe: int
    kind: str  # one of FAILURE_KINDS
    detail: str


def _angle_degrees(q1: np.ndarray, q2: np.ndarray) -> float:
    a = np.asarray(q1, np.float64) / np.linalg.norm(q1)
    b = np.asarray(q2, np.float64) / np.linalg.norm(q2)
    return float(np.degrees(2.0 * np.arccos(min(1.0, abs(float(a @ b))))))


def keyframe_deviations(predicted: np.ndarray, expert: np.ndarray) -> list[str]:
    """The kinds (in :data:`FAILURE_KINDS` order) on which action ``predicted [9]`` leaves the
    expert's ``expert [9]`` beyond the tolerances, each with its size, e.g. ``["position 3.1 cm"]``."""
    out = []
    distance = float(np.linalg.norm(predicted[:3] - expert[:3])) * 100.0
    if distance > POSITION_TOLERANCE_CM:
        out.append(f"position {distance:.1f} cm")
    angle = _angle_degrees(predicted[3:7], expert[3:7])
    if angle > ROTATION_TOLERANCE_DEGREES:
        out.append(f"rotation {angle:.0f} deg")
    if (predicted[7] > 0.5) != (expert[7] > 0.5):
        out.append("gripper flag")
    if (predicted[8] > 0.5) != (expert[8] > 0.5):
        out.append("collision flag")
    return out


def diagnose(predicted: np.ndarray, expert: np.ndarray, env_failure: str | None) -> Diagnosis:
    """Diagnose a failed rollout.

    Args:
        predicted: ``[S, 9]`` the actions the policy took, in the env's frame.
        expert: ``[M, 9]`` the scripted expert's keyframes for the same scene.
        env_failure: the env's ``failure_reason`` of the last step, or None (no rejection).
    """
    predicted = np.asarray(predicted, np.float64).reshape(-1, 9)
    expert = np.asarray(expert, np.float64).reshape(-1, 9)
    for k in range(min(len(predicted), len(expert))):
        kinds = keyframe_deviations(predicted[k], expert[k])
        if kinds:
            kind = kinds[0].split()[0]
            return Diagnosis(k, kind, f"keyframe {k}: " + ", ".join(kinds))
    if env_failure:
        return Diagnosis(-1, "planner", f"keyframe {len(predicted) - 1} rejected: {env_failure}")
    return Diagnosis(
        -1,
        "timeout",
        f"{len(predicted)} keyframes agreed with the expert's {len(expert)} but did not solve it",
    )


def failure_counts(
    records: Iterable[Mapping[str, object]] | Iterable[object],
) -> dict[str, dict[int, dict[str, int]]]:
    """``{task: {eval_seed: {kind: count}}}`` over failed rollouts (every kind present, 0 if none).

    ``records`` are rollout records (dataclasses or their dicts) with ``task``, ``eval_seed``,
    ``success`` and ``failure_kind``.
    """
    table: dict[str, dict[int, dict[str, int]]] = {}
    for record in records:
        r = record if isinstance(record, Mapping) else vars(record)
        counts = table.setdefault(str(r["task"]), {}).setdefault(
            int(r["eval_seed"]), dict.fromkeys(FAILURE_KINDS, 0)
        )
        if not r["success"] and r.get("failure_kind") in counts:
            counts[str(r["failure_kind"])] += 1
    return table
