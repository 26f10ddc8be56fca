"""MirrorBench: RLBench-style keyframe tasks in MuJoCo (see docs/interfaces.md).

Importing this package has no side effects: it does not import mujoco or gymnasium, sets no
environment variable and registers nothing. :func:`make_env` imports the env module, which gets
mujoco from :func:`mirror_align.headless.import_mujoco`: headless GL is set up (and checked) just
before mujoco is imported. For
``gymnasium.make("MirrorBench/<task>-v0")`` call :func:`register_gym_envs` once first.
"""

from __future__ import annotations

import numpy as np

from mirror_align.sim.constants import CAMERAS, MAX_KEYFRAMES, WORKSPACE_BOUNDS
from mirror_align.sim.registry import (
    TASK_NAMES,
    get_task,
    implemented_tasks,
    instruction_id,
    instruction_table,
    is_implemented,
    make_env,
    register_gym_envs,
)


def action_to_array(action: dict) -> np.ndarray:
    """Action dict -> float32 [9]: position (3), rotation xyzw (4), gripper_open, ignore_collisions."""
    return np.concatenate(
        [
            np.asarray(action["position"], dtype=np.float32).reshape(3),
            np.asarray(action["rotation"], dtype=np.float32).reshape(4),
            [float(action["gripper_open"]), float(action["ignore_collisions"])],
        ]
    ).astype(np.float32)


def array_to_action(array: np.ndarray) -> dict:
    """float32 [9] -> action dict (flags rounded to 0/1)."""
    a = np.asarray(array, dtype=np.float32).reshape(9)
    return {
        "position": a[0:3].copy(),
        "rotation": a[3:7].copy(),
        "gripper_open": int(a[7] > 0.5),
        "ignore_collisions": int(a[8] > 0.5),
    }


__all__ = [
    "CAMERAS",
    "MAX_KEYFRAMES",
    "TASK_NAMES",
    "WORKSPACE_BOUNDS",
    "action_to_array",
    "array_to_action",
    "get_task",
    "implemented_tasks",
    "instruction_id",
    "instruction_table",
    "is_implemented",
    "make_env",
    "register_gym_envs",
]
