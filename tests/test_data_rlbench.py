"""RLBench/PerAct importer on synthetic episodes written in RLBench's exact on-disk layout."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_fixtures import cli as main
from mirror_align.data.geometry import depth_to_points
from mirror_align.data.reader import DatasetReader
from mirror_align.data.rlbench import (
    DEPTH_SCALE,
    convert_camera,
    decode_depth_png,
    discover_keyframes,
)
from mirror_align.data.rlbench_pickle import UnsafePickleError, load_restricted
from mirror_align.data.verify import verify_dataset
from mirror_align.errors import UserInputError

CAMS = ("front", "left_shoulder", "right_shoulder", "wrist")
SIZE = 16
NEAR, FAR = 0.1, 3.0
# 14 frames: the arm stops at frame 3, closes the gripper at 7, reopens at 12; 13 is the last.
GRIPPER = [1.0] * 7 + [0.0] * 5 + [1.0] * 2
STOP_FRAMES = {3}
EXPECTED_KEYFRAMES = [3, 7, 13]  # 12 and 13 are adjacent: only the later stays


@pytest.fixture
def rlbench_classes(monkeypatch):
    """Stand-ins for rlbench.demo.Demo and rlbench.backend.observation.Observation, registered
    under RLBench's module names so pickle writes the same global references RLBench does."""
    demo_mod = types.ModuleType("rlbench.demo")
    obs_mod = types.ModuleType("rlbench.backend.observation")

    class Demo:
        def __init__(self, observations, random_seed=None):
            self._observations = observations
            self.random_seed = random_seed

    class Observation:
        def __init__(self, **fields):
            self.__dict__.update(fields)

    Demo.__module__, Demo.__qualname__ = "rlbench.demo", "Demo"
    Observation.__module__, Observation.__qualname__ = "rlbench.backend.observation", "Observation"
    demo_mod.Demo = Demo
    obs_mod.Observation = Observation
    for name, module in {
        "rlbench": types.ModuleType("rlbench"),
        "rlbench.backend": types.ModuleType("rlbench.backend"),
        "rlbench.demo": demo_mod,
        "rlbench.backend.observation": obs_mod,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    return Demo, Observation


# RLBench-like camera placement: eye and look-at target (metres); the table top is at TABLE_Z.
TABLE_Z = 0.75
EYES = {
    "front": ([1.35, 0.0, 1.58], [0.2, 0.0, TABLE_Z]),
    "left_shoulder": ([0.2, 0.65, 1.5], [0.25, 0.0, TABLE_Z]),
    "right_shoulder": ([0.2, -0.65, 1.5], [0.25, 0.0, TABLE_Z]),
    "wrist": ([0.35, 0.05, 1.2], [0.25, 0.0, TABLE_Z]),
}


def rlbench_camera(index: int, width: int = SIZE, height: int = SIZE):
    """PyRep-style intrinsics (negative focal lengths, integer pixel coordinates, square pixels,
    60 degrees across the width) and a camera-to-world pose looking at the table."""
    f = -width / (2 * np.tan(np.deg2rad(30)))
    k = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])
    eye, target = (np.array(v, dtype=np.float64) for v in EYES[CAMS[index]])
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    # OpenCV axes (right, down, forward), with x and y flipped to match the negative focal lengths.
    pose[:3, :3] = np.stack([right, down, forward], axis=1) @ np.diag([-1.0, -1.0, 1.0])
    pose[:3, 3] = eye
    return k, pose


def encode_depth(metres: np.ndarray) -> np.ndarray:
    packed = np.round((metres - NEAR) / (FAR - NEAR) * DEPTH_SCALE).astype(np.uint32)
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], -1).astype(np.uint8)


