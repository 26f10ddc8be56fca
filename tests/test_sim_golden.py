"""Golden fingerprints of every task's scene and expert: a refactor of the scene code (shared
assets, materials, keyframe helpers) must leave them bit for bit the same.

The same-seed tests in test_sim_tasks.py compare two runs of today's code; these compare today's
code with the fingerprints in ``tests/golden/sim_scenes.json``, written by the code the scenes were
validated with. Per task and (seed, variation): a SHA-256 of the compiled ``MjModel`` (every array,
the names, the options) and of the expert's keyframes; for one case also of the rollout's final
``qpos``. A compiled model can differ across MuJoCo builds, so the check runs only on the MuJoCo
version and machine type the fixture was written on (others skip, saying why).

After an intended change to a scene or an expert, rewrite the fixture and say why in the commit:
``PYTHONPATH=$PWD/src .venv/bin/python tests/test_sim_golden.py --update``
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils import seeding

from mirror_align.sim import TASK_NAMES, get_task, is_implemented, make_env
from mirror_align.sim.physics import mujoco
from mirror_align.sim.scene import Scene

FIXTURE = Path(__file__).parent / "golden" / "sim_scenes.json"
SCENE_SEEDS = (0, 1)  # scene fingerprints at the first and last variation for each seed
ROLLOUT_SEED = 11  # one expert rollout per task, at the middle variation
IMAGE_SIZE = 24  # pixels; the scene's offscreen buffer is max(size, 64) either way
UPDATE = "PYTHONPATH=$PWD/src .venv/bin/python tests/test_sim_golden.py --update"


def model_digest(model: mujoco.MjModel) -> str:
    """SHA-256 of every numpy array of ``model`` (name, dtype, shape, bytes), its names buffer
    and its option / visual / statistic structs."""
    h = hashlib.sha256()
    for name in sorted(a for a in dir(model) if not a.startswith("_")):
        value = getattr(model, name)
        if isinstance(value, np.ndarray):
            h.update(f"{name}:{value.dtype}:{value.shape}".encode())
            h.update(np.ascontiguousarray(value).tobytes())
    h.update(bytes(model.names))
    h.update(f"{model.opt}|{model.vis.global_}|{model.stat}".encode())
    return h.hexdigest()


def keyframes_digest(keyframes: list[dict]) -> str:
    """SHA-256 of the expert's action dicts, keys sorted, values as their numpy bytes."""
    h = hashlib.sha256()
    for action in keyframes:
        for key in sorted(action):
            h.update(key.encode())
            h.update(np.asarray(action[key]).tobytes())
    return h.hexdigest()


def _scene_cases(task: str) -> list[tuple[int, int]]:
    last = get_task(task).variation_count - 1
    return [(seed, variation) for seed in SCENE_SEEDS for variation in sorted({0, last})]


def scene_fingerprint(task: str, seed: int, variation: int) -> dict[str, str]:
    """Compiled model and expert keyframes of ``task`` at ``(seed, variation)``, as the env
    builds them (same generator as ``env.reset(seed=seed)``)."""
    rng, _ = seeding.np_random(seed)
    scene = Scene(image_size=IMAGE_SIZE)
    get_task(task).build(scene, rng, variation)
    env = make_env(task, image_size=IMAGE_SIZE)
    try:
        env.reset(seed=seed, options={"variation": variation})
        keyframes = env.expert_keyframes()
    finally:
        env.close()
    return {
        "model": model_digest(mujoco.MjModel.from_xml_string(scene.to_xml())),
        "keyframes": keyframes_digest(keyframes),
    }


def rollout_fingerprint(task: str) -> dict:
    """The expert's rollout at ROLLOUT_SEED: success, keyframes run, final qpos digest."""
    env = make_env(task, image_size=IMAGE_SIZE)
    try:
        env.reset(seed=ROLLOUT_SEED, options={"variation": env.task.variation_count // 2})
        info, steps = {}, 0
        for action in env.expert_keyframes():
            _, _, terminated, truncated, info = env.step(action)
            steps += 1
            if terminated or truncated:
                break
        qpos = hashlib.sha256(env.physics.data.qpos.tobytes()).hexdigest()
        return {"success": bool(info["success"]), "steps": steps, "qpos": qpos}
    finally:
        env.close()


def _platform() -> dict[str, str]:
    return {"mujoco": mujoco.__version__, "machine": platform.machine()}


def _golden() -> dict:
    data = json.loads(FIXTURE.read_text())
    if data["platform"] != _platform():
        pytest.skip(f"fixture written on {data['platform']}, this is {_platform()}")
    return data["tasks"]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_scenes_and_experts_match_golden(task: str) -> None:
    if not is_implemented(task):
        pytest.skip(f"{task} not implemented yet")
    tasks = _golden()
    if task not in tasks:
        pytest.fail(f"{task} has no golden fingerprint; write it: {UPDATE}")
    golden = tasks[task]
    for seed, variation in _scene_cases(task):
        key = f"seed={seed} variation={variation}"
        assert scene_fingerprint(task, seed, variation) == golden["scenes"][key], key
    assert rollout_fingerprint(task) == golden["rollout"]


def test_digest_sees_a_one_ulp_change() -> None:
    """The model digest is as strict as claimed: one ulp in one geom size changes it."""
    xml = '<mujoco><worldbody><geom type="box" size="{} 0.1 0.1"/></worldbody></mujoco>'
    a = mujoco.MjModel.from_xml_string(xml.format(repr(0.118)))
    b = mujoco.MjModel.from_xml_string(xml.format(repr(float(np.nextafter(0.118, 1.0)))))
    assert model_digest(a) != model_digest(b)
    assert model_digest(a) == model_digest(mujoco.MjModel.from_xml_string(xml.format("0.1180")))


def _write_fixture() -> None:
    tasks = {}
    for task in TASK_NAMES:
        if is_implemented(task):
            scenes = {
                f"seed={s} variation={v}": scene_fingerprint(task, s, v)
                for s, v in _scene_cases(task)
            }
            tasks[task] = {"scenes": scenes, "rollout": rollout_fingerprint(task)}
            print(task, tasks[task]["rollout"], flush=True)
    FIXTURE.parent.mkdir(exist_ok=True)
    text = json.dumps({"platform": _platform(), "tasks": tasks}, indent=1, sort_keys=True)
    FIXTURE.write_text(text + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {sys.argv[0]} --update   (rewrites {FIXTURE})")
    _write_fixture()
