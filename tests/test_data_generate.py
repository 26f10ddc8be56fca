"""Generation with the real simulator: round trip, kill and resume, failed demos, corruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from data_fixtures import cli
from mirror_align.data.generate import SPLIT_SEED_BASE, TASK_SEED_STRIDE
from mirror_align.data.loaders import AUClipDataset, EEKeyframeDataset
from mirror_align.data.reader import DatasetReader
from mirror_align.data.verify import verify_dataset
from mirror_align.sim import TASK_NAMES, implemented_tasks

TASK = "open_drawer"
SIZE = "32"


def _generate(out: Path, n: int, split: str = "train", workers: int = 1, size: str = SIZE) -> int:
    return cli(
        ["generate", "--tasks", TASK, "--episodes-per-task", str(n), "--split", split,
         "--image-size", size, "--video-frames", "6", "--workers", str(workers), "--out", str(out)]
    )  # fmt: skip


def test_generate_verify_info_round_trip(tmp_path, capsys):
    out = tmp_path / "bench"
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "LP_NUM_THREADS")}
    assert _generate(out, 4, "train", workers=2) == 0
    assert {k: os.environ.get(k) for k in env} == env  # only the workers ran single-threaded
    assert _generate(out, 2, "test") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("generate: 4 episodes in ") and "episodes/s, 2 worker(s)" in lines[0]
    assert "0 of 4 expert demos failed" in lines[0]
    assert cli(["dataset", "verify", str(out)]) == 0
    assert cli(["dataset", "info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().split("\n", 1)[1])
    assert summary["num_tasks"] == len(TASK_NAMES) and summary["num_instructions"] == 249
    train = summary["splits"]["train"]["tasks"][TASK]
    assert train == {"episodes": 4, "failed": 0, "variations": {"0": 2, "1": 1, "2": 1}}
    assert summary["splits"]["test"]["tasks"][TASK]["variations"] == {"0": 1, "1": 1}
    reader = DatasetReader(out)
    task_id = TASK_NAMES.index(TASK)
    seeds = {split: {e["seed"] for e in reader.select(split)} for split in ("train", "test")}
    base = TASK_SEED_STRIDE * task_id
    assert seeds["train"] == {SPLIT_SEED_BASE["train"] + base + i for i in range(4)}
    assert seeds["test"] == {SPLIT_SEED_BASE["test"] + base + i for i in range(2)}
    # Real simulator episodes load as contract batches, and points land inside the scene.
    ee = EEKeyframeDataset(str(out), "train")
    sample = ee[0]
    assert sample["rgb"].shape == (4, 32, 32, 3) and sample["action"].shape == (9,)
    for view in range(4):  # back-projection agrees with the simulator: the table top is z = 0
        seen = sample["points"][view][sample["depth"][view] < 3.0]
        assert torch.all(seen[:, 2] > -0.8) and torch.all(seen[:, 2] < 2.5)  # floor at -0.75 m
        assert (seen[:, 2].abs() < 0.01).float().mean() > 0.3
    episode = reader.read(next(iter(reader.entries)))
    assert episode.video.shape == (6, 32, 32, 3) and episode.success
    assert AUClipDataset(str(out), "test", clip_frames=3)[0]["video"].shape == (3, 32, 32, 3)
    # Corrupt one generated episode: verify names it and only it.
    victim = reader.select("test")[0]
    path = out / victim["file"]
    path.write_bytes(path.read_bytes()[:-100])
    assert cli(["dataset", "verify", str(out)]) == 1
    report = capsys.readouterr().out.strip().splitlines()
    assert report == [
        f"episode {victim['episode_id']} ({victim['file']}): size {path.stat().st_size} bytes but "
        f"the index records {victim['bytes']} (truncated or altered)"
    ]


def test_failed_demos_are_recorded_counted_and_excluded(tmp_path, capsys, monkeypatch):
    from mirror_align.sim.env import MirrorBenchEnv

    real = MirrorBenchEnv.expert_keyframes

    def drop_last_keyframe_on_odd_seeds(self):  # fault injection: an incomplete expert
        keyframes = real(self)
        return keyframes[:-1] if self._fault_seed % 2 else keyframes

    real_reset = MirrorBenchEnv.reset

    def reset(self, *, seed=None, options=None):
        self._fault_seed = seed
        return real_reset(self, seed=seed, options=options)

    monkeypatch.setattr(MirrorBenchEnv, "expert_keyframes", drop_last_keyframe_on_odd_seeds)
    monkeypatch.setattr(MirrorBenchEnv, "reset", reset)
    out = tmp_path / "bench"
    assert _generate(out, 4) == 0
    assert (
        "2 of 4 expert demos failed (recorded, excluded from training)" in capsys.readouterr().out
    )
    reader = DatasetReader(out)
    failed = [e for e in reader.entries.values() if not e["success"]]
    assert sorted(e["seed"] % 2 for e in failed) == [1, 1]
    assert reader.read(failed[0]["episode_id"]).failure_reason
    assert len(AUClipDataset(str(out), "train")) == 2
    assert len(AUClipDataset(str(out), "train", include_failed=True)) == 4


def test_a_user_error_inside_a_demo_stays_one_line(tmp_path, capsys, monkeypatch):
    import mirror_align.data.generate as generate
    from mirror_align.errors import UserInputError

    def bad_input(*args, **kwargs):  # fault injection: an input error found while rendering
        raise UserInputError("image_size: 7 is too small; use 32 or more")

    monkeypatch.setattr(generate, "run_expert", bad_input)
    assert _generate(tmp_path / "bench", 1) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("image_size: 7 is too small; use 32 or more")
    assert not any("RuntimeError" in line or "Traceback" in line for line in err)


def test_unimplemented_task_lists_the_implemented_ones(tmp_path, capsys):
    missing = [t for t in TASK_NAMES if t not in implemented_tasks()]
    if not missing:
        pytest.skip("every task is implemented")
    code = cli(["generate", "--tasks", missing[0], "--episodes-per-task", "1", "--out",
                str(tmp_path / "x")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{missing[0]} not implemented" in err
    assert "implemented: " + ", ".join(implemented_tasks()) in err
    assert cli(["generate", "--tasks", "fly", "--episodes-per-task", "1", "--out", "x"]) == 2
    assert "valid tasks: open_drawer" in capsys.readouterr().err


def test_kill_and_resume_completes_without_redoing(tmp_path):
    out = tmp_path / "bench"
    n = 24
    code = (
        "import sys; from mirror_align import cli; "
        "cli.COMMAND_MODULES[:] = ['generate']; sys.exit(cli.main(sys.argv[1:]))"
    )
    args = ["generate", "--tasks", TASK, "--episodes-per-task", str(n), "--image-size", SIZE,
            "--video-frames", "6", "--workers", "2", "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches its pool workers too
    )
    deadline = time.monotonic() + 60
    episodes = out / "episodes"
    while time.monotonic() < deadline:
        if episodes.is_dir() and len(list(episodes.glob("*.h5"))) >= 5:
            break
        assert proc.poll() is None, "generation ended before it could be killed"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)  # let the killed workers' file handles close
    before = {p.name: p.stat().st_mtime_ns for p in episodes.glob("*.h5")}
    assert 5 <= len(before) < n, "the kill must land mid-way"
    assert _generate(out, n) == 0
    assert verify_dataset(out) == ([], n)
    after = {p.name: p.stat().st_mtime_ns for p in episodes.glob("*.h5")}
    assert len(after) == n
    assert all(after[name] == mtime for name, mtime in before.items()), "an episode was redone"
    variations = np.bincount([e["variation_id"] for e in DatasetReader(out).entries.values()])
    assert variations.max() - variations.min() <= 1
