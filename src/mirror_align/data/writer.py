"""The public writer: create or reopen a dataset folder and add episodes to it.

Any source can use it (the MirrorBench generator, the RLBench importer, a user's robot logs)::

    with DatasetWriter(out_dir, meta) as writer:
        writer.add(Episode(...))

Each episode file is written under a temporary name and renamed when complete; the index is
rewritten atomically (temp file + ``os.replace``) at most every ``flush_seconds`` and on close. An
episode file that was renamed but never reached the index (a kill in between) is found again when
the folder is reopened, so no completed episode is lost and none has to be redone.
"""

from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path
from typing import Any

from mirror_align.atomic import write_json_atomic
from mirror_align.data.episode_io import entry_from_file, write_episode
from mirror_align.data.schema import (
    EPISODES_DIR,
    FORMAT_NAME,
    INDEX_FILE,
    META_FILE,
    SCHEMA_VERSION,
    DatasetMeta,
    Episode,
    check_attributes,
    episode_filename,
)
from mirror_align.errors import UserInputError

LOCK_FILE = ".lock"


def load_meta(root: str | Path) -> DatasetMeta:
    """Read and validate ``DIR/dataset.json``."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise UserInputError(f"{path}: not found; is {root} a mirror-align dataset folder?")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserInputError(f"{path}: not valid JSON: {err}") from err
    return DatasetMeta.from_dict(data, where=str(path))


def load_index(root: str | Path) -> dict[int, dict[str, Any]]:
    """Read ``DIR/index.json`` as {episode_id: entry}; a missing index is an empty dataset."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserInputError(f"{path}: not valid JSON: {err}") from err
    if data.get("format") != FORMAT_NAME or data.get("schema_version") != SCHEMA_VERSION:
        raise UserInputError(
            f"{path}: expected format {FORMAT_NAME!r} version {SCHEMA_VERSION}, got "
            f"{data.get('format')!r} version {data.get('schema_version')!r}"
        )
    return {int(entry["episode_id"]): entry for entry in data["episodes"]}


def save_index(root: str | Path, entries: dict[int, dict[str, Any]]) -> None:
    """Replace ``DIR/index.json`` atomically, episodes sorted by id."""
    write_json_atomic(
        Path(root) / INDEX_FILE,
        {
            "format": FORMAT_NAME,
            "schema_version": SCHEMA_VERSION,
            "episodes": [entries[i] for i in sorted(entries)],
        },
    )


class DatasetWriter:
    """Create ``root`` with ``meta``, or reopen it (then ``meta`` must agree with the stored one)."""

    def __init__(
        self,
        root: str | Path,
        meta: DatasetMeta | None = None,
        *,
        flush_seconds: float = 2.0,
    ) -> None:
        self.root = Path(root)
        self.flush_seconds = flush_seconds
        self._lock = self._acquire_lock()
        try:
            self._open(meta)
        except BaseException:
            self._lock.close()
            raise

    def _open(self, meta: DatasetMeta | None) -> None:
        meta_path = self.root / META_FILE
        if meta_path.exists():
            stored = load_meta(self.root)
            if meta is not None:
                field = stored.compatible_with(meta)
                if field is not None:
                    raise UserInputError(
                        f"{meta_path}: the dataset was made with a different {field} "
                        f"({getattr(stored, field)!r} vs {getattr(meta, field)!r}); "
                        "write to a new folder"
                    )
                if (
                    meta.config
                    and meta.config != stored.config
                    and meta.config not in stored.history
                ):
                    stored.history.append(meta.config)
                    write_json_atomic(meta_path, stored.to_dict())
            self.meta = stored
        else:
            if meta is None:
                raise UserInputError(
                    f"{self.root}: not a dataset yet; pass a DatasetMeta to create it"
                )
            self.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(meta_path, meta.to_dict())
            self.meta = meta
        (self.root / EPISODES_DIR).mkdir(exist_ok=True)
        self.entries = load_index(self.root)
        self.recovered = self._recover()
        self._dirty = self.recovered > 0
        self._last_flush = time.monotonic()
        self.flush(force=True)

    def _acquire_lock(self) -> Any:
        """Hold an exclusive lock on ``DIR/.lock`` so two writers never interleave index updates."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = open(self.root / LOCK_FILE, "a")  # held until close()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UserInputError(
                f"{self.root}: another process is writing to this dataset "
                f"(it holds {self.root / LOCK_FILE}); wait for it or stop it first"
            ) from None
        return handle

    def _recover(self) -> int:
        """Delete half-written temporaries; index complete episode files the index lacks."""
        folder = self.root / EPISODES_DIR
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
        known = {entry["file"] for entry in self.entries.values()}
        found = 0
        for path in sorted(folder.glob("*.h5")):
            relative = f"{EPISODES_DIR}/{path.name}"
            if relative in known:
                continue
            try:
                entry = entry_from_file(self.root, relative)
            except (OSError, KeyError) as err:
                raise UserInputError(
                    f"{path}: an episode file that is not in the index and cannot be read ({err}); "
                    "delete it and run again"
                ) from err
            self.entries[entry["episode_id"]] = entry
            found += 1
        return found

    def next_episode_id(self) -> int:
        """The smallest id above every id in the dataset."""
        return max(self.entries, default=-1) + 1

    def has_episode(self, episode_id: int) -> bool:
        return episode_id in self.entries

    def add(self, episode: Episode) -> dict[str, Any]:
        """Write ``episode`` (assigning ``episode_id``/``instruction_id`` if -1); returns its entry.

        Scalar attributes are coerced first (None as ``failure_reason`` becomes ""); a wrong type
        raises ``UserInputError`` naming the field.
        """
        check_attributes(episode)
        if episode.episode_id < 0:
            episode.episode_id = self.next_episode_id()
        if episode.episode_id in self.entries:
            raise UserInputError(f"episode_id {episode.episode_id} is already in {self.root}")
        self.meta.task_id(episode.task)  # an unknown task is named as such, with the valid ones
        row = self.meta.instruction_for(episode.task, episode.variation_id)
        if episode.instruction_id < 0:
            episode.instruction_id = row.instruction_id
        elif episode.instruction_id != row.instruction_id:
            raise UserInputError(
                f"episode {episode.episode_id}: instruction_id {episode.instruction_id} does not "
                f"match task {episode.task!r} variation {episode.variation_id} "
                f"(row {row.instruction_id} of the table)"
            )
        entry = write_episode(self.root, episode, self.meta)
        self.register(entry)
        return entry

    def register(self, entry: dict[str, Any]) -> None:
        """Add the entry of an episode file already written by ``write_episode`` (e.g. a worker)."""
        if entry["file"] != episode_filename(entry["episode_id"]):
            raise UserInputError(
                f"index entry {entry['episode_id']}: unexpected file {entry['file']}"
            )
        self.entries[int(entry["episode_id"])] = entry
        self._dirty = True
        self.flush()

    def flush(self, force: bool = False) -> None:
        """Rewrite the index atomically if it changed and ``flush_seconds`` passed (or ``force``)."""
        if not (self._dirty or force):
            return
        if force or time.monotonic() - self._last_flush >= self.flush_seconds:
            save_index(self.root, self.entries)
            self._dirty = False
            self._last_flush = time.monotonic()

    def close(self) -> None:
        if self._lock.closed:
            return
        try:
            self.flush(force=True)
        finally:
            self._lock.close()  # releases the flock

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
