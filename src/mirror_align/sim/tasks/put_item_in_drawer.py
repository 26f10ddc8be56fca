"""put_item_in_drawer: a chest of three drawers (bottom/middle/top) with a small block (the item)
lying on its top; open the named drawer and put the item into it.

As in RLBench, the expert pulls the named drawer open by its handle, lets go, picks the item off
the chest and drops it into the open drawer; success is the item's origin inside that drawer's
interior (a box site that moves with the drawer) with nothing grasped. Simplified from RLBench:
the chest and its drawers are MuJoCo boxes (no meshes), the drawers are ideal slides with a hard
stop, the item is always the same cube (RLBench's item is one fixed object too) and the grasps are
attach-on-grasp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.assets import (
    HALF_DEPTH,
    HALF_WIDTH,
    HEIGHT,
    SLIDE_RANGE,
    Box,
    ChestStyle,
    add_chest,
)
from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import DRAWER_LEVELS
from mirror_align.sim.keyframes import facing, keyframe, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene
from mirror_align.sim.task import Task

# The drawer's box, drawer frame (chest geometry: mirror_align.sim.assets), metres.
FLOOR_Z = -0.038  # drawer floor centre below the drawer origin (5 mm half thickness)
FLOOR_TOP = FLOOR_Z + 0.005
SIDE_Y = HALF_WIDTH - 0.025  # drawer side walls (5 mm half thickness)
BOX_BACK_X, BOX_FRONT_X = -0.1, HALF_DEPTH - 0.02  # drawer box extent behind its front panel
RIM_Z = 0.03  # top of the box walls
PULL = 0.21  # the expert pulls a little past the stop; the planner stops at the stall
STANDOFF = 0.12  # m in front of the handle before grasping it
RETREAT = 0.06  # m the open gripper backs off the released handle before rising
ITEM_HALF = 0.02  # cube half side
GRIP_ABOVE_CENTRE = 0.004  # TCP above the item's centre (fingertips clear the surface below)
ABOVE_ITEM = 0.07  # m above the grasp before descending onto the item
DROP = 0.006  # release the item this far above its resting height in the drawer
# Where the item goes, drawer frame: the middle of the part of the box outside the chest when open.
PLACE_X = 0.01


def _chest_style() -> ChestStyle:
    """A closed box behind each front (floor, two sides, back; density masses) and the interior
    site the success check reads (the item's origin between the back wall and the front panel,
    between the side walls, and up to 6 cm above the floor). This task's MJCF numbers have always
    been written with 4 decimals; rounding them differently would move some by one ulp."""
    box_x, box_half = (BOX_BACK_X + BOX_FRONT_X) / 2, (BOX_FRONT_X - BOX_BACK_X) / 2
    wall_z, wall_half = (FLOOR_TOP + RIM_Z) / 2, (RIM_Z - FLOOR_TOP) / 2
    lo, hi = BOX_BACK_X + 0.01, BOX_FRONT_X
    return ChestStyle(
        body="chest",
        materials={
            "carcass": ("chest", (0.8, 0.74, 0.64, 1)),
            "front": ("chest_front", (0.52, 0.4, 0.29, 1)),
            "inner": ("chest_inner", (0.68, 0.58, 0.46, 1)),
            "handle": ("chest_handle", (0.15, 0.15, 0.17, 1)),
        },
        tray=(
            Box((box_x, 0, FLOOR_Z), (box_half, SIDE_Y + 0.005, 0.005)),
            Box((box_x, SIDE_Y, wall_z), (box_half, 0.005, wall_half)),
            Box((box_x, -SIDE_Y, wall_z), (box_half, 0.005, wall_half)),
            Box((BOX_BACK_X + 0.005, 0, wall_z), (0.005, SIDE_Y, wall_half)),
        ),
        interior=Box(((lo + hi) / 2, 0, FLOOR_TOP + RIM_Z), ((hi - lo) / 2, SIDE_Y - 0.005, RIM_Z)),
        decimals=4,
    )


CHEST = _chest_style()


@dataclass
class ItemDrawerLayout:
    chest_xy: np.ndarray  # [2] m
    yaw: float  # rad; drawers pull out along (cos yaw, sin yaw, 0)
    item_local: np.ndarray  # [2] m, item centre on the chest top in the chest frame
    item_yaw: float  # rad, world
    target: str  # "bottom" | "middle" | "top"

    @property
    def out(self) -> np.ndarray:
        """Unit pull direction [3]."""
        return np.array([np.cos(self.yaw), np.sin(self.yaw), 0.0])

    @property
    def item_xy(self) -> np.ndarray:
        """Item centre [2] in the world frame."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        x, y = self.item_local
        return self.chest_xy + np.array([c * x - s * y, s * x + c * y])


