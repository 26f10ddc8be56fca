"""Compose one episode's MJCF: table, lights, the 4 cameras, the gripper and the task's objects.

Tasks add XML fragments for their bodies and name which bodies can be grasped; the builder adds
the grasp welds, the rendering settings and the fixed parts. Object poses come from the task's
seeded ``numpy.random.Generator`` (see :func:`sample_positions`), so a seed reproduces a scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mirror_align.sim import gripper as gripper_mjcf
from mirror_align.sim.constants import SCENE_EXTENT, ZFAR_REL, ZNEAR_REL
from mirror_align.sim.transforms import look_at_xyaxes

# Fixed cameras: (name, position, look-at point, vertical field of view in degrees).
# The robot stands on the -x side; the front camera faces it from +x.
FIXED_CAMERAS = (
    ("front", (1.05, 0.0, 0.78), (0.0, 0.0, 0.05), 50.0),
    ("left_shoulder", (-0.62, 0.52, 0.72), (0.05, 0.0, 0.0), 55.0),
    ("right_shoulder", (-0.62, -0.52, 0.72), (0.05, 0.0, 0.0), 55.0),
)
TABLE_HALF = 0.6  # half side of the square table top, metres


@dataclass
class Scene:
    """Collects MJCF fragments; :meth:`to_xml` returns the whole model."""

    image_size: int = 128
    assets: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    equalities: list[str] = field(default_factory=list)
    excludes: list[tuple[str, str]] = field(default_factory=list)
    # body name -> site name of its grasp point (the point that must be between the fingers)
    graspables: dict[str, str] = field(default_factory=dict)

    def add_body(self, xml: str) -> None:
        """Add a ``<body>`` (or any worldbody element) fragment."""
        self.bodies.append(xml)

    def add_asset(self, xml: str) -> None:
        """Add an ``<asset>`` child written as MJCF (a mesh, a texture); materials: :meth:`add_material`."""
        self.assets.append(xml)

    def add_material(self, name: str, rgba: str | Sequence[float], specular: float = 0.0) -> None:
        """Add a flat material: ``rgba`` as 4 numbers in [0, 1] or as MJCF text (what
        :func:`~mirror_align.sim.colors.rgba` returns), ``specular`` in [0, 1].

        Raises ValueError unless ``rgba`` holds 4 numbers."""
        values = rgba.split() if isinstance(rgba, str) else list(rgba)
        if len(values) != 4:
            raise ValueError(f"material {name!r}: rgba needs 4 numbers, got {rgba!r}")
        text = " ".join(mjcf_number(float(v)) for v in values)
        self.assets.append(
            f'<material name="{name}" rgba="{text}" specular="{mjcf_number(specular)}"/>'
        )

    def add_equality(self, xml: str) -> None:
        self.equalities.append(xml)

    def add_graspable(self, body: str, grasp_site: str) -> None:
        """Let the gripper attach ``body`` when ``grasp_site`` is between its fingers on close."""
        self.graspables[body] = grasp_site

    def exclude_contact(self, body1: str, body2: str) -> None:
        self.excludes.append((body1, body2))

    def to_xml(self) -> str:
        size = max(self.image_size, 64)
        cams = "\n".join(
            f'    <camera name="{n}" pos="{p[0]} {p[1]} {p[2]}" '
            f'xyaxes="{look_at_xyaxes(np.array(p), np.array(t))}" fovy="{fov}"/>'
            for n, p, t, fov in FIXED_CAMERAS
        )
        welds = "\n".join(
            f'    <weld name="grasp:{b}" body1="{gripper_mjcf.BODY}" body2="{b}" active="false" '
            f'solref="0.01 1"/>'
            for b in self.graspables
        )
        excl = "\n".join(f'    <exclude body1="{a}" body2="{b}"/>' for a, b in self.excludes)
        return f"""<mujoco model="mirrorbench">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{_timestep()}" integrator="implicitfast" cone="elliptic" impratio="5"/>
  <statistic extent="{SCENE_EXTENT}" center="0 0 0.2"/>
  <visual>
    <global offwidth="{size}" offheight="{size}"/>
    <quality offsamples="0" shadowsize="0"/>
    <map znear="{ZNEAR_REL}" zfar="{ZFAR_REL}"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.35 0.35 0.35" specular="0 0 0"/>
  </visual>
  <default>
    <geom solref="0.008 1" solimp="0.95 0.99 0.001" friction="1 0.01 0.001"/>
    <site group="4" rgba="0 0 0 0"/>
  </default>
  <asset>
    <material name="table" rgba="0.62 0.5 0.38 1" specular="0"/>
    <material name="floor" rgba="0.3 0.3 0.32 1" specular="0"/>
{chr(10).join(self.assets)}
  </asset>
  <worldbody>
    <light name="top" pos="0 0 2.5" dir="0 0 -1" directional="true" diffuse="0.5 0.5 0.5" castshadow="false"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" material="floor" contype="0" conaffinity="0"/>
    <geom name="table" type="box" pos="0 0 -0.025" size="{TABLE_HALF} {TABLE_HALF} 0.025" material="table"/>
{cams}
{gripper_mjcf.worldbody_xml()}
{chr(10).join(self.bodies)}
  </worldbody>
  <equality>
{gripper_mjcf.equality_xml()}
{welds}
{chr(10).join(self.equalities)}
  </equality>
  <actuator>
{gripper_mjcf.actuator_xml()}
  </actuator>
  <contact>
{excl}
  </contact>
</mujoco>
"""


def mjcf_number(value: float) -> str:
    """The shortest MJCF text that reads back as exactly ``value`` ("1", "0.78", "0.118")."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _timestep() -> float:
    from mirror_align.sim.constants import PHYSICS_TIMESTEP

    return PHYSICS_TIMESTEP


def sample_positions(
    rng: np.random.Generator,
    count: int,
    low: tuple[float, float],
    high: tuple[float, float],
    min_distance: float,
    taken: list[np.ndarray] | None = None,
    max_tries: int = 2000,
    restarts: int = 20,
) -> list[np.ndarray]:
    """Draw ``count`` xy points [2] uniformly in the box ``low..high`` by rejection so that every
    point is at least ``min_distance`` metres from the others and from ``taken``.

    Sequential rejection can paint itself into a corner (the first points leave no room for the
    last), so a failed draw starts over, up to ``restarts`` times. Deterministic given the
    generator state; a draw that succeeds at once consumes the generator as it always did.
    Raises RuntimeError if the box is too crowded.
    """
    fixed = [np.asarray(p, dtype=np.float64)[:2] for p in (taken or [])]
    for _ in range(1 + restarts):
        points, out = list(fixed), []
        for _ in range(max_tries):
            if len(out) == count:
                return out
            p = rng.uniform(low, high)
            if all(np.linalg.norm(p - q) >= min_distance for q in points):
                points.append(p)
                out.append(p)
        if len(out) == count:
            return out
    raise RuntimeError(f"could not place {count} objects {min_distance} m apart in {low}..{high}")
