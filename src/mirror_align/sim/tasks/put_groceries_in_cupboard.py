"""put_groceries_in_cupboard: the nine RLBench groceries stand on the table in front of a cupboard;
put the named one into the cupboard (the other eight are distractors).

Groceries are composed from boxes and cylinders with their product colours and proportions
(tall red cracker box, small brown/pink jello boxes, soup can, flat tuna can, blue spam tin, tall
coffee can, yellow mustard bottle, white sugar box). Simplified: the cupboard is open at the top
as well as at the front, so the top-down gripper can lower the item onto its shelf. Success: the
named item stands on the shelf inside the cupboard, nothing grasped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import GROCERY_NAMES
from mirror_align.sim.keyframes import pick, place, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

CUPBOARD_HALF = (0.1, 0.2)  # outer half depth (local x, open side +x) and width, metres
SHELF_Z, WALL_H, WALL = 0.1, 0.15, 0.01  # shelf height, wall height above it, wall thickness
GRASP_BELOW_TOP = 0.012  # grasp point this far below an item's top
MIN_TCP_Z = 0.024  # keeps the fingertips off the table for flat items
RELEASE_GAP = 0.01  # item bottom above the shelf when released

# name -> (geoms with the item's bottom centre at the origin, height); the jaw closes along x,
# the narrow side of every item.
_W, _R = 'rgba="1 1 1 1"', 'rgba="0.8 0.1 0.1 1"'
GROCERIES: dict[str, tuple[list[str], float]] = {
    "crackers": (
        [
            '<geom type="box" pos="0 0 0.075" size="0.022 0.055 0.075" rgba="0.85 0.15 0.1 1"/>',
            '<geom type="box" pos="0.0225 0 0.09" size="0.0005 0.04 0.03" rgba="0.95 0.8 0.2 1" '
            'contype="0" conaffinity="0"/>',
        ],
        0.15,
    ),
    "chocolate jello": (
        ['<geom type="box" pos="0 0 0.022" size="0.02 0.04 0.022" rgba="0.42 0.24 0.1 1"/>'],
        0.044,
    ),
    "strawberry jello": (
        ['<geom type="box" pos="0 0 0.022" size="0.02 0.04 0.022" rgba="0.95 0.4 0.55 1"/>'],
        0.044,
    ),
    "soup": (
        [
            f'<geom type="cylinder" pos="0 0 0.025" size="0.03 0.025" {_R}/>',
            f'<geom type="cylinder" pos="0 0 0.0725" size="0.03 0.0225" {_W}/>',
        ],
        0.095,
    ),
    "tuna": (
        [
            '<geom type="cylinder" pos="0 0 0.016" size="0.038 0.016" rgba="0.75 0.75 0.78 1"/>',
            '<geom type="cylinder" pos="0 0 0.016" size="0.0385 0.009" rgba="0.1 0.3 0.75 1" '
            'contype="0" conaffinity="0"/>',
        ],
        0.032,
    ),
    "spam": (
        [
            '<geom type="box" pos="0 0 0.025" size="0.025 0.042 0.025" rgba="0.12 0.25 0.6 1"/>',
            '<geom type="box" pos="0 0 0.0505" size="0.024 0.041 0.0005" rgba="0.95 0.8 0.1 1" '
            'contype="0" conaffinity="0"/>',
        ],
        0.051,
    ),
    "coffee": (
        [
            '<geom type="cylinder" pos="0 0 0.055" size="0.035 0.055" rgba="0.25 0.13 0.06 1"/>',
            f'<geom type="cylinder" pos="0 0 0.1135" size="0.036 0.0035" {_R}/>',
        ],
        0.117,
    ),
    "mustard": (
        [
            '<geom type="box" pos="0 0 0.05" size="0.018 0.032 0.05" rgba="0.98 0.85 0.05 1"/>',
            '<geom type="cylinder" pos="0 0 0.11" size="0.012 0.01" rgba="0.9 0.2 0.05 1"/>',
        ],
        0.12,
    ),
    "sugar": (
        [
            f'<geom type="box" pos="0 0 0.06" size="0.022 0.038 0.06" {_W}/>',
            '<geom type="box" pos="0 0 0.03" size="0.0225 0.0385 0.012" rgba="0.2 0.45 0.85 1" '
            'contype="0" conaffinity="0"/>',
        ],
        0.12,
    ),
}


def _slug(item: str) -> str:
    return item.replace(" ", "_")


@dataclass
class GroceriesLayout:
    cupboard_xy: np.ndarray  # [2] m
    cupboard_yaw: float  # rad; the open front faces (cos yaw, sin yaw, 0)
    item_xy: dict[str, np.ndarray]  # grocery -> xy [2]
    item_yaw: dict[str, float]  # grocery -> rad
    target: str  # grocery name


def _cupboard_xml(layout: GroceriesLayout) -> str:
    x, y = layout.cupboard_xy
    hx, hy = CUPBOARD_HALF
    wz = SHELF_Z + WALL_H / 2
    geoms = [
        f'<geom type="box" pos="0 0 {SHELF_Z / 2}" size="{hx} {hy} {SHELF_Z / 2}"/>',
        f'<geom type="box" pos="-{hx - WALL / 2} 0 {wz}" size="{WALL / 2} {hy} {WALL_H / 2}"/>',
        f'<geom type="box" pos="0 {hy - WALL / 2} {wz}" size="{hx} {WALL / 2} {WALL_H / 2}"/>',
        f'<geom type="box" pos="0 -{hy - WALL / 2} {wz}" size="{hx} {WALL / 2} {WALL_H / 2}"/>',
    ]
    inside_h = 0.06
    return f"""    <body name="cupboard" pos="{x} {y} 0" euler="0 0 {layout.cupboard_yaw}">
{chr(10).join("      " + g.replace("<geom ", '<geom material="cupboard" ') for g in geoms)}
      <site name="cupboard_inside" type="box" pos="{WALL / 2} 0 {SHELF_Z + inside_h}" size="{hx - WALL} {hy - WALL} {inside_h}"/>
      <site name="cupboard_slot" pos="{WALL / 2} 0 {SHELF_Z}"/>
    </body>"""


def _item_xml(layout: GroceriesLayout, item: str) -> str:
    x, y = layout.item_xy[item]
    geoms, top = GROCERIES[item]
    name = _slug(item)
    return f"""    <body name="{name}" pos="{x} {y} 0" euler="0 0 {layout.item_yaw[item]}">
      <freejoint/>
      <inertial pos="0 0 {top / 2}" mass="0.1" diaginertia="1e-4 1e-4 1e-4"/>
{chr(10).join("      " + g for g in geoms)}
      <site name="grasp_{name}" pos="0 0 {top - GRASP_BELOW_TOP}"/>
    </body>"""


class PutGroceriesInCupboard(Task):
    name = "put_groceries_in_cupboard"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> GroceriesLayout:
        (cupboard_xy,) = sample_positions(
            rng, 1, low=(-0.3, -0.06), high=(-0.26, 0.06), min_distance=0
        )
        order = [GROCERY_NAMES[i] for i in rng.permutation(len(GROCERY_NAMES))]
        xy = sample_positions(
            rng, len(order), low=(-0.07, -0.36), high=(0.32, 0.36), min_distance=0.13
        )
        layout = GroceriesLayout(
            cupboard_xy=cupboard_xy,
            cupboard_yaw=float(rng.uniform(-0.2, 0.2)),
            item_xy=dict(zip(order, xy, strict=True)),
            item_yaw={g: float(rng.uniform(-np.pi, np.pi)) for g in GROCERY_NAMES},
            target=GROCERY_NAMES[variation],
        )
        scene.add_material("cupboard", rgba=(0.93, 0.9, 0.82, 1))
        scene.add_body(_cupboard_xml(layout))
        for item in GROCERY_NAMES:
            scene.add_body(_item_xml(layout, item))
            scene.add_graspable(_slug(item), f"grasp_{_slug(item)}")
        return layout

    def success_conditions(
        self, layout: GroceriesLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite(_slug(layout.target), "cupboard_inside"), NothingGrasped(gripper)]

    def expert(self, layout: GroceriesLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        name = _slug(layout.target)
        bottom = physics.body_pos(name)
        grasp = physics.site_pos(f"grasp_{name}")
        grasp[2] = max(grasp[2], MIN_TCP_Z)
        rot = top_down(layout.item_yaw[layout.target])
        # The item keeps its pose relative to the gripper: stand it on the shelf's centre.
        slot = physics.site_pos("cupboard_slot") + [0.0, 0.0, RELEASE_GAP]
        clear = SHELF_Z + WALL_H + 0.03 - slot[2]  # carry the item's bottom over the walls
        return pick(grasp, rot, approach_height=0.1) + place(
            slot + (grasp - bottom), rot, approach_height=clear
        )