def _item_xml(layout: ItemDrawerLayout) -> str:
    x, y = layout.item_xy
    return f"""    <body name="item" pos="{x} {y} {HEIGHT + ITEM_HALF}" euler="0 0 {layout.item_yaw}">
      <freejoint/>
      <geom type="box" size="{ITEM_HALF} {ITEM_HALF} {ITEM_HALF}" material="item" mass="0.05"/>
      <site name="item_centre"/>
    </body>"""


class PutItemInDrawer(Task):
    name = "put_item_in_drawer"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> ItemDrawerLayout:
        layout = ItemDrawerLayout(
            chest_xy=rng.uniform([-0.2, -0.2], [0.02, 0.2]),
            yaw=float(rng.uniform(-0.45, 0.45)),
            # on the chest top, clear of its edges
            item_local=rng.uniform([-0.06, -0.08], [0.05, 0.08]),
            item_yaw=float(rng.uniform(-np.pi, np.pi)),
            target=DRAWER_LEVELS[variation],
        )
        add_chest(scene, CHEST, layout.chest_xy, layout.yaw)
        scene.add_material("item", rgba=(0.1, 0.35, 0.9, 1))
        scene.add_body(_item_xml(layout))
        scene.add_graspable("item", "item_centre")
        return layout

    def success_conditions(
        self, layout: ItemDrawerLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite("item", f"inside_{layout.target}"), NothingGrasped(gripper)]

    def expert(self, layout: ItemDrawerLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        out = layout.out
        handle = physics.site_pos(f"handle_{layout.target}")
        grip_handle = facing(-out, finger_axis=(0.0, 0.0, 1.0))
        released = handle + SLIDE_RANGE * out

        # Drop point: the drawer's box once open, jaw across the drawer so the fingers and the
        # item stay clear of the handles of the closed drawers above.
        drawer = physics.body_pos(f"drawer_{layout.target}")
        drop_height = FLOOR_TOP + ITEM_HALF + DROP + GRIP_ABOVE_CENTRE
        drop = drawer + (SLIDE_RANGE + PLACE_X) * out + [0.0, 0.0, drop_height]
        place_yaw = layout.yaw + np.pi / 2
        # grip two faces of the item, squared to the drawer with the smallest wrist turn
        m = physics.body_mat("item")
        item_yaw = float(np.arctan2(m[1, 0], m[0, 0]))
        pick_yaw = place_yaw + (item_yaw - place_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
        grasp = physics.body_pos("item") + [0.0, 0.0, GRIP_ABOVE_CENTRE]
        return [
            keyframe(
                handle + STANDOFF * out, grip_handle, gripper_open=True, ignore_collisions=False
            ),
            keyframe(handle, grip_handle, gripper_open=False, ignore_collisions=True),
            keyframe(handle + PULL * out, grip_handle, gripper_open=False, ignore_collisions=True),
            keyframe(released, grip_handle, gripper_open=True, ignore_collisions=True),
            keyframe(
                released + RETREAT * out, grip_handle, gripper_open=True, ignore_collisions=True
            ),
            # the safe height leaves the open fingers too low to pass over the item: come from above
            keyframe(
                grasp + [0.0, 0.0, ABOVE_ITEM],
                top_down(pick_yaw),
                gripper_open=True,
                ignore_collisions=False,
            ),
            keyframe(grasp, top_down(pick_yaw), gripper_open=False, ignore_collisions=True),
            # carried item clears the chest at the safe height; the leg comes straight down, and
            # releasing it there ends the episode (success), so no retreat follows
            keyframe(drop, top_down(place_yaw), gripper_open=True, ignore_collisions=False),
        ]
