"""Probing experiments over trained runs (Fig. 3 left/right, Fig. 6) on a real tiny dataset."""

import json

import numpy as np
import pytest
import torch

from mirror_align.align.probe import ProbeConfig, fit_probe, probe
from mirror_align.cli import main
from mirror_align.config.experiment import load_experiment
from mirror_align.data.reader import DatasetReader
from mirror_align.eval.features import (
    EpisodeFeatures,
    au_representations,
    ee_representations,
    extract_features,
)
from mirror_align.eval.metrics_log import read_metrics
from mirror_align.pipeline.probing import (
    ALONG_TRAINING_METRICS,
    SUBSET_METRIC,
    CheckpointPair,
    along_training_needs,
    checkpoint_key,
    extract_checkpoints,
    load_module,
    open_store,
    outcome_masks,
    pair_checkpoints,
    probe_along_training,
    probe_subset_comparison,
    success_subsets_needs,
    tsne_needs,
)
from mirror_align.train.trainer import train

CHEAP = dict(dim=32, max_epochs=5, progress=False)


@pytest.fixture(scope="module")
def runs(tiny_sim_dataset, tmp_path_factory):
    """AU, EE and MN runs of 4 steps with checkpoints every 2 (the AU run: AU loss on half of the
    steps, so its only checkpoint is at step 4 and EE step 2 pairs with the fresh AU model)."""
    root = tmp_path_factory.mktemp("probe_runs")
    common = [
        f"data.path={tiny_sim_dataset}",
        "train.steps=4",
        "train.batch_size=4",
        "train.checkpoint_every=2",
    ]
    for method, extra in (("au", ["train.au_share=0.5"]), ("ee", []), ("mn", [])):
        config = load_experiment("tiny", common + extra)
        train(config, method, root / f"{method}_s0", progress=False)
    return root


@pytest.fixture(scope="module")
def store(tiny_sim_dataset, runs):
    """Episodes opened once and features memoised per checkpoint, shared by the tests below."""
    return open_store(tiny_sim_dataset, runs / "au_s0", progress=False)


def test_checkpoints_pair_by_training_progress():
    assert pair_checkpoints([4, 8], [2, 4, 6, 8]) == [
        CheckpointPair(0, 0, 0),
        CheckpointPair(2, 0, 2),
        CheckpointPair(4, 4, 4),
        CheckpointPair(6, 4, 6),
        CheckpointPair(8, 8, 8),
    ]
    assert pair_checkpoints([], [3]) == [CheckpointPair(0, 0, 0), CheckpointPair(3, 0, 3)]


