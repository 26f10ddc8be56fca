"""One experiment folder, one set of settings: `reproduce` and `ablate` refuse to add runs made
with other settings, and `ablate` without --preset/--config takes the folder's own config."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mirror_align.cli import main
from mirror_align.config import config_to_dict
from mirror_align.config.experiment import load_experiment
from mirror_align.errors import UserInputError
from mirror_align.pipeline.folder_config import check_same_experiment, differing_fields


def _save(folder, config):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"experiment": config_to_dict(config)}))


def test_only_settings_that_change_results_must_match(tmp_path):
    tiny = load_experiment("tiny", ["train.steps=6", "eval.episodes_per_task=1"])
    _save(tmp_path, tiny)
    check_same_experiment(tiny, tmp_path)  # the same config
    faster = replace(
        tiny,
        train=replace(tiny.train, threads=2, parallel_runs=1),
        eval=replace(tiny.eval, workers=3),
    )
    check_same_experiment(faster, tmp_path)  # execution settings may differ
    other = load_experiment("tiny", ["train.steps=20", "eval.episodes_per_task=2"])
    assert differing_fields(other, config_to_dict(tiny)) == [
        "train.steps=6 → 20",
        "eval.episodes_per_task=1 → 2",
    ]
    with pytest.raises(
        UserInputError, match=r"config.json: the folder's runs were made with other"
    ):
        check_same_experiment(other, tmp_path)
    check_same_experiment(other, tmp_path / "new")  # a folder without config.json: no check


def test_ablate_uses_the_folders_config_and_refuses_another(tmp_path, capsys):
    folder = tmp_path / "experiment"
    _save(folder, load_experiment("tiny", ["train.steps=6", "eval.episodes_per_task=1"]))
    before = (folder / "config.json").read_text()
    # --preset tiny without the folder's --set values: refused in one line, nothing written
    assert main(["ablate", "--preset", "tiny", "--out", str(folder), "--ablation", "share"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.steps=6 → 20" in err[0], err
    assert (folder / "config.json").read_text() == before
    assert not (folder / "manifest.json").exists()
    # no --preset: the folder's config; tiny is at the paper's share, so `share` makes no runs
    assert main(["ablate", "--out", str(folder), "--ablation", "share", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "share: train.au_share is already the paper's 0.2" in out
    assert json.loads((folder / "manifest.json").read_text())["runs"] == []
    assert not (folder / "data").exists()  # nothing to train, so no dataset was generated
    assert (folder / "config.json").read_text() == before  # ablate keeps the main runs' record
