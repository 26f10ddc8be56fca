"""Process set-up without import side effects; one-line GL failures; a clean exit (issues 10.4,
14.4, 14.10). Each case runs in a fresh interpreter: MuJoCo and OpenMP read their environment
variables once, when they load."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mirror_align.headless import RenderingUnavailableError, configure_headless_rendering
from mirror_align.threads import MAX_DEFAULT_THREADS, configure_cpu_threads, default_threads

SRC = str(Path(__file__).resolve().parents[1] / "src")
SET_UP_VARIABLES = (
    "MUJOCO_GL",
    "PYOPENGL_PLATFORM",
    "LP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "KMP_BLOCKTIME",
    "OMP_NUM_THREADS",
    "MUJOCO_EGL_DEVICE_ID",
)


def run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -c code`` with none of the set-up variables inherited, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in SET_UP_VARIABLES}
    clean.update(PYTHONPATH=SRC, **env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_importing_the_simulator_has_no_side_effects(tmp_path):
    code = f"""
import os, sys
import gymnasium as gym
before = dict(os.environ)
import mirror_align.sim
from mirror_align.sim import make_env
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))
registered = [i for i in gym.registry if i.startswith("MirrorBench/")]
print("changed", changed, "mujoco" in sys.modules, len(registered))
env = make_env("open_drawer", image_size=16)
obs, _ = env.reset(seed=0)
env.close()
print("rendered", obs["front"]["rgb"].shape, os.environ["MUJOCO_GL"], os.environ["LP_NUM_THREADS"])
for name in {tuple(SET_UP_VARIABLES)!r}:
    assert name not in before, name
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "changed [] False 0"
    assert lines[1] == "rendered (16, 16, 3) egl 1"


def test_bogus_backend_is_one_line_with_the_choices(tmp_path):
    result = run_python(
        "import sys; from mirror_align.cli import main; sys.exit(main(['tasks']))",
        tmp_path,
        MUJOCO_GL="bogus",
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "mirror-align tasks: error: MUJOCO_GL='bogus' is not a rendering backend; valid choices: "
        "egl, osmesa, glfw (unset: egl)"
    ]


@pytest.mark.parametrize(
    "env, cause",
    [
        ({"MUJOCO_GL": "glfw", "DISPLAY": "", "WAYLAND_DISPLAY": ""}, "MUJOCO_GL=glfw failed"),
        ({"MUJOCO_GL": "egl", "MUJOCO_EGL_DEVICE_ID": "99"}, "MUJOCO_EGL_DEVICE_ID"),
    ],
    ids=["glfw-without-display", "egl-without-device"],
)
def test_broken_backend_is_one_line_exit_2(tmp_path, env, cause):
    out = tmp_path / "show.png"
    code = f"import sys; from mirror_align.cli import main; sys.exit(main({['show', '--task', 'open_drawer', '--image-size', '16', '--out', str(out)]!r}))"
    result = run_python(code, tmp_path, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("mirror-align show: error: no usable OpenGL backend: MUJOCO_GL=")
    assert cause in line and "MUJOCO_GL=osmesa" in line and "libegl1" in line
    assert "_context" not in line and not out.exists()


def test_unclosed_env_exits_cleanly(tmp_path):
    # The env sits in a reference cycle, so it is collected only after the atexit handlers ran:
    # without the exit handler, freeing its EGL context then printed an EGLError traceback.
    code = """
from mirror_align.sim import make_env
def run():
    env = make_env("open_drawer", image_size=16)
    env.reset(seed=0)
    env.step(env.expert_keyframes()[0])
    env.cycle = env
    other = make_env("push_buttons", image_size=16)
    other.reset(seed=1)
    other.cycle = other
run()
print("done")
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 0
    assert result.stdout == "done\n"
    assert result.stderr == ""


def test_entry_point_sets_the_wait_policy_before_torch_loads(tmp_path):
    code = """
import importlib.abc, os, sys
seen = {}
class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" and name not in seen:
            seen[name] = {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
        return None
sys.meta_path.insert(0, Spy())
from mirror_align.cli import main
assert main(["tasks"]) == 0
print(seen["torch"], os.environ["OMP_NUM_THREADS"])
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    expected = min(len(os.sched_getaffinity(0)), MAX_DEFAULT_THREADS)
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"{{'OMP_WAIT_POLICY': 'PASSIVE', 'KMP_BLOCKTIME': '0'}} {expected}"
    # A value the user set is kept.
    kept = run_python(code, tmp_path, OMP_WAIT_POLICY="ACTIVE", OMP_NUM_THREADS="1")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.strip().splitlines()[-1].endswith("'ACTIVE', 'KMP_BLOCKTIME': '0'} 1")


def test_set_up_keeps_user_values(monkeypatch):
    for name in SET_UP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LP_NUM_THREADS", "3")
    monkeypatch.setenv("MUJOCO_GL", " OSMesa ")
    configure_headless_rendering()
    assert os.environ["MUJOCO_GL"] == "osmesa" and os.environ["PYOPENGL_PLATFORM"] == "osmesa"
    assert os.environ["LP_NUM_THREADS"] == "3"
    monkeypatch.setenv("MUJOCO_GL", "glx")
    with pytest.raises(RenderingUnavailableError, match="valid choices: egl, osmesa, glfw"):
        configure_headless_rendering()
    monkeypatch.setenv("KMP_BLOCKTIME", "200")
    applied = configure_cpu_threads()
    assert applied == {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(default_threads())}
    assert os.environ["KMP_BLOCKTIME"] == "200"
    assert default_threads(1) == 1 and default_threads(64) == MAX_DEFAULT_THREADS


def test_broken_backend_in_worker_processes_is_one_line(tmp_path):
    """The env constructor makes the renderer, so a worker fails before any episode, with the
    same line (not wrapped in the worker's per-episode RuntimeError)."""
    argv = ["generate", "--tasks", "open_drawer", "--episodes-per-task", "1", "--image-size",
            "16", "--video-frames", "2", "--workers", "2", "--out", str(tmp_path / "ds")]  # fmt: skip
    code = f"import sys; from mirror_align.cli import main; sys.exit(main({argv!r}))"
    result = run_python(code, tmp_path, MUJOCO_GL="glfw", DISPLAY="", WAYLAND_DISPLAY="")
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]  # earlier: the progress bar
    assert last.startswith("mirror-align generate: error: no usable OpenGL backend: MUJOCO_GL=glfw")
    assert "Traceback" not in result.stderr
