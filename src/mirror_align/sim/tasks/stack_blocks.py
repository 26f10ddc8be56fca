"""stack_blocks: four blocks of the instructed colour, four distractor blocks of one other colour
and a flat stacking zone; stack N (2, 3 or 4) blocks of the instructed colour in the zone.

As in RLBench, success is N blocks of that colour inside the zone with nothing grasped; here the
highest of them must also be N block heights up, so they form one stack (not N blocks side by
side). The expert picks the blocks one by one and squares each onto the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.colors import COLOR_NAMES, rgba
from mirror_align.sim.conditions import Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import stack_blocks_variation
from mirror_align.sim.keyframes import pick, place, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

BLOCK_HALF = 0.022
BLOCKS_PER_COLOUR = 4
ZONE_HALF = 0.06  # visible square; a block centre must lie within ZONE_HALF - 0.01 of its centre
GRIP_ABOVE_CENTRE = 0.004  # TCP above a block's centre (fingertips clear the table)
DROP = 0.003  # release a block this far above its resting height


@dataclass
class StackLayout:
    zone_xy: np.ndarray  # [2] m
    zone_yaw: float
    blocks: dict[str, tuple[np.ndarray, float]]  # body name -> (xy [2], yaw)
    colour: str  # the instructed colour
    distractor: str  # colour of the other four blocks
    count: int  # blocks to stack

    def targets(self) -> list[str]:
        return [b for b in self.blocks if b.startswith(f"block_{self.colour}_")]


class StackInSite(Condition):
    """At least ``count`` of ``blocks`` have their centre inside the box ``site`` and the highest
    of those is ``count`` block heights up (so they stand on each other)."""

    def __init__(self, blocks: list[str], site: str, count: int) -> None:
        self.blocks, self.site, self.count = blocks, site, count

    def holds(self, physics: Physics) -> bool:
        rot, centre = physics.site_mat(self.site), physics.site_pos(self.site)
        half = physics.site_size(self.site)
        heights = [
            physics.body_pos(b)[2]
            for b in self.blocks
            if np.all(np.abs(rot.T @ (physics.body_pos(b) - centre)) <= half)
        ]
        top = (2 * self.count - 1) * BLOCK_HALF
        return len(heights) >= self.count and max(heights) > top - 0.5 * BLOCK_HALF


class StackBlocks(Task):
    name = "stack_blocks"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> StackLayout:
        colour, count = stack_blocks_variation(variation)
        distractor = str(rng.choice([c for c in COLOR_NAMES if c != colour]))
        zone, *xy = sample_positions(
            rng,
            1 + 2 * BLOCKS_PER_COLOUR,
            low=(-0.28, -0.32),
            high=(0.28, 0.32),
            min_distance=0.11,
        )
        names = [f"block_{c}_{i}" for c in (colour, distractor) for i in range(BLOCKS_PER_COLOUR)]
        layout = StackLayout(
            zone_xy=zone,
            zone_yaw=float(rng.uniform(-np.pi / 4, np.pi / 4)),
            blocks={
                n: (p, float(rng.uniform(-np.pi, np.pi))) for n, p in zip(names, xy, strict=True)
            },
            colour=colour,
            distractor=distractor,
            count=count,
        )
        tall = 2 * BLOCK_HALF * BLOCKS_PER_COLOUR
        scene.add_body(
            f'    <body name="zone" pos="{zone[0]} {zone[1]} 0" euler="0 0 {layout.zone_yaw}">\n'
            f'      <geom type="box" pos="0 0 0.001" size="{ZONE_HALF} {ZONE_HALF} 0.001" '
            f'rgba="0.3 0.3 0.34 1" contype="0" conaffinity="0"/>\n'
            f'      <geom type="box" pos="0 0 0.0015" size="{ZONE_HALF - 0.008} '
            f'{ZONE_HALF - 0.008} 0.001" rgba="0.82 0.82 0.78 1" contype="0" conaffinity="0"/>\n'
            f'      <site name="zone" type="box" pos="0 0 {tall / 2}" '
            f'size="{ZONE_HALF - 0.01} {ZONE_HALF - 0.01} {tall / 2}"/>\n'
            f"    </body>"
        )
        for name, (p, yaw) in layout.blocks.items():
            c = colour if name.startswith(f"block_{colour}_") else distractor
            scene.add_body(
                f'    <body name="{name}" pos="{p[0]} {p[1]} {BLOCK_HALF}" euler="0 0 {yaw}">\n'
                f"      <freejoint/>\n"
                f'      <geom type="box" size="{BLOCK_HALF} {BLOCK_HALF} {BLOCK_HALF}" '
                f'rgba="{rgba(c)}" mass="0.05"/>\n'
                f'      <site name="{name}_centre"/>\n'
                f"    </body>"
            )
            scene.add_graspable(name, f"{name}_centre")
        return layout

    def success_conditions(
        self, layout: StackLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [StackInSite(layout.targets(), "zone", layout.count), NothingGrasped(gripper)]

    def expert(self, layout: StackLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        zone = physics.site_pos("zone") * [1.0, 1.0, 0.0]
        keyframes: list[dict] = []
        # nearest blocks to the zone first
        order = sorted(layout.targets(), key=lambda b: np.linalg.norm(physics.body_pos(b) - zone))
        for level, block in enumerate(order[: layout.count]):
            m = physics.body_mat(block)
            yaw = float(np.arctan2(m[1, 0], m[0, 0]))
            # grip across two faces, with the smallest wrist turn (faces repeat every 90 deg)
            yaw = (yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
            keyframes += pick(
                physics.body_pos(block) + [0.0, 0.0, GRIP_ABOVE_CENTRE], top_down(yaw)
            )
            # square the block to the zone: the wrist turns by (zone yaw - block yaw) mod 90 deg
            turn = (layout.zone_yaw - yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
            height = (2 * level + 1) * BLOCK_HALF + DROP + GRIP_ABOVE_CENTRE
            keyframes += place(zone + [0.0, 0.0, height], top_down(yaw + turn))
        return keyframes
