"""MirrorBench speed: physics steps/s, 4-camera RGB-D observations/s (ours vs a plain
``mujoco.Renderer`` with default model settings, measured in the same run) and expert demos/s.

Usage: .venv/bin/python benchmarks/bench_sim.py [--task open_drawer] [--seconds 3]
"""

from __future__ import annotations

import argparse
import time

from mirror_align.headless import configure_headless_rendering

configure_headless_rendering()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from mirror_align.sim import CAMERAS, make_env  # noqa: E402
from mirror_align.sim.physics import Physics  # noqa: E402
from mirror_align.sim.scene import Scene  # noqa: E402

VIDEO_FRAMES = 32  # frames per AU clip: `generate`'s default


def _rate(fn, seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds``."""
    fn()  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def _scene_xml(task: str, size: int) -> str:
    env = make_env(task, image_size=size)
    scene = Scene(image_size=size)
    env.task.build(scene, np.random.default_rng(0), 0)
    env.close()
    return scene.to_xml()


def bench_physics(task: str, seconds: float) -> float:
    physics = Physics(_scene_xml(task, 64))
    return 1000 * _rate(lambda: mujoco.mj_step(physics.model, physics.data, nstep=1000), seconds)


def bench_ours(task: str, size: int, seconds: float) -> float:
    env = make_env(task, image_size=size)
    env.reset(seed=0, options={"variation": 0})
    try:
        return _rate(env._observation, seconds)
    finally:
        env.close()


def bench_stock(task: str, size: int, seconds: float) -> float:
    """Reference: mujoco.Renderer with the model's default visual settings (shadows,
    reflections, multisampling on), one RGB and one depth render per camera."""
    xml = _scene_xml(task, size)
    # the stock defaults: drop our fast-render quality line
    xml = xml.replace('<quality offsamples="0" shadowsize="0"/>', "")
    physics = Physics(xml)
    renderer = mujoco.Renderer(physics.model, size, size)

    def observe() -> None:
        for cam in CAMERAS:
            renderer.disable_depth_rendering()
            renderer.update_scene(physics.data, camera=cam)
            renderer.render()
            renderer.enable_depth_rendering()
            renderer.update_scene(physics.data, camera=cam)
            renderer.render()

    try:
        return _rate(observe, seconds)
    finally:
        renderer.close()


def bench_demos(task: str, size: int, seconds: float) -> tuple[float, float]:
    """Expert demos/s with 4-camera observations at every keyframe and the front-camera clip of
    ``VIDEO_FRAMES`` frames (what `generate` stores, minus the disk); returns (demos/s, success)."""
    env = make_env(task, image_size=size)
    n_var = env.task.variation_count
    seeds = iter(range(10**6))
    outcomes: list[bool] = []

    def demo() -> None:
        seed = next(seeds)
        env.reset(seed=seed, options={"variation": seed % n_var})
        info = {"success": False}
        for action in env.expert_keyframes():
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        env.video_frames(VIDEO_FRAMES)  # the AU clip a dataset episode stores
        outcomes.append(info["success"])

    try:
        rate = _rate(demo, seconds)
    finally:
        env.close()
    return rate, float(np.mean(outcomes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="all", help="a task name or 'all' (implemented tasks)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    from mirror_align.sim import implemented_tasks

    tasks = implemented_tasks() if args.task == "all" else [args.task]
    first = tasks[0]
    print(f"physics ({first}): {bench_physics(first, args.seconds):,.0f} mj_step/s")
    for size in (64, 128):
        ours = bench_ours(first, size, args.seconds)
        stock = bench_stock(first, size, args.seconds)
        print(
            f"4-camera RGB-D obs/s at {size}px ({first}): ours {ours:.1f}, "
            f"stock mujoco.Renderer {stock:.1f}, ratio {ours / stock:.1f}x"
        )
    rates = []
    for task in tasks:
        rate, success = bench_demos(task, 128, args.seconds)
        rates.append(rate)
        print(
            f"expert demos/s at 128px, 4-camera obs every keyframe ({task}): {rate:.2f} "
            f"(success {100 * success:.0f}%)"
        )
    print(f"mean expert demos/s per core at 128px: {np.mean(rates):.2f} (target >= 5)")


if __name__ == "__main__":
    main()