def true_depth(frame: int, cam: int, width: int = SIZE, height: int = SIZE) -> np.ndarray:
    """Depth of the table plane (raised 2 mm per frame) by RLBench's own pixel model: pixel (col,
    row) looks along R @ K^-1 [col, row, 1]; nothing within FAR reads FAR."""
    k, pose = rlbench_camera(cam, width, height)
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    rays = np.stack([cols, rows, np.ones_like(cols)], -1) @ np.linalg.inv(k).T
    down = rays @ pose[:3, :3].T[:, 2]
    with np.errstate(divide="ignore"):
        depth = (TABLE_Z + 0.002 * frame - pose[2, 3]) / down
    return np.where((depth > 0) & (depth < FAR), depth, FAR)


def gripper_pose(frame: int) -> np.ndarray:
    return np.array([0.1 + 0.01 * frame, -0.05, 1.0 - 0.02 * frame, 0.0, 1.0, 0.0, 0.0])


def write_episode(
    root: Path, task: str, n: int, variation: int, classes, protocol=4, width=SIZE, height=SIZE
) -> Path:
    Demo, Observation = classes
    folder = root / task / "all_variations" / "episodes" / f"episode{n}"
    observations = []
    for i, grip in enumerate(GRIPPER):
        misc = {}
        for c, cam in enumerate(CAMS):
            k, pose = rlbench_camera(c, width, height)
            misc.update(
                {
                    f"{cam}_camera_intrinsics": k,
                    f"{cam}_camera_extrinsics": pose,
                    f"{cam}_camera_near": NEAR,
                    f"{cam}_camera_far": FAR,
                }
            )
            for kind in ("rgb", "depth"):
                (folder / f"{cam}_{kind}").mkdir(parents=True, exist_ok=True)
            rgb = np.full((height, width, 3), (i * 10 + c) % 256, dtype=np.uint8)
            Image.fromarray(rgb).save(folder / f"{cam}_rgb" / f"{i}.png")
            Image.fromarray(encode_depth(true_depth(i, c, width, height))).save(
                folder / f"{cam}_depth" / f"{i}.png"
            )
        velocity = np.zeros(7) if i in STOP_FRAMES else np.full(7, 0.5)
        observations.append(
            Observation(
                gripper_pose=gripper_pose(i),
                gripper_open=grip,
                joint_velocities=velocity,
                ignore_collisions=np.array(float(i % 2)),
                misc=misc,
                front_rgb=None,
            )
        )
    demo = Demo(observations, random_seed=np.random.get_state())
    (folder / "low_dim_obs.pkl").write_bytes(pickle.dumps(demo, protocol=protocol))
    descriptions = [f"{task} number {variation}", "another phrasing"]
    (folder / "variation_descriptions.pkl").write_bytes(pickle.dumps(descriptions))
    (folder / "variation_number.pkl").write_bytes(pickle.dumps(variation))
    return folder


def test_depth_png_decoding_round_trips_to_metres():
    metres = true_depth(2, 1)
    decoded = decode_depth_png(encode_depth(metres), NEAR, FAR)
    assert decoded.dtype == np.float32
    np.testing.assert_allclose(decoded, metres, atol=(FAR - NEAR) / DEPTH_SCALE + 1e-6)


def test_camera_conversion_back_projects_to_rlbench_points():
    k, pose = rlbench_camera(2)
    depth = true_depth(0, 2)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    pixels = np.stack([cols, rows, np.ones_like(cols)], -1).astype(np.float64)
    cam = (pixels @ np.linalg.inv(k).T) * depth[..., None]  # RLBench's own formula
    expected = cam @ pose[:3, :3].T + pose[:3, 3]
    k2, pose2 = convert_camera(k, pose)
    assert k2[0, 0] > 0 and k2[1, 1] > 0
    np.testing.assert_allclose(np.linalg.det(pose2[:3, :3]), 1.0, atol=1e-5)
    np.testing.assert_allclose(depth_to_points(depth, k2, pose2), expected, atol=1e-5)


