"""insert_onto_square_peg: a square ring and a base with three coloured square spokes; put the
ring on the spoke of the instructed colour (the other two spokes take other colours).

As in RLBench the ring is a square frame that has to be lowered over the spoke; the expert grasps
it by one side bar (attach-on-grasp), carries its centre above the spoke and lets it drop onto the
base. Success: the ring's centre is around that spoke, below half the spoke's height, nothing
grasped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.colors import COLOR_NAMES, rgba
from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import pick, place, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

BASE_HALF = (0.06, 0.17, 0.01)  # spoke base half sizes (local y = the row of spokes), metres
SPOKE_HALF, SPOKE_HEIGHT = 0.012, 0.1  # square spoke half side, height above the base
SPOKE_SPACING = 0.11
RING_HALF, RING_BAR, RING_HEIGHT = 0.046, 0.014, 0.02  # outer half side, bar width, height
GRASP_X = RING_HALF - RING_BAR / 2  # grasp point on the +x side bar, ring frame
GRASP_ABOVE = 0.012  # TCP this far above the grasp point (fingertips just above the table)
RELEASE_GAP = 0.015  # ring bottom this far above the base when released


@dataclass
class PegLayout:
    base_xy: np.ndarray  # [2] m
    base_yaw: float  # rad
    spoke_colours: list[str]  # three colours along the base's local +y
    ring_xy: np.ndarray  # [2] m
    ring_yaw: float  # rad
    target: str  # colour of the spoke the ring must go on

    def spoke_offsets(self) -> list[np.ndarray]:
        """World xy offsets [2] of the three spokes from the base centre."""
        c, s = np.cos(self.base_yaw), np.sin(self.base_yaw)
        return [np.array([-s, c]) * k * SPOKE_SPACING for k in (-1, 0, 1)]


def _base_xml(layout: PegLayout) -> str:
    x, y = layout.base_xy
    top = 2 * BASE_HALF[2]
    spokes = []
    for k, colour in zip((-1, 0, 1), layout.spoke_colours, strict=True):
        sy = k * SPOKE_SPACING
        spokes.append(
            f'      <geom type="box" pos="0 {sy} {top + SPOKE_HEIGHT / 2}" '
            f'size="{SPOKE_HALF} {SPOKE_HALF} {SPOKE_HEIGHT / 2}" rgba="{rgba(colour)}"/>\n'
            f'      <site name="spoke_{colour}" type="box" pos="0 {sy} {top + 0.025}" '
            f'size="0.02 0.02 0.025"/>'
        )
    return f"""    <body name="peg_base" pos="{x} {y} 0" euler="0 0 {layout.base_yaw}">
      <geom type="box" pos="0 0 {BASE_HALF[2]}" size="{BASE_HALF[0]} {BASE_HALF[1]} {BASE_HALF[2]}" rgba="0.55 0.4 0.28 1"/>
{chr(10).join(spokes)}
    </body>"""


def _ring_xml(layout: PegLayout) -> str:
    x, y = layout.ring_xy
    h = RING_HEIGHT / 2
    side = RING_HALF - RING_BAR / 2
    inner = RING_HALF - RING_BAR
    bars = "\n".join(
        f'      <geom type="box" pos="{px} {py} 0" size="{sx} {sy} {h}" material="ring" mass="0.02"/>'
        for px, py, sx, sy in (
            (side, 0, RING_BAR / 2, RING_HALF),
            (-side, 0, RING_BAR / 2, RING_HALF),
            (0, side, inner, RING_BAR / 2),
            (0, -side, inner, RING_BAR / 2),
        )
    )
    return f"""    <body name="ring" pos="{x} {y} {h}" euler="0 0 {layout.ring_yaw}">
      <freejoint/>
{bars}
      <site name="ring_grasp" pos="{GRASP_X} 0 0"/>
    </body>"""


class InsertOntoSquarePeg(Task):
    name = "insert_onto_square_peg"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> PegLayout:
        target = COLOR_NAMES[variation]
        others = [c for c in COLOR_NAMES if c != target]
        colours = [target, *(str(c) for c in rng.choice(others, size=2, replace=False))]
        colours = [colours[i] for i in rng.permutation(3)]
        (base_xy,) = sample_positions(rng, 1, low=(0.05, -0.12), high=(0.15, 0.12), min_distance=0)
        (ring_xy,) = sample_positions(rng, 1, low=(-0.32, -0.3), high=(-0.16, 0.3), min_distance=0)
        layout = PegLayout(
            base_xy=base_xy,
            base_yaw=float(rng.uniform(-0.4, 0.4)),
            spoke_colours=colours,
            ring_xy=ring_xy,
            ring_yaw=float(rng.uniform(-np.pi / 2, np.pi / 2)),
            target=target,
        )
        scene.add_material("ring", rgba=(0.86, 0.78, 0.6, 1))
        scene.add_body(_base_xml(layout))
        scene.add_body(_ring_xml(layout))
        scene.add_graspable("ring", "ring_grasp")
        return layout

    def success_conditions(
        self, layout: PegLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite("ring", f"spoke_{layout.target}"), NothingGrasped(gripper)]

    def expert(self, layout: PegLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        grasp = physics.site_pos("ring_grasp")
        ring = physics.body_pos("ring")
        rot = top_down(layout.ring_yaw)
        lift = np.array([0.0, 0.0, GRASP_ABOVE])
        # The ring keeps its pose relative to the gripper: put its centre over the spoke.
        spoke = physics.site_pos(f"spoke_{layout.target}")
        drop_z = 2 * BASE_HALF[2] + RELEASE_GAP + RING_HEIGHT / 2
        ring_at_spoke = np.array([spoke[0], spoke[1], drop_z])
        tcp_at_spoke = ring_at_spoke + (grasp - ring) + lift
        clear = SPOKE_HEIGHT + 0.03  # lift the ring over the spoke tops
        return pick(grasp + lift, rot, approach_height=0.1) + place(
            tcp_at_spoke, rot, approach_height=clear
        )
