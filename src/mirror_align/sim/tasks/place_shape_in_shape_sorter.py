"""place_shape_in_shape_sorter: five shapes (cube, cylinder, triangular prism, star, moon) of
random distinct colours lie on the table next to a shape-sorter box; put the named shape into it.

Simplified: the sorter's five openings are square and wide enough for any of the shapes; the
shape each opening belongs to is drawn as a flat icon next to it, and the expert drops the shape
through its own opening. Shapes are composed from primitives (the prism from a small generated
convex mesh). Success: the named shape inside the sorter, nothing grasped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.colors import COLOR_NAMES, rgba
from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.instructions import SHAPE_NAMES
from mirror_align.sim.keyframes import pick, place, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

SHAPE_R = 0.03  # shapes fit in a circle of this radius, metres
SHAPE_HALF_H = 0.02
HOLE_HALF, HOLE_PITCH = 0.042, 0.105  # square openings in a row along the sorter's local y
BAR_HALF = HOLE_PITCH / 2 - HOLE_HALF
SORTER_HALF = (0.08, 2.5 * HOLE_PITCH + BAR_HALF)  # outer half sizes, metres
SORTER_H, WALL = 0.1, 0.01
ICON_X, ICON_SCALE = (HOLE_HALF + 0.08) / 2, 0.55  # icons on the +x margin of the top plate
GRASP_ABOVE = 0.005  # TCP above the grasp point: fingertips at the shape's bottom
RELEASE_GAP = 0.012  # shape bottom above the top plate when released
MOON_R, MOON_SPAN, MOON_SEGMENTS, MOON_THICK = 0.021, np.radians(110), 5, 0.008
# Jaw direction in the shape frame: across symmetric extents so closing does not push it.
# The moon is held across its two horns (closing across its middle lets a finger into the arc).
GRASP_YAW = {
    "cube": 0.0,
    "cylinder": 0.0,
    "triangular prism": np.pi / 2,
    "star": np.pi / 2,
    "moon": np.pi / 2,
}


def _slug(shape: str) -> str:
    return shape.replace(" ", "_")


def _hole_y(shape: str) -> float:
    return (SHAPE_NAMES.index(shape) - 2) * HOLE_PITCH


def _shape_geoms(shape: str, scale: float, half_h: float, z: float, attrs: str) -> list[str]:
    """Geoms of ``shape`` centred at (0, 0, z) in its body frame, ``scale`` x the object size."""
    r = SHAPE_R * scale
    if shape == "cube":
        a = 0.75 * r
        return [f'<geom type="box" pos="0 0 {z}" size="{a} {a} {half_h}" {attrs}/>']
    if shape == "cylinder":
        return [f'<geom type="cylinder" pos="0 0 {z}" size="{0.9 * r} {half_h}" {attrs}/>']
    if shape == "triangular prism":
        mesh = "prism_obj" if scale == 1.0 else "prism_icon"
        return [f'<geom type="mesh" mesh="{mesh}" pos="0 0 {z}" {attrs}/>']
    if shape == "star":
        out = [f'<geom type="cylinder" pos="0 0 {z}" size="{0.35 * r} {half_h}" {attrs}/>']
        for k in range(5):
            a = k * 2 * np.pi / 5
            out.append(
                f'<geom type="box" pos="{0.55 * r * np.cos(a):.5f} {0.55 * r * np.sin(a):.5f} {z}" '
                f'euler="0 0 {a:.5f}" size="{0.45 * r} {0.16 * r} {half_h}" {attrs}/>'
            )
        return out
    if shape == "moon":
        out = []
        edges = np.linspace(-MOON_SPAN, MOON_SPAN, MOON_SEGMENTS + 1)
        R, t = MOON_R * scale, MOON_THICK * scale
        for a0, a1 in zip(edges[:-1], edges[1:], strict=True):
            p0 = (R * np.cos(a0), R * np.sin(a0))
            p1 = (R * np.cos(a1), R * np.sin(a1))
            mid = np.hypot(p1[0] - p0[0], p1[1] - p0[1]) / 2
            ang = np.arctan2(p1[1] - p0[1], p1[0] - p0[0])
            out.append(
                f'<geom type="box" pos="{(p0[0] + p1[0]) / 2:.5f} {(p0[1] + p1[1]) / 2:.5f} {z}" '
                f'euler="0 0 {ang:.5f}" size="{mid + t / 2:.5f} {t:.5f} {half_h}" {attrs}/>'
            )
        return out
    raise ValueError(shape)


def _prism_mesh(name: str, r: float, half_h: float) -> str:
    verts = []
    for z in (-half_h, half_h):
        for k in range(3):
            a = k * 2 * np.pi / 3
            verts += [r * np.cos(a), r * np.sin(a), z]
    return f'<mesh name="{name}" vertex="{" ".join(f"{v:.5f}" for v in verts)}"/>'


@dataclass
class ShapeSorterLayout:
    sorter_xy: np.ndarray  # [2] m
    sorter_yaw: float  # rad
    shape_xy: dict[str, np.ndarray]  # shape -> xy [2]
    shape_yaw: dict[str, float]  # shape -> rad
    colours: dict[str, str]  # shape -> colour name
    target: str  # shape name


def _sorter_xml(layout: ShapeSorterLayout) -> str:
    x, y = layout.sorter_xy
    hx, hy = SORTER_HALF
    h = SORTER_H / 2
    plate_z = SORTER_H - WALL / 2
    margin = (hx - HOLE_HALF) / 2
    geoms = [
        f'<geom type="box" pos="{hx - WALL / 2} 0 {h}" size="{WALL / 2} {hy} {h}"/>',
        f'<geom type="box" pos="-{hx - WALL / 2} 0 {h}" size="{WALL / 2} {hy} {h}"/>',
        f'<geom type="box" pos="0 {hy - WALL / 2} {h}" size="{hx} {WALL / 2} {h}"/>',
        f'<geom type="box" pos="0 -{hy - WALL / 2} {h}" size="{hx} {WALL / 2} {h}"/>',
        f'<geom type="box" pos="{HOLE_HALF + margin} 0 {plate_z}" size="{margin} {hy} {WALL / 2}"/>',
        f'<geom type="box" pos="-{HOLE_HALF + margin} 0 {plate_z}" size="{margin} {hy} {WALL / 2}"/>',
    ]
    bar = BAR_HALF
    for k in range(-2, 4):
        geoms.append(
            f'<geom type="box" pos="0 {(k - 0.5) * HOLE_PITCH} {plate_z}" '
            f'size="{HOLE_HALF} {bar} {WALL / 2}"/>'
        )
    icon_attrs = 'rgba="0.12 0.12 0.14 1" contype="0" conaffinity="0"'
    icons = []
    for shape in SHAPE_NAMES:
        body = "\n        ".join(_shape_geoms(shape, ICON_SCALE, 0.001, 0.0, icon_attrs))
        icons.append(
            f'      <body name="icon_{_slug(shape)}" pos="{ICON_X} {_hole_y(shape)} {SORTER_H + 0.001}">\n'
            f"        {body}\n      </body>"
        )
    walls = "\n".join("      " + g.replace("<geom ", '<geom material="sorter" ') for g in geoms)
    return f"""    <body name="sorter" pos="{x} {y} 0" euler="0 0 {layout.sorter_yaw}">
{walls}
{chr(10).join(icons)}
      <site name="sorter_inside" type="box" pos="0 0 {(SORTER_H - WALL) / 2 - 0.005}" size="{hx - WALL} {hy - WALL} {(SORTER_H - WALL) / 2 - 0.005}"/>
{chr(10).join(f'      <site name="hole_{_slug(s)}" pos="0 {_hole_y(s)} {SORTER_H}"/>' for s in SHAPE_NAMES)}
    </body>"""


def _shape_xml(layout: ShapeSorterLayout, shape: str) -> str:
    x, y = layout.shape_xy[shape]
    name = _slug(shape)
    attrs = f'rgba="{rgba(layout.colours[shape])}" mass="0.03"'
    geoms = "\n      ".join(_shape_geoms(shape, 1.0, SHAPE_HALF_H, 0.0, attrs))
    return f"""    <body name="shape_{name}" pos="{x} {y} {SHAPE_HALF_H}" euler="0 0 {layout.shape_yaw[shape]}">
      <freejoint/>
      {geoms}
      <site name="grasp_{name}"/>
    </body>"""


class PlaceShapeInShapeSorter(Task):
    name = "place_shape_in_shape_sorter"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> ShapeSorterLayout:
        (sorter_xy,) = sample_positions(
            rng, 1, low=(-0.24, -0.08), high=(-0.16, 0.08), min_distance=0
        )
        shape_xy = sample_positions(
            rng, len(SHAPE_NAMES), low=(-0.02, -0.33), high=(0.3, 0.33), min_distance=0.12
        )
        colours = rng.choice(COLOR_NAMES, size=len(SHAPE_NAMES), replace=False)
        layout = ShapeSorterLayout(
            sorter_xy=sorter_xy,
            sorter_yaw=float(rng.uniform(-0.3, 0.3)),
            shape_xy=dict(zip(SHAPE_NAMES, shape_xy, strict=True)),
            shape_yaw={s: float(rng.uniform(-np.pi, np.pi)) for s in SHAPE_NAMES},
            colours={s: str(c) for s, c in zip(SHAPE_NAMES, colours, strict=True)},
            target=SHAPE_NAMES[variation],
        )
        scene.add_material("sorter", rgba=(0.8, 0.82, 0.86, 1))
        scene.add_asset(_prism_mesh("prism_obj", SHAPE_R, SHAPE_HALF_H))
        scene.add_asset(_prism_mesh("prism_icon", SHAPE_R * ICON_SCALE, 0.001))
        scene.add_body(_sorter_xml(layout))
        for shape in SHAPE_NAMES:
            scene.add_body(_shape_xml(layout, shape))
            scene.add_graspable(f"shape_{_slug(shape)}", f"grasp_{_slug(shape)}")
        return layout

    def success_conditions(
        self, layout: ShapeSorterLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [
            BodyInSite(f"shape_{_slug(layout.target)}", "sorter_inside"),
            NothingGrasped(gripper),
        ]

    def expert(self, layout: ShapeSorterLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        name = _slug(layout.target)
        body = physics.body_pos(f"shape_{name}")
        grasp = physics.site_pos(f"grasp_{name}") + [0.0, 0.0, GRASP_ABOVE]
        rot = top_down(layout.shape_yaw[layout.target] + GRASP_YAW[layout.target])
        hole = physics.site_pos(f"hole_{name}")
        # The shape keeps its pose relative to the gripper: put its centre over its opening.
        shape_at_hole = hole + [0.0, 0.0, RELEASE_GAP + SHAPE_HALF_H]
        return pick(grasp, rot, approach_height=0.1) + place(
            shape_at_hole + (grasp - body), rot, approach_height=0.08
        )
