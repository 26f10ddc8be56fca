"""place_wine_at_rack_location: a wine bottle stands on the table beside an empty rack with three
cradles (left/middle/right); lay the bottle in the named cradle.

Left and right are from the robot's side (the robot stands at -x, so left is the rack's +y). The
rack is a board with pairs of rails; the expert grips the bottle from the side, turns it to lie
along the rails while carrying it, and lowers it into the cradle. Success: the bottle's centre in
that cradle with nothing grasped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import facing, keyframe, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene
from mirror_align.sim.task import Task

RACK_SLOTS = {"left": 0.11, "middle": 0.0, "right": -0.11}  # cradle centre, rack-frame y
RACK_HALF = (0.12, 0.18, 0.006)  # base board half sizes
RAIL_RADIUS, RAIL_GAP = 0.008, 0.025  # rails at +-RAIL_GAP from the cradle centre line
RAIL_Z = 2 * RACK_HALF[2] + RAIL_RADIUS
BOTTLE_RADIUS, BOTTLE_HALF = 0.032, 0.09  # main body cylinder; the neck adds ~0.09 m
# Height of a lying bottle's axis: resting on the two rails.
LYING_Z = RAIL_Z + np.sqrt((BOTTLE_RADIUS + RAIL_RADIUS) ** 2 - RAIL_GAP**2)
SLOT_X = -0.03  # bottle centre along the cradle (neck towards the rack's +x)
STANDOFF = 0.13  # m before the grasp, along the approach


@dataclass
class WineLayout:
    rack_xy: np.ndarray  # [2] m
    rack_yaw: float  # rad; cradles run along (cos, sin, 0)
    bottle_xy: np.ndarray  # [2] m, standing bottle
    approach_yaw: float  # rad; the expert grips the bottle moving along this direction
    target: str  # "left" | "middle" | "right"


def _rack_xml(layout: WineLayout) -> str:
    x, y = layout.rack_xy
    hx, hy, hz = RACK_HALF
    rails = []
    for name, yc in RACK_SLOTS.items():
        for sign in (-1.0, 1.0):
            yr = yc + sign * RAIL_GAP
            rails.append(
                f'      <geom type="capsule" fromto="{-hx + 0.01} {yr} {RAIL_Z} '
                f'{hx - 0.01} {yr} {RAIL_Z}" size="{RAIL_RADIUS}" material="rack_rail"/>'
            )
        rails.append(
            f'      <site name="cradle_{name}" type="box" pos="{SLOT_X} {yc} {LYING_Z}" '
            f'size="0.05 0.025 0.025"/>'
        )
    feet = "\n".join(
        f'      <geom type="box" pos="{sx * (hx - 0.015)} 0 {RAIL_Z}" '
        f'size="0.01 {hy} {RAIL_RADIUS}" material="rack"/>'
        for sx in (-1.0, 1.0)
    )
    # Posts between and beside the cradles, at both ends, so the three cradles read as slots.
    posts = "\n".join(
        f'      <geom type="box" pos="{sx * (hx - 0.015)} {yp} {2 * hz + 0.03}" '
        f'size="0.01 0.006 0.03" material="rack"/>'
        for sx in (-1.0, 1.0)
        for yp in (-0.165, -0.055, 0.055, 0.165)
    )
    return (
        f'    <body name="rack" pos="{x} {y} 0" euler="0 0 {layout.rack_yaw}">\n'
        f'      <geom type="box" pos="0 0 {hz}" size="{hx} {hy} {hz}" material="rack"/>\n'
        f"{feet}\n{posts}\n" + "\n".join(rails) + "\n    </body>"
    )


def _bottle_xml(layout: WineLayout) -> str:
    x, y = layout.bottle_xy
    r, h = BOTTLE_RADIUS, BOTTLE_HALF
    return f"""    <body name="bottle" pos="{x} {y} {h}">
      <freejoint/>
      <geom type="cylinder" size="{r} {h}" material="glass" mass="0.2"/>
      <geom type="cylinder" pos="0 0 -0.005" size="{r + 0.001} 0.035" material="label" mass="0.001"/>
      <geom type="cylinder" pos="0 0 {h + 0.012}" size="0.021 0.012" material="glass" mass="0.01"/>
      <geom type="cylinder" pos="0 0 {h + 0.055}" size="0.011 0.032" material="glass" mass="0.01"/>
      <geom type="cylinder" pos="0 0 {h + 0.09}" size="0.012 0.01" material="foil" mass="0.002"/>
      <site name="bottle_centre"/>
    </body>"""


class PlaceWineAtRackLocation(Task):
    name = "place_wine_at_rack_location"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> WineLayout:
        rack_xy = rng.uniform([-0.2, -0.12], [-0.05, 0.12])
        # The bottle stands beside the rack, far enough that its approach corridor is clear.
        side = float(rng.choice([-1.0, 1.0]))
        if abs(rack_xy[1] + side * 0.33) > 0.4:
            side = -side
        layout = WineLayout(
            rack_xy=rack_xy,
            rack_yaw=float(rng.uniform(-0.4, 0.4)),
            bottle_xy=np.array(
                [rng.uniform(-0.1, 0.15), rack_xy[1] + side * rng.uniform(0.29, 0.33)]
            ),
            approach_yaw=float(np.pi + rng.uniform(-0.5, 0.5)),
            target=list(RACK_SLOTS)[variation],
        )
        scene.add_material("rack", rgba=(0.5, 0.32, 0.18, 1))
        scene.add_material("rack_rail", rgba=(0.3, 0.18, 0.1, 1))
        scene.add_material("glass", rgba=(0.08, 0.3, 0.12, 1), specular=0.3)
        scene.add_material("label", rgba=(0.93, 0.9, 0.8, 1))
        scene.add_material("foil", rgba=(0.55, 0.05, 0.1, 1))
        scene.add_body(_rack_xml(layout))
        scene.add_body(_bottle_xml(layout))
        scene.add_graspable("bottle", "bottle_centre")
        return layout

    def success_conditions(
        self, layout: WineLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite("bottle", f"cradle_{layout.target}"), NothingGrasped(gripper)]

    def expert(self, layout: WineLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        bottle = physics.site_pos("bottle_centre")
        approach = np.array([np.cos(layout.approach_yaw), np.sin(layout.approach_yaw), 0.0])
        grip_side = facing(approach, finger_axis=np.cross([0.0, 0.0, 1.0], approach))
        # The side grip holds the neck along the gripper's -x; top_down(rack_yaw + pi/2) turns
        # that onto the rack's +x, so the bottle lies along the rails, neck forward.
        grip_down = top_down(layout.rack_yaw + np.pi / 2)
        slot = physics.site_pos(f"cradle_{layout.target}") + [0.0, 0.0, 0.004]
        up = np.array([0.0, 0.0, 0.15])
        return [
            keyframe(
                bottle - STANDOFF * approach, grip_side, gripper_open=True, ignore_collisions=False
            ),
            keyframe(bottle, grip_side, gripper_open=False, ignore_collisions=True),
            keyframe(
                bottle + [0.0, 0.0, 0.21], grip_side, gripper_open=False, ignore_collisions=True
            ),
            keyframe(slot + up, grip_down, gripper_open=False, ignore_collisions=False),
            keyframe(slot, grip_down, gripper_open=True, ignore_collisions=True),
            keyframe(slot + up, grip_down, gripper_open=True, ignore_collisions=True),
        ]