def test_features_one_row_per_episode_with_e_averaged_over_keyframes(tiny_sim_dataset, runs, store):
    episodes = store.episodes
    reader = DatasetReader(tiny_sim_dataset)
    successful = [e for _, e in sorted(reader.entries.items()) if e["success"]]
    au = load_module(runs / "mn_s0", None, "au")
    ee = load_module(runs / "mn_s0", None, "ee").train()  # left in training mode on purpose
    features = extract_features(au, ee, episodes, batch_size=5, progress=False)
    assert ee.training  # the caller's mode is restored
    assert features.u.shape == (len(successful), au.representation_dim)
    assert features.e.shape == (len(successful), ee.representation_dim)
    assert features.episode_id.tolist() == [e["episode_id"] for e in successful]
    assert features.instruction_id.tolist() == [e["instruction_id"] for e in successful]
    assert set(features.split) == {"train", "test"}
    # Row of the last test episode: the mean of its keyframes' greedy-decoding representations.
    part = episodes.parts[-1]
    rows = [i for i in range(len(part.ee)) if part.ee.samples[i, 0] == len(part.ee.entries) - 1]
    ee.eval()
    with torch.no_grad():
        per_keyframe = ee.represent(
            {k: torch.stack([part.ee[i][k] for i in rows]) for k in part.ee[rows[0]]}
        )
    np.testing.assert_allclose(features.e[-1], per_keyframe.mean(0).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_major_extraction_gives_the_rows_of_one_checkpoint_at_a_time(runs, store, workers):
    """Every checkpoint over each batch in turn (EE models sharing the workspace render; spawned
    1-thread workers): the same numbers as extracting each checkpoint alone."""
    wanted = [("ee", "ee_s0", 0), ("ee", "ee_s0", 4), ("ee", "mn_s0", 4), ("au", "mn_s0", 4)]
    keys = [checkpoint_key(kind, runs / run, step) for kind, run, step in wanted]
    got = extract_checkpoints(store.episodes, keys, batch_size=3, workers=workers, progress=False)
    assert set(got) == set(keys)
    for (kind, run, step), key in zip(wanted, keys, strict=True):
        extract = au_representations if kind == "au" else ee_representations
        alone = extract(load_module(runs / run, step, kind), store.episodes, 3, progress=False)
        assert got[key].dtype == np.float32
        np.testing.assert_array_equal(got[key], alone)


def test_fresh_initialisation_is_step_zero(runs):
    fresh = load_module(runs / "ee_s0", 0, "ee")
    trained = load_module(runs / "ee_s0", 4, "ee")
    assert not fresh.training
    differs = [
        not torch.equal(a, b)
        for a, b in zip(fresh.state_dict().values(), trained.state_dict().values(), strict=True)
    ]
    assert any(differs)


def test_along_training_writes_every_metric_and_resumes(tiny_sim_dataset, runs, store, tmp_path):
    out = tmp_path / "along_training.jsonl"
    config = ProbeConfig(pairing="episode", **CHEAP)
    args = (runs / "au_s0", runs / "ee_s0", tiny_sim_dataset, out, config)
    outcome = probe_along_training(*args, store=store, progress=False)
    assert [(p.step, p.au_step, p.ee_step) for p in outcome.pairs] == [
        (0, 0, 0),
        (2, 0, 2),
        (4, 4, 4),
    ]
    records, torn = read_metrics(out)
    assert torn == 0
    got = {(r.step, r.metric) for r in records}
    assert got == {(s, m) for s in (0, 2, 4) for m in ALONG_TRAINING_METRICS}
    assert len(records) == 3 * len(ALONG_TRAINING_METRICS)
    assert all(r.run == "au_s0+ee_s0" and r.task == "all" and r.split == "all" for r in records)
    by = {(r.step, r.metric): r.value for r in records}
    for step in (0, 2, 4):
        assert 0.0 <= by[(step, "probe_recall_at_1")] <= 1.0
        assert by[(step, "probe_chance")] == pytest.approx(outcome.results[step]["chance"])
    assert along_training_needs(runs / "au_s0", runs / "ee_s0", tmp_path / "none.jsonl") == [
        checkpoint_key(kind, runs / f"{kind}_s0", step)
        for kind, steps in (("au", (0, 0, 4)), ("ee", (0, 2, 4)))
        for step in steps
    ]
    # Resume: nothing to do when complete; a lost step is probed again, alone.
    again = probe_along_training(*args, progress=False)
    assert again.skipped_steps == [0, 2, 4] and not again.results
    lines = out.read_text().splitlines()
    kept = [line for line in lines if json.loads(line)["step"] != 4]
    out.write_text("\n".join(kept) + '\n{"run": "au_s0+ee_s0", "st')  # and a torn last line
    third = probe_along_training(*args, store=store, progress=False)
    assert third.skipped_steps == [0, 2] and list(third.results) == [4]
    records, torn = read_metrics(out)
    assert torn == 1 and len(records) == 3 * len(ALONG_TRAINING_METRICS)


def _synthetic(n: int, seed: int = 0) -> EpisodeFeatures:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 6))
    u = latent @ rng.normal(size=(6, 20)) + 0.1 * rng.normal(size=(n, 20))
    e = latent @ rng.normal(size=(6, 12)) + 0.1 * rng.normal(size=(n, 12))
    ids = np.arange(100, 100 + n)
    return EpisodeFeatures(
        u.astype(np.float32), e.astype(np.float32), ids, ids % 7, ids % 3, np.full(n, "test")
    )


