"""A compiled scene: MuJoCo model + data with lookups by name (no magic indices)."""

from __future__ import annotations

import numpy as np

from mirror_align.headless import import_mujoco
from mirror_align.sim.transforms import wxyz_to_xyzw

# The one place the simulator imports mujoco: import_mujoco() sets up headless GL first (MuJoCo
# picks its backend on import) and turns a backend that cannot load into one error line.
mujoco = import_mujoco()


class Physics:
    """Owns ``model`` and ``data`` of one episode's scene."""

    def __init__(self, xml: str) -> None:
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        mujoco.mj_forward(self.model, self.data)

    def _id(self, kind: mujoco.mjtObj, name: str) -> int:
        i = mujoco.mj_name2id(self.model, kind, name)
        if i < 0:
            raise KeyError(f"no {kind.name[6:].lower()} named {name!r} in the scene")
        return i

    def body_id(self, name: str) -> int:
        return self._id(mujoco.mjtObj.mjOBJ_BODY, name)

    def site_id(self, name: str) -> int:
        return self._id(mujoco.mjtObj.mjOBJ_SITE, name)

    def joint_id(self, name: str) -> int:
        return self._id(mujoco.mjtObj.mjOBJ_JOINT, name)

    def body_pos(self, name: str) -> np.ndarray:
        """World position [3] of a body frame."""
        return self.data.xpos[self.body_id(name)].copy()

    def body_quat(self, name: str) -> np.ndarray:
        """World orientation of a body, xyzw [4]."""
        return wxyz_to_xyzw(self.data.xquat[self.body_id(name)])

    def body_mat(self, name: str) -> np.ndarray:
        return self.data.xmat[self.body_id(name)].reshape(3, 3).copy()

    def site_pos(self, name: str) -> np.ndarray:
        return self.data.site_xpos[self.site_id(name)].copy()

    def site_mat(self, name: str) -> np.ndarray:
        return self.data.site_xmat[self.site_id(name)].reshape(3, 3).copy()

    def site_size(self, name: str) -> np.ndarray:
        return self.model.site_size[self.site_id(name)].copy()

    def joint_qpos(self, name: str) -> float:
        """Position of a 1-dof (slide/hinge) joint: metres or radians."""
        return float(self.data.qpos[self.model.jnt_qposadr[self.joint_id(name)]])

    @property
    def time(self) -> float:
        return float(self.data.time)
