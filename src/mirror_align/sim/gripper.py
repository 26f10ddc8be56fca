"""The floating parallel-jaw gripper: MJCF and run-time control.

A mocap body pulls the gripper through a weld, so contacts can block it (the planner detects the
stall). Two finger slide joints are driven by position actuators. The gripper frame's origin is
the tool centre point (TCP) between the fingers; +z points from the palm to the fingertips and
the fingers close along y. Grasping is RLBench-style attach-on-grasp: every graspable body has one
inactive weld to the gripper; on close, if its grasp point is between the fingers, the current
relative pose is written into the weld and the weld is activated. Opening releases it.
"""

from __future__ import annotations

import numpy as np

from mirror_align.sim.constants import DOWN_QUAT, HOME_POSITION
from mirror_align.sim.physics import Physics, mujoco
from mirror_align.sim.transforms import quat_conj, quat_mul, wxyz_to_xyzw, xyzw_to_wxyz

BODY = "gripper"
MOCAP = "gripper_mocap"
FINGERS = ("finger_left", "finger_right")
OPEN_Q = 0.04  # finger slide per side when open, metres (gap ~0.086 m)
FINGER_INNER = 0.003  # inner face offset from the centre line at q = 0
# Grasp zone in the gripper frame: |x| <= half finger width, z within the finger length.
GRASP_HALF_X = 0.02
GRASP_Z = (-0.035, 0.03)
TIP_OFFSET = 0.02  # fingertips are this far beyond the TCP along the gripper's +z


def _q(v: np.ndarray) -> str:
    return " ".join(f"{x:g}" for x in v)


def worldbody_xml() -> str:
    """Mocap target + gripper body with fingers and the wrist camera."""
    pos = _q(HOME_POSITION)
    quat = _q(xyzw_to_wxyz(DOWN_QUAT))
    return f"""    <body name="{MOCAP}" mocap="true" pos="{pos}" quat="{quat}"/>
    <body name="{BODY}" pos="{pos}" quat="{quat}" gravcomp="1">
      <freejoint name="gripper_free"/>
      <site name="tcp" pos="0 0 0"/>
      <geom name="palm" type="box" pos="0 0 -0.052" size="0.018 0.058 0.012" rgba="0.25 0.25 0.28 1" mass="0.4"/>
      <geom name="wrist" type="cylinder" pos="0 0 -0.1" size="0.03 0.036" rgba="0.85 0.85 0.88 1" mass="0.1" contype="0" conaffinity="0"/>
      <camera name="wrist" pos="-0.045 0 -0.07" xyaxes="0 1 0 1 0 0" fovy="75"/>
      <body name="{FINGERS[0]}" gravcomp="1">
        <joint name="{FINGERS[0]}" type="slide" axis="0 1 0" range="0 {OPEN_Q}" damping="4" armature="0.01"/>
        <geom type="box" pos="0 {FINGER_INNER + 0.006} -0.01" size="0.01 0.006 0.03" rgba="0.35 0.35 0.38 1" mass="0.05" friction="1.5 0.02 0.002"/>
      </body>
      <body name="{FINGERS[1]}" gravcomp="1">
        <joint name="{FINGERS[1]}" type="slide" axis="0 -1 0" range="0 {OPEN_Q}" damping="4" armature="0.01"/>
        <geom type="box" pos="0 -{FINGER_INNER + 0.006} -0.01" size="0.01 0.006 0.03" rgba="0.35 0.35 0.38 1" mass="0.05" friction="1.5 0.02 0.002"/>
      </body>
    </body>"""


def equality_xml() -> str:
    return (
        f'    <weld name="gripper_drive" body1="{MOCAP}" body2="{BODY}" '
        f'relpose="0 0 0 1 0 0 0" solref="0.02 1" solimp="0.95 0.99 0.001"/>'
    )


def actuator_xml() -> str:
    return "\n".join(
        f'    <position name="{f}" joint="{f}" kp="300" ctrlrange="0 {OPEN_Q}" forcerange="-40 40"/>'
        for f in FINGERS
    )


