"""Crash-safe writes: write to a temporary name in the same folder, fsync, then rename.

A kill or a full disk can leave a stray ``*.tmp`` file behind, never a truncated target.

Permissions: what is renamed into place gets the mode a plain ``open()`` / ``os.mkdir()`` would
give it: 0o666 / 0o777 filtered by the process umask. The temporary file or folder is created that
way, and files that a library rewrote with a narrower mode (safetensors 0.8 writes 0600) are set
back before the rename. ``tempfile.mkstemp`` / ``mkdtemp`` create 0600 / 0700, which made every
output owner-only even under umask 022 (issue 13.5).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_ATTEMPTS = 100  # name collisions are astronomically rare; this bounds the loop anyway


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable read is a set-and-restore
    os.umask(mask)
    return mask


def _default_modes(path: Path) -> None:
    """Give ``path`` (and everything under it) the modes a plain open()/mkdir() would."""
    mask = current_umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        if item.is_symlink():
            continue
        executable = item.is_dir() or item.stat().st_mode & 0o111
        os.chmod(item, (0o777 if executable else 0o666) & ~mask)


def _temporary_name(target: Path) -> Path:
    """A fresh hidden name beside ``target``: ``.<name>.<pid>.<random>.tmp``."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _create_temporary_file(target: Path) -> Path:
    """Create an empty file beside ``target`` (O_EXCL, mode 0o666 & ~umask) and return its path."""
    for _ in range(_ATTEMPTS):
        tmp = _temporary_name(target)
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {target}")


def _create_temporary_folder(target: Path) -> Path:
    """Create an empty folder beside ``target`` (mode 0o777 & ~umask) and return its path."""
    for _ in range(_ATTEMPTS):
        tmp = _temporary_name(target)
        try:
            os.mkdir(tmp, 0o777)
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temporary name beside {target}")


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (an existing empty file ending in ``.tmp``); on
    success it replaces ``target`` atomically. Its mode is what the umask allows."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary_file(target)
    try:
        yield tmp
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        _default_modes(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    """Replace ``target`` with ``text`` (UTF-8) atomically."""
    write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: str | Path, obj: Any) -> None:
    """Replace ``target`` with ``obj`` as indented JSON atomically."""
    write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; on success it is renamed to ``target``.

    ``target`` must not exist yet (a completed folder is never overwritten). The folder's mode is
    what the umask allows.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary_folder(target)
    try:
        yield tmp
        _default_modes(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