def test_outcome_masks_match_episodes_and_use_eval_seed_zero():
    episode_id = np.array([10, 11, 12, 13])
    recognition = {"episode_id": [10, 11, 12], "predicted": [5, 6, 0], "instruction_id": [5, 1, 0]}
    rollouts = [
        {"eval_seed": 0, "seed": 10, "success": True},
        {"eval_seed": 0, "seed": 13, "success": False},
        {"eval_seed": 1, "seed": 11, "success": True},  # another eval seed: not this episode
    ]
    masks = outcome_masks(episode_id, recognition, rollouts)
    assert masks["au_correct"].tolist() == [True, False, True, False]
    assert masks["au_incorrect"].tolist() == [False, True, False, False]
    assert masks["ee_success"].tolist() == [True, False, False, False]
    assert masks["ee_failure"].tolist() == [False, False, False, True]


def test_subset_comparison_uses_equal_sizes_and_skips_small_subsets(tmp_path):
    features = _synthetic(40)
    out = tmp_path / "subsets.jsonl"
    config = ProbeConfig(pairing="episode", **CHEAP)
    success = np.zeros(40, dtype=bool)
    success[:26] = True
    masks = {"ee_success": success, "ee_failure": ~success}
    result = probe_subset_comparison(features, "ee", masks, "a+b", 4, out, config, repeats=2)
    assert result.status == "written"
    assert result.sizes == {"ee_success": 26, "ee_failure": 14} and result.n_per_subset == 14
    records, _ = read_metrics(out)
    assert sorted((r.split, r.seed) for r in records) == [
        ("ee_failure", 0),
        ("ee_failure", 1),
        ("ee_success", 0),
        ("ee_success", 1),
    ]
    assert all(r.metric == SUBSET_METRIC and r.step == 4 and r.run == "a+b" for r in records)
    # Too small: nothing is written, and the reason names the subset sizes.
    correct = np.zeros(40, dtype=bool)
    correct[:33] = True
    small = {"au_correct": correct, "au_incorrect": ~correct}
    before = out.read_text()
    missing = probe_subset_comparison(features, "au", small, "a+b", 4, out, config)
    assert missing.status == "missing" and "au_incorrect has 7" in missing.reason
    assert out.read_text() == before


def test_fit_probe_keeps_probe_results_and_projects(tmp_path):
    features = _synthetic(30, seed=1)
    config = ProbeConfig(pairing="instruction", **CHEAP)
    fitted = fit_probe(features.u, features.e, features.keys(), config)
    plain = probe(features.u, features.e, features.keys(), config)
    assert fitted.result.recall_at_1 == plain.recall_at_1
    assert fitted.result.mi_lower_bound_nats == plain.mi_lower_bound_nats
    z_u, z_e = fitted.project(features.u[:5], features.e[:7])
    assert z_u.shape == (5, 32) and z_e.shape == (7, 32)


