"""The experiment plan: `ablate` adds its runs to an existing folder's manifest without losing its
seeds, and `--ablation` picks parts of the ablation."""

from __future__ import annotations

import json

import pytest

from mirror_align.cli import main
from mirror_align.config.experiment import load_experiment
from mirror_align.errors import UserInputError
from mirror_align.pipeline.manifest import (
    ABLATION_PARTS,
    extend_manifest,
    manifest_runs,
    parse_ablation_parts,
    plan_runs,
    write_manifest,
)


def test_extend_keeps_the_main_runs_and_seeds_and_replaces_same_named_runs(tmp_path):
    quick = load_experiment("quick")
    main_runs = plan_runs(quick, [0, 1, 2, 3, 4], ablation=False)
    write_manifest(tmp_path, "quick", [0, 1, 2, 3, 4], main_runs)
    grid = plan_runs(quick, [0], ablation=True, main=False)
    assert grid and all(r.group != "main" for r in grid)

    runs = extend_manifest(tmp_path, "quick", [0], grid)
    runs_again = extend_manifest(tmp_path, "quick", [0], grid)  # a resumed `ablate`
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    # Before the fix, `ablate` wrote its own seed list ([0]) over the main comparison's.
    assert manifest["seeds"] == [0, 1, 2, 3, 4]
    names = [r.name for r in manifest_runs(tmp_path)]
    assert names == [r.name for r in runs] == [r.name for r in runs_again]
    assert len(names) == len(set(names)) == len(main_runs) + len(grid)
    assert {f"mn_s{s}" for s in range(5)} <= set(names)


def test_extend_starts_a_manifest_where_there_is_none(tmp_path):
    grid = plan_runs(load_experiment("tiny"), [7], ablation=True, main=False)
    assert extend_manifest(tmp_path, "tiny", [7], grid) == grid
    assert json.loads((tmp_path / "manifest.json").read_text())["seeds"] == [7]


def test_ablation_parts_pick_their_groups_only():
    quick = load_experiment("quick")
    every = plan_runs(quick, [0, 1], ablation=True)
    for part, group in ABLATION_PARTS.items():
        picked = plan_runs(quick, [0, 1], ablation=True, parts=[part])
        assert [r for r in picked if r.group == "main"] == [r for r in every if r.group == "main"]
        assert [r for r in picked if r.group != "main"] == [r for r in every if r.group == group]
        assert any(r.group == group for r in picked), part  # the quick preset makes every part
    two = plan_runs(
        quick, [0], ablation=True, main=False, parts=parse_ablation_parts("beyond,share")
    )
    assert {r.group for r in two} == {"beyond", "share"}
    assert plan_runs(quick, [0], ablation=False, parts=["table3"]) == plan_runs(
        quick, [0], ablation=False
    )


@pytest.mark.parametrize("value", ["tabel3", "", "beyond,all", ","])
def test_unknown_ablation_parts_name_the_option_and_the_choices(value):
    with pytest.raises(UserInputError) as err:
        parse_ablation_parts(value)
    message = str(err.value)
    assert (
        message.startswith("--ablation: unknown part")
        and "table3, beyond, share, or all" in message
    )
    assert parse_ablation_parts("all") == parse_ablation_parts("share, beyond ,table3")


def test_cli_rejects_a_bad_ablation_list_in_one_line(tmp_path, capsys):
    code = main(
        ["reproduce", "--preset", "tiny", "--out", str(tmp_path / "x"), "--ablation", "grid"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "--ablation: unknown part grid" in err[0] and "table3" in err[0]
    assert not (tmp_path / "x").exists()  # nothing started
    code = main(
        ["reproduce", "--out", str(tmp_path / "y"), "--skip-ablation", "--ablation", "share"]
    )
    assert code == 2 and "contradict" in capsys.readouterr().err
    code = main(["ablate", "--out", str(tmp_path / "z"), "--ablation", "table4"])
    assert code == 2 and "--ablation: unknown part table4" in capsys.readouterr().err
