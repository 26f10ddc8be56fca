"""put_money_in_safe: a safe with three shelves (bottom/middle/top) and a wad of banknotes on the
table; put the money on the named shelf.

Simplified from RLBench: the safe's door is already open (a static, non-colliding panel), and the
expert grips the wad from the side with a horizontal gripper (so it stays flat), carries it to the
open front of the safe and slides it onto the shelf. Success: the wad's centre inside that shelf's
compartment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.conditions import BodyInSite, Condition
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import DRAWER_LEVELS
from mirror_align.sim.keyframes import facing, keyframe
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene
from mirror_align.sim.task import Task

# Safe, in its own frame (x = out of the open front), metres.
HALF_DEPTH, HALF_WIDTH, HEIGHT, WALL = 0.1, 0.13, 0.34, 0.015
SHELF_FLOOR = {"bottom": 0.02, "middle": 0.13, "top": 0.24}  # top surface of each shelf
SHELF_THICKNESS = 0.01
# Money wad half sizes: along the gripper's approach, across the jaw, height.
MONEY_HALF = (0.022, 0.036, 0.012)
GRIP_ABOVE_CENTRE = 0.016  # TCP height above the wad's centre (keeps the palm off the surface)
INSERT_X = -0.01  # wad centre on the shelf, safe-frame x
STANDOFF = 0.13  # m between the TCP before insertion / grasp and its goal, along the approach


@dataclass
class MoneyLayout:
    safe_xy: np.ndarray  # [2] m
    safe_yaw: float  # rad; the open front faces (cos, sin, 0)
    money_xy: np.ndarray  # [2] m
    money_yaw: float  # rad; the expert approaches the wad along its local +x
    target: str  # "bottom" | "middle" | "top"

    @property
    def out(self) -> np.ndarray:
        return np.array([np.cos(self.safe_yaw), np.sin(self.safe_yaw), 0.0])


def _box(pos, size, material: str, extra: str = "") -> str:
    p = " ".join(f"{v:.4f}" for v in pos)
    s = " ".join(f"{v:.4f}" for v in size)
    return f'      <geom type="box" pos="{p}" size="{s}" material="{material}"{extra}/>'


def _safe_xml(layout: MoneyLayout, door_side: float) -> str:
    x, y = layout.safe_xy
    d, w, h, t = HALF_DEPTH, HALF_WIDTH, HEIGHT, WALL
    geoms = [
        _box((0, 0, SHELF_FLOOR["bottom"] / 2), (d, w, SHELF_FLOOR["bottom"] / 2), "safe"),
        _box((0, 0, h - t / 2), (d, w, t / 2), "safe"),
        _box((0, w - t / 2, h / 2), (d, t / 2, h / 2), "safe"),
        _box((0, -(w - t / 2), h / 2), (d, t / 2, h / 2), "safe"),
        _box((-(d - t / 2), 0, h / 2), (t / 2, w - t, h / 2), "safe_inner"),
    ]
    for level in ("middle", "top"):
        z = SHELF_FLOOR[level] - SHELF_THICKNESS / 2
        geoms.append(_box((0, 0, z), (d - t, w - t, SHELF_THICKNESS / 2), "safe_shelf"))
    # The open door: a panel hinged at the front edge, swung ~100 degrees open (decoration only).
    swing = door_side * np.radians(100.0)
    door_w = 2 * w
    hinge = np.array([d, door_side * w])
    centre = hinge + (door_w / 2) * np.array([np.sin(abs(swing)), -door_side * np.cos(swing)])
    door = (
        f'      <geom type="box" pos="{centre[0]:.4f} {centre[1]:.4f} {h / 2:.4f}" '
        f'euler="0 0 {swing:.4f}" '
        f'size="0.008 {w:.4f} {h / 2:.4f}" material="safe" contype="0" conaffinity="0"/>'
    )
    sites = "\n".join(
        f'      <site name="shelf_{level}" type="box" '
        f'pos="{-0.005:.4f} 0 {SHELF_FLOOR[level] + 0.03:.4f}" size="{d - t - 0.005:.4f} '
        f'{w - t - 0.01:.4f} 0.03"/>'
        for level in DRAWER_LEVELS
    )
    return (
        f'    <body name="safe" pos="{x} {y} 0" euler="0 0 {layout.safe_yaw}">\n'
        + "\n".join(geoms)
        + f"\n{door}\n{sites}\n    </body>"
    )


def _money_xml(layout: MoneyLayout) -> str:
    hx, hy, hz = MONEY_HALF
    x, y = layout.money_xy
    return f"""    <body name="money" pos="{x} {y} {hz}" euler="0 0 {layout.money_yaw}">
      <freejoint/>
      <geom type="box" size="{hx} {hy} {hz}" material="banknote" mass="0.05"/>
      <geom type="box" size="{hx + 0.001} 0.008 {hz + 0.001}" material="band" mass="0.001"/>
      <site name="money_grasp" pos="0 0 {hz}"/>
    </body>"""


class PutMoneyInSafe(Task):
    name = "put_money_in_safe"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> MoneyLayout:
        safe_xy = rng.uniform([-0.22, -0.12], [-0.08, 0.12])
        # The wad lies beside the safe (clear of its corners), in front of the robot's approach.
        side = float(rng.choice([-1.0, 1.0]))
        if abs(safe_xy[1] + side * 0.32) > 0.4:
            side = -side
        money_xy = np.array([rng.uniform(-0.05, 0.15), safe_xy[1] + side * rng.uniform(0.27, 0.32)])
        layout = MoneyLayout(
            safe_xy=safe_xy,
            safe_yaw=float(rng.uniform(-0.35, 0.35)),
            money_xy=money_xy,
            money_yaw=float(np.pi + rng.uniform(-0.5, 0.5)),
            target=DRAWER_LEVELS[variation],
        )
        scene.add_material("safe", rgba=(0.32, 0.34, 0.38, 1))
        scene.add_material("safe_inner", rgba=(0.62, 0.64, 0.68, 1))
        scene.add_material("safe_shelf", rgba=(0.85, 0.85, 0.82, 1))
        scene.add_material("banknote", rgba=(0.35, 0.62, 0.35, 1))
        scene.add_material("band", rgba=(0.95, 0.92, 0.8, 1))
        scene.add_body(_safe_xml(layout, door_side=-side))
        scene.add_body(_money_xml(layout))
        scene.add_graspable("money", "money_grasp")
        return layout

    def success_conditions(
        self, layout: MoneyLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite("money", f"shelf_{layout.target}")]

    def expert(self, layout: MoneyLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        money = physics.body_pos("money")
        approach = physics.body_mat("money")[:, 0] * [1.0, 1.0, 0.0]
        approach /= np.linalg.norm(approach)
        side = np.cross([0.0, 0.0, 1.0], approach)
        grip_money = facing(approach, finger_axis=side)
        grasp = money + [0.0, 0.0, GRIP_ABOVE_CENTRE]

        out = layout.out
        grip_safe = facing(-out, finger_axis=np.cross([0.0, 0.0, 1.0], out))
        safe = np.append(layout.safe_xy, 0.0)
        height = SHELF_FLOOR[layout.target] + MONEY_HALF[2] + 0.002 + GRIP_ABOVE_CENTRE
        insert = safe + INSERT_X * out + [0.0, 0.0, height]
        before = safe + (HALF_DEPTH + STANDOFF) * out + [0.0, 0.0, height]
        return [
            keyframe(
                grasp - STANDOFF * approach, grip_money, gripper_open=True, ignore_collisions=False
            ),
            keyframe(grasp, grip_money, gripper_open=False, ignore_collisions=True),
            keyframe(
                grasp + [0.0, 0.0, 0.12], grip_money, gripper_open=False, ignore_collisions=True
            ),
            keyframe(before, grip_safe, gripper_open=False, ignore_collisions=False),
            keyframe(insert, grip_safe, gripper_open=True, ignore_collisions=True),
            keyframe(before, grip_safe, gripper_open=True, ignore_collisions=True),
        ]
