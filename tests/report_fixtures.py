"""A fake but well-formed `reproduce` folder (docs/experiments.md), written through the public
record writer, with values given by closed-form functions so tests can recompute them.

Values are fractions in [0, 1]; ``mn_gain`` is added to every MN number, so its sign flips the
verdict. Recognition records are those ``evaluate`` computes (exact id, by text, ceiling, clips,
standard error) from :func:`recognition_result`: per-clip predictions built so that exact-id
accuracy equals the closed-form value.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mirror_align.eval.evaluate import EvaluationSummary, _recognition_records
from mirror_align.eval.metrics_log import MetricRecord, append_metrics
from mirror_align.eval.recognition import RecognitionResult

TASKS = ("reach_and_drag", "open_drawer")
SEEDS = (0, 1)
EVAL_SEEDS = (0, 1, 2)
STEP = 40
PAIRINGS = ("episode", "instruction", "class")
TAUS = (0.02, 0.1, 0.2)
CLIPS = 1000  # test clips per task: accuracies in steps of 0.001, like the closed-form values
# Of each task's 4 instruction ids, the first two read the same; clips per id:
ID_CLIPS = (700, 100, 100, 100)  # so the exact-id ceiling is 1 - 100 / 1000
CEILING = 0.9
BY_TEXT_GAIN = 0.05  # the wrong clips predicted as the id that reads like the truth
COLOUR_OFF = -0.10  # what the AU run without colour tokens loses, by construction
MOMENTS_OFF = -0.04  # what the AU run without colour moments loses, by construction


def recognition(method: str, seed: int, task_index: int, mn_gain: float) -> float:
    value = 0.50 + 0.10 * task_index + 0.02 * seed
    return value + mn_gain + 0.01 * seed if method == "mn" else value


def success(method: str, seed: int, task_index: int, eval_seed: int, mn_gain: float) -> float:
    value = 0.40 + 0.10 * task_index + 0.03 * seed + 0.01 * eval_seed
    return value + mn_gain + 0.01 * seed if method == "mn" else value


def recognition_result(values: list[float]) -> RecognitionResult:
    """Predictions for ``CLIPS`` clips of each task whose exact-id accuracy is ``values[k]`` and
    by-text accuracy ``values[k] + BY_TEXT_GAIN`` (each in [0.3, 0.95])."""
    texts, tasks, truth, predicted = [], [], [], []
    for k, (task, value) in enumerate(zip(TASKS, values, strict=True)):
        texts += [f"{task} twin", f"{task} twin", f"{task} b", f"{task} c"]
        ids = np.repeat(4 * k + np.arange(4), ID_CLIPS)
        wrong = CLIPS - round(value * CLIPS)  # the first clips, all of the first id
        assert round(BY_TEXT_GAIN * CLIPS) <= wrong <= ID_CLIPS[0], value
        guess = ids.copy()
        guess[: round(BY_TEXT_GAIN * CLIPS)] = 4 * k + 1  # reads the same as the truth
        guess[round(BY_TEXT_GAIN * CLIPS) : wrong] = 4 * k + 2
        tasks += [task] * CLIPS
        truth.append(ids)
        predicted.append(guess)
    truth_ids = np.concatenate(truth)
    return RecognitionResult(
        np.arange(len(truth_ids)), tasks, truth_ids, np.concatenate(predicted), texts
    )


# The fixture's preset share, and the offsets of the runs at the paper's share (0.2) below au_s0 /
# mn_s0 (with ``ablation``).
PRESET_SHARE = 0.667
SHARE_AU_OFF, SHARE_MN_OFF = -0.03, -0.01


def _run_entry(
    name,
    method,
    seed,
    group,
    pairing="instruction",
    tau=0.1,
    projector="linear",
    *,
    multi=False,
    colour=True,
    moments=None,
    share=None,
):
    entry = {
        "name": name,
        "method": method,
        "seed": seed,
        "group": group,
        "pairing": pairing,
        "tau": tau,
        "projector": projector,
        "multi_positive": multi,
        "colour_tokens": colour,
    }
    if moments is not None:  # older manifests have no colour_moments
        entry["colour_moments"] = moments
    if share is not None:  # only the share runs record their train.au_share
        entry["au_share"] = share
    return entry


def _write_eval(root: Path, name: str, method: str, seed: int, mn_gain: float, offset: float = 0.0):
    records = []
    if method in ("au", "mn"):
        values = [recognition(method, seed, k, mn_gain) + offset for k in range(len(TASKS))]
        summary = EvaluationSummary(name, STEP, "test")
        records += _recognition_records(summary, recognition_result(values))
    if method in ("ee", "mn"):
        for e in EVAL_SEEDS:
            values = [success(method, seed, k, e, mn_gain) + offset for k in range(len(TASKS))]
            records += [
                MetricRecord(name, STEP, "test", t, "success_rate", v, e)
                for t, v in zip(TASKS, values, strict=True)
            ]
            records.append(
                MetricRecord(name, STEP, "test", "all", "success_rate", float(np.mean(values)), e)
            )
    append_metrics(root / "runs" / name / "metrics.jsonl", records)
    log = root / "runs" / name / "train_log.jsonl"
    lines = []
    for step in range(1, STEP + 1):
        rec = {"step": step, "loss": 3.0 / step, "lr": 1e-4, "au_step": step % 5 == 0}
        if method != "au":
            rec["loss_ee"] = 2.0 / step
        if method != "ee" and step % 5 == 0:
            rec["loss_au"] = 1.0 / step
        if method == "mn":
            rec["loss_align"] = 1.5 / step
            rec["mi_lower_bound"] = np.log(8) - 1.5 / step
        lines.append(json.dumps(rec))
    log.write_text("\n".join(lines) + "\n")


def write_fake_reproduce(
    root: Path,
    *,
    mn_gain: float = 0.05,
    ablation: bool = True,
    probing: bool = True,
    tsne: bool = True,
    seeds: tuple[int, ...] = SEEDS,
    colour_ablation: bool = True,
    offline_yaw_drop: float | None = None,
) -> Path:
    """Write the folder at ``root``; returns ``root``. ``colour_ablation`` adds the beyond AU run
    without colour tokens (``au_no_colour_s0``, ``COLOUR_OFF`` below ``au_s0``) and the one
    without colour moments (``au_no_moments_s0``, ``MOMENTS_OFF`` below). ``offline_yaw_drop``
    adds the EE offline reference metrics of the main EE and MN runs (:func:`_write_offline`)."""
    root.mkdir(parents=True, exist_ok=True)
    runs = _write_runs(root, seeds, mn_gain, ablation=ablation, colour=colour_ablation)
    if offline_yaw_drop is not None:
        _write_offline(root, seeds, offline_yaw_drop)
    (root / "manifest.json").write_text(
        json.dumps({"preset": "tiny", "seeds": list(seeds), "runs": runs})
    )
    (root / "config.json").write_text(
        json.dumps(
            {
                "preset": "tiny",
                "package_version": "0.1.0",
                # reproduce writes the experiment config under "experiment" (pipeline/reproduce.py)
                "experiment": {"train": {"steps": STEP, "au_share": PRESET_SHARE}},
            }
        )
    )
    if probing:
        _write_along_training(root)
        _write_subsets(root)
    if tsne:
        _write_tsne(root)
    return root


def _write_runs(
    root: Path, seeds: tuple[int, ...], mn_gain: float, *, ablation: bool, colour: bool
) -> list[dict]:
    """The main runs of every seed, the ablation grid (optional) and the beyond runs; the
    manifest entries."""
    runs = []
    for seed in seeds:
        for method in ("au", "ee", "mn"):
            runs.append(_run_entry(f"{method}_s{seed}", method, seed, "main"))
            _write_eval(root, f"{method}_s{seed}", method, seed, mn_gain)
    if ablation:
        for i, pairing in enumerate(PAIRINGS):
            for j, tau in enumerate(TAUS):
                if (pairing, tau) == ("instruction", 0.1):
                    continue  # the default cell is mn_s0
                name = f"ablation_{pairing}_t{tau}"
                runs.append(_run_entry(name, "mn", 0, "ablation", pairing, tau))
                _write_eval(root, name, "mn", 0, mn_gain, offset=0.001 * (3 * i + j))
        for method, offset in (("au", SHARE_AU_OFF), ("mn", SHARE_MN_OFF)):
            name = f"{method}_share0.2_s0"
            runs.append(_run_entry(name, method, 0, "share", share=0.2))
            _write_eval(root, name, method, 0, mn_gain, offset=offset)
    for name, projector, multi in (("mn_multi_s0", "linear", True), ("mn_mlp_s0", "mlp", False)):
        runs.append(_run_entry(name, "mn", 0, "beyond", projector=projector, multi=multi))
        _write_eval(root, name, "mn", 0, mn_gain, offset=0.02 if multi else -0.01)
    if colour:
        runs.append(_run_entry("au_no_colour_s0", "au", 0, "beyond", colour=False))
        _write_eval(root, "au_no_colour_s0", "au", 0, mn_gain, offset=COLOUR_OFF)
        runs.append(_run_entry("au_no_moments_s0", "au", 0, "beyond", moments=False))
        _write_eval(root, "au_no_moments_s0", "au", 0, mn_gain, offset=MOMENTS_OFF)
    return runs


def _write_along_training(root: Path) -> None:
    along = []
    for step in (0, 20, 40):
        for probe_seed in (0, 1):
            base = 0.1 + step / 100 + 0.01 * probe_seed
            for metric, value in (
                ("probe_recall_at_1", base),
                ("probe_recall_at_1_u2e", base + 0.01),
                ("probe_recall_at_1_e2u", base - 0.01),
                ("probe_chance", 0.05),
                ("probe_mi_lower_bound_nats", 1.0 + step / 40),
                ("mutual_knn", 0.2 + step / 200),
                ("cka_linear", 0.3 + step / 200),
                ("cka_unbiased", 0.25 + step / 200),
            ):
                along.append(
                    MetricRecord("au_s0+ee_s0", step, "test", "all", metric, value, probe_seed)
                )
    append_metrics(root / "probing" / "along_training.jsonl", along)


def _write_subsets(root: Path) -> None:
    subsets = []
    for subset, value in (
        ("au_correct", 0.6),
        ("au_incorrect", 0.3),
        ("ee_success", 0.5),
        ("ee_failure", 0.2),
    ):
        for rep in range(3):
            subsets.append(
                MetricRecord(
                    "au_s0+ee_s0",
                    STEP,
                    subset,
                    "all",
                    "subset_recall_at_1",
                    value + 0.02 * rep,
                    rep,
                )
            )
    append_metrics(root / "probing" / "subsets.jsonl", subsets)


def _write_tsne(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "probing").mkdir(exist_ok=True)
    for run in ("mn_s0", "au_s0+ee_s0"):
        n = 24
        ids = np.tile(np.arange(6), n // 6)
        centres = rng.normal(size=(6, 2)) * 5
        points = np.concatenate([centres[ids], centres[ids]]) + rng.normal(size=(2 * n, 2))
        np.savez(
            root / "probing" / f"tsne_{run}.npz",
            points=points,
            instruction_id=np.concatenate([ids, ids]),
            model=np.repeat([0, 1], n),
        )


def _write_offline(root: Path, seeds: tuple[int, ...], yaw_drop: float) -> None:
    """``task=all`` offline keyframe records of ``ee_s<seed>`` and ``mn_s<seed>``: MN's yaw share
    is ``yaw_drop`` below the EE's, plus 0.01 on odd seeds; the other two metrics are equal."""
    for seed in seeds:
        ee_yaw = 0.6 + 0.02 * seed
        for method, yaw in (("ee", ee_yaw), ("mn", ee_yaw - yaw_drop + 0.01 * (seed % 2))):
            name = f"{method}_s{seed}"
            values = {
                "position_within_2cm": 0.55 + 0.01 * seed,
                "rotation_within1_yaw": yaw,
                "gripper_accuracy": 0.97,
            }
            append_metrics(
                root / "runs" / name / "metrics.jsonl",
                [MetricRecord(name, STEP, "test", "all", m, v, seed) for m, v in values.items()],
            )
