"""Headless OpenGL for MuJoCo rendering: an explicit set-up call, clean failures, a clean exit.

MuJoCo picks its GL backend from ``MUJOCO_GL`` when ``mujoco`` is first imported, so the set-up
must run before that import. Nothing here runs on import: the entry points (``cli.main``, worker
processes) call :func:`configure_headless_rendering`, and the simulator gets ``mujoco`` only through
:func:`import_mujoco`, which calls it first (``make_env`` and ``sim/physics.py`` do).

Failures become one line (issue 14.4): a ``MUJOCO_GL`` that is not a backend, a backend whose
libraries are missing, or a context that cannot be created (EGL without a driver, GLFW without a
display) raise :class:`RenderingUnavailableError` naming ``MUJOCO_GL``, the underlying error and
the fix; the CLI prints it and exits 2.

Renderers are closed at interpreter exit by a handler that runs *before* MuJoCo's own EGL
``eglTerminate`` handler, so a script that leaves an env unclosed exits without an EGL traceback.
"""

from __future__ import annotations

import atexit
import ctypes.util
import os
import platform
import re
import warnings
import weakref
from types import ModuleType
from typing import Any, Protocol

from mirror_align.errors import UserInputError

# The backends this package supports on each OS; the first one is the default when MUJOCO_GL is
# unset (EGL renders without a display; on macOS MuJoCo always uses CGL through GLFW's name).
GL_BACKENDS: dict[str, tuple[str, ...]] = {
    "Linux": ("egl", "osmesa", "glfw"),
    "Darwin": ("glfw", "cgl"),
    "Windows": ("glfw", "wgl"),
}
# The shared library each backend loads (for naming the missing one).
_BACKEND_LIBRARY = {"egl": "EGL", "osmesa": "OSMesa"}
FIX = (
    "install Mesa's EGL driver (Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri) and use "
    "MUJOCO_GL=egl, or install OSMesa (apt-get install libosmesa6) and set MUJOCO_GL=osmesa"
)


class RenderingUnavailableError(UserInputError):
    """No usable OpenGL backend: one line naming MUJOCO_GL, the cause and the fix."""


class Renderer(Protocol):
    def close(self) -> None: ...


def supported_backends() -> tuple[str, ...]:
    """The ``MUJOCO_GL`` values accepted on this OS (the first is the default)."""
    return GL_BACKENDS.get(platform.system(), ("glfw",))


def configure_headless_rendering() -> None:
    """Choose and check the GL backend before ``mujoco`` is imported; idempotent.

    Sets ``MUJOCO_GL`` to the OS default when unset (``egl`` on Linux), ``PYOPENGL_PLATFORM`` to
    match EGL/OSMesa (a different value makes ``import mujoco`` fail), and ``LP_NUM_THREADS=1``
    unless set (Mesa's llvmpipe starts one raster thread per core, which oversubscribes the cores
    when several workers render). A value the user set is kept. Raises
    :class:`RenderingUnavailableError` for a ``MUJOCO_GL`` that is not a supported backend.
    """
    backends = supported_backends()
    backend = os.environ.setdefault("MUJOCO_GL", backends[0]).strip().lower()
    if backend not in backends:
        raise RenderingUnavailableError(
            f"MUJOCO_GL={os.environ['MUJOCO_GL']!r} is not a rendering backend; valid choices: "
            f"{', '.join(backends)} (unset: {backends[0]})"
        )
    os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ["PYOPENGL_PLATFORM"] = backend
    os.environ.setdefault("LP_NUM_THREADS", "1")


def _one_line(error: BaseException) -> str:
    text = re.sub(r"\s+", " ", f"{type(error).__name__}: {error}").strip()
    return text if len(text) <= 240 else text[:237] + "..."


def _unavailable(cause: str) -> RenderingUnavailableError:
    backend = os.environ.get("MUJOCO_GL", "")
    library = _BACKEND_LIBRARY.get(backend)
    if library and ctypes.util.find_library(library) is None:
        cause = f"lib{library} not found; {cause}"
    return RenderingUnavailableError(
        f"no usable OpenGL backend: MUJOCO_GL={backend} failed ({cause}); fix: {FIX}"
    )


def import_mujoco() -> ModuleType:
    """``mujoco``, imported after :func:`configure_headless_rendering`; a backend that cannot
    load (e.g. MUJOCO_GL=osmesa without libOSMesa) raises :class:`RenderingUnavailableError`."""
    configure_headless_rendering()
    try:
        import mujoco
    except Exception as error:  # PyOpenGL reports a missing library as any of several types
        raise _unavailable(_one_line(error)) from error
    return mujoco


def create_gl_context(width: int, height: int) -> Any:
    """A current-capable ``mujoco.GLContext`` of at least ``width`` x ``height`` pixels.

    A context that cannot be created raises :class:`RenderingUnavailableError` (not MuJoCo's
    traceback and its secondary ``'GLContext' object has no attribute '_context'``).
    """
    mujoco = import_mujoco()
    cls = mujoco.GLContext
    # A failed __init__ would leave an object without _context whose __del__ then raises; give
    # it the attribute first so a failed context is collected quietly.
    context = cls.__new__(cls)
    context._context = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # GLFW reports errors as warnings, not exceptions
        try:
            context.__init__(width, height)
        except Exception as error:
            raise _unavailable(_one_line(error)) from error
    if not context._context:
        messages = dict.fromkeys(str(w.message) for w in caught)  # GLFW repeats itself
        cause = "; ".join(messages) or "no context was created"
        if os.environ["MUJOCO_GL"] == "glfw" and not os.environ.get("DISPLAY"):
            cause = f"GLFW needs a display and DISPLAY is unset; {cause}"
        raise _unavailable(re.sub(r"\s+", " ", cause))
    _keep_exit_handler_first()
    return context


def render_failure(error: BaseException) -> RenderingUnavailableError:
    """Wrap an error MuJoCo raised while making a render context (e.g. ``mujoco.FatalError``)."""
    return _unavailable(_one_line(error))


# ---- closing renderers at interpreter exit -----------------------------------------------------
_LIVE: weakref.WeakSet = weakref.WeakSet()


def track_renderer(renderer: Renderer) -> None:
    """Close ``renderer`` at interpreter exit if its owner has not (held weakly)."""
    _LIVE.add(renderer)


def close_live_renderers() -> None:
    """Close every tracked renderer that is still open (safe to call more than once)."""
    for renderer in list(_LIVE):
        try:
            renderer.close()
        except Exception:  # at exit nothing may raise; the OS frees what is left
            pass
    _LIVE.clear()


def _keep_exit_handler_first() -> None:
    # atexit runs handlers last-registered-first. MuJoCo's EGL module registers eglTerminate when
    # the first context is made, so re-registering after every new context keeps this handler
    # ahead of it: renderers are freed while the display is still alive.
    atexit.unregister(close_live_renderers)
    atexit.register(close_live_renderers)
