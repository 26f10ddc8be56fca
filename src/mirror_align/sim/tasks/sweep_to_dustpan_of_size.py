"""sweep_to_dustpan_of_size: a brush, a small heap of dirt and two dustpans, a tall one (upright,
with a high back wall and a long vertical pole) and a short one (a low hand pan with a short
horizontal handle); sweep all the dirt into the dustpan of the instructed size (tall/short), the
other one is the distractor.

Simplified from RLBench: the broom is a hand brush (a wide head with a short upright handle,
grasped by the handle and held level just above the table), the dirt is four small cubes, and the
dustpan's floor is drawn but does not collide (the dirt slides in on the table top instead of up a
lip). Each dustpan faces the dirt heap with its open side; the expert picks the brush up, puts its
head down behind the heap and sweeps straight along the dustpan's axis into it. Success: every
dirt cube's centre inside that dustpan (walls and open front).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.conditions import BodyInSite, Condition
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import keyframe, pick, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

SIZES = ("tall", "short")  # variation order of the instruction table
N_DIRT = 4
DIRT_HALF = 0.011  # cube half side
DIRT_SPREAD = 0.035  # dirt centres within this box half side around the heap centre
PAN_HALF_DEPTH = 0.085  # interior, along the pan axis (open front at -x of the pan frame)
PAN_HALF_WIDTH = 0.11  # interior, across
WALL = 0.006  # wall half thickness
WALL_HEIGHT = {"tall": 0.13, "short": 0.035}
BRUSH_HALF_LEN = 0.075  # head half length (across the sweep), narrower than the pan interior
BRUSH_HALF_THICK = 0.014  # head half size along the sweep
BRUSH_HALF_HEIGHT = 0.012
HANDLE_HALF_SIDE = 0.009
HANDLE_HEIGHT = 0.08  # above the head top
GRASP_Z = 2 * BRUSH_HALF_HEIGHT + 0.06  # grasp point height above the head bottom
SWEEP_CLEARANCE = 0.003  # head bottom above the table while sweeping
BEHIND = 0.012  # head comes down this far behind the heap's rearmost dirt edge
STOP_SHORT = 0.03  # head front face stops this far before the back wall


@dataclass
class SweepLayout:
    dirt_xy: list[np.ndarray]  # N_DIRT × [2] m
    heap_xy: np.ndarray  # [2] m, centre of the heap box
    pans: dict[str, np.ndarray]  # size -> pan centre xy [2] (interior centre)
    pan_yaw: dict[str, float]  # size -> rad; the pan's +x points from its open front to its back
    brush_xy: np.ndarray  # [2] m
    brush_yaw: float  # rad; the head's long axis is the brush frame's y
    target: str


def _pan_xml(size: str, c: np.ndarray, yaw: float) -> str:
    h = WALL_HEIGHT[size]
    d, w = PAN_HALF_DEPTH, PAN_HALF_WIDTH
    grey, dark = "0.55 0.6 0.68 1", "0.2 0.22 0.26 1"
    if size == "tall":  # upright dustpan: long pole standing on the back wall
        handle = (
            f'      <geom type="cylinder" pos="{d + WALL} 0 {h + 0.1}" size="0.008 0.1" '
            f'rgba="{dark}"/>\n'
        )
    else:  # hand dustpan: short handle sticking out of the back, low
        handle = (
            f'      <geom type="box" pos="{d + 2 * WALL + 0.05} 0 {h * 0.6}" '
            f'size="0.05 0.012 0.006" rgba="{dark}"/>\n'
        )
    return (
        f'    <body name="pan_{size}" pos="{c[0]} {c[1]} 0" euler="0 0 {yaw}">\n'
        # the floor is drawn only: dirt slides onto it along the table top
        f'      <geom type="box" pos="0 0 0.0008" size="{d} {w + 2 * WALL} 0.0008" '
        f'rgba="{grey}" contype="0" conaffinity="0"/>\n'
        f'      <geom type="box" pos="{d + WALL} 0 {h / 2}" size="{WALL} {w + 2 * WALL} {h / 2}" '
        f'rgba="{grey}"/>\n'
        f'      <geom type="box" pos="0 {w + WALL} {h / 2}" size="{d} {WALL} {h / 2}" '
        f'rgba="{grey}"/>\n'
        f'      <geom type="box" pos="0 {-w - WALL} {h / 2}" size="{d} {WALL} {h / 2}" '
        f'rgba="{grey}"/>\n'
        f"{handle}"
        f'      <site name="pan_{size}" type="box" pos="0 0 0.05" size="{d} {w} 0.05"/>\n'
        f"    </body>"
    )


class SweepToDustpanOfSize(Task):
    name = "sweep_to_dustpan_of_size"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> SweepLayout:
        heap = rng.uniform((-0.02, -0.06), (0.14, 0.06))
        dirt = sample_positions(
            rng,
            N_DIRT,
            low=tuple(heap - DIRT_SPREAD),
            high=tuple(heap + DIRT_SPREAD),
            min_distance=2.4 * DIRT_HALF * np.sqrt(2.0),
        )
        # One dustpan on each side of the heap (which size goes left is random), opening towards it.
        sides = [1.0, -1.0]
        rng.shuffle(sides)
        pans, yaws = {}, {}
        for size, side in zip(SIZES, sides, strict=True):
            c = np.array([rng.uniform(-0.04, 0.2), side * rng.uniform(0.27, 0.31)])
            pans[size] = c
            axis = c - heap  # from the heap into the pan: the pan's +x
            yaws[size] = float(np.arctan2(axis[1], axis[0]))
        (brush,) = sample_positions(rng, 1, low=(-0.33, -0.1), high=(-0.26, 0.1), min_distance=0)
        layout = SweepLayout(
            dirt_xy=dirt,
            heap_xy=heap,
            pans=pans,
            pan_yaw=yaws,
            brush_xy=brush,
            brush_yaw=float(rng.uniform(-np.pi / 3, np.pi / 3)),
            target=SIZES[variation],
        )
        for size in SIZES:
            scene.add_body(_pan_xml(size, pans[size], yaws[size]))
        for i, p in enumerate(dirt):
            scene.add_body(
                f'    <body name="dirt{i}" pos="{p[0]} {p[1]} {DIRT_HALF}" '
                f'euler="0 0 {rng.uniform(-np.pi, np.pi)}">\n'
                f"      <freejoint/>\n"
                f'      <geom type="box" size="{DIRT_HALF} {DIRT_HALF} {DIRT_HALF}" '
                f'rgba="0.35 0.24 0.12 1" mass="0.01" priority="1" friction="0.4 0.005 0.0001"/>\n'
                f"    </body>"
            )
        hz = 2 * BRUSH_HALF_HEIGHT + HANDLE_HEIGHT / 2
        scene.add_body(
            f'    <body name="brush" pos="{brush[0]} {brush[1]} 0" euler="0 0 {layout.brush_yaw}">\n'
            f"      <freejoint/>\n"
            f'      <geom type="box" pos="0 0 {BRUSH_HALF_HEIGHT}" '
            f'size="{BRUSH_HALF_THICK} {BRUSH_HALF_LEN} {BRUSH_HALF_HEIGHT}" '
            f'rgba="0.85 0.7 0.2 1" mass="0.04"/>\n'
            f'      <geom type="box" pos="0 0 {hz}" '
            f'size="{HANDLE_HALF_SIDE} {HANDLE_HALF_SIDE} {HANDLE_HEIGHT / 2}" '
            f'rgba="0.5 0.15 0.1 1" mass="0.01"/>\n'
            f'      <site name="brush_handle" pos="0 0 {GRASP_Z}"/>\n'
            f"    </body>"
        )
        scene.add_graspable("brush", "brush_handle")
        return layout

    def success_conditions(
        self, layout: SweepLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite(f"dirt{i}", f"pan_{layout.target}") for i in range(N_DIRT)]

    def expert(self, layout: SweepLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        handle = physics.site_pos("brush_handle")
        thin = physics.body_mat("brush")[:, 0]
        # top_down(yaw) closes the jaw along (cos yaw, sin yaw): across the handle, along the
        # brush's thin axis, so the head stays across the jaw.
        keyframes = pick(handle, top_down(float(np.arctan2(thin[1], thin[0]))))

        pan = physics.site_pos(f"pan_{layout.target}")
        axis = physics.site_mat(f"pan_{layout.target}")[:, 0] * [1.0, 1.0, 0.0]
        axis /= np.linalg.norm(axis)
        dirt = np.stack([physics.body_pos(f"dirt{i}") for i in range(N_DIRT)])
        heap = dirt.mean(axis=0) * [1.0, 1.0, 0.0]
        # The rearmost dirt edge along the sweep (a cube's extent is at most its half diagonal).
        rear = float(np.min((dirt - heap) @ axis)) - DIRT_HALF * np.sqrt(2.0)
        # The head's centre line: start behind the heap, end short of the back wall, on the axis.
        on_axis = pan * [1.0, 1.0, 0.0] + axis * float((heap - pan * [1, 1, 0]) @ axis)
        start = on_axis + (rear - BEHIND - BRUSH_HALF_THICK) * axis
        end = pan * [1.0, 1.0, 0.0] + (PAN_HALF_DEPTH - STOP_SHORT - BRUSH_HALF_THICK) * axis
        z = np.array([0.0, 0.0, GRASP_Z + SWEEP_CLEARANCE])
        # The brush's thin axis along the sweep: the jaw along the axis (either sign; the nearer).
        yaw = float(np.arctan2(axis[1], axis[0]))
        turn = (yaw - float(np.arctan2(thin[1], thin[0])) + np.pi / 2) % np.pi - np.pi / 2
        rot = top_down(float(np.arctan2(thin[1], thin[0])) + turn)
        up = np.array([0.0, 0.0, 0.08])
        return keyframes + [
            keyframe(start + z + up, rot, gripper_open=False, ignore_collisions=False),
            keyframe(start + z, rot, gripper_open=False, ignore_collisions=True),
            keyframe(end + z, rot, gripper_open=False, ignore_collisions=True),
            keyframe(end + z + up, rot, gripper_open=False, ignore_collisions=True),
        ]
