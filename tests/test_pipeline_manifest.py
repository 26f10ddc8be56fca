"""`ablate` adds its runs to an existing experiment folder's manifest without losing its seeds."""

from __future__ import annotations

import json

from mirror_align.config.experiment import load_experiment
from mirror_align.pipeline.manifest import extend_manifest, manifest_runs, plan_runs, write_manifest


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
