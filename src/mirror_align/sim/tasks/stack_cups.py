"""stack_cups: three cups of different colours; stack the other two on top of (into) the cup of the
instructed colour.

The cups are tapered and nest, as in RLBench. The expert grasps each cup by its rim, lowers it
into the target cup (the second one into the first) and lets it settle. Success: both other cups
nested in the target cup, nothing grasped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.colors import COLOR_NAMES, rgba
from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import keyframe, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task
from mirror_align.sim.tasks.cups import (
    HEIGHT,
    NEST_STEP,
    add_cup_material,
    cup_xml,
    rotate_z,
    tcp_local,
)

RELEASE_ABOVE_NEST = 0.01  # a cup is let go this far above its nominal nested height


@dataclass
class StackCupsLayout:
    colours: list[str]  # colour of each cup; cups are named cup_<colour>
    cup_xy: dict[str, np.ndarray]  # colour -> xy [2]
    cup_yaw: dict[str, float]  # colour -> rad
    target: str  # colour of the cup the others go into

    @property
    def others(self) -> list[str]:
        return [c for c in self.colours if c != self.target]


class StackCups(Task):
    name = "stack_cups"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> StackCupsLayout:
        target = COLOR_NAMES[variation]
        others = [
            str(c) for c in rng.choice([c for c in COLOR_NAMES if c != target], 2, replace=False)
        ]
        colours = [target, *others]
        xy = sample_positions(rng, 3, low=(-0.25, -0.3), high=(0.25, 0.3), min_distance=0.16)
        layout = StackCupsLayout(
            colours=colours,
            cup_xy=dict(zip(colours, xy, strict=True)),
            cup_yaw={c: float(rng.uniform(-np.pi, np.pi)) for c in colours},
            target=target,
        )
        for c in colours:
            add_cup_material(scene, f"cup_{c}", rgba(c))
            scene.add_body(cup_xml(f"cup_{c}", layout.cup_xy[c], layout.cup_yaw[c], handle=False))
            scene.add_graspable(f"cup_{c}", f"cup_{c}_grasp")
        return layout

    def success_conditions(
        self, layout: StackCupsLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        inside = f"cup_{layout.target}_inside"
        return [*(BodyInSite(f"cup_{c}", inside) for c in layout.others), NothingGrasped(gripper)]

    def expert(self, layout: StackCupsLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        base = physics.body_pos(f"cup_{layout.target}")
        keyframes: list[dict] = []
        for level, colour in enumerate(layout.others, start=1):
            yaw = layout.cup_yaw[colour]
            grasp = physics.body_pos(f"cup_{colour}") + rotate_z(tcp_local(), yaw)
            rot = top_down(yaw)
            # Keep the cup's yaw; lower its bottom to just above where it nests.
            nest = base + [0.0, 0.0, level * NEST_STEP + RELEASE_ABOVE_NEST]
            tcp_at = nest + rotate_z(tcp_local(), yaw)
            keyframes += [
                keyframe(grasp + [0.0, 0.0, 0.1], rot, gripper_open=True, ignore_collisions=False),
                keyframe(grasp, rot, gripper_open=False, ignore_collisions=True),
                keyframe(grasp + [0.0, 0.0, 0.1], rot, gripper_open=False, ignore_collisions=True),
                keyframe(
                    tcp_at + [0.0, 0.0, HEIGHT], rot, gripper_open=False, ignore_collisions=False
                ),
                keyframe(tcp_at, rot, gripper_open=True, ignore_collisions=True),
                keyframe(
                    tcp_at + [0.0, 0.0, HEIGHT], rot, gripper_open=True, ignore_collisions=True
                ),
            ]
        return keyframes
