"""meat_off_grill: a chicken drumstick and a steak lie on the grate of a grill; take the named one
off the grill and put it on the table beside it (the other piece is the distractor).

The grill is composed of primitives: a dark firebox on four legs, a dark ash plate under
grey grate bars and a low rim. The chicken is a pale golden ellipsoid with a bone and knob, the
steak a flat dark-red slab with a fat strip, so the two differ in shape and colour. As in RLBench
both pieces are always on the grill and the off-grill region is an invisible box on the table next
to the grill (here beside its local +y end). Simplified: the grill has no lid, and the expert uses
a top-down attach-on-grasp pick. Success: the named piece's origin inside the off-grill region,
nothing grasped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirror_align.sim.conditions import BodyInSite, Condition, NothingGrasped
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.keyframes import keyframe, top_down
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, sample_positions
from mirror_align.sim.task import Task

MEATS = ("chicken", "steak")  # variation order of sim/instructions.py

# Grill, in its own frame (metres): firebox half sizes, leg height, top of the grate bars.
GRILL_HALF = (0.12, 0.17)
LEG_H = 0.04
GRATE_TOP = 0.1
BAR_HALF_H = 0.003
RIM_H = 0.025  # rim height above the grate: blocks most sweeps of a piece off the grill
# Off-grill region: box on the table beside the grill's +y end (centre offset, half sizes).
REGION_GAP = 0.03
REGION_HALF = (0.11, 0.1, 0.04)

# Meat geometry: half sizes of the chicken ellipsoid and the steak slab (local x = long axis).
CHICKEN_HALF = (0.042, 0.026, 0.019)
STEAK_HALF = (0.05, 0.03, 0.011)
MEAT_HALF_H = {"chicken": CHICKEN_HALF[2], "steak": STEAK_HALF[2]}
GRIP_ABOVE_CENTRE = 0.01  # TCP above the piece's centre: fingertips stay above the grate
SLOT_Y = 0.075  # the two pieces lie around local y = +-SLOT_Y on the grate
JITTER = 0.02
LIFT = 0.1  # lift above the grasp, clears the rim with margin
RELEASE_GAP = 0.008  # piece bottom above the table when released


@dataclass
class MeatLayout:
    grill_xy: np.ndarray  # [2] m
    grill_yaw: float  # rad; grill local x = (cos yaw, sin yaw, 0)
    meat_local_xy: dict[str, np.ndarray]  # meat -> [2] m in the grill frame
    meat_yaw: dict[str, float]  # meat -> rad, world
    target: str  # "chicken" | "steak"

    def to_world(self, local_xy: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.grill_yaw), np.sin(self.grill_yaw)
        x, y = local_xy
        return self.grill_xy + np.array([c * x - s * y, s * x + c * y])


def _box(pos, size, material: str, extra: str = "") -> str:
    p = " ".join(f"{v:.4f}" for v in pos)
    s = " ".join(f"{v:.4f}" for v in size)
    return f'      <geom type="box" pos="{p}" size="{s}" material="{material}"{extra}/>'


def _grill_xml(layout: MeatLayout) -> str:
    hx, hy = GRILL_HALF
    body_h = GRATE_TOP - 2 * BAR_HALF_H - LEG_H
    geoms = [_box((0, 0, LEG_H + body_h / 2), (hx, hy, body_h / 2), "grill")]
    for sx in (-1, 1):
        for sy in (-1, 1):
            geoms.append(
                f'      <geom type="cylinder" pos="{sx * (hx - 0.02):.4f} {sy * (hy - 0.02):.4f} '
                f'{LEG_H / 2:.4f}" size="0.012 {LEG_H / 2:.4f}" material="grill"/>'
            )
    # Ember plate just under the bars (visual), bars along local x, rim around the grate.
    bar_z = GRATE_TOP - BAR_HALF_H
    geoms.append(
        _box(
            (0, 0, bar_z - BAR_HALF_H + 0.0005),
            (hx - 0.012, hy - 0.012, 0.001),
            "embers",
            ' contype="0" conaffinity="0"',
        )
    )
    n_bars = 13
    for y in np.linspace(-(hy - 0.02), hy - 0.02, n_bars):
        geoms.append(_box((0, y, bar_z), (hx - 0.012, 0.004, BAR_HALF_H), "grate"))
    rim_z = GRATE_TOP + RIM_H / 2 - 0.003
    t = 0.006
    geoms += [
        _box((hx - t, 0, rim_z), (t, hy, RIM_H / 2 + 0.003), "grill"),
        _box((-(hx - t), 0, rim_z), (t, hy, RIM_H / 2 + 0.003), "grill"),
        _box((0, hy - t, rim_z), (hx, t, RIM_H / 2 + 0.003), "grill"),
        _box((0, -(hy - t), rim_z), (hx, t, RIM_H / 2 + 0.003), "grill"),
    ]
    rx, ry, rz = REGION_HALF
    x, y = layout.grill_xy
    return (
        f'    <body name="grill" pos="{x:.4f} {y:.4f} 0" euler="0 0 {layout.grill_yaw:.4f}">\n'
        + "\n".join(geoms)
        + f'\n      <site name="off_grill" type="box" pos="0 {hy + REGION_GAP + ry:.4f} {rz:.4f}" '
        f'size="{rx} {ry} {rz}"/>\n    </body>'
    )


def _meat_xml(layout: MeatLayout, meat: str) -> str:
    x, y = layout.to_world(layout.meat_local_xy[meat])
    z = GRATE_TOP + MEAT_HALF_H[meat] + 0.001
    if meat == "chicken":
        a, b, c = CHICKEN_HALF
        geoms = f"""      <geom type="ellipsoid" size="{a} {b} {c}" material="chicken"/>
      <geom type="capsule" fromto="{a - 0.008} 0 0.002 {a + 0.026} 0 0.004" size="0.007" material="bone"/>
      <geom type="sphere" pos="{a + 0.031} 0 0.004" size="0.011" material="bone"/>"""
    else:
        a, b, c = STEAK_HALF
        geoms = f"""      <geom type="box" size="{a} {b} {c}" material="steak"/>
      <geom type="box" pos="0 {b - 0.003} 0.0005" size="{a - 0.004} 0.0035 {c + 0.0005}" material="fat" contype="0" conaffinity="0"/>"""
    return f"""    <body name="{meat}" pos="{x:.4f} {y:.4f} {z:.4f}" euler="0 0 {layout.meat_yaw[meat]:.4f}">
      <freejoint/>
      <inertial pos="0 0 0" mass="0.1" diaginertia="1e-4 1e-4 1e-4"/>
{geoms}
      <site name="grasp_{meat}" pos="0 0 0"/>
    </body>"""


class MeatOffGrill(Task):
    name = "meat_off_grill"

    def build(self, scene: Scene, rng: np.random.Generator, variation: int) -> MeatLayout:
        (grill_xy,) = sample_positions(rng, 1, low=(-0.02, -0.2), high=(0.16, 0.04), min_distance=0)
        grill_yaw = float(rng.uniform(-0.35, 0.35))
        order = [MEATS[i] for i in rng.permutation(len(MEATS))]
        slots = [
            sample_positions(
                rng, 1, (-JITTER, s * SLOT_Y - JITTER), (JITTER, s * SLOT_Y + JITTER), 0
            )[0]
            for s in (-1.0, 1.0)
        ]
        layout = MeatLayout(
            grill_xy=grill_xy,
            grill_yaw=grill_yaw,
            meat_local_xy=dict(zip(order, slots, strict=True)),
            # Long axis roughly across the grill (local x) so each piece stays on its half.
            meat_yaw={m: grill_yaw + float(rng.uniform(-0.5, 0.5)) for m in MEATS},
            target=MEATS[variation],
        )
        scene.add_material("grill", rgba=(0.12, 0.12, 0.13, 1))
        scene.add_material("grate", rgba=(0.55, 0.55, 0.57, 1))
        scene.add_material("embers", rgba=(0.32, 0.2, 0.17, 1))
        scene.add_material("chicken", rgba=(0.93, 0.74, 0.42, 1))
        scene.add_material("bone", rgba=(0.96, 0.94, 0.86, 1))
        scene.add_material("steak", rgba=(0.62, 0.08, 0.08, 1))
        scene.add_material("fat", rgba=(0.95, 0.88, 0.82, 1))
        scene.add_body(_grill_xml(layout))
        for meat in MEATS:
            scene.add_body(_meat_xml(layout, meat))
            scene.add_graspable(meat, f"grasp_{meat}")
        return layout

    def success_conditions(
        self, layout: MeatLayout, physics: Physics, gripper: Gripper
    ) -> list[Condition]:
        return [BodyInSite(layout.target, "off_grill"), NothingGrasped(gripper)]

    def expert(self, layout: MeatLayout, physics: Physics, gripper: Gripper) -> list[dict]:
        meat = layout.target
        centre = physics.body_pos(meat)
        long_axis = physics.body_mat(meat)[:, 0]
        # The jaw closes across the piece (its local y), the narrow side.
        rot = top_down(float(np.arctan2(long_axis[1], long_axis[0])) + np.pi / 2)
        grasp = centre + [0.0, 0.0, GRIP_ABOVE_CENTRE]
        lifted = grasp + [0.0, 0.0, LIFT]
        region = physics.site_pos("off_grill")
        release = np.array(
            [region[0], region[1], MEAT_HALF_H[meat] + RELEASE_GAP + GRIP_ABOVE_CENTRE]
        )
        above_region = np.array([region[0], region[1], lifted[2]])
        return [
            keyframe(lifted, rot, gripper_open=True, ignore_collisions=False),
            keyframe(grasp, rot, gripper_open=False, ignore_collisions=True),
            keyframe(lifted, rot, gripper_open=False, ignore_collisions=True),
            keyframe(above_region, rot, gripper_open=False, ignore_collisions=True),
            # Success ends the episode at the release, so no retreat keyframe.
            keyframe(release, rot, gripper_open=True, ignore_collisions=True),
        ]