def test_keyframe_heuristic():
    velocities = np.array([np.zeros(7) if i in STOP_FRAMES else np.full(7, 0.5) for i in range(14)])
    assert discover_keyframes(np.array(GRIPPER), velocities) == EXPECTED_KEYFRAMES
    # A long stop counts once per cool-down window, and a stop right before the end is dropped.
    still = np.zeros((12, 7))
    assert discover_keyframes(np.ones(12), still) == [2, 7, 11]


def test_import_decodes_poses_depth_and_keyframes(tmp_path, rlbench_classes):
    src = tmp_path / "rlbench"
    write_episode(src, "open_drawer", 0, 1, rlbench_classes)
    write_episode(src, "open_drawer", 1, 0, rlbench_classes, protocol=0)
    write_episode(src, "close_jar", 0, 0, rlbench_classes)
    out = tmp_path / "ds"
    assert main(["import-rlbench", str(src), "--out", str(out), "--image-size", "8",
                 "--video-frames", "5"]) == 0  # fmt: skip
    assert verify_dataset(out) == ([], 3)
    reader = DatasetReader(out)
    assert reader.meta.tasks == ["close_jar", "open_drawer"]
    assert [(r.task, r.variation, r.text) for r in reader.meta.instructions] == [
        ("close_jar", 0, "close_jar number 0"),
        ("open_drawer", 0, "open_drawer number 0"),
        ("open_drawer", 1, "open_drawer number 1"),
    ]
    entry = next(
        e for e in reader.entries.values() if e["task"] == "open_drawer" and e["seed"] == 0
    )
    episode = reader.read(entry["episode_id"])
    assert entry["instruction_id"] == 2 and episode.num_keyframes == 3
    # Observation k is at frame 0 and the earlier keyframes; action k is the pose at keyframe k.
    obs_frames = [0, *EXPECTED_KEYFRAMES[:-1]]
    np.testing.assert_allclose(episode.proprio[:, :7], [gripper_pose(f) for f in obs_frames], 1e-6)
    np.testing.assert_allclose(episode.proprio[:, 7], [GRIPPER[f] for f in obs_frames])
    np.testing.assert_allclose(
        episode.actions[:, :7], [gripper_pose(f) for f in EXPECTED_KEYFRAMES], 1e-6
    )
    np.testing.assert_allclose(episode.actions[:, 7], [GRIPPER[f] for f in EXPECTED_KEYFRAMES])
    np.testing.assert_allclose(episode.actions[:, 8], [(f - 1) % 2 for f in EXPECTED_KEYFRAMES])
    # Images are resized 16 -> 8: depth by nearest neighbour, intrinsics scaled by 1/2.
    assert episode.rgb.shape == (3, 4, 8, 8, 3) and episode.video.shape == (5, 8, 8, 3)
    assert episode.rgb[1, 2, 0, 0, 0] == (3 * 10 + 2) % 256
    decoded = true_depth(7, 1)[1::2, 1::2]
    np.testing.assert_allclose(episode.depth[2, 1], decoded, atol=2e-3)  # float16 storage
    k2, _ = convert_camera(*rlbench_camera(1))
    np.testing.assert_allclose(episode.intrinsics[0, 1, :2], k2[:2] / 2, rtol=1e-6)
    # Re-running resumes: nothing is imported twice.
    assert main(["import-rlbench", str(src), "--out", str(out), "--image-size", "8",
                 "--video-frames", "5"]) == 0  # fmt: skip
    assert len(DatasetReader(out).entries) == 3


