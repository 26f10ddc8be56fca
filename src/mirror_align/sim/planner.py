"""Keyframe execution: one env step moves the gripper to one keyframe, then actuates the fingers.

The mocap target follows a straight line (via a safe approach height when ``ignore_collisions`` is
0) with slerped orientation at bounded linear and angular speed. A motion blocked by contact is
detected as a stall (no progress while the target is ahead, or the target far ahead) and ends
early, before the drive can push the gripper through thin geometry. An invalid or
unreachable keyframe is reported as a failure reason; nothing here raises for bad actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mirror_align.sim.constants import CONTROL_SUBSTEPS, WORKSPACE_BOUNDS
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.physics import Physics, mujoco
from mirror_align.sim.transforms import quat_angle, slerp


@dataclass(frozen=True)
class MotionLimits:
    linear_speed: float = 0.6  # m/s of the target along the path
    angular_speed: float = 2.5  # rad/s of the target orientation
    safe_height: float = 0.38  # m; height of the approach leg when ignore_collisions == 0
    settle_time: float = 0.4  # s allowed after the target arrives
    position_tolerance: float = 0.004  # m; arrival when the TCP is this close ...
    rotation_tolerance: float = 0.03  # rad; ... and this well aligned
    stall_window: int = 8  # control steps over which progress is measured
    stall_progress: float = 0.0015  # m; less motion than this over the window ...
    stall_lag: float = 0.008  # m; ... while the target is further than this is a stall
    max_lag: float = 0.04  # m; a target this far ahead is blocked (free motion lags ~0.02 m)
    finger_time: float = 0.5  # s allowed for the fingers to open or close


@dataclass
class Outcome:
    """Result of one keyframe: ``failure_reason`` is None unless the keyframe was rejected or the
    simulation diverged while executing it."""

    failure_reason: str | None = None
    stalled: bool = False
    grasped: str | None = None


def validate_action(action: dict) -> tuple[np.ndarray, np.ndarray, bool, bool] | str:
    """Parse an action dict; returns (position [3], unit quat xyzw [4], open, ignore) or a reason."""
    try:
        pos = np.asarray(action["position"], dtype=np.float64).reshape(3)
        rot = np.asarray(action["rotation"], dtype=np.float64).reshape(4)
        grip = float(np.asarray(action["gripper_open"]).reshape(()))
        ignore = float(np.asarray(action["ignore_collisions"]).reshape(()))
    except (KeyError, TypeError, ValueError) as err:
        return f"invalid keyframe: {err}"
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(rot))):
        return "invalid keyframe: non-finite position or rotation"
    norm = np.linalg.norm(rot)
    if norm < 1e-6:
        return "invalid keyframe: zero quaternion"
    if grip not in (0.0, 1.0) or ignore not in (0.0, 1.0):
        return "invalid keyframe: gripper_open and ignore_collisions must be 0 or 1"
    lo, hi = WORKSPACE_BOUNDS[:, 0] - 1e-6, WORKSPACE_BOUNDS[:, 1] + 1e-6
    if np.any(pos < lo) or np.any(pos > hi):
        return f"unreachable: position {np.round(pos, 3).tolist()} outside WORKSPACE_BOUNDS"
    return pos, rot / norm, grip == 1.0, ignore == 1.0


class Planner:
    """Drives one scene's gripper; ``on_control_step`` runs after every control step."""

    def __init__(
        self,
        physics: Physics,
        gripper: Gripper,
        on_control_step: Callable[[], None],
        limits: MotionLimits | None = None,
    ) -> None:
        self.physics, self.gripper, self.on_control_step = physics, gripper, on_control_step
        self.limits = limits or MotionLimits()
        self.control_dt = CONTROL_SUBSTEPS * physics.model.opt.timestep

    def _step(self) -> None:
        mujoco.mj_step(self.physics.model, self.physics.data, nstep=CONTROL_SUBSTEPS)
        self.on_control_step()

    def execute(self, action: dict) -> Outcome:
        parsed = validate_action(action)
        if isinstance(parsed, str):
            return Outcome(failure_reason=parsed)
        target, quat, want_open, ignore = parsed
        outcome = Outcome()
        resets_before = self._instability_resets()
        outcome.stalled = self._move(target, quat, ignore=ignore)
        if want_open != self.gripper.is_open:
            outcome.grasped = self._actuate(want_open=want_open)
        if self._instability_resets() > resets_before:
            # MuJoCo silently resets a diverged simulation to its initial state, which would let
            # an episode go on from a scene that never happened.
            outcome.failure_reason = "simulation unstable: MuJoCo reset the diverged state"
        return outcome

    def _instability_resets(self) -> int:
        kinds = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL)
        kinds += (mujoco.mjtWarning.mjWARN_BADQACC,)
        return sum(int(self.physics.data.warning[k].number) for k in kinds)

    def _waypoints(
        self, start: np.ndarray, target: np.ndarray, *, ignore: bool
    ) -> list[np.ndarray]:
        if ignore or np.linalg.norm(target[:2] - start[:2]) < 0.02:
            return [start, target]
        z = max(self.limits.safe_height, start[2], target[2])
        pts = [start]
        if z - start[2] > 1e-3:
            pts.append(np.array([start[0], start[1], z]))
        pts.append(np.array([target[0], target[1], z]))
        if z - target[2] > 1e-3:
            pts.append(target)
        else:
            pts[-1] = target
        return pts

    def _move(self, target: np.ndarray, quat: np.ndarray, *, ignore: bool) -> bool:
        """Track the path; returns True if the motion stalled against contact."""
        lim = self.limits
        start, q0 = self.gripper.pose()
        pts = self._waypoints(start, target, ignore=ignore)
        seg = np.array([np.linalg.norm(b - a) for a, b in zip(pts[:-1], pts[1:], strict=True)])
        length = float(seg.sum())
        duration = max(length / lim.linear_speed, quat_angle(q0, quat) / lim.angular_speed)
        n_path = int(np.ceil(duration / self.control_dt))
        n_settle = int(np.ceil(lim.settle_time / self.control_dt))
        history: list[np.ndarray] = []
        for k in range(1, n_path + n_settle + 1):
            s = min(1.0, k / max(n_path, 1))
            self.gripper.set_target(_along(pts, seg, s * length), slerp(q0, quat, s))
            self._step()
            pos, cur_q = self.gripper.pose()
            history.append(pos)
            lag = float(np.linalg.norm(self.gripper.target_position() - pos))
            arrived = (
                lag < lim.position_tolerance and quat_angle(cur_q, quat) < lim.rotation_tolerance
            )
            if k >= n_path and arrived:
                return False
            if len(history) > lim.stall_window or lag > lim.max_lag:
                back = history[max(0, len(history) - 1 - lim.stall_window)]
                moved = float(np.linalg.norm(history[-1] - back))
                blocked = moved < lim.stall_progress and lag > lim.stall_lag
                if blocked or lag > lim.max_lag:
                    # Stop pushing: hold where the gripper is.
                    self.gripper.set_target(pos, cur_q)
                    self._step()
                    return True
        return False

    def _actuate(self, *, want_open: bool) -> str | None:
        grasped = None
        if want_open:
            self.gripper.release()
        self.gripper.command_open(is_open=want_open)
        steps = int(np.ceil(self.limits.finger_time / self.control_dt))
        for k in range(steps):
            self._step()
            if k > 3 and self.gripper.finger_speed() < 1e-3:
                break
        if not want_open:
            grasped = self.gripper.try_grasp()
        return grasped


def _along(pts: list[np.ndarray], seg: np.ndarray, dist: float) -> np.ndarray:
    """Point at arc length ``dist`` along the polyline ``pts``."""
    for i, seg_len in enumerate(seg):
        if dist <= seg_len or i == len(seg) - 1:
            t = 0.0 if seg_len < 1e-12 else min(1.0, dist / seg_len)
            return pts[i] + t * (pts[i + 1] - pts[i])
        dist -= seg_len
    return pts[-1]
