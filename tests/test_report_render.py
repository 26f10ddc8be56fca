"""The report from a fake but well-formed `reproduce` folder: sections, numbers, verdict, HTML."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from mirror_align.cli import main
from mirror_align.errors import UserInputError
from mirror_align.report.inputs import load_inputs
from mirror_align.report.render import render_report
from mirror_align.report.stats import minimum_detectable_effect
from mirror_align.report.verdict import verdict
from report_fixtures import (
    EVAL_SEEDS,
    SEEDS,
    TASKS,
    recognition,
    success,
    write_fake_reproduce,
)

SECTIONS = (
    "Summary and verdict",
    "Table 1: action recognition (AU vs MN)",
    "Table 2: embodied execution (EE vs MN)",
    "Table 3: ablation (pairing × τ)",
    "Fig. 3 left: alignment probing along training",
    "Fig. 3 right: probing on success vs failure subsets",
    "Fig. 6: t-SNE of the shared space (MN vs baseline)",
    "Beyond the paper",
    "Training curves",
    "Per-seed numbers",
    "Config and versions",
)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    root = write_fake_reproduce(tmp_path_factory.mktemp("report") / "run")
    return root, render_report(root)


def _mean_std(values: list[float]) -> str:
    return f"{100 * np.mean(values):.1f} ± {100 * np.std(values, ddof=1):.1f}"


def test_every_section_and_figure(full_report):
    root, paths = full_report
    md = paths.markdown.read_text()
    page = paths.html.read_text()
    for title in SECTIONS:
        assert f"## {title}" in md
        assert f"<h2>{title}</h2>" in page
    assert list(paths) == [paths.markdown, paths.html, *paths.figures]
    names = sorted(p.name for p in paths.figures)
    assert names == ["fig3_left.png", "fig3_right.png", "fig6_tsne.png", "training_curves.png"]
    for name in names:
        assert f"(figures/{name})" in md
        assert (root / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Missing" not in md
    assert not list(root.rglob("*.tmp"))  # atomic writes leave nothing behind


def test_table_numbers_are_computed_from_the_records(full_report):
    _, paths = full_report
    md = paths.markdown.read_text()
    gain = 0.05
    # Table 1 average row: each seed's own `all` record is the mean over tasks
    au = [np.mean([recognition("au", s, k, gain) for k in range(len(TASKS))]) for s in SEEDS]
    mn = [np.mean([recognition("mn", s, k, gain) for k in range(len(TASKS))]) for s in SEEDS]
    delta = 100 * np.mean(np.subtract(mn, au))
    assert (
        f"| average (task=all) | Avg. | {_mean_std(au)} | {_mean_std(mn)} | {delta:+.1f} | 71.6 | 74.9 |"
        in md
    )
    # Table 2, one task: mean over evaluation seeds within a training seed, then over seeds
    ee = [np.mean([success("ee", s, 0, e, gain) for e in EVAL_SEEDS]) for s in SEEDS]
    mn_s = [np.mean([success("mn", s, 0, e, gain) for e in EVAL_SEEDS]) for s in SEEDS]
    assert f"| reach_and_drag | Drag Stick | {_mean_std(ee)} | {_mean_std(mn_s)} |" in md
    assert "| 100.0 ± 0.0 | 100.0 ± 0.0 |" in md  # the paper's Drag Stick ARP/MN cells
    # Table 3 cell (class, 0.2): the fixture offsets it by 0.008
    au_cell = 100 * (np.mean([recognition("mn", 0, k, gain) for k in range(len(TASKS))]) + 0.008)
    au_delta = au_cell - 100 * au[0]  # minus au_s0 alone (the ablation seed is 0)
    assert f"| class | 0.2 | {au_cell:.1f} | {au_delta:+.1f} | above noise | 72.2 |" in md
    row = "| instruction | 0.1 | 60.0 | +5.0 | above noise | 74.9 | 51.0 | +5.0 | above noise | 88.8 |"
    assert f"{row} mn_s0 |" in md
    # beyond: multi-positive is +2 points over mn_s0 by construction
    assert "| mn_multi_s0 | multi-positive InfoNCE | 62.0 | 60.0 | +2.0 |" in md
    # per-seed success of one evaluation seed
    assert "ee_s1 `all` per evaluation seed: seed 0: 48.0, seed 1: 49.0, seed 2: 50.0." in md


def test_table3_reads_each_cell_against_the_main_comparisons_spread(tmp_path):
    # MN 0.5 points over its baselines at seed 0, 1.5 at seed 1: paired std 0.71 points, so a
    # one-seed cell must differ by more than 1.41 points to be read as beyond noise.
    root = write_fake_reproduce(tmp_path / "run", mn_gain=0.005, probing=False, tsne=False)
    md = render_report(root).markdown.read_text()
    md = md[md.index("## Table 3") : md.index("## Fig. 3 left")]
    row = "| instruction | 0.1 | 55.5 | +0.5 | within noise | 74.9 | 46.5 | +0.5 | within noise |"
    assert row in md
    assert "above noise" not in md and "below noise" not in md
    assert "recognition accuracy 0.7 points, rollout success 0.7 points" in md
    one = write_fake_reproduce(tmp_path / "one", seeds=(0,), probing=False, tsne=False)
    md = render_report(one).markdown.read_text()
    assert "| +5.0 | n/a |" in md  # one main seed: no spread to read a cell against


def test_html_is_self_contained(full_report):
    _, paths = full_report
    page = paths.html.read_text()
    uris = re.findall(r'<img[^>]* src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 4
    assert all(base64.b64decode(u)[:4] == b"\x89PNG" for u in uris)
    assert not re.search(r'(?:src|href)="(?!data:|#)', page)
    assert "<link" not in page and "<script" not in page and "http" not in page


def test_verdict_flips_with_the_data(tmp_path):
    better = load_inputs(write_fake_reproduce(tmp_path / "better", mn_gain=0.05, probing=False))
    worse = load_inputs(write_fake_reproduce(tmp_path / "worse", mn_gain=-0.05, probing=False))
    good, bad = verdict(better), verdict(worse)
    # 2 seeds differing by 5 and 6 points: above, but the paired CI spans zero, so no "beat"
    assert good.startswith(
        "MN scored above its baseline on every metric of the paper's claim in this run, but none of "
        "these differences is reliable: every paired 95% CI includes zero."
    )
    assert (
        "On recognition accuracy (by exact instruction id), MN scored above the AU baseline: 61.5% vs "
        "56.0% (+5.5 points" in good
    )
    # by text alongside: every value is BY_TEXT_GAIN (5 points) above its exact-id value
    assert (
        "By instruction text (identical texts count as equal; Table 1b): MN 66.5% vs AU 61.0% (+5.5 points)."
        in good
    )
    # the power sentence: 2 seeds whose differences are 1 point apart (std 0.707 points)
    mde = 100 * minimum_detectable_effect(2, np.std([0.0, 0.01], ddof=1))
    assert (
        f"With 2 seeds and this spread, the smallest true difference detected with 80% power is "
        f"{mde:.1f} points, so this run could not reliably detect an effect the size of the "
        "paper's (+3.3 points)." in good
    )
    assert "the size of the paper's (+3.5 points)" in good
    assert "The 95% CI contains both zero and the paper's effect" in good
    assert bad.startswith("MN did not score above its baseline on any metric of the paper's claim")
    assert "MN scored below the EE baseline" in bad and "-4.5 points" in bad


def test_verdict_calls_a_difference_reliable_only_when_its_ci_excludes_zero(tmp_path):
    five = (0, 1, 2, 3, 4)  # MN's gain grows by 1 point per seed (report_fixtures)
    far = verdict(load_inputs(write_fake_reproduce(tmp_path / "far", seeds=five, probing=False)))
    # differences 5..9 points: CI [5.0, 9.0] excludes zero and the paper's +3.3 / +3.5
    assert far.startswith(
        "MN beat its baseline on every metric of the paper's claim in this run; every paired 95% CI excludes zero."
    )
    assert "MN beat the AU baseline" in far
    assert "The 95% CI excludes both zero and the paper's effect." in far
    near = write_fake_reproduce(tmp_path / "near", seeds=five, mn_gain=0.01, probing=False)
    text = verdict(load_inputs(near))  # differences 1..5 points: CI [1.0, 5.0]
    assert (
        "The 95% CI excludes zero and contains the paper's effect: consistent with the paper."
        in text
    )
    small = write_fake_reproduce(tmp_path / "small", seeds=five, mn_gain=-0.02, probing=False)
    text = verdict(load_inputs(small))  # differences -2..2 points: CI [-2.0, 2.0]
    assert text.startswith(
        "MN did not score above its baseline on any metric of the paper's claim in this run, but "
        "none of these differences is reliable"
    )
    assert "MN tied with the AU baseline" in text
    assert "The paper's effect lies above the 95% CI: this run argues against an effect" in text


def test_reference_metrics_are_paired_and_a_reliable_one_is_named(tmp_path):
    five = (0, 1, 2, 3, 4)
    root = write_fake_reproduce(
        tmp_path / "drop", seeds=five, probing=False, tsne=False, offline_yaw_drop=0.08
    )
    text = verdict(load_inputs(root))  # yaw differences -8, -7, -8, -7, -8 points
    assert text.endswith(
        "Beyond the paper's metrics, alignment reliably changed (reference, summary table): "
        "EE offline: yaw within one 5° bin, MN -7.6 points (95% CI [-8.3, -6.9], p = <0.001)."
    )
    md = render_report(root).markdown.read_text()
    row = next(line for line in md.splitlines() if line.startswith("| EE offline: yaw"))
    assert "| EE: 64.0 ± 3.2 |" in row and "| -7.6 | [-8.3, -6.9] |" in row
    assert "| EE offline: gripper flag (reference) | EE: 97.0 ± 0.0 |" in md
    same = write_fake_reproduce(
        tmp_path / "same", seeds=five, probing=False, tsne=False, offline_yaw_drop=0.0
    )
    assert "Beyond the paper's metrics" not in verdict(load_inputs(same))  # CI [-0.3, 1.1]
    plain = render_report(write_fake_reproduce(tmp_path / "plain", probing=False, tsne=False))
    assert "EE offline" not in plain.verdict and "| EE offline" not in plain.markdown.read_text()


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}")[1].split("\n## ")[0]


def test_fig3_right_gives_the_probing_stages_reason_when_nothing_was_probed(tmp_path):
    root = write_fake_reproduce(tmp_path / "run", probing=False, tsne=False)
    md = render_report(root).markdown.read_text()
    assert "made by `mirror-align reproduce" in _section(md, "Fig. 3 right")  # never probed
    (root / "probing").mkdir(exist_ok=True)
    reason = "ee_success has 3, ee_failure has 33 episode(s); equal-size probing needs >= 8 in each"
    (root / "probing" / "subsets_ee.skipped.json").write_text(
        json.dumps({"comparison": "ee", "reason": reason})
    )
    right = _section(render_report(root).markdown.read_text(), "Fig. 3 right")
    assert "no comparison could be probed (notes)" in right
    assert f"Subset comparison `ee` not probed: {reason}." in right
    assert "made by `mirror-align reproduce" not in right


def test_one_seed_says_n_a(tmp_path):
    root = write_fake_reproduce(tmp_path / "one", seeds=(0,), tsne=False, probing=False)
    text = verdict(load_inputs(root))
    assert "1 seed, so no confidence interval or p-value" in text
    md = render_report(root).markdown.read_text()
    # with one training seed, Table 2's spread is over that run's evaluation seeds
    assert "1 training seed: ± is the sample std over that run's evaluation seeds" in md
    ee = [success("ee", 0, 0, e, 0.05) for e in EVAL_SEEDS]
    assert f"| reach_and_drag | Drag Stick | {_mean_std(ee)} |" in md
    assert (
        "| recognition accuracy | AU: 55.0 | n/a | MN: 60.0 | n/a | +5.0 | n/a | n/a | n/a | 1 |"
        in md
    )


def test_missing_inputs_are_explained(tmp_path):
    root = write_fake_reproduce(tmp_path / "run", ablation=False, probing=False, tsne=False)
    (root / "runs" / "mn_s1" / "metrics.jsonl").unlink()
    with open(root / "runs" / "au_s0" / "metrics.jsonl", "a") as handle:
        handle.write('{"run": "au_s0", "step": 4')  # a torn final line
    md = render_report(root).markdown.read_text()
    for title in SECTIONS:
        assert f"## {title}" in md
    assert "`manifest.json` lists no `ablation` runs" in md
    assert f"`mirror-align ablate --preset tiny --out {root} --ablation table3`" in md
    assert "No along-training probing records (`probing/along_training.jsonl`)" in md
    assert "No subset probing records (`probing/subsets.jsonl`)" in md
    assert "No t-SNE points (`probing/tsne_<run>.npz`)" in md
    assert md.count("(probing stage)") == 3
    assert "`metrics.jsonl` is missing for 1 run(s) (mn_s1)" in md
    assert f"mirror-align evaluate {root / 'runs' / 'mn_s1'}" in md
    assert "1 torn line(s) skipped" in md
    assert "| reach_and_drag | 50.0 | 52.0 | 55.0 | missing |" in md  # per-seed, mn_s1 absent
    assert not (root / "figures" / "fig6_tsne.png").exists()


def test_a_folder_with_metrics_but_no_manifest_renders_every_section(tmp_path):
    (tmp_path / "probing").mkdir()
    (tmp_path / "probing" / "subsets.jsonl").write_text("")
    md = render_report(tmp_path).markdown.read_text()
    for title in SECTIONS:
        assert f"## {title}" in md
    assert "`manifest.json` is missing" in md
    assert "No verdict" in md
    assert re.search(r"\d+\.\d ± ", md) is None  # no number without data


@pytest.mark.parametrize("content", [None, "notes.txt", "runs/x/train_log.jsonl"])
def test_report_refuses_a_folder_that_is_not_an_experiment(tmp_path, capsys, content):
    """Issue 14.9: no manifest and no metrics files: one line, exit 2, nothing written."""
    if content is not None:
        (tmp_path / content).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / content).write_text("{}\n")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not an experiment folder (no manifest.json" in err[0], err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    with pytest.raises(UserInputError, match="mirror-align reproduce --out"):
        render_report(tmp_path)


def test_a_skipped_tsne_is_a_note_in_fig6(tmp_path):
    """Issue 14.5: collapsed points are never handed to t-SNE; the probing stage leaves a note,
    which the report shows in Fig. 6's section."""
    from mirror_align.pipeline.probing import SKIPPED_SUFFIX
    from mirror_align.pipeline.probing.fig6_tsne import tsne_embedding

    root = write_fake_reproduce(tmp_path / "run", probing=False, tsne=False, ablation=False)
    z = np.ones((5, 4))
    with pytest.raises(UserInputError) as caught:
        tsne_embedding(z, z)  # the guard raises before scikit-learn is reached
    (root / "probing").mkdir(exist_ok=True)
    note = root / "probing" / f"tsne_mn_s0{SKIPPED_SUFFIX}"
    note.write_text(json.dumps({"run": "mn_s0", "reason": str(caught.value)}))
    md = render_report(root).markdown.read_text()
    fig6 = md.split("## Fig. 6")[1].split("## ")[0]
    assert "t-SNE of `mn_s0` skipped: t-SNE: representations collapsed: 10 identical rows" in fig6


