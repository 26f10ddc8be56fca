"""place_cups: three cups with handles stand on the table next to a cup holder with three spokes;
place 1, 2 or 3 of them on the holder (variation k asks for k + 1 cups).

Simplified: RLBench's mug tree has slanted spokes; ours are vertical, and a cup is "on a spoke"
when the spoke passes through its handle (the expert hangs the handle over the spoke and lets the
cup down onto the holder's base). Success: at least that many cups hang on spokes, nothing
grasped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.conditions import Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import keyframe, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task
from mirror_align.sim.tasks.cups import (
    HANDLE_Z,
    HEIGHT,
    add_cup_material,
    cup_xml,
    handle_local,
    rotate_z,
    tcp_local,
)

N_CUPS = 3
SPOKE_SPACING, SPOKE_RADIUS, SPOKE_HEIGHT = 0.13, 0.005, 0.13  # metres
BASE_HALF = (0.1, 0.2, 0.005)  # holder base plate; local y = the row of spokes
RELEASE_GAP = 0.01  # cup bottom above the base plate when released
CUP_RGBA = "0.92 0.92 0.95 1"


@dataclass
class PlaceCupsLayout:
    holder_xy: np.ndarray  # [2] m
    holder_yaw: float  # rad
    cup_xy: list[np.ndarray]  # [2] per cup
    cup_yaw: list[float]  # rad per cup
    count: int  # cups to place

    def spoke_xy(self, k: int) -> np.ndarray:
        """World xy [2] of spoke k (0..2)."""
        offset = rotate_z(np.array([0.0, (k - 1) * SPOKE_SPACING, 0.0]), self.holder_yaw)
        return self.holder_xy + offset[:2]


class CupsOnSpokes(Condition):
    """At least ``count`` cups have their handle opening around a spoke, low on the holder."""

    def __init__(self, cups: list[str], spokes: list[str], count: int) -> None:
        self.cups, self.spokes, self.count = cups, spokes, count

    def holds(self, physics: Physics) -> bool:
        hung = 0
        for cup in self.cups:
            handle = physics.site_pos(f"{cup}_handle")
            for spoke in self.spokes:
                local = physics.site_mat(spoke).T @ (handle - physics.site_pos(spoke))
                if np.all(np.abs(local) <= physics.site_size(spoke)):
                    hung += 1
                    break
        return hung >= self.count


def _holder_xml(layout: PlaceCupsLayout) -> str:
    x, y = layout.holder_xy
    top = 2 * BASE_HALF[2]
    spokes = []
    for k in range(N_CUPS):
        sy = (k - 1) * SPOKE_SPACING
        spokes.append(
            f'      <geom type="cylinder" pos="0 {sy} {top + SPOKE_HEIGHT / 2}" '
            f'size="{SPOKE_RADIUS} {SPOKE_HEIGHT / 2}" material="holder"/>\n'
            f'      <geom type="sphere" pos="0 {sy} {top + SPOKE_HEIGHT}" size="0.009" '
            f'material="holder"/>\n'
            f'      <site name="spoke_{k}" type="box" pos="0 {sy} {top + 0.04}" '
            f'size="0.015 0.015 0.04"/>'
        )
    return f"""    <body name="holder" pos="{x} {y} 0" euler="0 0 {layout.holder_yaw}">
      <geom type="box" pos="0 0 {BASE_HALF[2]}" size="{BASE_HALF[0]} {BASE_HALF[1]} {BASE_HALF[2]}" material="holder"/>
{chr(10).join(spokes)}
    </body>"""


class PlaceCups(Task):
    name = "place_cups"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> PlaceCupsLayout:
        (holder_xy,) = sample_positions(rng, 1, low=(0.1, -0.06), high=(0.18, 0.06), min_distance=0)
        cup_xy = sample_positions(
            rng, N_CUPS, low=(-0.33, -0.3), high=(-0.17, 0.3), min_distance=0.17
        )
        cup_xy.sort(key=lambda p: -p[1])  # cup k goes to spoke k: no crossing paths
        layout = PlaceCupsLayout(
            holder_xy=holder_xy,
            holder_yaw=float(rng.uniform(-0.25, 0.25)),
            cup_xy=cup_xy,
            cup_yaw=[float(rng.uniform(-np.pi, np.pi)) for _ in range(N_CUPS)],
            count=variation + 1,
        )
        scene.add_material("holder", rgba=(0.45, 0.3, 0.18, 1))
        scene.add_body(_holder_xml(layout))
        for k in range(N_CUPS):
            add_cup_material(scene, f"cup{k}", CUP_RGBA)
            scene.add_body(cup_xml(f"cup{k}", layout.cup_xy[k], layout.cup_yaw[k], handle=True))
            scene.add_graspable(f"cup{k}", f"cup{k}_grasp")
        return layout

    def success_conditions(
        self, layout: PlaceCupsLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        cups = [f"cup{k}" for k in range(N_CUPS)]
        spokes = [f"spoke_{k}" for k in range(N_CUPS)]
        return [CupsOnSpokes(cups, spokes, layout.count), NothingGrasped(gripper)]

    def expert(self, layout: PlaceCupsLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        base_top = 2 * BASE_HALF[2]
        clear = SPOKE_HEIGHT + 0.02 - HANDLE_Z[0]  # handle bottom over the spoke tip
        keyframes: list[dict] = []
        for k in range(layout.count):
            cup = f"cup{k}"
            bottom = physics.body_pos(cup)
            yaw = layout.cup_yaw[k]
            grasp = bottom + rotate_z(tcp_local(), yaw)
            rot = top_down(yaw)
            # Hang it with the handle towards +x of the holder: the cup stands on the robot's side.
            hang_yaw = layout.holder_yaw + np.pi
            spoke = layout.spoke_xy(N_CUPS - 1 - k)  # cups are sorted by -y, spokes by +y
            cup_at = np.array([*spoke, base_top + RELEASE_GAP]) - rotate_z(
                handle_local() * [1.0, 1.0, 0.0], hang_yaw
            )
            tcp_at = cup_at + rotate_z(tcp_local(), hang_yaw)
            hang_rot = top_down(hang_yaw)
            up = np.array([0.0, 0.0, clear])
            keyframes += [
                keyframe(grasp + [0.0, 0.0, 0.1], rot, gripper_open=True, ignore_collisions=False),
                keyframe(grasp, rot, gripper_open=False, ignore_collisions=True),
                keyframe(
                    grasp + up + [0.0, 0.0, 0.03], rot, gripper_open=False, ignore_collisions=True
                ),
                keyframe(tcp_at + up, hang_rot, gripper_open=False, ignore_collisions=False),
                keyframe(tcp_at, hang_rot, gripper_open=True, ignore_collisions=True),
                keyframe(
                    tcp_at + [0.0, 0.0, HEIGHT], hang_rot, gripper_open=True, ignore_collisions=True
                ),
            ]
        return keyframes
