"""Headless OpenGL set-up for MuJoCo rendering.

MuJoCo picks its GL backend when it is first imported, so this must run before ``import mujoco``.
"""

import os


def configure_headless_rendering() -> None:
    """Select EGL (Mesa's software renderer here) unless the user chose a backend already."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] == "egl":
        # A different PYOPENGL_PLATFORM makes `import mujoco` fail with EGL.
        os.environ["PYOPENGL_PLATFORM"] = "egl"
    # Mesa's llvmpipe starts one raster thread per core; with worker processes that oversubscribes.
    os.environ.setdefault("LP_NUM_THREADS", "1")
