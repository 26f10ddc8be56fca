"""Scene parts shared by several tasks: the chest of three drawers of open_drawer and
put_item_in_drawer.

Chest frame: origin on the table top at the centre of the chest's footprint, x the direction the
drawers pull out, z up; metres. Both tasks share the carcass (floor, top, two sides, back, two
dividers), the drawer heights, front panels, handles and slides. A :class:`ChestStyle` holds what
differs: the colours, the tray behind each front (open_drawer's is an open tray; put_item_in_drawer's
a closed box with an ``inside_<level>`` site its success check reads), set masses, and the
precision the task's numbers were written with. Keeping those as they were keeps every scene
compiling to the same model bit for bit (tests/test_sim_golden.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mirror_align.sim.instructions import DRAWER_LEVELS
from mirror_align.sim.scene import Scene, mjcf_number

HALF_DEPTH, HALF_WIDTH, HEIGHT, WALL = 0.11, 0.13, 0.33, 0.02  # carcass
DRAWER_Z = {"bottom": 0.065, "middle": 0.165, "top": 0.265}  # drawer body origin heights
DIVIDER_Z, DIVIDER_HALF = (0.115, 0.215), 0.006  # shelf centres and half thickness
FRONT_HALF_HEIGHT = 0.045  # drawer front panel
HANDLE_X = HALF_DEPTH + 0.045  # handle bar centre, drawer frame (site ``handle_<level>``)
SLIDE_RANGE = 0.2  # drawer travel to its stop
# Material parts, in the order their materials are added to the scene.
PARTS = ("carcass", "front", "inner", "handle")


@dataclass(frozen=True)
class Box:
    """A box in its body's frame: centre ``pos`` [3] and half ``size`` [3], metres; ``part``
    names its material (one of ``PARTS``); ``mass`` in kg, None for MuJoCo's default density."""

    pos: tuple[float, float, float]
    size: tuple[float, float, float]
    part: str = "inner"
    mass: float | None = None


@dataclass(frozen=True)
class ChestStyle:
    """What one task's chest does its own way (see the module docstring)."""

    body: str  # name of the chest body
    materials: Mapping[str, tuple[str, tuple[float, float, float, float]]]  # part -> name, rgba
    tray: tuple[Box, ...]  # each drawer's box behind its front panel, drawer frame
    interior: Box | None = None  # box site ``inside_<level>``: where an item counts as inside
    hardware_mass: tuple[float, float, float] | None = None  # kg: front, each handle post, bar
    decimals: int | None = None  # round geom and site numbers to this many decimals


def add_chest(scene: Scene, style: ChestStyle, xy: np.ndarray, yaw: float) -> None:
    """Put the chest at ``xy`` [2] (m) turned by ``yaw`` (rad, drawers pull out along
    (cos yaw, sin yaw, 0)): its materials, its body, the drawers as graspables (at their handle
    sites) and no contacts between the carcass and the drawers or between drawers (they slide
    through one another's clearance)."""
    for part in PARTS:
        name, rgba = style.materials[part]
        scene.add_material(name, rgba=rgba)
    scene.add_body(chest_xml(style, xy, yaw))
    for i, level in enumerate(DRAWER_LEVELS):
        scene.exclude_contact(style.body, f"drawer_{level}")
        scene.add_graspable(f"drawer_{level}", f"handle_{level}")
        for other in DRAWER_LEVELS[i + 1 :]:
            scene.exclude_contact(f"drawer_{level}", f"drawer_{other}")


def chest_xml(style: ChestStyle, xy: np.ndarray, yaw: float) -> str:
    """The chest body's MJCF: carcass, then one slide-jointed body ``drawer_<level>`` per level."""
    d, w, h, t = HALF_DEPTH, HALF_WIDTH, HEIGHT, WALL
    carcass = [
        Box((0, 0, t / 2), (d, w, t / 2), "carcass"),
        Box((0, 0, h - t / 2), (d, w, t / 2), "carcass"),
        Box((0, w - t / 2, h / 2), (d, t / 2, h / 2), "carcass"),
        Box((0, -(w - t / 2), h / 2), (d, t / 2, h / 2), "carcass"),
        Box((-(d - t / 2), 0, h / 2), (t / 2, w, h / 2), "carcass"),
    ] + [Box((0, 0, z), (d, w, DIVIDER_HALF), "carcass") for z in DIVIDER_Z]
    lines = [f'    <body name="{style.body}" pos="{xy[0]} {xy[1]} 0" euler="0 0 {yaw}">']
    lines += ["      " + _geom(style, box) for box in carcass]
    for level in DRAWER_LEVELS:
        lines += _drawer_lines(style, level)
    return "\n".join(lines + ["    </body>"])


def _drawer_lines(style: ChestStyle, level: str) -> list[str]:
    front_mass, post_mass, bar_mass = style.hardware_mass or (None, None, None)
    post = (HALF_DEPTH + 0.0175, 0.05, 0.0)  # the two handle posts: 35 mm deep, 10 cm apart
    boxes = [
        Box(
            (HALF_DEPTH - 0.01, 0, 0),
            (0.01, HALF_WIDTH - 0.012, FRONT_HALF_HEIGHT),
            "front",
            front_mass,
        ),
        *style.tray,
        Box(post, (0.0175, 0.006, 0.006), "handle", post_mass),
        Box((post[0], -post[1], 0), (0.0175, 0.006, 0.006), "handle", post_mass),
        Box((HANDLE_X, 0, 0), (0.008, 0.065, 0.008), "handle", bar_mass),
    ]
    lines = [
        f'      <body name="drawer_{level}" pos="0 0 {DRAWER_Z[level]}">',
        f'        <joint name="drawer_{level}" type="slide" axis="1 0 0" range="0 {SLIDE_RANGE}" '
        'damping="2" frictionloss="0.2"/>',
    ]
    lines += ["        " + _geom(style, box) for box in boxes]
    lines.append(f'        <site name="handle_{level}" pos="{HANDLE_X} 0 0"/>')
    if style.interior is not None:
        box = style.interior
        lines.append(
            f'        <site name="inside_{level}" type="box" pos="{_vec(style, box.pos)}" '
            f'size="{_vec(style, box.size)}"/>'
        )
    return lines + ["      </body>"]


def _geom(style: ChestStyle, box: Box) -> str:
    mass = "" if box.mass is None else f' mass="{mjcf_number(box.mass)}"'
    material = style.materials[box.part][0]
    return (
        f'<geom type="box" pos="{_vec(style, box.pos)}" size="{_vec(style, box.size)}" '
        f'material="{material}"{mass}/>'
    )


def _vec(style: ChestStyle, values: tuple[float, ...]) -> str:
    if style.decimals is None:
        return " ".join(mjcf_number(float(v)) for v in values)
    # round() gives the same double as reading back f"{v:.{decimals}f}" (both correctly rounded)
    return " ".join(mjcf_number(round(float(v), style.decimals)) for v in values)