def test_probe_runs_command_end_to_end(tiny_sim_dataset, runs, tmp_path, capsys):
    au, ee, mn = (str(runs / f"{m}_s0") for m in ("au", "ee", "mn"))
    assert main(["evaluate", au, "--data", str(tiny_sim_dataset)]) == 0
    evaluated = main(
        ["evaluate", ee, "--data", str(tiny_sim_dataset), "--episodes-per-task", "2"]
        + ["--eval-seeds", "1", "--workers", "1"]
    )
    assert evaluated == 0
    capsys.readouterr()
    out = tmp_path / "probing"
    argv = ["probe-runs", "--au", au, "--ee", ee, "--mn", mn, "--data", str(tiny_sim_dataset)]
    argv += ["--out", str(out), "--repeats", "2", "--probe-dim", "32", "--max-epochs", "3"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "3 checkpoint pairs, 0/2 subset comparisons, 2 t-SNE file(s)" in captured.out
    # The 4 test episodes are fewer than 8 per subset: reported, nothing written.
    assert "subsets au: MISSING" in captured.err and "subsets ee: MISSING" in captured.err
    assert not (out / "subsets.jsonl").exists()
    for comparison in ("au", "ee"):  # the reason stays beside the records, for the report
        note = json.loads((out / f"subsets_{comparison}.skipped.json").read_text())
        assert note["comparison"] == comparison
        assert "equal-size probing needs >= 8 in each" in note["reason"]
    records, _ = read_metrics(out / "along_training.jsonl")
    assert {r.step for r in records} == {0, 2, 4}
    test_episodes = DatasetReader(tiny_sim_dataset).select("test")
    for name in ("mn_s0", "au_s0+ee_s0"):
        arrays = np.load(out / f"tsne_{name}.npz")
        n = len(test_episodes)
        assert arrays["points"].shape == (2 * n, 2) and np.isfinite(arrays["points"]).all()
        assert arrays["model"].tolist() == [0] * n + [1] * n
        ids = [e["instruction_id"] for e in test_episodes]
        assert arrays["instruction_id"].tolist() == ids + ids
    # A second run reuses everything it finds: only the subsets (still undecided) need features.
    assert along_training_needs(au, ee, out / "along_training.jsonl") == []
    assert tsne_needs(out, mn, au, ee) == []
    assert tsne_needs(out, mn, au, ee, overwrite=True) == [
        checkpoint_key(kind, run, 4)
        for kind, run in (("au", mn), ("ee", mn), ("au", au), ("ee", ee))
    ]
    assert success_subsets_needs(au, ee, out / "subsets.jsonl") == [
        checkpoint_key("au", au, 4),
        checkpoint_key("ee", ee, 4),
    ]
    assert main(argv) == 0
    assert "(0 probed, 3 already done)" in capsys.readouterr().err


def test_probe_runs_bad_run_folder_is_one_line_error(tiny_sim_dataset, tmp_path, capsys):
    argv = ["probe-runs", "--au", str(tmp_path / "nope"), "--ee", str(tmp_path)]
    assert main(argv + ["--data", str(tiny_sim_dataset), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--au" in err[0]
    argv = ["probe-runs", "--au", str(tmp_path), "--ee", str(tmp_path), "--splits", "test"]
    assert main(argv + ["--data", str(tiny_sim_dataset), "--out", str(tmp_path / "o")]) == 2
    assert "add train or val" in capsys.readouterr().err


def test_collapsed_mn_space_skips_its_tsne_with_a_note(tiny_sim_dataset, runs, store, tmp_path):
    """Issue 14.5: identical shared-space rows would segfault scikit-learn's t-SNE. The figure is
    skipped with a note (a fault injected: the MN projection returns one row repeated)."""
    from mirror_align.pipeline.probing import fig6_tsne

    def collapsed(store, mn_run, show_splits):
        shown = store.episodes.empty_features().in_splits(show_splits)
        same = np.ones((len(shown), 8), dtype=np.float32)
        return same, same, shown

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fig6_tsne, "mn_shared_space", collapsed)
        outcome = fig6_tsne.tsne_points(
            tiny_sim_dataset, tmp_path, mn_run=runs / "mn_s0", store=store, progress=False
        )
    assert not outcome.points and list(outcome.skipped) == ["mn_s0"]
    assert "representations collapsed" in outcome.skipped["mn_s0"]
    note = json.loads((tmp_path / "tsne_mn_s0.skipped.json").read_text())
    assert note["reason"] == outcome.skipped["mn_s0"] and not (tmp_path / "tsne_mn_s0.npz").exists()
    # Resumed: the note is kept; recomputed with real points, the note is replaced by the file.
    again = fig6_tsne.tsne_points(tiny_sim_dataset, tmp_path, mn_run=runs / "mn_s0", store=store)
    assert again.skipped == outcome.skipped
    fixed = fig6_tsne.tsne_points(
        tiny_sim_dataset, tmp_path, mn_run=runs / "mn_s0", store=store, overwrite=True
    )
    assert list(fixed.points) == ["mn_s0"] and not (tmp_path / "tsne_mn_s0.skipped.json").exists()
