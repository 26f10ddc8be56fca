"""Bring your own data, end to end (issue 13.6): a non-MirrorBench dataset written through the
public writer API (own task names, cameras, workspace bounds and tool frame) goes through
train -> evaluate -> probe-runs -> report for au, ee and mn, through the real CLI, with no
traceback.

No shape or frame fact is passed on the command line: the image size, the cameras and the
workspace bounds come from dataset.json (issue 13.2). The report needs ``manifest.json``, written
here with the pipeline's own ``write_manifest``.
"""

from __future__ import annotations

import json

import pytest

from byod_data import BOUNDS, write_byod_dataset
from mirror_align.cli import main
from mirror_align.eval.metrics_log import read_metrics

pytestmark = pytest.mark.slow  # about a minute on 2 busy cores


def _train(data, method, out):
    args = ["train", "--config", "tiny", "--method", method, "--out", str(out)]
    for override in (
        f"data.path={data}",
        "data.tasks=[]",
        "train.steps=10",  # tiny's au_share 0.2: 2 AU steps
        "train.batch_size=4",
        "train.threads=1",
        "train.checkpoint_every=5",
        "train.keyframe_metrics_every=5",
    ):
        args += ["--set", override]
    assert main(args) == 0, f"train {method}"


def test_user_dataset_trains_evaluates_probes_and_reports(tmp_path, capsys):
    from mirror_align.config.experiment import load_experiment
    from mirror_align.pipeline.manifest import plan_runs, write_manifest

    data = write_byod_dataset(tmp_path / "my_robot_dataset")
    assert main(["dataset", "verify", str(data)]) == 0
    root = tmp_path / "experiment"
    for method in ("au", "ee", "mn"):
        _train(data, method, root / "runs" / f"{method}_s0")
        capsys.readouterr()
        assert main(["evaluate", str(root / "runs" / f"{method}_s0")]) == 0
        out = capsys.readouterr().out
        if method != "au":
            assert "rollouts skipped for 2 task(s)" in out
    saved = json.loads(
        next((root / "runs" / "mn_s0").glob("checkpoints/*/config.json")).read_text()
    )
    # (x_min, y_min, z_min, x_max, y_max, z_max) from dataset.json's [[lo, hi]] per axis.
    expected = [axis[0] for axis in BOUNDS] + [axis[1] for axis in BOUNDS]
    assert saved["data_facts"]["workspace_bounds"] == pytest.approx(expected)
    records, _ = read_metrics(root / "runs" / "mn_s0" / "metrics.jsonl")
    metrics = {(r.split, r.task, r.metric) for r in records}
    assert ("test", "all", "recognition_accuracy") in metrics
    assert ("test", "wipe_table", "position_error_cm_median") in metrics
    assert {r.step for r in records if r.split == "val"} == {5, 10}

    runs = root / "runs"
    probe = ["probe-runs", "--au", str(runs / "au_s0"), "--ee", str(runs / "ee_s0")]
    probe += ["--mn", str(runs / "mn_s0"), "--data", str(data), "--out", str(root / "probing")]
    probe += ["--repeats", "1", "--max-epochs", "2", "--splits", "train,test"]
    assert main(probe) == 0
    config = load_experiment("tiny", [f"data.path={data}"])
    write_manifest(root, "tiny", [0], plan_runs(config, [0], ablation=False))
    assert main(["report", str(root)]) == 0
    md = (root / "report.md").read_text()
    for title in (
        "Table 1: action recognition (AU vs MN)",
        "EE offline keyframe metrics",
        "Rollout failure analysis and precision",
        "Fig. 6: t-SNE of the shared space (MN vs baseline)",
    ):
        assert f"## {title}" in md
    keyframes = md.split("## EE offline keyframe metrics")[1].split("\n## ")[0]
    for row in ("| wipe_table | EE |", "| stack_cups | MN |", "| all | EE |"):
        assert row in keyframes
    assert "(figures/keyframe_curve.png)" in keyframes
    assert (root / "figures" / "keyframe_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "No rollout records: `evaluate` ran none" in md
    assert json.loads((root / "manifest.json").read_text())["runs"][0]["name"] == "au_s0"
    assert "Traceback" not in capsys.readouterr().err
