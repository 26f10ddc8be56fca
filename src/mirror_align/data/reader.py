"""Read a dataset folder: its metadata, its index, episode selection and summaries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mirror_align.constants import SPLITS
from mirror_align.data.episode_io import read_episode
from mirror_align.data.schema import DatasetMeta, Episode
from mirror_align.data.writer import load_index, load_meta
from mirror_align.errors import UserInputError


class DatasetReader:
    """The metadata and index of a dataset; episodes are opened on demand."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise UserInputError(f"dataset folder not found: {self.root}")
        self.meta: DatasetMeta = load_meta(self.root)
        self.entries: dict[int, dict[str, Any]] = load_index(self.root)

    def select(
        self,
        split: str | None = None,
        tasks: Iterable[str] | None = None,
        include_failed: bool = False,
    ) -> list[dict[str, Any]]:
        """Index entries of one split (or all), optionally some tasks, successful demos by default."""
        if split is not None and split not in SPLITS:
            raise UserInputError(f"split {split!r} is not one of {', '.join(SPLITS)}")
        wanted = None
        if tasks is not None:
            wanted = set(tasks)
            for task in wanted:
                self.meta.task_id(task)
        return [
            entry
            for _, entry in sorted(self.entries.items())
            if (split is None or entry["split"] == split)
            and (wanted is None or entry["task"] in wanted)
            and (include_failed or entry["success"])
        ]

    def path(self, entry: dict[str, Any]) -> Path:
        return self.root / entry["file"]

    def read(self, episode_id: int) -> Episode:
        """The full episode ``episode_id`` (images decoded)."""
        if episode_id not in self.entries:
            raise UserInputError(f"episode {episode_id} is not in {self.root}")
        return read_episode(self.path(self.entries[episode_id]))

    def instruction_texts(self) -> list[str]:
        """The instruction table as a list of strings indexed by ``instruction_id``."""
        return [row.text for row in self.meta.instructions]

    def summary(self) -> dict[str, Any]:
        """Counts per split, task and variation (successful and failed) and the size on disk."""
        splits: dict[str, Any] = {}
        for entry in self.entries.values():
            split = splits.setdefault(
                entry["split"], {"episodes": 0, "failed": 0, "keyframes": 0, "tasks": {}}
            )
            task = split["tasks"].setdefault(
                entry["task"], {"episodes": 0, "failed": 0, "variations": Counter()}
            )
            for node in (split, task):
                node["episodes"] += 1
                node["failed"] += int(not entry["success"])
            split["keyframes"] += entry["num_keyframes"]
            task["variations"][entry["variation_id"]] += 1
        for split in splits.values():
            for task in split["tasks"].values():
                task["variations"] = {str(v): n for v, n in sorted(task["variations"].items())}
            split["tasks"] = dict(sorted(split["tasks"].items()))
        files = [p for p in self.root.rglob("*") if p.is_file()]
        episode_bytes = sum(entry["bytes"] for entry in self.entries.values())
        return {
            "root": str(self.root),
            "schema_version": self.meta.schema_version,
            "source": self.meta.source,
            "created_by": self.meta.created_by,
            "image_size": self.meta.image_size,
            "video_frames": self.meta.video_frames,
            "cameras": list(self.meta.cameras),
            "depth_dtype": self.meta.depth_dtype,
            "num_tasks": len(self.meta.tasks),
            "num_instructions": len(self.meta.instructions),
            "episodes": len(self.entries),
            "failed": sum(not e["success"] for e in self.entries.values()),
            "bytes_on_disk": sum(p.stat().st_size for p in files),
            "bytes_per_episode": episode_bytes / len(self.entries) if self.entries else 0.0,
            "splits": {name: splits[name] for name in SPLITS if name in splits},
        }
