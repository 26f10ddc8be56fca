"""`reproduce --preset tiny` end to end: data, all runs, evaluation, probing, ablation, report.

In the default lane (about 2 minutes on 2 cores): this is the CI end-to-end run of issue 6.
"""

import json

from mirror_align.cli import main

SECTIONS = ("Table 1", "Table 2", "Table 3", "Fig. 3", "Fig. 6", "Beyond the paper")


def test_reproduce_tiny_end_to_end_then_resume(tmp_path, capsys):
    out = tmp_path / "experiment"
    argv = [
        "reproduce", "--preset", "tiny", "--out", str(out), "--seeds", "1", "--workers", "1",
        "--set", "train.steps=6", "--set", "eval.episodes_per_task=1",
    ]  # fmt: skip
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    names = {run["name"] for run in manifest["runs"]}
    assert {"au_s0", "ee_s0", "mn_s0", "mn_multi_s0", "mn_mlp_s0"} <= names
    assert sum(run["group"] == "ablation" for run in manifest["runs"]) == 9
    for run in manifest["runs"]:
        assert (out / "runs" / run["name"] / "metrics.jsonl").is_file(), run["name"]
    assert (out / "probing" / "along_training.jsonl").is_file()
    assert list((out / "probing").glob("tsne_*.npz"))
    markdown = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for section in SECTIONS:
        assert section in markdown and section in html, section
    assert "data:image/png;base64," in html
    # A second run finds every stage complete and only re-renders the report.
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "train mn_s0: complete, skipped" in printed
    assert "evaluate mn_s0: done before, skipped" in printed
