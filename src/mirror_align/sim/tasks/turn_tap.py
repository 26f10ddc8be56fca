"""turn_tap: a basin tap with a left and a right valve handle; turn the named one by 90 degrees.

"Left" and "right" are the robot's (world +y is the robot's left; the front camera, facing the
robot, shows the left handle on the right of its image). Each handle turns on a vertical hinge
(0 .. 110 degrees, counter-clockwise seen from above); success is that handle's hinge at
>= 1.57 rad, as in RLBench. Simplifications: the handles are round knobs with a short tee on top
instead of RLBench's levers, so a gripper brushing past does not swing them round by accident; the
expert grasps the knob from above (attach-on-grasp) and turns it by rotating the wrist about the
hinge axis. The other handle is the distractor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.conditions import Condition, JointAbove
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import keyframe, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene
from mirror_align.sim.task import Task

SIDES = ["left", "right"]  # variation order (instructions.py)
HANDLE_Y = {"left": 0.12, "right": -0.12}  # handle hinge offset along the tap's local y, metres
POST_TOP = 0.085  # hinge height (top of the handle post)
HUB_RADIUS, HUB_HALF = 0.027, 0.016  # round knob: a side push goes through the hinge axis
TEE_HALF = (0.024, 0.006, 0.009)  # tee bar on top of the knob (along the handle's x)
TURN_RANGE = 1.92  # rad, hinge upper limit
TURNED = 1.57  # rad, success threshold
TURN_BY = 1.78  # rad the expert turns the wrist (a little past the threshold, short of the limit)
TCP_ABOVE_HUB = 0.004  # m the TCP sits above the hub centre so the fingertips clear the post


@dataclass
class TapLayout:
    tap_xy: np.ndarray  # [2] m, centre of the tap base
    yaw: float  # rad; the tap's local y (left handle direction) is (-sin yaw, cos yaw, 0)
    target: str  # "left" | "right"


def _handle_xml(side: str) -> str:
    tx, ty, tz = TEE_HALF
    return f"""      <geom type="cylinder" pos="0 {HANDLE_Y[side]} {POST_TOP / 2}" size="0.013 {POST_TOP / 2}" material="tap_chrome"/>
      <body name="handle_{side}" pos="0 {HANDLE_Y[side]} {POST_TOP}">
        <joint name="tap_{side}" type="hinge" axis="0 0 1" range="0 {TURN_RANGE}" damping="0.3" frictionloss="0.3" armature="0.01"/>
        <geom type="cylinder" pos="0 0 {HUB_HALF}" size="{HUB_RADIUS} {HUB_HALF}" material="tap_handle" mass="0.03" priority="1" friction="0.05 0 0"/>
        <geom type="box" pos="0 0 {2 * HUB_HALF + tz}" size="{tx} {ty} {tz}" material="tap_tee" mass="0.01" priority="1" friction="0.05 0 0"/>
        <site name="hub_{side}" pos="0 0 {HUB_HALF}"/>
      </body>"""


def _tap_xml(layout: TapLayout) -> str:
    x, y = layout.tap_xy
    # The spout arches over towards the robot (local -x) from a column between the handles.
    return f"""    <body name="tap" pos="{x} {y} 0" euler="0 0 {layout.yaw}">
      <geom type="box" pos="0 0 0.01" size="0.055 0.17 0.01" material="tap_base"/>
      <geom type="cylinder" pos="0 0 0.09" size="0.018 0.09" material="tap_chrome"/>
      <geom type="box" pos="-0.05 0 0.17" size="0.05 0.013 0.012" material="tap_chrome"/>
      <geom type="cylinder" pos="-0.095 0 0.15" size="0.013 0.02" material="tap_chrome"/>
{chr(10).join(_handle_xml(side) for side in SIDES)}
    </body>"""


class TurnTap(Task):
    name = "turn_tap"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> TapLayout:
        layout = TapLayout(
            tap_xy=rng.uniform([-0.12, -0.18], [0.15, 0.18]),
            yaw=float(rng.uniform(-0.5, 0.5)),
            target=SIDES[variation],
        )
        scene.add_material("tap_base", rgba=(0.92, 0.92, 0.9, 1))
        scene.add_material("tap_chrome", rgba=(0.6, 0.63, 0.68, 1))
        scene.add_material("tap_handle", rgba=(0.2, 0.22, 0.26, 1))
        scene.add_material("tap_tee", rgba=(0.85, 0.85, 0.88, 1))
        scene.add_body(_tap_xml(layout))
        for side in SIDES:
            scene.exclude_contact("tap", f"handle_{side}")
            scene.add_graspable(f"handle_{side}", f"hub_{side}")
        return layout

    def success_conditions(
        self, layout: TapLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [JointAbove(f"tap_{layout.target}", TURNED)]

    def expert(self, layout: TapLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        hub = physics.site_pos(f"hub_{layout.target}")
        tee = physics.body_mat(f"handle_{layout.target}")[:, 0]
        # Jaw across the tee, as a hand would hold it; the fingers close on the knob.
        yaw = float(np.arctan2(tee[1], tee[0])) + np.pi / 2
        grasp = hub + [0.0, 0.0, TCP_ABOVE_HUB]
        above = grasp + [0.0, 0.0, 0.1]
        turned = top_down(yaw + TURN_BY)
        return [
            keyframe(above, top_down(yaw), gripper_open=True, ignore_collisions=False),
            keyframe(grasp, top_down(yaw), gripper_open=False, ignore_collisions=True),
            keyframe(grasp, turned, gripper_open=True, ignore_collisions=True),
            keyframe(above, turned, gripper_open=True, ignore_collisions=True),
        ]
