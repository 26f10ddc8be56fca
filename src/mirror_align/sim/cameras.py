"""Fast offscreen RGB-D rendering of the 4 cameras.

Settings that matter on the software renderer (DESIGN §6): shadows, reflections and skybox off;
multisampling off, set on the model *before* the render context is created; RGB and depth read
from one render pass. The depth buffer is read reversed-Z (requested explicitly) and images come
back bottom row first; both are undone here. Close the renderer explicitly (:meth:`CameraRig.close`);
one left open is closed at interpreter exit, before MuJoCo's EGL clean-up (``headless.py``).
"""

from __future__ import annotations

import numpy as np

from mirror_align.headless import create_gl_context, render_failure, track_renderer
from mirror_align.sim.constants import CAMERAS, DEPTH_FAR
from mirror_align.sim.physics import mujoco

# MuJoCo cameras look along their -z with y up; OpenCV cameras look along +z with y down.
_MJ_TO_CV = np.diag([1.0, -1.0, -1.0])


def intrinsics(fovy_deg: float, size: int) -> np.ndarray:
    """Pinhole K [3, 3] in pixels for a square image, principal point at the image centre."""
    f = 0.5 * size / np.tan(np.deg2rad(fovy_deg) / 2)
    return np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], dtype=np.float32)


class CameraRig:
    """Renders named cameras of the current scene; call :meth:`bind` after each new model."""

    def __init__(self, image_size: int) -> None:
        self.size = int(image_size)
        self._gl = None  # set first: close() must work on a rig whose context failed
        self._gl = create_gl_context(self.size, self.size)
        track_renderer(self)
        self._gl.make_current()
        self._con: mujoco.MjrContext | None = None
        self._model = None
        self._rgb = np.empty((self.size, self.size, 3), dtype=np.uint8)
        self._depth = np.empty((self.size, self.size), dtype=np.float32)
        self._viewport = mujoco.MjrRect(0, 0, self.size, self.size)
        self._opt = mujoco.MjvOption()
        self._opt.sitegroup[:] = 0  # sites are markers for code, never drawn
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED

    def bind(self, model: mujoco.MjModel) -> None:
        """Create the render context for ``model`` (frees the previous one)."""
        self._gl.make_current()
        if self._con is not None:
            self._con.free()
        model.vis.quality.offsamples = 0  # must precede MjrContext creation
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.size)
        try:
            self._con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)
        except mujoco.FatalError as error:  # a context that exists but cannot render
            raise render_failure(error) from error
        # Ask for reversed-Z explicitly (1 at the near plane, 0 at the far plane): float depth
        # keeps its precision far away, and the conversion below does not depend on a default.
        self._con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        self._scene = mujoco.MjvScene(model, maxgeom=2000)
        for flag in (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        ):
            self._scene.flags[flag] = 0
        self._model = model
        self._cam_ids = {
            c: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, c) for c in CAMERAS
        }
        extent = model.stat.extent
        self._near = float(model.vis.map.znear * extent)
        self._far = float(model.vis.map.zfar * extent)
        self._K = {
            c: intrinsics(float(model.cam_fovy[i]), self.size) for c, i in self._cam_ids.items()
        }

    def _render(self, data: mujoco.MjData, camera: str, with_depth: bool) -> None:
        self._cam.fixedcamid = self._cam_ids[camera]
        mujoco.mjv_updateScene(
            self._model, data, self._opt, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL, self._scene
        )
        mujoco.mjr_render(self._viewport, self._scene, self._con)
        mujoco.mjr_readPixels(
            self._rgb, self._depth if with_depth else None, self._viewport, self._con
        )

    def rgb(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """uint8 [H, W, 3], row 0 at the top."""
        self._gl.make_current()
        self._render(data, camera, with_depth=False)
        return self._rgb[::-1].copy()

    def observe(self, data: mujoco.MjData, camera: str) -> dict[str, np.ndarray]:
        """One render pass: rgb uint8 [H,W,3], depth float32 [H,W] metres along the optical axis,
        intrinsics float32 [3,3], extrinsics float32 [4,4] camera-to-world (OpenCV axes)."""
        self._gl.make_current()
        self._render(data, camera, with_depth=True)
        # Reversed-Z: buffer value 1 at the near plane, 0 at the far plane.
        raw = self._depth[::-1].astype(np.float64)
        n, f = self._near, self._far
        depth = (n * f) / (raw * (f - n) + n)
        cid = self._cam_ids[camera]
        ext = np.eye(4, dtype=np.float32)
        ext[:3, :3] = data.cam_xmat[cid].reshape(3, 3) @ _MJ_TO_CV
        ext[:3, 3] = data.cam_xpos[cid]
        return {
            "rgb": self._rgb[::-1].copy(),
            "depth": np.clip(depth, 0.0, DEPTH_FAR).astype(np.float32),
            "intrinsics": self._K[camera].copy(),
            "extrinsics": ext,
        }

    def close(self) -> None:
        """Free the render context and the GL context; safe to call twice."""
        if self._gl is None:
            return
        self._gl.make_current()
        if self._con is not None:
            self._con.free()
            self._con = None
        self._gl.free()
        self._gl = None

    def __del__(self) -> None:  # a fallback only; owners call close()
        try:
            self.close()
        except Exception:
            pass