def test_cli(tmp_path, capsys):
    root = write_fake_reproduce(tmp_path / "run", probing=False, tsne=False, ablation=False)
    assert main(["report", str(root)]) == 0
    out = capsys.readouterr().out
    assert "MN scored above its baseline" in out and "report.html" in out
    assert main(["report", str(tmp_path / "nope")]) == 2
    # the stage's own "report: " prefix is not repeated after the command's
    assert capsys.readouterr().err.strip() == (
        f"mirror-align report: error: {tmp_path / 'nope'} is not a folder"
    )
    (root / "probing").mkdir(exist_ok=True)
    np.savez(root / "probing" / "tsne_bad.npz", points=np.zeros((4, 3)))
    with pytest.raises(UserInputError, match="tsne_bad.npz"):
        load_inputs(root)
    (root / "manifest.json").write_text(json.dumps({"runs": [{"name": "x"}]}))
    with pytest.raises(UserInputError, match="lacks field"):
        load_inputs(root)


def test_a_difference_that_prints_as_zero_is_a_tie_not_a_win():
    from mirror_align.report.verdict import _direction

    # 2.78% vs 2.78% (fractions): float noise of equal success rates must not read as "MN beat".
    tiny = 0.027777777777777786 - 0.027777777777777776
    assert _direction(tiny, reliable=True) == _direction(tiny, reliable=False) == "tied with"
    assert _direction(0.006, reliable=True) == "beat"
    assert _direction(-0.004, reliable=True) == "fell short of"
    assert _direction(0.006, reliable=False) == "scored above"
    assert _direction(-0.004, reliable=False) == "scored below"


def test_undefined_probing_metrics_are_noted_in_fig3_left(tmp_path):
    """Issue 14.6: a k-NN fixed by a tiny probe test set is NaN in the records; the report says
    why instead of drawing it."""
    from mirror_align.eval.metrics_log import MetricRecord, append_metrics

    root = write_fake_reproduce(tmp_path / "run", probing=False, tsne=False, ablation=False)
    nan = float("nan")
    records = [MetricRecord("au_s0+ee_s0", s, "all", "all", "mutual_knn", nan, 0) for s in (0, 4)]
    records.append(MetricRecord("au_s0+ee_s0", 4, "all", "all", "probe_recall_at_1", 0.5, 0))
    append_metrics(root / "probing" / "along_training.jsonl", records)
    md = render_report(root).markdown.read_text()
    fig3 = md.split("## Fig. 3 left")[1].split("## ")[0]
    assert "`mutual_knn` is undefined (NaN) in 2 record(s)" in fig3
    assert "probe_recall_at_1` is undefined" not in fig3
