"""close_jar: two jars of different colours and one lid stand on the table; put the lid on the jar
of the instructed colour (the other jar is a distractor, as in RLBench).

Each jar is a solid coloured cylinder with a narrower neck; the lid is a neutral cream cap (top
disk plus a skirt of staves) that fits over the neck. Simplified vs RLBench: the jars are fixed to
the table, and screwing is not required: the lid resting on the target jar's neck counts as closed
(the expert still gives the wrist a quarter turn while seating it, as a screwing gesture). Success:
the lid's origin (centre of the top disk's underside) inside a small box just above the target
jar's mouth, and nothing grasped.
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

# Jar (fixed to the table), metres.
JAR_RADIUS, JAR_HEIGHT = 0.048, 0.12  # coloured body
NECK_RADIUS, NECK_HEIGHT = 0.026, 0.02  # mouth on top of the body
MOUTH_Z = JAR_HEIGHT + NECK_HEIGHT  # top of the neck = where the lid's origin rests
# Lid: origin at the centre of the top disk's underside; the skirt hangs below it.
LID_RADIUS, LID_TOP = 0.036, 0.006  # outer radius, top disk thickness
SKIRT_HEIGHT, SKIRT_THICK, N_STAVES = 0.014, 0.004, 12
LID_RGBA = "0.9 0.8 0.6 1"  # cream: not one of the 20 variation colours
GRASP_ABOVE_TOP = 0.004  # TCP this far above the lid's top face (fingertips 4 mm above the table)
ENTRY = 0.012  # skirt bottom this far above the mouth before the seating descent
DROP = 0.002  # lid released this far above its resting height
MIN_JAR_DY = 0.12  # jars this far apart in y so neither hides the other from the front camera


@dataclass
class CloseJarLayout:
    jar_xy: dict[str, np.ndarray]  # colour -> jar centre xy [2]
    lid_xy: np.ndarray  # [2]
    target: str  # colour of the jar to close


def _jar_xml(colour: str, xy: np.ndarray) -> str:
    return f"""    <body name="jar_{colour}" pos="{xy[0]} {xy[1]} 0">
      <geom type="cylinder" pos="0 0 {JAR_HEIGHT / 2}" size="{JAR_RADIUS} {JAR_HEIGHT / 2}" rgba="{rgba(colour)}"/>
      <geom type="cylinder" pos="0 0 {JAR_HEIGHT + NECK_HEIGHT / 2}" size="{NECK_RADIUS} {NECK_HEIGHT / 2}" rgba="{rgba(colour)}"/>
      <site name="jar_{colour}_mouth" type="box" pos="0 0 {MOUTH_Z + 0.004}" size="0.008 0.008 0.008"/>
    </body>"""


def _lid_xml(xy: np.ndarray) -> str:
    r_mid = LID_RADIUS - SKIRT_THICK / 2
    half_w = LID_RADIUS * np.tan(np.pi / N_STAVES) + 0.0005  # staves overlap at the corners
    staves = []
    for k in range(N_STAVES):
        a = 2 * np.pi * k / N_STAVES
        staves.append(
            f'      <geom type="box" pos="{r_mid * np.cos(a):.5f} {r_mid * np.sin(a):.5f} '
            f'{-SKIRT_HEIGHT / 2}" euler="0 0 {a:.5f}" '
            f'size="{SKIRT_THICK / 2} {half_w:.5f} {SKIRT_HEIGHT / 2}" material="lid"/>'
        )
    return f"""    <body name="lid" pos="{xy[0]} {xy[1]} {SKIRT_HEIGHT + 0.0005}">
      <freejoint/>
      <inertial pos="0 0 0" mass="0.04" diaginertia="1.5e-5 1.5e-5 2.5e-5"/>
      <geom type="cylinder" pos="0 0 {LID_TOP / 2}" size="{LID_RADIUS} {LID_TOP / 2}" material="lid"/>
{chr(10).join(staves)}
      <site name="lid_grasp" pos="0 0 {LID_TOP / 2}"/>
    </body>"""


class CloseJar(Task):
    name = "close_jar"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> CloseJarLayout:
        target = COLOR_NAMES[variation]
        other = str(rng.choice([c for c in COLOR_NAMES if c != target]))
        colours = [target, other]
        rng.shuffle(colours)
        while True:  # redraw (from rng, so still reproducible) until both jars show from the front
            jar_a, jar_b, lid = sample_positions(
                rng, 3, low=(-0.25, -0.3), high=(0.2, 0.3), min_distance=0.16
            )
            if abs(jar_a[1] - jar_b[1]) >= MIN_JAR_DY:
                break
        layout = CloseJarLayout(
            jar_xy=dict(zip(colours, (jar_a, jar_b), strict=True)), lid_xy=lid, target=target
        )
        scene.add_material("lid", rgba=LID_RGBA, specular=0.2)
        for c, xy in layout.jar_xy.items():
            scene.add_body(_jar_xml(c, xy))
        scene.add_body(_lid_xml(lid))
        scene.add_graspable("lid", "lid_grasp")
        return layout

    def success_conditions(
        self, layout: CloseJarLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite("lid", f"jar_{layout.target}_mouth"), NothingGrasped(gripper)]

    def expert(self, layout: CloseJarLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        lid = physics.body_pos("lid")
        tcp_above_origin = np.array([0.0, 0.0, LID_TOP + GRASP_ABOVE_TOP])
        rot = top_down(0.0)
        jar = layout.jar_xy[layout.target]
        rim = np.array([jar[0], jar[1], MOUTH_Z + SKIRT_HEIGHT + ENTRY])
        seated = np.array([jar[0], jar[1], MOUTH_Z + DROP])
        return [
            *pick(lid + tcp_above_origin, rot),
            keyframe(
                rim + tcp_above_origin + [0.0, 0.0, 0.08],
                rot,
                gripper_open=False,
                ignore_collisions=False,
            ),
            keyframe(rim + tcp_above_origin, rot, gripper_open=False, ignore_collisions=True),
            # seat the lid with a quarter turn of the wrist (screwing gesture), then let go
            keyframe(
                seated + tcp_above_origin,
                top_down(np.pi / 2),
                gripper_open=True,
                ignore_collisions=True,
            ),
            keyframe(
                seated + tcp_above_origin + [0.0, 0.0, 0.1],
                top_down(np.pi / 2),
                gripper_open=True,
                ignore_collisions=True,
            ),
        ]