class Gripper:
    """Run-time handle on the gripper of one compiled scene."""

    def __init__(self, physics: Physics, graspables: dict[str, str]) -> None:
        self.physics = physics
        m = physics.model
        self._body = physics.body_id(BODY)
        self._mocap = int(m.body_mocapid[physics.body_id(MOCAP)])
        self._act = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, f) for f in FINGERS]
        self._finger_q = [m.jnt_qposadr[physics.joint_id(f)] for f in FINGERS]
        self._finger_v = [m.jnt_dofadr[physics.joint_id(f)] for f in FINGERS]
        # body name -> (weld equality id, grasp site id)
        self._welds = {
            b: (
                mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_EQUALITY, f"grasp:{b}"),
                physics.site_id(site),
            )
            for b, site in graspables.items()
        }
        self.is_open = True
        self.command_open(is_open=True)
        self.physics.data.qpos[self._finger_q] = OPEN_Q

    # --- state -------------------------------------------------------------------------------
    def pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP world position [3] and orientation xyzw [4] (w >= 0)."""
        d = self.physics.data
        q = wxyz_to_xyzw(d.xquat[self._body])
        return d.xpos[self._body].copy(), (-q if q[3] < 0 else q)

    def finger_opening(self) -> float:
        """Mean finger slide, metres (0 closed, OPEN_Q open)."""
        return float(np.mean(self.physics.data.qpos[self._finger_q]))

    def finger_speed(self) -> float:
        return float(np.max(np.abs(self.physics.data.qvel[self._finger_v])))

    def grasped(self) -> list[str]:
        """Names of the bodies currently attached."""
        return [b for b, (eq, _) in self._welds.items() if self.physics.data.eq_active[eq]]

    # --- commands ----------------------------------------------------------------------------
    def set_target(self, position: np.ndarray, quat_xyzw: np.ndarray) -> None:
        d = self.physics.data
        d.mocap_pos[self._mocap] = position
        d.mocap_quat[self._mocap] = xyzw_to_wxyz(quat_xyzw)

    def target_position(self) -> np.ndarray:
        """Current mocap target position [3]."""
        return self.physics.data.mocap_pos[self._mocap].copy()

    def command_open(self, *, is_open: bool) -> None:
        self.is_open = bool(is_open)
        self.physics.data.ctrl[self._act] = OPEN_Q if is_open else 0.0

    def try_grasp(self) -> str | None:
        """Attach the graspable whose grasp point is between the fingers (nearest to the TCP)."""
        d = self.physics.data
        pos, quat = self.pose()
        rot = d.xmat[self._body].reshape(3, 3)
        half_gap = FINGER_INNER + self.finger_opening() + 0.008
        best, best_dist = None, np.inf
        for body, (_, site) in self._welds.items():
            local = rot.T @ (d.site_xpos[site] - pos)
            inside = (
                abs(local[0]) <= GRASP_HALF_X
                and abs(local[1]) <= half_gap
                and GRASP_Z[0] <= local[2] <= GRASP_Z[1]
            )
            if inside and np.linalg.norm(local) < best_dist:
                best, best_dist = body, float(np.linalg.norm(local))
        if best is None:
            return None
        eq, _ = self._welds[best]
        obj = self.physics.body_id(best)
        # Weld data: anchor (3), pose of body2 in body1's frame (3 + quat wxyz 4), torque scale.
        rel_pos = rot.T @ (d.xpos[obj] - pos)
        rel_quat = quat_mul(
            quat_conj(wxyz_to_xyzw(d.xquat[self._body])), wxyz_to_xyzw(d.xquat[obj])
        )
        self.physics.model.eq_data[eq, 0:3] = 0.0
        self.physics.model.eq_data[eq, 3:6] = rel_pos
        self.physics.model.eq_data[eq, 6:10] = xyzw_to_wxyz(rel_quat)
        self.physics.model.eq_data[eq, 10] = 1.0
        d.eq_active[eq] = 1
        return best

    def release(self) -> None:
        for eq, _ in self._welds.values():
            self.physics.data.eq_active[eq] = 0
