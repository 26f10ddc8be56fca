"""slide_block_to_color_target: slide a block along the table onto the target square of the
instructed colour (green/blue/pink/yellow); the other three targets are distractors.

The expert holds the block between the jaws while sliding it (attach-on-grasp), because pushing a
randomly rotated cube with a 3 cm finger face is not reliable; the block stays on the table top.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.colors import rgba
from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import TIP_OFFSET, Gripper
from mirror_align.sim.instructions import SLIDE_TARGET_COLORS
from mirror_align.sim.keyframes import keyframe, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

BLOCK_HALF = 0.025
TARGET_HALF = 0.065  # visible square half side
SUCCESS_HALF = 0.055  # the block centre must be this close to the target centre (per axis)


@dataclass
class SlideLayout:
    block_xy: np.ndarray  # [2]
    block_yaw: float
    targets: dict[str, np.ndarray]  # colour -> centre xy [2]
    target: str


class SlideBlockToColorTarget(Task):
    name = "slide_block_to_color_target"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> SlideLayout:
        centres = sample_positions(rng, 4, low=(-0.3, -0.3), high=(0.3, 0.3), min_distance=0.17)
        (block,) = sample_positions(
            rng, 1, low=(-0.22, -0.22), high=(0.22, 0.22), min_distance=0.16, taken=centres
        )
        layout = SlideLayout(
            block_xy=block,
            block_yaw=float(rng.uniform(-np.pi, np.pi)),
            targets=dict(zip(SLIDE_TARGET_COLORS, centres, strict=True)),
            target=SLIDE_TARGET_COLORS[variation],
        )
        for colour, c in layout.targets.items():
            scene.add_body(
                f'    <body name="target_{colour}" pos="{c[0]} {c[1]} 0">\n'
                f'      <geom type="box" pos="0 0 0.001" size="{TARGET_HALF} {TARGET_HALF} 0.001" '
                f'rgba="{rgba(colour)}" contype="0" conaffinity="0"/>\n'
                f'      <site name="target_{colour}" type="box" pos="0 0 {BLOCK_HALF}" '
                f'size="{SUCCESS_HALF} {SUCCESS_HALF} {BLOCK_HALF + 0.01}"/>\n'
                f"    </body>"
            )
        scene.add_body(
            f'    <body name="block" pos="{block[0]} {block[1]} {BLOCK_HALF}" '
            f'euler="0 0 {layout.block_yaw}">\n'
            f"      <freejoint/>\n"
            f'      <site name="block_centre"/>\n'
            f'      <geom type="box" size="{BLOCK_HALF} {BLOCK_HALF} {BLOCK_HALF}" '
            f'rgba="0.85 0.1 0.1 1" mass="0.1"/>\n'
            f"    </body>"
        )
        scene.add_graspable("block", "block_centre")
        return layout

    def success_conditions(
        self, layout: SlideLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite("block", f"target_{layout.target}"), NothingGrasped(gripper)]

    def expert(self, layout: SlideLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        block = physics.body_pos("block")
        goal = physics.site_pos(f"target_{layout.target}")
        # Close the jaw across two opposite block faces, then slide the block along the table
        # (it never leaves the table top) and let go on the target.
        face_normal = physics.body_mat("block")[:, 0]
        rot = top_down(float(np.arctan2(face_normal[1], face_normal[0])))
        low = np.array([0.0, 0.0, 0.004 + TIP_OFFSET])
        at_block = np.append(block[:2], 0.0) + low
        at_goal = np.append(goal[:2], 0.0) + low
        up = np.array([0.0, 0.0, 0.1])
        return [
            keyframe(at_block + up, rot, gripper_open=True, ignore_collisions=False),
            keyframe(at_block, rot, gripper_open=False, ignore_collisions=True),
            keyframe(at_goal, rot, gripper_open=True, ignore_collisions=True),
            keyframe(at_goal + up, rot, gripper_open=True, ignore_collisions=True),
        ]
