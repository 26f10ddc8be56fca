"""reach_and_drag: a stick, a cube out on the far side of the table and four coloured targets
nearer the robot; use the stick to drag the cube onto the target of the instructed colour (the
other three are distractors of other colours).

As in RLBench, the expert picks the stick up by its handle, reaches past the cube with it and
drags the cube along the table; here the stick is held level, just above the table, across the
drag direction, so it sweeps the cube in front of it. Success: the cube's centre inside that
target (the cube is never grasped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.colors import COLOR_NAMES, rgba
from mirror_align.sim.conditions import BodyInSite, Condition
from mirror_align.sim.constants import WORKSPACE_BOUNDS
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import keyframe, pick, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

CUBE_HALF = 0.025
TARGET_HALF = 0.055  # visible square
SUCCESS_HALF = 0.045  # the cube centre must be this close to the target centre (per axis)
STICK_HALF_SIDE, STICK_HALF = 0.01, 0.16  # square section, length 0.32 m
HANDLE_X = -0.1  # grasp point, stick frame x (the handle end is -x)
REACH = 0.14  # the stick sweeps the cube this far from the grasp point, along the stick
GRIP_ABOVE_AXIS = 0.014  # TCP above the stick centre line (fingertips stay off the table)
DRAG_AXIS_Z = 0.02  # stick centre line height while dragging (mid-face: cannot slip under the cube)
GAP = 0.004  # the stick comes down this far behind the cube's rearmost edge
COAST = 0.023  # m the cube slides on after the stick stops (measured; the drag stops this short)
N_TARGETS = 4
CUBE_FRICTION = 0.5  # cube-table sliding friction (priority over the table's)


@dataclass
class DragLayout:
    cube_xy: np.ndarray  # [2] m
    cube_yaw: float
    stick_xy: np.ndarray  # [2] m, stick centre
    stick_yaw: float  # rad; the handle is at -HANDLE_X along -(cos, sin)
    targets: dict[str, np.ndarray]  # colour -> centre xy [2]
    target: str


class ReachAndDrag(Task):
    name = "reach_and_drag"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> DragLayout:
        colour = COLOR_NAMES[variation]
        others = [c for c in COLOR_NAMES if c != colour]
        colours = [colour, *rng.choice(others, size=N_TARGETS - 1, replace=False).tolist()]
        rng.shuffle(colours)
        (cube,) = sample_positions(rng, 1, low=(0.08, -0.25), high=(0.28, 0.25), min_distance=0)
        centres = sample_positions(
            rng, N_TARGETS, low=(-0.3, -0.3), high=(-0.02, 0.3), min_distance=0.14, taken=[cube]
        )
        # The stick lies clear of the cube (its half length plus the cube's half diagonal).
        (stick,) = sample_positions(
            rng, 1, low=(-0.25, -0.3), high=(0.25, 0.3), min_distance=0.23, taken=[cube]
        )
        layout = DragLayout(
            cube_xy=cube,
            cube_yaw=float(rng.uniform(-np.pi, np.pi)),
            stick_xy=stick,
            stick_yaw=float(rng.uniform(-np.pi, np.pi)),
            targets=dict(zip(colours, centres, strict=True)),
            target=colour,
        )
        for name, c in layout.targets.items():
            scene.add_body(
                f'    <body name="target_{name}" pos="{c[0]} {c[1]} 0">\n'
                f'      <geom type="box" pos="0 0 0.001" size="{TARGET_HALF} {TARGET_HALF} 0.001" '
                f'rgba="{rgba(name)}" contype="0" conaffinity="0"/>\n'
                f'      <site name="target_{name}" type="box" pos="0 0 {CUBE_HALF}" '
                f'size="{SUCCESS_HALF} {SUCCESS_HALF} {CUBE_HALF + 0.01}"/>\n'
                f"    </body>"
            )
        scene.add_body(
            f'    <body name="cube" pos="{cube[0]} {cube[1]} {CUBE_HALF}" '
            f'euler="0 0 {layout.cube_yaw}">\n'
            f"      <freejoint/>\n"
            f'      <geom type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" '
            f'rgba="0.22 0.22 0.26 1" mass="0.1" priority="1" friction="{CUBE_FRICTION} 0.005 0.0001"/>\n'
            f"    </body>"
        )
        handle = STICK_HALF + HANDLE_X + 0.03  # dark grip from the handle end past the grasp
        scene.add_body(
            f'    <body name="stick" pos="{stick[0]} {stick[1]} {STICK_HALF_SIDE}" '
            f'euler="0 0 {layout.stick_yaw}">\n'
            f"      <freejoint/>\n"
            f'      <geom type="box" size="{STICK_HALF} {STICK_HALF_SIDE} {STICK_HALF_SIDE}" '
            f'rgba="0.9 0.85 0.7 1" mass="0.05"/>\n'
            # the grip wraps the stick: wider and taller, but its bottom is flush (no rocking)
            f'      <geom type="box" pos="{-STICK_HALF + handle / 2} 0 0.001" '
            f'size="{handle / 2} {STICK_HALF_SIDE + 0.001} {STICK_HALF_SIDE + 0.001}" '
            f'rgba="0.15 0.15 0.18 1" mass="0.01"/>\n'
            f'      <site name="stick_handle" pos="{HANDLE_X} 0 0"/>\n'
            f"    </body>"
        )
        scene.add_graspable("stick", "stick_handle")
        return layout

    def success_conditions(
        self, layout: DragLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite("cube", f"target_{layout.target}")]

    def expert(self, layout: DragLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        handle = physics.site_pos("stick_handle")
        axis = physics.body_mat("stick")[:, 0]
        stick_yaw = float(np.arctan2(axis[1], axis[0]))
        # top_down(yaw) has its x axis at yaw + pi/2: this grasp keeps the stick's +x on it.
        grasp = handle + [0.0, 0.0, GRIP_ABOVE_AXIS]
        keyframes = pick(grasp, top_down(stick_yaw - np.pi / 2))

        cube = physics.body_pos("cube")
        goal = physics.site_pos(f"target_{layout.target}")
        drag = (goal - cube) * [1.0, 1.0, 0.0]
        distance = float(np.linalg.norm(drag))
        drag /= distance
        across = np.cross([0.0, 0.0, 1.0], drag)
        z = np.array([0.0, 0.0, DRAG_AXIS_Z + GRIP_ABOVE_AXIS])
        # Come down just behind the cube's rearmost point (given its yaw), so the stick starts the
        # drag at rest against the cube instead of hitting it at full speed (which tips it).
        m = physics.body_mat("cube")
        rear = CUBE_HALF * (abs(m[:, 0] @ drag) + abs(m[:, 1] @ drag)) + STICK_HALF_SIDE + GAP
        start_line = cube * [1.0, 1.0, 0.0] - rear * drag + z
        # The cube ends with a face against the stick: its centre one half-size + radius ahead.
        travel = distance + rear - CUBE_HALF - STICK_HALF_SIDE - COAST
        best = None
        for sign in (1.0, -1.0):
            start = start_line - sign * REACH * across
            end = start + travel * drag
            margin = np.min(WORKSPACE_BOUNDS[:2, 1] - np.abs(np.stack([start, end])[:, :2]))
            if best is None or margin > best[0]:
                best = (margin, sign, start, end)
        _, sign, start, end = best
        # Stick +x (the tip side) along sign * across.
        s = sign * across
        rot = top_down(float(np.arctan2(s[1], s[0])) - np.pi / 2)
        up = np.array([0.0, 0.0, 0.08])
        return keyframes + [
            keyframe(start + up, rot, gripper_open=False, ignore_collisions=False),
            keyframe(start, rot, gripper_open=False, ignore_collisions=True),
            keyframe(end, rot, gripper_open=False, ignore_collisions=True),
            keyframe(end + up, rot, gripper_open=False, ignore_collisions=True),
        ]
