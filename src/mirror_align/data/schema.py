"""The on-disk dataset format: version, dataset metadata and the episode record.

A dataset is a folder::

    DIR/dataset.json            the schema: format name and version, tasks, cameras, image size,
                                instruction table, the config and package version that made it
    DIR/index.json              one entry per complete episode, with its size and SHA-256
    DIR/episodes/<id>.h5        one HDF5 file per episode (layout in ``docs/dataset.md``)

Both JSON files and every episode file are written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mirror_align.constants import CAMERAS, SPLITS
from mirror_align.data.tool_frame import check_rotation
from mirror_align.errors import UserInputError

FORMAT_NAME = "mirror-align-dataset"
SCHEMA_VERSION = 1
META_FILE = "dataset.json"
INDEX_FILE = "index.json"
EPISODES_DIR = "episodes"
DEFAULT_CAMERAS = CAMERAS  # the camera order MirrorBench writes; a dataset may state its own
DEPTH_DTYPES = ("float16", "float32")
PROPRIO_DIM = 8  # gripper xyz, quaternion xyzw, gripper_open
ACTION_DIM = 9  # xyz, quaternion xyzw, gripper_open, ignore_collisions


def episode_filename(episode_id: int) -> str:
    """Path of an episode file relative to the dataset folder."""
    return f"{EPISODES_DIR}/{episode_id:08d}.h5"


@dataclass
class Instruction:
    """One row of the instruction table."""

    instruction_id: int  # row number, 0..N-1
    task: str  # a name from DatasetMeta.tasks
    variation: int  # the task's variation index
    text: str  # the language instruction


@dataclass
class DatasetMeta:
    """Dataset-level facts stored in ``dataset.json``; every episode must agree with them."""

    tasks: list[str]  # task names; task_id is the position in this list
    instructions: list[Instruction]  # the instruction table; instruction_id is the position
    image_size: int  # H = W of every camera image and video frame, pixels
    cameras: list[str] = field(default_factory=lambda: list(DEFAULT_CAMERAS))  # camera order V
    video_frames: int | None = None  # frames per AU video; None allows any length per episode
    depth_dtype: str = "float16"  # how depth (metres) is stored: float16 (~1 mm at 2 m) or float32
    workspace_bounds: list[list[float]] | None = None  # rows x, y, z; columns low, high (m)
    # Rotation xyzw from the recorded hand frame to the policy's tool frame (None: identity);
    # applied to every orientation at load, undone at decode (mirror_align.data.tool_frame).
    tool_frame_rotation: list[float] | None = None
    source: str = "user"  # "mirrorbench", "rlbench" or anything a user chooses
    config: dict[str, Any] = field(default_factory=dict)  # the config/arguments that created it
    history: list[dict[str, Any]] = field(default_factory=list)  # configs of later appends
    created_by: dict[str, str] = field(default_factory=dict)  # package name and version
    format: str = FORMAT_NAME
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.created_by:
            from mirror_align import __version__

            self.created_by = {"package": "mirror-align", "version": __version__}
        self.instructions = [
            row if isinstance(row, Instruction) else Instruction(**row) for row in self.instructions
        ]
        self.validate()

    def validate(self) -> None:
        """Raise ``UserInputError`` naming the first inconsistent field."""
        if self.format != FORMAT_NAME:
            raise UserInputError(
                f"dataset.json: format is {self.format!r}, expected {FORMAT_NAME!r}"
            )
        if self.schema_version != SCHEMA_VERSION:
            raise UserInputError(
                f"dataset.json: schema_version {self.schema_version} is not supported "
                f"(this mirror-align reads version {SCHEMA_VERSION})"
            )
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise UserInputError("dataset meta: tasks must be a non-empty list of unique names")
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise UserInputError("dataset meta: cameras must be a non-empty list of unique names")
        if int(self.image_size) < 8:
            raise UserInputError(f"dataset meta: image_size {self.image_size} must be >= 8")
        if self.depth_dtype not in DEPTH_DTYPES:
            raise UserInputError(
                f"dataset meta: depth_dtype {self.depth_dtype!r} is not one of {', '.join(DEPTH_DTYPES)}"
            )
        if self.video_frames is not None and self.video_frames < 1:
            raise UserInputError("dataset meta: video_frames must be >= 1 or null")
        if self.tool_frame_rotation is not None:  # tool frame (issue 13.3)
            self.tool_frame_rotation = check_rotation(
                self.tool_frame_rotation, "dataset meta: tool_frame_rotation"
            )
        seen: set[tuple[str, int]] = set()
        for i, row in enumerate(self.instructions):
            if row.instruction_id != i:
                raise UserInputError(
                    f"dataset meta: instructions[{i}] has instruction_id {row.instruction_id}; "
                    "ids must be 0..N-1 in order"
                )
            if row.task not in self.tasks:
                raise UserInputError(
                    f"dataset meta: instructions[{i}] names task {row.task!r}, "
                    f"not one of {', '.join(self.tasks)}"
                )
            if (row.task, row.variation) in seen:
                raise UserInputError(
                    f"dataset meta: instructions[{i}] repeats task {row.task!r} "
                    f"variation {row.variation}"
                )
            seen.add((row.task, row.variation))

    def task_id(self, task: str) -> int:
        """Index of ``task`` in ``tasks``; unknown names raise, listing the valid ones."""
        if task not in self.tasks:
            raise UserInputError(f"task {task!r} is not one of: {', '.join(self.tasks)}")
        return self.tasks.index(task)

    def instruction_for(self, task: str, variation: int) -> Instruction:
        """The instruction-table row of ``task`` at ``variation``."""
        for row in self.instructions:
            if row.task == task and row.variation == variation:
                return row
        raise UserInputError(f"no instruction for task {task!r} variation {variation} in the table")

    def variations(self, task: str) -> list[int]:
        """The variation indices of ``task`` in the instruction table, ascending."""
        return sorted(row.variation for row in self.instructions if row.task == task)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["tool_frame_rotation"] is None:  # readable by versions without the tool frame
            del data["tool_frame_rotation"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = META_FILE) -> DatasetMeta:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise UserInputError(f"{where}: unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as err:
            raise UserInputError(f"{where}: {err}") from err

    def compatible_with(self, other: DatasetMeta) -> str | None:
        """The name of the first field that differs in a way that makes appending unsafe, else None."""
        names = ("tasks", "cameras", "image_size", "video_frames", "depth_dtype")
        for name in (*names, "tool_frame_rotation"):
            if getattr(self, name) != getattr(other, name):
                return name
        if [dataclasses.astuple(r) for r in self.instructions] != [
            dataclasses.astuple(r) for r in other.instructions
        ]:
            return "instructions"
        return None


@dataclass
class Episode:
    """One demonstration. K keyframe transitions, V cameras, T video frames, images H = W.

    ``rgb[k]``, ``depth[k]`` ... hold the observation *at* keyframe k (k = 0 is the initial scene)
    and ``actions[k]`` is the keyframe the expert moved to next, so sample k of the EE dataset is
    (observation k, instruction) -> actions[k].
    """

    task: str
    variation_id: int
    seed: int  # the scene seed (or any integer a user's source provides)
    split: str  # one of SPLITS
    success: bool  # whether the expert/demonstrator completed the task
    video: np.ndarray  # uint8 [T, H, W, 3], front camera, row 0 at the top
    rgb: np.ndarray  # uint8 [K, V, H, W, 3]
    depth: np.ndarray  # float [K, V, H, W], metres along the optical axis
    intrinsics: np.ndarray  # float32 [K, V, 3, 3], pixels, pixel centre at (col+0.5, row+0.5)
    extrinsics: np.ndarray  # float32 [K, V, 4, 4], camera-to-world, OpenCV axes
    proprio: np.ndarray  # float32 [K, 8]: gripper xyz, quaternion xyzw, gripper_open
    actions: np.ndarray  # float32 [K, 9]: next keyframe xyz, quaternion xyzw, open, ignore_coll.
    episode_id: int = -1  # -1: the writer assigns the next free id
    instruction_id: int = -1  # -1: looked up from (task, variation_id) in the table
    failure_reason: str = ""  # why the demo failed, when success is False

    @property
    def num_keyframes(self) -> int:
        return int(np.shape(self.actions)[0])

    @classmethod
    def from_steps(
        cls,
        *,
        task: str,
        variation_id: int,
        seed: int,
        split: str,
        success: bool,
        video: np.ndarray,
        observations: list[dict[str, Any]],
        actions: list[Any],
        cameras: tuple[str, ...] | list[str] = DEFAULT_CAMERAS,
        **extra: Any,
    ) -> Episode:
        """Build an episode from per-keyframe observation dicts in the simulator's layout.

        ``observations[k]`` maps each camera name to ``{"rgb", "depth", "intrinsics", "extrinsics"}``
        and holds ``"proprio"`` [8]; ``actions[k]`` is a float [9] vector or an action dict with
        ``position``, ``rotation``, ``gripper_open``, ``ignore_collisions``.
        """
        if len(observations) != len(actions):
            raise UserInputError(
                f"episode: {len(observations)} observations but {len(actions)} actions; "
                "observation k must pair with the action taken from it"
            )

        video = np.asarray(video, dtype=np.uint8)
        size = video.shape[1] if video.ndim == 4 else 0
        empty_shapes = {"rgb": (size, size, 3), "depth": (size, size), "intrinsics": (3, 3)}

        def stack(cam_key: str, dtype: Any) -> np.ndarray:
            if not observations:  # a demo that failed before its first keyframe
                shape = empty_shapes.get(cam_key, (4, 4))
                return np.zeros((0, len(cameras), *shape), dtype=dtype)
            return np.asarray(
                [[obs[cam][cam_key] for cam in cameras] for obs in observations], dtype=dtype
            )

        return cls(
            task=task,
            variation_id=variation_id,
            seed=seed,
            split=split,
            success=success,
            video=video,
            rgb=stack("rgb", np.uint8),
            depth=stack("depth", np.float32),
            intrinsics=stack("intrinsics", np.float32),
            extrinsics=stack("extrinsics", np.float32),
            proprio=np.asarray([obs["proprio"] for obs in observations], dtype=np.float32).reshape(
                -1, PROPRIO_DIM
            ),
            actions=np.asarray([action_vector(a) for a in actions], dtype=np.float32).reshape(
                -1, ACTION_DIM
            ),
            **extra,
        )


def action_vector(action: Any) -> np.ndarray:
    """A float32 [9] action from a vector or an action dict (see ``docs/interfaces.md``)."""
    if isinstance(action, dict):
        try:
            return np.concatenate(
                [
                    np.asarray(action["position"], dtype=np.float32).reshape(3),
                    np.asarray(action["rotation"], dtype=np.float32).reshape(4),
                    [float(action["gripper_open"]), float(action["ignore_collisions"])],
                ]
            ).astype(np.float32)
        except KeyError as err:
            raise UserInputError(
                f"action dict is missing {err}; expected position, rotation, gripper_open, "
                "ignore_collisions"
            ) from err
    vector = np.asarray(action, dtype=np.float32)
    if vector.shape != (ACTION_DIM,):
        raise UserInputError(f"action has shape {vector.shape}, expected ({ACTION_DIM},)")
    return vector


# Scalar attributes of an Episode, stored as HDF5 attributes: field -> (expected type, its name).
_ATTRIBUTE_TYPES: dict[str, tuple[type, str]] = {
    "task": (str, "str"),
    "variation_id": (int, "int"),
    "seed": (int, "int"),
    "split": (str, "str"),
    "success": (bool, "bool"),
    "episode_id": (int, "int"),
    "instruction_id": (int, "int"),
    "failure_reason": (str, "str"),
}


def _coerce_attribute(name: str, value: Any, where: str) -> Any:
    """``value`` as the plain Python type of attribute ``name``, or a one-line error."""
    kind, kind_name = _ATTRIBUTE_TYPES[name]
    if name == "failure_reason" and value is None:
        return ""  # "no failure reason" written as None by many converters
    if kind is str and isinstance(value, str):
        return str(value)
    if kind is int and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if kind is bool and isinstance(value, (bool, np.bool_)):
        return bool(value)
    if kind is bool and isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise UserInputError(
        f"{where}: {name} is {type(value).__name__} {value!r}, expected {kind_name}"
        + (" (or None)" if name == "failure_reason" else "")
    )


def check_attributes(episode: Episode) -> None:
    """Coerce the scalar attributes of ``episode`` to plain str/int/bool in place (None as
    ``failure_reason`` becomes ""); any other type raises ``UserInputError`` naming the field and
    the expected type. HDF5 stores only these types (issue 14.7: None failed deep in h5py)."""
    where = f"episode (task {episode.task!r}, seed {episode.seed!r})"
    for name in _ATTRIBUTE_TYPES:
        setattr(episode, name, _coerce_attribute(name, getattr(episode, name), where))


def check_episode(episode: Episode, meta: DatasetMeta) -> None:
    """Raise ``UserInputError`` naming the first field of ``episode`` that breaks the schema."""
    check_attributes(episode)
    k = episode.num_keyframes
    v = len(meta.cameras)
    s = meta.image_size
    where = f"episode (task {episode.task!r}, seed {episode.seed})"
    meta.task_id(episode.task)
    if episode.split not in SPLITS:
        raise UserInputError(f"{where}: split {episode.split!r} is not one of {', '.join(SPLITS)}")
    expected = {
        "rgb": ((k, v, s, s, 3), np.uint8),
        "depth": ((k, v, s, s), None),
        "intrinsics": ((k, v, 3, 3), None),
        "extrinsics": ((k, v, 4, 4), None),
        "proprio": ((k, PROPRIO_DIM), None),
        "actions": ((k, ACTION_DIM), None),
    }
    for name, (shape, dtype) in expected.items():
        value = np.asarray(getattr(episode, name))
        if value.dtype.kind not in "biuf":
            raise UserInputError(f"{where}: {name} has dtype {value.dtype}, expected numbers")
        if value.shape != shape:
            raise UserInputError(f"{where}: {name} has shape {value.shape}, expected {shape}")
        if dtype is not None and value.dtype != dtype:
            raise UserInputError(f"{where}: {name} has dtype {value.dtype}, expected {dtype}")
        if dtype is None and not np.all(np.isfinite(value)):
            raise UserInputError(f"{where}: {name} holds NaN or infinite values")
    video = np.asarray(episode.video)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[1:] != (s, s, 3):
        raise UserInputError(
            f"{where}: video has shape {video.shape} {video.dtype}, expected uint8 [T, {s}, {s}, 3]"
        )
    if meta.video_frames is not None and video.shape[0] != meta.video_frames:
        raise UserInputError(
            f"{where}: video has {video.shape[0]} frames, the dataset stores {meta.video_frames}"
        )
    if video.shape[0] < 1:
        raise UserInputError(f"{where}: video has no frames")
