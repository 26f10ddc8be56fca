"""push_buttons: three coloured buttons; push the first 1-3 of them in the instructed order.

As in RLBench, variation k shows the buttons of the k-th ordered colour triple and asks for the
first ``1 + k % 3`` of them; presses are latched events and must happen in exactly that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.colors import rgba
from mirror_align.sim.conditions import Condition, EventsInOrder, JointBelow
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import push_buttons_variation
from mirror_align.sim.keyframes import press
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

BASE_RADIUS, BASE_HEIGHT = 0.04, 0.024
CAP_RADIUS, CAP_HEIGHT = 0.024, 0.02
TRAVEL = 0.015  # m the cap can be pushed down
PRESSED = -0.008  # m; cap below this counts as a press


@dataclass
class ButtonsLayout:
    colours: tuple[str, str, str]  # the three buttons in the scene
    sequence: list[str]  # colours to push, in order
    positions: dict[str, np.ndarray]  # colour -> button centre xy [2]


def _button_xml(colour: str, xy: np.ndarray) -> str:
    top = BASE_HEIGHT + CAP_HEIGHT
    return f"""    <body name="button_base_{colour}" pos="{xy[0]} {xy[1]} 0">
      <geom type="cylinder" pos="0 0 {BASE_HEIGHT / 2}" size="{BASE_RADIUS} {BASE_HEIGHT / 2}" rgba="{rgba(colour)}"/>
      <body name="button_{colour}" pos="0 0 {BASE_HEIGHT}">
        <joint name="button_{colour}" type="slide" axis="0 0 1" range="-{TRAVEL} 0" stiffness="150" springref="0" damping="2"/>
        <geom type="cylinder" pos="0 0 {CAP_HEIGHT / 2}" size="{CAP_RADIUS} {CAP_HEIGHT / 2}" rgba="0.85 0.85 0.85 1" mass="0.02"/>
        <site name="button_top_{colour}" pos="0 0 {CAP_HEIGHT}"/>
      </body>
      <site name="button_marker_{colour}" pos="0 0 {top}"/>
    </body>"""


class PushButtons(Task):
    name = "push_buttons"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> ButtonsLayout:
        colours, n = push_buttons_variation(variation)
        xy = sample_positions(rng, 3, low=(-0.25, -0.3), high=(0.2, 0.3), min_distance=0.15)
        layout = ButtonsLayout(
            colours=colours,
            sequence=list(colours[:n]),
            positions=dict(zip(colours, xy, strict=True)),
        )
        for colour in colours:
            scene.add_body(_button_xml(colour, layout.positions[colour]))
        return layout

    def success_conditions(
        self, layout: ButtonsLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        events = {c: JointBelow(f"button_{c}", PRESSED) for c in layout.colours}
        return [EventsInOrder(events, layout.sequence)]

    def expert(self, layout: ButtonsLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        keyframes: list[dict] = []
        for colour in layout.sequence:
            keyframes += press(physics.site_pos(f"button_top_{colour}"), depth=TRAVEL + 0.01)
        return keyframes
