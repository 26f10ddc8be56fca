"""The AU-share comparison: the runs reproduce plans at the paper's share, and their report table."""

from __future__ import annotations

import json

from mirror_align.config.experiment import load_experiment, loop_steps
from mirror_align.constants import PAPER_AU_SHARE
from mirror_align.pipeline.manifest import manifest_runs, plan_runs, write_manifest
from mirror_align.report.inputs import load_inputs
from mirror_align.report.share_table import au_share_table
from mirror_align.report.tables import Missing
from report_fixtures import write_fake_reproduce


def test_plan_adds_the_papers_share_only_where_the_preset_differs(tmp_path):
    quick = load_experiment("quick")
    assert quick.train.au_share != PAPER_AU_SHARE
    runs = plan_runs(quick, [3, 4], ablation=True)
    share = [r for r in runs if r.group == "share"]
    assert [(r.name, r.method, r.seed) for r in share] == [
        ("au_share0.2_s3", "au", 3),
        ("mn_share0.2_s3", "mn", 3),
    ]
    for spec in share:
        config = spec.configure(quick)
        assert config.train.au_share == PAPER_AU_SHARE and config.seed == 3
    # The AU baseline at the paper's share runs exactly MN's AU-loss steps: a fifth of them.
    au_config = share[0].configure(quick)
    assert len(loop_steps(au_config, "au")) == int(quick.train.steps * PAPER_AU_SHARE)
    main_au = next(r for r in runs if r.name == "au_s3").configure(quick)
    assert main_au.train.au_share == quick.train.au_share
    write_manifest(tmp_path, "quick", [3, 4], runs)
    assert manifest_runs(tmp_path) == runs
    # the paper's share already (tiny), or no ablation: no share runs
    assert not [
        r for r in plan_runs(load_experiment("tiny"), [0], ablation=True) if r.group == "share"
    ]
    assert not [r for r in plan_runs(quick, [0], ablation=False) if r.group == "share"]


def test_share_table_compares_mn_and_au_at_each_share(tmp_path):
    inputs = load_inputs(write_fake_reproduce(tmp_path / "run"))
    table = au_share_table(inputs)
    rows = {row[0]: row for row in table.rows}
    # seed 0 of the fixture: AU 55.0, MN 60.0 (recognition); EE 46.0, MN 51.0 (success); at the
    # paper's share the AU is 3 points and MN 1 point lower (report_fixtures.SHARE_*_OFF).
    assert rows["0.667 (preset)"][1:9] == [
        "55.0", "60.0", "+5.0", "above noise", "46.0", "51.0", "+5.0", "above noise"
    ]  # fmt: skip
    assert rows["0.2 (paper)"][1:9] == [
        "52.0", "59.0", "+7.0", "above noise", "46.0", "50.0", "+4.0", "above noise"
    ]  # fmt: skip
    assert rows["0.2 (paper)"][9] == "au_share0.2_s0 / mn_share0.2_s0 / ee_s0"
    assert "0.7 points" in " ".join(table.notes)  # the main comparison's spread it is read against
    no_share = load_inputs(write_fake_reproduce(tmp_path / "skip", ablation=False, probing=False))
    missing = au_share_table(no_share)
    assert isinstance(missing, Missing) and "--ablation share" in missing.message
    # A preset already at the paper's share makes no share runs, and the note does not send the
    # reader to a command that would make none either.
    config = json.loads((no_share.root / "config.json").read_text())
    config["experiment"]["train"]["au_share"] = 0.2
    (no_share.root / "config.json").write_text(json.dumps(config))
    missing = au_share_table(load_inputs(no_share.root))
    assert missing.message.startswith(
        "Not needed: the preset's `train.au_share` is the paper's 0.2"
    )
    assert "ablate" not in missing.message
