"""The scene helpers shared by tasks: materials, MJCF numbers and the chest of drawers."""

from __future__ import annotations

import numpy as np
import pytest

from mirror_align.sim.assets import DRAWER_Z, SLIDE_RANGE, add_chest
from mirror_align.sim.instructions import DRAWER_LEVELS
from mirror_align.sim.physics import Physics
from mirror_align.sim.scene import Scene, mjcf_number
from mirror_align.sim.tasks.open_drawer import CABINET
from mirror_align.sim.tasks.put_item_in_drawer import CHEST


def test_add_material_takes_numbers_or_mjcf_text() -> None:
    scene = Scene()
    scene.add_material("a", rgba=(0.78, 0.72, 0.62, 1), specular=0.2)
    scene.add_material("b", rgba="0.78 0.72 0.62 1")
    assert scene.assets == [
        '<material name="a" rgba="0.78 0.72 0.62 1" specular="0.2"/>',
        '<material name="b" rgba="0.78 0.72 0.62 1" specular="0"/>',
    ]
    with pytest.raises(ValueError, match="material 'c': rgba needs 4 numbers"):
        scene.add_material("c", rgba=(1.0, 0.0, 0.0))


def test_mjcf_number_reads_back_as_the_same_double() -> None:
    values = np.random.default_rng(0).uniform(-1.0, 1.0, 200).tolist()
    values += [0.13 - 0.012, 0.1, 1.0, 0.0, 1e-7]  # 0.11800000000000001 keeps all its digits
    for v in values:
        assert float(mjcf_number(v)) == v
    assert mjcf_number(1.0) == "1" and mjcf_number(0.13 - 0.012) == "0.11800000000000001"


@pytest.mark.parametrize("style", [CABINET, CHEST], ids=["open_drawer", "put_item_in_drawer"])
def test_chest_compiles_with_three_sliding_drawers(style) -> None:
    scene = Scene(image_size=24)
    add_chest(scene, style, np.array([0.0, 0.1]), 0.3)
    physics = Physics(scene.to_xml())
    model = physics.model
    assert set(scene.graspables) == {f"drawer_{level}" for level in DRAWER_LEVELS}
    for level in DRAWER_LEVELS:
        joint = physics.joint_id(f"drawer_{level}")
        np.testing.assert_allclose(model.jnt_range[joint], [0.0, SLIDE_RANGE])
        # the handle site is in front of the chest at the drawer's height
        handle = physics.site_pos(f"handle_{level}")
        assert handle[2] == pytest.approx(DRAWER_Z[level])
        assert np.dot(handle[:2] - [0.0, 0.1], [np.cos(0.3), np.sin(0.3)]) > 0.15
    has_interior = style.interior is not None
    names = [model.site(i).name for i in range(model.nsite)]
    assert ("inside_top" in names) == has_interior
    assert style.body in [model.body(i).name for i in range(model.nbody)]
    # every carcass/drawer pair and drawer pair is excluded from contact: 3 + 3
    assert len(scene.excludes) == 6
