"""The on-disk format through the public writer API: round trip, schema checks, recovery, verify."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from data_fixtures import cli, make_episode, make_meta, write_dataset
from mirror_align.data.episode_io import write_episode
from mirror_align.data.reader import DatasetReader
from mirror_align.data.schema import SCHEMA_VERSION, Episode
from mirror_align.data.verify import verify_dataset
from mirror_align.data.writer import DatasetWriter
from mirror_align.errors import UserInputError

ROOT = Path(__file__).resolve().parents[1]


def test_round_trip_preserves_every_field(tmp_path):
    meta = make_meta()
    episodes = [make_episode("push_blue", 0, 7), make_episode("open_box", 2, 8, keyframes=4)]
    with DatasetWriter(tmp_path / "ds", meta) as writer:
        entries = [writer.add(ep) for ep in episodes]
    assert [e["episode_id"] for e in entries] == [0, 1]
    assert [e["instruction_id"] for e in entries] == [2, 5]  # rows of the instruction table
    reader = DatasetReader(tmp_path / "ds")
    assert reader.meta.schema_version == SCHEMA_VERSION
    assert reader.meta.created_by["package"] == "mirror-align"
    assert reader.instruction_texts()[5] == "open box variant 2"
    for original, entry in zip(episodes, entries, strict=True):
        loaded = reader.read(entry["episode_id"])
        assert (loaded.task, loaded.variation_id, loaded.seed) == (
            original.task,
            original.variation_id,
            original.seed,
        )
        for name in ("video", "rgb", "intrinsics", "extrinsics", "proprio", "actions"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
        # float16 storage: relative error below 2^-11.
        np.testing.assert_allclose(loaded.depth, original.depth, rtol=1e-3)
        assert loaded.depth.dtype == np.float32
    with h5py.File(reader.path(entries[0]), "r") as f:
        assert f["obs/rgb"].compression == "gzip" and f["obs/rgb"].chunks == (1, 1, 16, 16, 3)
        assert f["obs/depth"].dtype == np.float16


def test_schema_errors_name_the_field(tmp_path):
    meta = make_meta()
    writer = DatasetWriter(tmp_path / "ds", meta)
    bad = make_episode("push_blue", 0, 1)
    bad.rgb = bad.rgb[..., :2]
    with pytest.raises(UserInputError, match=r"rgb has shape .*expected"):
        writer.add(bad)
    with pytest.raises(UserInputError, match="task 'fly' is not one of: reach_red"):
        writer.add(make_episode("fly", 0, 1))
    with pytest.raises(UserInputError, match="no instruction for task 'push_blue' variation 3"):
        writer.add(make_episode("push_blue", 3, 1))
    writer.add(make_episode("push_blue", 0, 1))
    duplicate = make_episode("push_blue", 0, 2)
    duplicate.episode_id = 0
    with pytest.raises(UserInputError, match="episode_id 0 is already"):
        writer.add(duplicate)
    writer.close()
    with pytest.raises(UserInputError, match="different image_size"):
        DatasetWriter(tmp_path / "ds", make_meta(image_size=32))
    with pytest.raises(UserInputError, match="video has 5 frames, the dataset stores 12"):
        DatasetWriter(tmp_path / "ds").add(make_episode("push_blue", 0, 3, frames=5))


def test_episode_attributes_are_coerced_or_named(tmp_path):
    """None as failure_reason is stored as ""; numpy scalars become plain values; any other type
    is one error naming the field and the expected type, before h5py sees it (issue 14.7)."""
    with DatasetWriter(tmp_path / "ds", make_meta()) as writer:
        episode = make_episode("push_blue", 0, 1, success=False)
        episode.failure_reason = None
        episode.seed, episode.variation_id, episode.success = np.int64(7), np.int32(0), np.bool_(0)
        writer.add(episode)
        bad_cases = {
            "seed": ("7", "seed is str '7', expected int"),
            "split": (None, "split is NoneType None, expected str"),
            "success": ("yes", "success is str 'yes', expected bool"),
            "failure_reason": (3.5, "failure_reason is float 3.5, expected str"),
            "variation_id": (True, "variation_id is bool True, expected int"),
            "task": (b"push_blue", "task is bytes b'push_blue', expected str"),
        }
        for field, (value, message) in bad_cases.items():
            bad = make_episode("push_blue", 0, 2)
            setattr(bad, field, value)
            with pytest.raises(UserInputError, match=re.escape(message)):
                writer.add(bad)
        bad = make_episode("push_blue", 0, 2)
        bad.proprio = np.array([[None] * 8] * bad.proprio.shape[0])
        with pytest.raises(UserInputError, match="proprio has dtype object, expected numbers"):
            writer.add(bad)
    stored = DatasetReader(tmp_path / "ds").read(0)
    assert stored.failure_reason == "" and stored.seed == 7 and stored.success is False
    assert verify_dataset(tmp_path / "ds") == ([], 1)


def test_episode_from_simulator_style_steps():
    reference = make_episode("reach_red", 1, 3, keyframes=2)
    cameras = ["front", "left_shoulder", "right_shoulder", "wrist"]
    observations = [
        {
            **{
                cam: {
                    "rgb": reference.rgb[k, v],
                    "depth": reference.depth[k, v],
                    "intrinsics": reference.intrinsics[k, v],
                    "extrinsics": reference.extrinsics[k, v],
                }
                for v, cam in enumerate(cameras)
            },
            "proprio": reference.proprio[k],
        }
        for k in range(2)
    ]
    actions = [
        {
            "position": a[:3],
            "rotation": a[3:7],
            "gripper_open": a[7],
            "ignore_collisions": a[8],
        }
        for a in reference.actions
    ]
    built = Episode.from_steps(
        task="reach_red",
        variation_id=1,
        seed=3,
        split="train",
        success=True,
        video=reference.video,
        observations=observations,
        actions=actions,
    )
    for name in ("rgb", "depth", "intrinsics", "extrinsics", "proprio", "actions"):
        np.testing.assert_array_equal(getattr(built, name), getattr(reference, name))


def test_reopen_recovers_renamed_files_and_drops_temporaries(tmp_path):
    meta = make_meta()
    root = tmp_path / "ds"
    with DatasetWriter(root, meta) as writer:
        writer.add(make_episode("reach_red", 0, 0))
    # A kill after an episode file was renamed but before the index was rewritten ...
    orphan = make_episode("reach_red", 1, 1)
    orphan.episode_id, orphan.instruction_id = 1, 1
    write_episode(root, orphan, meta)
    # ... and a kill in the middle of writing another one.
    (root / "episodes" / ".00000002.h5.123.tmp").write_bytes(b"half an episode")
    problems, _ = verify_dataset(root)
    assert problems == [
        "episodes/00000001.h5: episode file not in the index (interrupted write; rerun the same "
        "generate/import command to resume)"
    ]
    writer = DatasetWriter(root, meta)
    assert writer.recovered == 1 and sorted(writer.entries) == [0, 1]
    assert not list((root / "episodes").glob(".*.tmp"))
    writer.close()
    assert verify_dataset(root) == ([], 2)


def _write_small(root: Path) -> None:
    write_dataset(root, per_task=2, splits=("train", "test"), failed_every=4)


def test_info_counts_per_split_task_and_variation(tmp_path, capsys):
    _write_small(tmp_path / "ds")
    assert cli(["dataset", "info", str(tmp_path / "ds"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 12 and summary["failed"] == 3
    assert summary["splits"]["train"]["tasks"]["reach_red"]["variations"] == {"0": 1, "1": 1}
    assert summary["splits"]["test"]["episodes"] == 6
    on_disk = sum(p.stat().st_size for p in (tmp_path / "ds").rglob("*") if p.is_file())
    assert summary["bytes_on_disk"] == on_disk
    assert cli(["dataset", "info", str(tmp_path / "ds")]) == 0
    text = capsys.readouterr().out
    assert "12 episodes (3 failed demos)" in text and "reach_red: 2 (" in text


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_verify_names_the_damaged_episode(tmp_path, capsys, damage):
    root = tmp_path / "ds"
    _write_small(root)
    assert cli(["dataset", "verify", str(root)]) == 0
    assert "ok, 12 episodes" in capsys.readouterr().out
    target = root / "episodes" / "00000005.h5"
    data = bytearray(target.read_bytes())
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    assert cli(["dataset", "verify", str(root)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    expected = {"truncate": "truncated", "flip": "checksum does not match", "delete": "missing"}
    assert re.match(r"episode 5 \(episodes/00000005\.h5\): ", lines[0])
    assert expected[damage] in lines[0]


def test_verify_refuses_a_folder_that_is_not_a_dataset_in_one_line(tmp_path, capsys):
    for folder in (tmp_path, tmp_path / "missing"):
        assert cli(["dataset", "verify", str(folder)]) == 2  # bad input, not a damaged dataset
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            f"mirror-align dataset: error: {folder / 'dataset.json'}: not found; is {folder} a "
            "mirror-align dataset folder?"
        ]


def test_verify_checks_content_against_the_schema(tmp_path, capsys):
    root = tmp_path / "ds"
    _write_small(root)
    # A consistent checksum but a file whose content breaks the schema (e.g. written by hand).
    target = root / "episodes" / "00000003.h5"
    with h5py.File(target, "a") as f:
        del f["actions"]
        f["actions"] = np.zeros((1, 7), np.float32)
    index = json.loads((root / "index.json").read_text())
    from mirror_align.data.episode_io import file_sha256

    for entry in index["episodes"]:
        if entry["episode_id"] == 3:
            entry["bytes"], entry["sha256"] = target.stat().st_size, file_sha256(target)
    (root / "index.json").write_text(json.dumps(index))
    assert cli(["dataset", "verify", str(root)]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith("episode 3 (episodes/00000003.h5): dataset actions is float32[1, 7]")


def test_bad_dataset_folder_is_one_error_line(tmp_path, capsys):
    assert cli(["dataset", "info", str(tmp_path / "nope")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_documented_example_runs(tmp_path):
    """The bring-your-own-data example in docs/dataset.md runs as written."""
    text = (ROOT / "docs" / "dataset.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    example = next(b for b in blocks if "DatasetWriter" in b)
    script = tmp_path / "example.py"
    script.write_text(example)
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert verify_dataset(tmp_path / "my_robot_dataset")[0] == []
    reader = DatasetReader(tmp_path / "my_robot_dataset")
    assert reader.meta.tasks == ["wipe_table", "stack_cups"] and len(reader.entries) == 9
    assert "9 episodes" in result.stdout


def test_demo_that_failed_before_its_first_keyframe_is_kept(tmp_path):
    empty = Episode.from_steps(
        task="reach_red",
        variation_id=0,
        seed=9,
        split="train",
        success=False,
        video=np.zeros((12, 16, 16, 3), np.uint8),
        observations=[],
        actions=[],
        failure_reason="first keyframe unreachable",
    )
    assert empty.rgb.shape == (0, 4, 16, 16, 3) and empty.actions.shape == (0, 9)
    with DatasetWriter(tmp_path / "ds", make_meta()) as writer:
        entry = writer.add(empty)
    assert entry["num_keyframes"] == 0 and not entry["success"]
    assert verify_dataset(tmp_path / "ds") == ([], 1)
    assert DatasetReader(tmp_path / "ds").read(0).failure_reason == "first keyframe unreachable"


def test_a_second_writer_is_refused_while_the_first_is_open(tmp_path):
    first = DatasetWriter(tmp_path / "ds", make_meta())
    with pytest.raises(UserInputError, match="another process is writing to this dataset"):
        DatasetWriter(tmp_path / "ds")
    first.close()
    DatasetWriter(tmp_path / "ds").close()


def test_export_to_robomimic_layout(tmp_path, capsys):
    root = tmp_path / "ds"
    _write_small(root)
    out = tmp_path / "robomimic.hdf5"
    assert cli(["dataset", "export-robomimic", str(root), "--out", str(out)]) == 0
    assert "9 demos" in capsys.readouterr().out  # 12 episodes, 3 failed demos left out
    reader = DatasetReader(root)
    with h5py.File(out, "r") as f:
        names = {n.decode() for key in ("train", "valid", "test") for n in f["mask"][key][()]}
        assert names == set(f["data"].keys()) and len(names) == 9
        assert {n.decode() for n in f["mask/test"][()]} == {
            f"demo_{e['episode_id']}" for e in reader.select("test")
        }
        entry = reader.select("train")[0]
        episode = reader.read(entry["episode_id"])
        demo = f[f"data/demo_{entry['episode_id']}"]
        assert demo.attrs["num_samples"] == episode.num_keyframes
        np.testing.assert_array_equal(demo["actions"][()], episode.actions)
        np.testing.assert_array_equal(demo["obs/wrist_image"][()], episode.rgb[:, 3])
        np.testing.assert_array_equal(demo["obs/robot0_eef_quat"][()], episode.proprio[:, 3:7])
        assert demo["dones"][-1] == 1 and demo["rewards"][-1] == 1.0
        assert f["data"].attrs["total"] == sum(e["num_keyframes"] for e in reader.select(None))
