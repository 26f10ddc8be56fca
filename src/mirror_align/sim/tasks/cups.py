"""The cup shared by place_cups and stack_cups: a tapered, open cup composed of box staves.

Frame: origin at the bottom centre, z up. The wall widens from ``R_BOTTOM`` to ``R_TOP`` (outer
radii), so identical cups nest about ``NEST_STEP`` above one another. The grasp point sits in the
wall at the rim on the local +x side (the jaw closes radially across the wall); the optional
handle is a square loop on the -x side with a vertical opening (it hangs on a vertical spoke).
"""

from __future__ import annotations

import numpy as np

from mirror_align.sim.scene import Scene

N_STAVES = 12
HEIGHT, R_BOTTOM, R_TOP, THICK = 0.07, 0.026, 0.036, 0.004  # metres
FLOOR = 0.006  # bottom disk thickness
TAPER = (R_TOP - R_BOTTOM) / HEIGHT  # outer radius gained per metre of height
NEST_STEP = THICK / TAPER  # a cup inside another sits this much higher (faces aligned)
GRASP_DEPTH = 0.008  # grasp point below the rim
TCP_DEPTH = 0.004  # TCP below the rim when grasping: fingertips end 0.024 m below it
# Handle loop (on the -x side): opening centre distance from the axis, opening half sizes, bar
HANDLE_X, HANDLE_OPEN, HANDLE_BAR = 0.047, 0.014, 0.0025
HANDLE_Z = (0.03, 0.06)


def outer_radius(z: float) -> float:
    return R_BOTTOM + TAPER * z


def grasp_local() -> np.ndarray:
    """Grasp point [3] in the cup frame: in the wall, ``GRASP_DEPTH`` below the rim."""
    z = HEIGHT - GRASP_DEPTH
    return np.array([outer_radius(z) - THICK / 2, 0.0, z])


def tcp_local() -> np.ndarray:
    """Where the expert puts the TCP [3] in the cup frame to grasp it (top-down, jaw along x)."""
    z = HEIGHT - TCP_DEPTH
    return np.array([outer_radius(z) - THICK / 2, 0.0, z])


def handle_local() -> np.ndarray:
    """Centre [3] of the handle's opening in the cup frame."""
    return np.array([-HANDLE_X, 0.0, sum(HANDLE_Z) / 2])


def cup_xml(name: str, xy: np.ndarray, yaw: float, *, handle: bool) -> str:
    """A free cup body ``name`` standing at ``xy`` [2] with yaw ``yaw`` (rad); sites
    ``{name}_grasp``, ``{name}_inside`` (nested-cup region), and ``{name}_handle`` if ``handle``.
    Its material ``{name}_mat`` comes from :func:`add_cup_material`."""
    phi = np.arctan(TAPER)
    slant = HEIGHT / np.cos(phi)
    r_mid = outer_radius(HEIGHT / 2) - THICK / 2
    half_w = R_TOP * np.tan(np.pi / N_STAVES) + 0.0005  # staves overlap at the corners
    geoms = []
    for k in range(N_STAVES):
        a = 2 * np.pi * k / N_STAVES
        xa = (np.cos(a) * np.cos(phi), np.sin(a) * np.cos(phi), -np.sin(phi))
        ya = (-np.sin(a), np.cos(a), 0.0)
        geoms.append(
            f'<geom type="box" pos="{r_mid * np.cos(a):.5f} {r_mid * np.sin(a):.5f} {HEIGHT / 2}" '
            f'xyaxes="{" ".join(f"{v:.5f}" for v in (*xa, *ya))}" '
            f'size="{THICK / 2} {half_w:.5f} {slant / 2:.5f}" material="{name}_mat"/>'
        )
    geoms.append(
        f'<geom type="cylinder" pos="0 0 {FLOOR / 2}" size="{R_BOTTOM - 0.001} {FLOOR / 2}" '
        f'material="{name}_mat"/>'
    )
    sites = [
        f'<site name="{name}_grasp" pos="{" ".join(f"{v:.5f}" for v in grasp_local())}"/>',
        f'<site name="{name}_inside" type="box" pos="0 0 0.055" size="0.012 0.012 0.045"/>',
    ]
    if handle:
        zc, hz = sum(HANDLE_Z) / 2, (HANDLE_Z[1] - HANDLE_Z[0]) / 2
        inner = outer_radius(HANDLE_Z[0]) - THICK  # arms start inside the wall
        outer = HANDLE_X + HANDLE_OPEN + 2 * HANDLE_BAR
        arm_half = (outer - inner) / 2
        for sy in (-1, 1):
            geoms.append(
                f'<geom type="box" pos="-{inner + arm_half:.5f} {sy * (HANDLE_OPEN + HANDLE_BAR)} '
                f'{zc}" size="{arm_half:.5f} {HANDLE_BAR} {hz}" material="{name}_mat"/>'
            )
        geoms.append(
            f'<geom type="box" pos="-{outer - HANDLE_BAR:.5f} 0 {zc}" '
            f'size="{HANDLE_BAR} {HANDLE_OPEN + 2 * HANDLE_BAR} {hz}" material="{name}_mat"/>'
        )
        sites.append(
            f'<site name="{name}_handle" pos="{" ".join(f"{v:.5f}" for v in handle_local())}"/>'
        )
    body = "\n      ".join(geoms + sites)
    return f"""    <body name="{name}" pos="{xy[0]} {xy[1]} 0.0005" euler="0 0 {yaw}">
      <freejoint/>
      <inertial pos="0 0 0.03" mass="0.05" diaginertia="4e-5 4e-5 3e-5"/>
      {body}
    </body>"""


def add_cup_material(scene: Scene, name: str, rgba: str) -> None:
    """The material ``{name}_mat`` that :func:`cup_xml` draws cup ``name`` with."""
    scene.add_material(f"{name}_mat", rgba=rgba)


def rotate_z(v: np.ndarray, yaw: float) -> np.ndarray:
    """``v`` [3] rotated by ``yaw`` rad about z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]])
