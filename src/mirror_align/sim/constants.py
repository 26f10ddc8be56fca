"""World-frame constants shared by the simulator and its users (metres, radians, seconds)."""

from __future__ import annotations

import numpy as np

from mirror_align import constants as shared

# Camera order of every observation and batch (one home: mirror_align.constants).
CAMERAS: tuple[str, ...] = shared.CAMERAS

# The workspace (one home: mirror_align.constants.WORKSPACE_BOUNDS, lower corner then upper
# corner) in the layout the simulator indexes: float32 [3, 2], rows x, y, z; columns low, high.
WORKSPACE_BOUNDS: np.ndarray = np.ascontiguousarray(
    np.asarray(shared.WORKSPACE_BOUNDS, dtype=np.float32).reshape(2, 3).T
)

MAX_KEYFRAMES = 25  # keyframe steps per episode before truncation
PHYSICS_TIMESTEP = 0.004  # seconds per mj_step
CONTROL_SUBSTEPS = 5  # mj_steps per control step (50 Hz control)
VIDEO_FPS = 10.0  # simulated frames per second of the front-camera video

# Depth range: set explicitly so depth is comparable across scenes (MuJoCo scales by stat.extent).
SCENE_EXTENT = 2.0
ZNEAR_REL = 0.01
ZFAR_REL = 3.0
DEPTH_NEAR = ZNEAR_REL * SCENE_EXTENT  # 0.02 m
DEPTH_FAR = ZFAR_REL * SCENE_EXTENT  # 6.0 m; pixels that see nothing hold this value

# Gripper home: above the table centre's robot side, pointing down (xyzw = 180 deg about x).
HOME_POSITION = np.array([-0.25, 0.0, 0.45])
DOWN_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
