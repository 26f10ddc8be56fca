"""open_drawer: a cabinet with bottom/middle/top drawers; open the named one (slide > 0.15 m)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.assets import HALF_WIDTH, Box, ChestStyle, add_chest
from mirror_align.sim.conditions import Condition, JointAbove
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import DRAWER_LEVELS
from mirror_align.sim.keyframes import facing, keyframe
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene
from mirror_align.sim.task import Task

OPEN_THRESHOLD = 0.15  # m of slide that counts as open
PULL = 0.21  # expert pulls a little beyond the limit; the planner stops at the stall
STANDOFF = 0.12  # m in front of the handle before grasping it

# An open tray behind each front (floor and two sides, set masses: a light drawer).
CABINET = ChestStyle(
    body="cabinet",
    materials={
        "carcass": ("cabinet", (0.78, 0.72, 0.62, 1)),
        "front": ("drawer_front", (0.55, 0.42, 0.3, 1)),
        "inner": ("drawer_inner", (0.7, 0.6, 0.48, 1)),
        "handle": ("handle", (0.15, 0.15, 0.17, 1)),
    },
    tray=(
        Box((-0.01, 0, -0.038), (0.1, HALF_WIDTH - 0.02, 0.005), mass=0.1),
        Box((-0.01, HALF_WIDTH - 0.025, -0.005), (0.1, 0.005, 0.035), mass=0.05),
        Box((-0.01, -(HALF_WIDTH - 0.025), -0.005), (0.1, 0.005, 0.035), mass=0.05),
    ),
    hardware_mass=(0.2, 0.01, 0.02),
)


@dataclass
class DrawerLayout:
    cabinet_xy: np.ndarray  # [2] m
    yaw: float  # rad; drawers pull out along (cos yaw, sin yaw, 0)
    target: str  # "bottom" | "middle" | "top"

    @property
    def pull_direction(self) -> np.ndarray:
        return np.array([np.cos(self.yaw), np.sin(self.yaw), 0.0])


class OpenDrawer(Task):
    name = "open_drawer"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> DrawerLayout:
        layout = DrawerLayout(
            cabinet_xy=rng.uniform([-0.2, -0.2], [0.05, 0.2]),
            yaw=float(rng.uniform(-0.45, 0.45)),
            target=DRAWER_LEVELS[variation],
        )
        add_chest(scene, CABINET, layout.cabinet_xy, layout.yaw)
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
            keyframe(handle + STANDOFF * out, grip, gripper_open=True, ignore_collisions=False),
            keyframe(handle, grip, gripper_open=False, ignore_collisions=True),
            keyframe(handle + PULL * out, grip, gripper_open=False, ignore_collisions=True),
        ]
