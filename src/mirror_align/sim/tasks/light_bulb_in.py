"""light_bulb_in: two light bulbs stand in holders of different colours next to a lamp; screw the
bulb of the instructed colour into the lamp's socket (the other bulb is a distractor).

Each bulb's screw base and its holder share the bulb's colour. Screwing is simplified (as RLBench
does with its attach-on-grasp) to lowering the grasped bulb's base into the socket while turning
the wrist a quarter turn, then letting go. Success: that bulb seated in the socket, nothing grasped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.colors import COLOR_NAMES, rgba
from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import keyframe, pick, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

# Bulb, in its own frame (origin at the bottom of the screw base), metres.
BASE_RADIUS, BASE_HEIGHT = 0.012, 0.028
GLASS_RADIUS, GLASS_Z = 0.028, 0.062  # sphere centre above the base bottom = grasp point
# Holder (on the table) and lamp socket: square cups around the screw base.
CUP_INNER, CUP_FLOOR = 0.018, 0.004
SOCKET_WALL, HOLDER_WALL = 0.008, 0.016  # holders are wide so their colour shows from afar
HOLDER_HEIGHT = 0.032
SOCKET_Z = 0.1  # top of the socket's floor
SOCKET_HEIGHT = 0.03
ENTRY = 0.012  # base bottom this far above the socket rim before the screwing descent
DROP = 0.002  # release this far above the socket floor


@dataclass
class BulbLayout:
    lamp_xy: np.ndarray  # [2] m
    bulbs: dict[str, np.ndarray]  # colour -> holder centre xy [2]
    target: str


def _cup(name: str, z0: float, height: float, wall: float, material: str) -> str:
    """A square cup (floor + 4 walls) with its floor's top at z0 + CUP_FLOOR, in its body frame."""
    half_out = CUP_INNER + wall
    wall_z = z0 + height / 2
    walls = [
        f'      <geom name="{name}_floor" type="box" pos="0 0 {z0 + CUP_FLOOR / 2}" '
        f'size="{half_out} {half_out} {CUP_FLOOR / 2}" {material}/>'
    ]
    for i, (dx, dy) in enumerate(((1, 0), (-1, 0), (0, 1), (0, -1))):
        c = CUP_INNER + wall / 2
        sx = wall / 2 if dx else half_out
        sy = wall / 2 if dy else half_out
        walls.append(
            f'      <geom name="{name}_wall{i}" type="box" pos="{dx * c} {dy * c} {wall_z}" '
            f'size="{sx} {sy} {height / 2}" {material}/>'
        )
    return "\n".join(walls)


def _lamp_xml(xy: np.ndarray) -> str:
    floor_bottom = SOCKET_Z - CUP_FLOOR
    return f"""    <body name="lamp" pos="{xy[0]} {xy[1]} 0">
      <geom type="cylinder" pos="0 0 0.006" size="0.055 0.006" material="lamp"/>
      <geom type="cylinder" pos="0 0 {floor_bottom / 2}" size="0.012 {floor_bottom / 2}" material="lamp"/>
{_cup("socket", floor_bottom, SOCKET_HEIGHT, SOCKET_WALL, 'material="lamp_socket"')}
      <site name="socket" type="box" pos="0 0 {SOCKET_Z + 0.008}" size="0.008 0.008 0.01"/>
    </body>"""


def _bulb_xml(colour: str, xy: np.ndarray) -> str:
    z0 = CUP_FLOOR
    return f"""    <body name="holder_{colour}" pos="{xy[0]} {xy[1]} 0">
{_cup(f"holder_{colour}", 0.0, HOLDER_HEIGHT, HOLDER_WALL, f'rgba="{rgba(colour)}"')}
    </body>
    <body name="bulb_{colour}" pos="{xy[0]} {xy[1]} {z0}">
      <freejoint/>
      <geom type="cylinder" pos="0 0 {BASE_HEIGHT / 2}" size="{BASE_RADIUS} {BASE_HEIGHT / 2}" rgba="{rgba(colour)}" mass="0.01"/>
      <geom type="cylinder" pos="0 0 {BASE_HEIGHT + 0.006}" size="0.016 0.006" material="bulb_neck" mass="0.005"/>
      <geom type="sphere" pos="0 0 {GLASS_Z}" size="{GLASS_RADIUS}" material="bulb_glass" mass="0.02"/>
      <site name="bulb_{colour}_grasp" pos="0 0 {GLASS_Z}"/>
    </body>"""


class LightBulbIn(Task):
    name = "light_bulb_in"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> BulbLayout:
        colour = COLOR_NAMES[variation]
        other = str(rng.choice([c for c in COLOR_NAMES if c != colour]))
        lamp, *holders = sample_positions(
            rng, 3, low=(-0.25, -0.3), high=(0.2, 0.3), min_distance=0.16
        )
        colours = [colour, other]
        rng.shuffle(colours)
        layout = BulbLayout(
            lamp_xy=lamp, bulbs=dict(zip(colours, holders, strict=True)), target=colour
        )
        scene.add_material("lamp", rgba=(0.2, 0.2, 0.22, 1), specular=0.2)
        scene.add_material("lamp_socket", rgba=(0.7, 0.66, 0.55, 1), specular=0.2)
        scene.add_material("bulb_glass", rgba=(0.97, 0.96, 0.88, 1), specular=0.4)
        scene.add_material("bulb_neck", rgba=(0.8, 0.8, 0.82, 1), specular=0.3)
        scene.add_body(_lamp_xml(lamp))
        for c, xy in layout.bulbs.items():
            scene.add_body(_bulb_xml(c, xy))
            scene.add_graspable(f"bulb_{c}", f"bulb_{c}_grasp")
        return layout

    def success_conditions(
        self, layout: BulbLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite(f"bulb_{layout.target}", "socket"), NothingGrasped(gripper)]

    def expert(self, layout: BulbLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        grasp = physics.site_pos(f"bulb_{layout.target}_grasp")
        bulb = physics.body_pos(f"bulb_{layout.target}")
        above_base = grasp - bulb  # the grasp point relative to the base bottom
        socket = np.append(layout.lamp_xy, SOCKET_Z)
        rim = socket + [0.0, 0.0, SOCKET_HEIGHT - CUP_FLOOR + ENTRY]
        seated = socket + [0.0, 0.0, DROP]
        return [
            *pick(grasp, top_down(0.0)),
            keyframe(
                rim + above_base + [0.0, 0.0, 0.08],
                top_down(0.0),
                gripper_open=False,
                ignore_collisions=False,
            ),
            keyframe(rim + above_base, top_down(0.0), gripper_open=False, ignore_collisions=True),
            # screwing in: a quarter turn of the wrist on the way down, then let go
            keyframe(
                seated + above_base, top_down(np.pi / 2), gripper_open=True, ignore_collisions=True
            ),
            keyframe(
                seated + above_base + [0.0, 0.0, 0.1],
                top_down(np.pi / 2),
                gripper_open=True,
                ignore_collisions=True,
            ),
        ]
