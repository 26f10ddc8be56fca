"""MirrorBenchEnv: the Gymnasium env of one task. One ``step`` = one keyframe (see planner.py)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mirror_align.sim.cameras import CameraRig
from mirror_align.sim.conditions import Condition
from mirror_align.sim.constants import (
    CAMERAS,
    DEPTH_FAR,
    MAX_KEYFRAMES,
    VIDEO_FPS,
    WORKSPACE_BOUNDS,
)
from mirror_align.sim.gripper import Gripper
from mirror_align.sim.physics import Physics, mujoco
from mirror_align.sim.planner import MotionLimits, Planner
from mirror_align.sim.registry import instruction_id
from mirror_align.sim.scene import Scene
from mirror_align.sim.task import Task


def uniform_frame_indices(total: int, count: int) -> np.ndarray:
    """int64 [count]: indices spread uniformly over ``total`` frames, first and last included."""
    return np.round(np.linspace(0, total - 1, count)).astype(np.int64)


def _observation_space(size: int) -> spaces.Dict:
    inf = np.inf
    cam = spaces.Dict(
        {
            "rgb": spaces.Box(0, 255, (size, size, 3), np.uint8),
            "depth": spaces.Box(0.0, DEPTH_FAR, (size, size), np.float32),
            "intrinsics": spaces.Box(-inf, inf, (3, 3), np.float32),
            "extrinsics": spaces.Box(-inf, inf, (4, 4), np.float32),
        }
    )
    return spaces.Dict(
        {**{c: cam for c in CAMERAS}, "proprio": spaces.Box(-inf, inf, (8,), np.float32)}
    )


def _action_space() -> spaces.Dict:
    return spaces.Dict(
        {
            "position": spaces.Box(
                WORKSPACE_BOUNDS[:, 0], WORKSPACE_BOUNDS[:, 1], (3,), np.float32
            ),
            "rotation": spaces.Box(-1.0, 1.0, (4,), np.float32),
            "gripper_open": spaces.Discrete(2),
            "ignore_collisions": spaces.Discrete(2),
        }
    )


class MirrorBenchEnv(gym.Env):
    """Keyframe env of one task with 4 RGB-D cameras and a front-camera video.

    ``reset(seed=, options={"variation": k})``: the scene depends only on (seed, k). Without a
    variation one is drawn from the seeded generator. Episodes end on success (terminated), on a
    rejected keyframe (terminated, ``info["failure_reason"]``) or after ``max_keyframes`` steps
    (truncated).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": VIDEO_FPS}

    def __init__(
        self,
        task: Task,
        image_size: int = 128,
        max_keyframes: int = MAX_KEYFRAMES,
        video_fps: float = VIDEO_FPS,
        render_mode: str | None = None,
        limits: MotionLimits | None = None,
    ) -> None:
        self.task = task
        self.image_size = int(image_size)
        self.max_keyframes = int(max_keyframes)
        self.video_fps = float(video_fps)
        self.render_mode = render_mode
        self.limits = limits or MotionLimits()
        self.observation_space = _observation_space(self.image_size)
        self.action_space = _action_space()
        # The renderer is made here, not at the first reset: a machine without a usable OpenGL
        # backend fails at construction with one line (RenderingUnavailableError).
        self._rig: CameraRig | None = CameraRig(self.image_size)
        self.physics: Physics | None = None
        self._video_data: mujoco.MjData | None = None  # scratch state for rendering video frames
        self._video_model: mujoco.MjModel | None = None

    # --- episode set-up -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        if options.get("variation") is None:
            variation = int(self.np_random.integers(self.task.variation_count))
        else:
            variation = int(options["variation"])
        self.task.instruction(variation)  # validates the range
        self.variation = variation
        scene = Scene(image_size=self.image_size)
        self.layout = self.task.build(scene, self.np_random, variation)
        self.physics = Physics(scene.to_xml())
        self.gripper = Gripper(self.physics, scene.graspables)
        if self._rig is None:
            self._rig = CameraRig(self.image_size)
        self._rig.bind(self.physics.model)
        self.conditions: list[Condition] = self.task.success_conditions(
            self.layout, self.physics, self.gripper
        )
        for c in self.conditions:
            c.reset(self.physics)
        self.planner = Planner(self.physics, self.gripper, self._on_control_step, self.limits)
        self.success = False
        self.keyframe_count = 0
        self._frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # qpos, mocap pos/quat
        self._next_frame_time = 0.0
        self._record_frame()
        return self._observation(), self._info()

    def expert_keyframes(self) -> list[dict]:
        """The scripted expert's keyframe actions for the current scene (call right after reset)."""
        return self.task.expert(self.layout, self.physics, self.gripper)

    # --- stepping ---------------------------------------------------------------------------
    def _on_control_step(self) -> None:
        for c in self.conditions:
            c.update(self.physics)
        if not self.success and all(c.holds(self.physics) for c in self.conditions):
            self.success = True
        if self.physics.time + 1e-9 >= self._next_frame_time:
            self._record_frame()

    def _record_frame(self) -> None:
        # Only the state is kept here; frames are rendered when asked for. A demo ticks ~100 video
        # frames but a dataset keeps 16-32 of them, and rendering is most of the cost of a demo.
        d = self.physics.data
        self._frames.append((d.qpos.copy(), d.mocap_pos.copy(), d.mocap_quat.copy()))
        self._next_frame_time += 1.0 / self.video_fps

    def step(self, action: dict):
        outcome = self.planner.execute(action)
        self.keyframe_count += 1
        info = self._info()
        info["stalled"] = outcome.stalled
        if outcome.failure_reason is not None:
            info["failure_reason"] = outcome.failure_reason
        terminated = self.success or outcome.failure_reason is not None
        truncated = not terminated and self.keyframe_count >= self.max_keyframes
        return self._observation(), float(self.success), terminated, truncated, info

    # --- outputs ----------------------------------------------------------------------------
    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {c: self._rig.observe(self.physics.data, c) for c in CAMERAS}
        pos, quat = self.gripper.pose()
        obs["proprio"] = np.concatenate([pos, quat, [float(self.gripper.is_open)]]).astype(
            np.float32
        )
        return obs

    def _info(self) -> dict[str, Any]:
        return {
            "task": self.task.name,
            "variation": self.variation,
            "instruction": self.task.instruction(self.variation),
            "instruction_id": instruction_id(self.task.name, self.variation),
            "success": bool(self.success),
        }

    def video_frame_count(self) -> int:
        """Video frames ticked since reset (``video_fps`` per simulated second, plus the first)."""
        return len(self._frames)

    def video_frames(self, count: int | None = None) -> np.ndarray:
        """uint8 [T, H, W, 3]: the front camera at ``video_fps`` simulated frames/s since reset.

        With ``count``, only ``count`` frames spread uniformly over the episode (first and last
        included, :func:`uniform_frame_indices`) are rendered, so T = count.
        """
        n = len(self._frames)
        indices = range(n) if count is None else uniform_frame_indices(n, count)
        model = self.physics.model
        if self._video_data is None or self._video_model is not model:
            self._video_data, self._video_model = mujoco.MjData(model), model
        d = self._video_data
        frames = []
        for i in indices:
            d.qpos[:], d.mocap_pos[:], d.mocap_quat[:] = self._frames[i]
            mujoco.mj_forward(model, d)
            frames.append(self._rig.rgb(d, "front"))
        return np.stack(frames)

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array" and self.physics is not None:
            return self._rig.rgb(self.physics.data, "front")
        return None

    def close(self) -> None:
        if self._rig is not None:
            self._rig.close()
            self._rig = None