def test_unknown_task_lists_available(tmp_path, rlbench_classes, capsys):
    write_episode(tmp_path / "src", "open_drawer", 0, 0, rlbench_classes)
    code = main(["import-rlbench", str(tmp_path / "src"), "--out", str(tmp_path / "o"),
                 "--tasks", "stack_cups"])  # fmt: skip
    assert code == 2
    assert "available: open_drawer" in capsys.readouterr().err


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_malicious_pickle_is_refused_without_running(tmp_path, rlbench_classes, capsys):
    folder = write_episode(tmp_path / "src", "open_drawer", 0, 0, rlbench_classes)
    marker = tmp_path / "marker"
    Demo, _ = rlbench_classes
    (folder / "low_dim_obs.pkl").write_bytes(pickle.dumps(Demo([_Exploit(marker)])))
    with pytest.raises(UnsafePickleError, match=r"refusing to load builtins\.exec"):
        load_restricted(folder / "low_dim_obs.pkl")
    code = main(["import-rlbench", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: the progress bar
    assert last.startswith("mirror-align import-rlbench: error: ")
    assert "low_dim_obs.pkl: refusing to load builtins.exec" in last
    assert not marker.exists()


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(Path("/etc")))  # a harmless class, but not on the allow-list
    with pytest.raises(UnsafePickleError, match="pathlib"):
        load_restricted(path)
    path.write_bytes(b"\x80\x04truncated")
    with pytest.raises(UserInputError, match="not a readable RLBench pickle"):
        load_restricted(path)


@pytest.mark.parametrize("width, height", [(64, 48), (48, 64)], ids=["landscape", "portrait"])
def test_non_square_sources_keep_their_geometry(tmp_path, rlbench_classes, width, height):
    """x scales by size / W and y by size / H; the back-projected table stays on the table, and
    import and verify pass the geometric check (issue 14.3: K scaled by size / W put it 16 cm off)."""
    write_episode(
        tmp_path / "src", "open_drawer", 0, 0, rlbench_classes, width=width, height=height
    )
    out = tmp_path / "ds"
    assert main(["import-rlbench", str(tmp_path / "src"), "--out", str(out), "--image-size", "32",
                 "--video-frames", "3"]) == 0  # fmt: skip
    assert verify_dataset(out) == ([], 1)
    episode = DatasetReader(out).read(0)
    for c in range(len(CAMS)):
        expected, _ = convert_camera(*rlbench_camera(c, width, height))
        expected[0] *= 32 / width
        expected[1] *= 32 / height
        np.testing.assert_allclose(episode.intrinsics[0, c], expected, rtol=1e-6)
    points = depth_to_points(episode.depth[0], episode.intrinsics[0], episode.extrinsics[0])
    error = np.abs(points[..., 2][episode.depth[0] < FAR - 0.01] - TABLE_Z)
    # Nearest-neighbour depth resizing leaves < 1.5 cm on average; the old K left 9-12 cm.
    assert error.mean() < 0.015 and error.max() < 0.05


def _old_scaling(k, width, height, size):
    """The importer's intrinsics before the fix: all of K scaled by size / W."""
    k = np.array(k, dtype=np.float32)
    k[:2] *= size / width
    return k


@pytest.mark.parametrize("width, height", [(64, 48), (48, 64)], ids=["landscape", "portrait"])
def test_geometry_check_refuses_wrong_intrinsics(
    tmp_path, rlbench_classes, monkeypatch, capsys, width, height
):
    write_episode(
        tmp_path / "src", "open_drawer", 0, 0, rlbench_classes, width=width, height=height
    )
    monkeypatch.setattr("mirror_align.data.rlbench.scale_intrinsics", _old_scaling)
    argv = ["import-rlbench", str(tmp_path / "src"), "--out", str(tmp_path / "ds"),
            "--image-size", "32", "--video-frames", "3"]  # fmt: skip
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "episode0: keyframe 0 is geometrically inconsistent: cameras " in line
    assert "disagree" in line and line.endswith("(--no-geometry-check imports it anyway)")
    assert main([*argv, "--no-geometry-check"]) == 0
    capsys.readouterr()
    assert main(["dataset", "verify", str(tmp_path / "ds")]) == 1
    problem = capsys.readouterr().out.strip()
    assert problem.startswith("episode 0 (episodes/00000000.h5): keyframe 0 is geometrically ")
