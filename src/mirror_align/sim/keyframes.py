"""Building blocks for scripted experts: action dicts and gripper orientations.

An expert returns a list of action dicts (the env's action format). Compose them from
:func:`keyframe` and the helpers below instead of writing numbers into arrays.
"""

from __future__ import annotations

import numpy as np

from mirror_align.sim.gripper import TIP_OFFSET
from mirror_align.sim.transforms import mat_to_quat


def keyframe(
    position: np.ndarray, rotation: np.ndarray, *, gripper_open: bool, ignore_collisions: bool
) -> dict:
    """One action: position float32 [3] m (the TCP), rotation float32 [4] xyzw, flags as int 0/1.

    The flags are keyword-only so every call reads what it does: ``gripper_open`` is the finger
    state once the pose is reached (closing attaches a graspable, opening releases it);
    ``ignore_collisions=False`` lets the planner route over obstacles (docs/adding_a_task.md)."""
    return {
        "position": np.asarray(position, dtype=np.float32).reshape(3),
        "rotation": np.asarray(rotation, dtype=np.float32).reshape(4),
        "gripper_open": int(bool(gripper_open)),
        "ignore_collisions": int(bool(ignore_collisions)),
    }


def top_down(yaw: float = 0.0) -> np.ndarray:
    """Gripper pointing down (world -z) with the fingers closing along world (cos yaw, sin yaw, 0).
    Returns xyzw [4]."""
    c, s = np.cos(yaw), np.sin(yaw)
    # columns: gripper x, y, z in world
    y = np.array([c, s, 0.0])
    z = np.array([0.0, 0.0, -1.0])
    return mat_to_quat(np.column_stack([np.cross(y, z), y, z]))


def facing(approach: np.ndarray, finger_axis: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Gripper pointing along ``approach`` (e.g. horizontal into a handle) with the fingers
    closing along ``finger_axis`` (made orthogonal to it). Returns xyzw [4]."""
    z = np.asarray(approach, dtype=np.float64)
    z /= np.linalg.norm(z)
    y = np.asarray(finger_axis, dtype=np.float64)
    y = y - z * np.dot(y, z)
    y /= np.linalg.norm(y)
    return mat_to_quat(np.column_stack([np.cross(y, z), y, z]))


def pick(position: np.ndarray, rotation: np.ndarray, approach_height: float = 0.1) -> list[dict]:
    """Approach above, descend and close (attach-on-grasp), lift straight up."""
    above = np.asarray(position, dtype=np.float64) + [0.0, 0.0, approach_height]
    return [
        keyframe(above, rotation, gripper_open=True, ignore_collisions=False),
        keyframe(position, rotation, gripper_open=False, ignore_collisions=True),
        keyframe(above, rotation, gripper_open=False, ignore_collisions=True),
    ]


def place(position: np.ndarray, rotation: np.ndarray, approach_height: float = 0.1) -> list[dict]:
    """Carry above ``position``, descend, open (release), retreat straight up."""
    above = np.asarray(position, dtype=np.float64) + [0.0, 0.0, approach_height]
    return [
        keyframe(above, rotation, gripper_open=False, ignore_collisions=False),
        keyframe(position, rotation, gripper_open=True, ignore_collisions=True),
        keyframe(above, rotation, gripper_open=True, ignore_collisions=True),
    ]


def tcp_for_tip(point: np.ndarray) -> np.ndarray:
    """TCP position [3] that puts the fingertips of a top-down gripper at ``point``."""
    return np.asarray(point, dtype=np.float64) + [0.0, 0.0, TIP_OFFSET]


def press(top: np.ndarray, depth: float, rotation: np.ndarray | None = None) -> list[dict]:
    """Close the fingers above a button's top surface point ``top``, push the fingertips ``depth``
    metres below it (the planner stops at the stall when the button bottoms out), come back up."""
    rot = top_down() if rotation is None else rotation
    contact = tcp_for_tip(top)
    above = contact + [0.0, 0.0, 0.06]
    return [
        keyframe(above, rot, gripper_open=False, ignore_collisions=False),
        keyframe(contact - [0.0, 0.0, depth], rot, gripper_open=False, ignore_collisions=True),
        keyframe(above, rot, gripper_open=False, ignore_collisions=True),
    ]
