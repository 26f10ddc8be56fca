"""World-frame constants shared by the simulator and its users (metres, radians, seconds)."""

from __future__ import annotations

import numpy as np

# Scene bounds used by policies and action discretisation: rows x, y, z; columns low, high.
WORKSPACE_BOUNDS = np.array([[-0.45, 0.45], [-0.45, 0.45], [0.0, 0.6]], dtype=np.float32)

# Camera order of every observation and batch.
CAMERAS: tuple[str, ...] = ("front", "left_shoulder", "right_shoulder", "wrist")

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
