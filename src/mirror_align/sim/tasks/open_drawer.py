"""open_drawer: a cabinet with bottom/middle/top drawers; open the named one (slide > 0.15 m)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.conditions import Condition, JointAbove
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import DRAWER_LEVELS
from mirror_align.sim.keyframes import facing, keyframe
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene
from mirror_align.sim.task import Task

HALF_DEPTH, HALF_WIDTH, HEIGHT = 0.11, 0.13, 0.33  # cabinet, metres (local x = drawer pull axis)
DRAWER_Z = {"bottom": 0.065, "middle": 0.165, "top": 0.265}  # drawer centre heights
HANDLE_X = HALF_DEPTH + 0.045  # handle bar centre in front of the cabinet centre
SLIDE_RANGE = 0.2
OPEN_THRESHOLD = 0.15
PULL = 0.21  # expert pulls a little beyond the limit; the planner stops at the stall


@dataclass
class DrawerLayout:
    cabinet_xy: np.ndarray  # [2] m
    yaw: float  # rad; drawers pull out along (cos yaw, sin yaw, 0)
    target: str  # "bottom" | "middle" | "top"

    @property
    def pull_direction(self) -> np.ndarray:
        return np.array([np.cos(self.yaw), np.sin(self.yaw), 0.0])


def _drawer_xml(level: str) -> str:
    z = DRAWER_Z[level]
    return f"""      <body name="drawer_{level}" pos="0 0 {z}">
        <joint name="drawer_{level}" type="slide" axis="1 0 0" range="0 {SLIDE_RANGE}" damping="2" frictionloss="0.2"/>
        <geom type="box" pos="{HALF_DEPTH - 0.01} 0 0" size="0.01 {HALF_WIDTH - 0.012} 0.045" material="drawer_front" mass="0.2"/>
        <geom type="box" pos="-0.01 0 -0.038" size="0.1 {HALF_WIDTH - 0.02} 0.005" material="drawer_inner" mass="0.1"/>
        <geom type="box" pos="-0.01 {HALF_WIDTH - 0.025} -0.005" size="0.1 0.005 0.035" material="drawer_inner" mass="0.05"/>
        <geom type="box" pos="-0.01 -{HALF_WIDTH - 0.025} -0.005" size="0.1 0.005 0.035" material="drawer_inner" mass="0.05"/>
        <geom type="box" pos="{HALF_DEPTH + 0.0175} 0.05 0" size="0.0175 0.006 0.006" material="handle" mass="0.01"/>
        <geom type="box" pos="{HALF_DEPTH + 0.0175} -0.05 0" size="0.0175 0.006 0.006" material="handle" mass="0.01"/>
        <geom type="box" pos="{HANDLE_X} 0 0" size="0.008 0.065 0.008" material="handle" mass="0.02"/>
        <site name="handle_{level}" pos="{HANDLE_X} 0 0"/>
      </body>"""


def _cabinet_xml(layout: DrawerLayout) -> str:
    x, y = layout.cabinet_xy
    wall = 0.02
    dividers = "\n".join(
        f'      <geom type="box" pos="0 0 {z}" size="{HALF_DEPTH} {HALF_WIDTH} 0.006" material="cabinet"/>'
        for z in (0.115, 0.215)
    )
    return f"""    <body name="cabinet" pos="{x} {y} 0" euler="0 0 {layout.yaw}">
      <geom type="box" pos="0 0 {wall / 2}" size="{HALF_DEPTH} {HALF_WIDTH} {wall / 2}" material="cabinet"/>
      <geom type="box" pos="0 0 {HEIGHT - wall / 2}" size="{HALF_DEPTH} {HALF_WIDTH} {wall / 2}" material="cabinet"/>
      <geom type="box" pos="0 {HALF_WIDTH - wall / 2} {HEIGHT / 2}" size="{HALF_DEPTH} {wall / 2} {HEIGHT / 2}" material="cabinet"/>
      <geom type="box" pos="0 -{HALF_WIDTH - wall / 2} {HEIGHT / 2}" size="{HALF_DEPTH} {wall / 2} {HEIGHT / 2}" material="cabinet"/>
      <geom type="box" pos="-{HALF_DEPTH - wall / 2} 0 {HEIGHT / 2}" size="{wall / 2} {HALF_WIDTH} {HEIGHT / 2}" material="cabinet"/>
{dividers}
{chr(10).join(_drawer_xml(level) for level in DRAWER_LEVELS)}
    </body>"""


class OpenDrawer(Task):
    name = "open_drawer"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> DrawerLayout:
        layout = DrawerLayout(
            cabinet_xy=rng.uniform([-0.2, -0.2], [0.05, 0.2]),
            yaw=float(rng.uniform(-0.45, 0.45)),
            target=DRAWER_LEVELS[variation],
        )
        scene.add_material("cabinet", rgba=(0.78, 0.72, 0.62, 1))
        scene.add_material("drawer_front", rgba=(0.55, 0.42, 0.3, 1))
        scene.add_material("drawer_inner", rgba=(0.7, 0.6, 0.48, 1))
        scene.add_material("handle", rgba=(0.15, 0.15, 0.17, 1))
        scene.add_body(_cabinet_xml(layout))
        for i, level in enumerate(DRAWER_LEVELS):
            scene.exclude_contact("cabinet", f"drawer_{level}")
            scene.add_graspable(f"drawer_{level}", f"handle_{level}")
            for other in DRAWER_LEVELS[i + 1 :]:
                scene.exclude_contact(f"drawer_{level}", f"drawer_{other}")
        return layout

    def success_conditions(
        self, layout: DrawerLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [JointAbove(f"drawer_{layout.target}", OPEN_THRESHOLD)]

    def expert(self, layout: DrawerLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        handle = physics.site_pos(f"handle_{layout.target}")
        out = layout.pull_direction
        grip = facing(-out, finger_axis=(0.0, 0.0, 1.0))
        return [
            keyframe(handle + 0.12 * out, grip, gripper_open=True, ignore_collisions=False),
            keyframe(handle, grip, gripper_open=False, ignore_collisions=True),
            keyframe(handle + PULL * out, grip, gripper_open=False, ignore_collisions=True),
        ]
