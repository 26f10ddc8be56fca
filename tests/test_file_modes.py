"""Outputs get the modes the umask allows, as a plain open()/mkdir() would (issue 13.5)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from data_fixtures import write_dataset
from mirror_align.atomic import atomic_directory, atomic_path, write_json_atomic


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_files_and_folders_follow_the_umask(tmp_path, umask):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    plain_dir = tmp_path / "plain_dir"
    plain_dir.mkdir()
    write_json_atomic(tmp_path / "a.json", {"a": 1})
    with atomic_path(tmp_path / "b.bin") as tmp:
        assert tmp.name.endswith(".tmp")
        tmp.write_bytes(b"b")
    with atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "inner.txt").write_text("y")
    assert _mode(plain) == 0o666 & ~umask
    assert _mode(plain_dir) == 0o777 & ~umask
    for name in ("a.json", "b.bin", "folder/inner.txt"):
        assert _mode(tmp_path / name) == _mode(plain), name
    assert _mode(tmp_path / "folder") == _mode(plain_dir)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_dataset_and_checkpoint_outputs_follow_the_umask(tmp_path, umask):
    from torch import nn

    from mirror_align.train.checkpoint import save_checkpoint

    root = tmp_path / "ds"
    write_dataset(root, per_task=1)
    files = [root / "dataset.json", root / "index.json", *sorted((root / "episodes").glob("*.h5"))]
    checkpoint = save_checkpoint(tmp_path / "run", 1, {"m": nn.Linear(2, 2)}, {}, {})
    files += [checkpoint / "weights.safetensors", checkpoint.parent / "latest.json"]
    for path in files:
        assert _mode(path) == 0o666 & ~umask, path
    for folder in (root, root / "episodes", checkpoint):
        assert _mode(folder) == 0o777 & ~umask, folder
