"""`reproduce --preset tiny` end to end: data, all runs, evaluation, probing, ablation, report.

In the default lane (about 2 minutes on 2 cores): this is the CI end-to-end run of issue 6. The
first invocation is interrupted (an injected Ctrl-C) to test resuming and the stage times kept
across invocations (issue 15).
"""

import json

from mirror_align.cli import main
from mirror_align.pipeline import stages

SECTIONS = ("Table 1", "Table 2", "Table 3", "Fig. 3", "Fig. 6", "Beyond the paper")


def test_reproduce_tiny_interrupted_then_resumed_then_skipped(tmp_path, capsys, monkeypatch):
    out = tmp_path / "experiment"
    argv = [
        "reproduce", "--preset", "tiny", "--out", str(out), "--seeds", "1", "--workers", "1",
        "--set", "train.steps=6", "--set", "eval.episodes_per_task=1",
    ]  # fmt: skip
    evaluate = stages.evaluate_stage

    def interrupted(spec, *args):
        if spec.name == "mn_s0":
            raise KeyboardInterrupt  # Ctrl-C at the MN evaluation
        return evaluate(spec, *args)

    monkeypatch.setattr(stages, "evaluate_stage", interrupted)
    assert main(argv) == 130
    first = json.loads((out / "timings.json").read_text())
    # tiny's AU trains one AU step (au_share 0.2 of 6), which can round to 0.0 s on an idle machine
    assert first["train au_s0"] >= 0 and first["train mn_s0"] > 0 and "probing" not in first
    monkeypatch.setattr(stages, "evaluate_stage", evaluate)

    capsys.readouterr()
    assert main(argv) == 0  # resumes: the trained runs are skipped, MN is evaluated
    printed = capsys.readouterr().out
    assert "train au_s0: complete, skipped" in printed and "evaluate mn_s0: written" in printed
    second = json.loads((out / "timings.json").read_text())
    for stage in ("data", "train au_s0", "evaluate au_s0", "train mn_s0"):
        # Stages done before the interruption keep their time (a skip adds ~0 s to it).
        assert first[stage] <= second[stage] <= first[stage] + 1.0, stage
    assert second["probing"] > 0 and second["report"] > 0
    stage_sum = sum(v for k, v in second.items() if k != "total")
    assert abs(second["total"] - stage_sum) < 0.1 * len(second)

    manifest = json.loads((out / "manifest.json").read_text())
    names = {run["name"] for run in manifest["runs"]}
    # tiny has au.colour_tokens off, so its beyond AU run turns them on (au_colour_s0)
    assert {"au_s0", "ee_s0", "mn_s0", "mn_multi_s0", "mn_mlp_s0", "au_colour_s0"} <= names
    # 3 pairings x 3 taus, less the config's own cell: Table 3 reads that one from mn_s0
    assert sum(run["group"] == "ablation" for run in manifest["runs"]) == 8
    for run in manifest["runs"]:
        assert (out / "runs" / run["name"] / "metrics.jsonl").is_file(), run["name"]
    assert (out / "probing" / "along_training.jsonl").is_file()
    assert list((out / "probing").glob("tsne_*.npz"))
    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for section in SECTIONS:
        assert section in markdown and section in html, section
    default_cell = [
        line for line in markdown.splitlines() if line.startswith("| instruction | 0.1 |")
    ]
    assert len(default_cell) == 1 and default_cell[0].endswith("| mn_s0 |")
    assert "data:image/png;base64," in html
    # A third run finds every stage complete and only re-renders the report.
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train mn_s0: complete, skipped" in printed
    assert "evaluate mn_s0: done before, skipped" in printed
    third = json.loads((out / "timings.json").read_text())
    assert third["train mn_s0"] <= second["train mn_s0"] + 1.0 and third["train mn_s0"] > 0


def test_reproduce_runs_only_the_ablation_parts_asked_for(tmp_path, capsys):
    out = tmp_path / "experiment"
    argv = [
        "reproduce", "--preset", "tiny", "--out", str(out), "--seeds", "1", "--workers", "1",
        "--set", "train.steps=6", "--set", "eval.episodes_per_task=1", "--ablation", "beyond",
    ]  # fmt: skip
    assert main(argv) == 0
    runs = json.loads((out / "manifest.json").read_text())["runs"]
    assert {run["group"] for run in runs} == {"main", "beyond"}
    assert sorted(path.name for path in (out / "runs").iterdir()) == sorted(r["name"] for r in runs)
    markdown = (out / "report.md").read_text()
    table3 = markdown.split("## Table 3")[1].split("\n## ")[0]
    assert f"`mirror-align ablate --preset tiny --out {out} --ablation table3`" in table3
    beyond = markdown.split("## Beyond the paper")[1].split("\n## ")[0]
    assert "| mn_mlp_s0 |" in beyond and "| mn_multi_s0 |" in beyond
