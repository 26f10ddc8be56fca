"""Read everything the report needs from a `reproduce` folder (layout: docs/experiments.md).

Nothing here raises on a missing file: a missing input becomes ``None``/empty plus a note that
names the file and the command that makes it, so the report can say so in the right section.
A file that exists but is malformed is a :class:`~mirror_align.errors.UserInputError`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirror_align.constants import (
    RECOGNITION,
    RECOGNITION_CEILING,
    RECOGNITION_CLIPS,
    RECOGNITION_SE,
    RECOGNITION_TEXT,
    SUCCESS,
)
from mirror_align.errors import UserInputError
from mirror_align.eval.metrics_log import MetricRecord, read_metrics
from mirror_align.eval.precision import binomial_se, mean_rate_se

# Recognition metrics read besides RECOGNITION, at its step (docs/experiments.md).
RECOGNITION_EXTRA = (RECOGNITION_TEXT, RECOGNITION_CEILING, RECOGNITION_CLIPS, RECOGNITION_SE)
# EE offline keyframe metrics (eval/keyframe_metrics.py) the summary pairs by seed for reference.
OFFLINE_REFERENCE = ("position_within_2cm", "rotation_within1_yaw", "gripper_accuracy")


@dataclass(frozen=True)
class RunInfo:
    """One entry of ``manifest.json``."""

    name: str
    method: str  # au | ee | mn
    seed: int
    group: str  # main | ablation | beyond | share
    pairing: str | None = None
    tau: float | None = None
    projector: str | None = None
    multi_positive: bool | None = None
    colour_tokens: bool | None = None  # au.colour_tokens; None: not recorded (older manifests)
    colour_moments: bool | None = None  # au.colour_moments; None: the preset's (or not recorded)
    au_share: float | None = None  # train.au_share; None: the preset's


@dataclass
class RunMetrics:
    """The evaluation of one run at its latest evaluated step on one split.

    ``recognition[task]`` is an accuracy in [0, 1]; ``success[task][eval_seed]`` a success rate in
    [0, 1]. ``task == "all"`` is the run's own mean over tasks, as written by ``evaluate``.
    ``recognition_extra[metric][task]`` holds the metrics of :data:`RECOGNITION_EXTRA` recorded at
    ``recognition_step`` (by-text accuracy, ceiling, clip counts, the standard error).
    """

    run: str
    split: str
    recognition_step: int | None = None
    success_step: int | None = None
    recognition: dict[str, float] = field(default_factory=dict)
    success: dict[str, dict[int, float]] = field(default_factory=dict)
    recognition_extra: dict[str, dict[str, float]] = field(default_factory=dict)
    # metric of OFFLINE_REFERENCE -> task -> value in [0, 1], each at its latest step
    offline: dict[str, dict[str, float]] = field(default_factory=dict)

    def scores(self, metric: str) -> dict[str, float]:
        """task -> value of ``RECOGNITION``, of a metric of :data:`RECOGNITION_EXTRA` or of one
        of :data:`OFFLINE_REFERENCE`."""
        if metric == RECOGNITION:
            return self.recognition
        if metric in OFFLINE_REFERENCE:
            return self.offline.get(metric, {})
        return self.recognition_extra.get(metric, {})

    def recognition_se(self, metric: str, task: str) -> float | None:
        """Standard error, from sampling the test clips, of ``metric`` (``RECOGNITION`` or
        ``RECOGNITION_TEXT``) for ``task``: binomial ``sqrt(p(1-p)/n)`` with ``n`` its clips;
        for ``all`` (the mean over T tasks) ``sqrt(sum p(1-p)/n) / T`` (eval/recognition.py).

        ``None`` without clip counts (evaluated before ``recognition_clips`` was recorded), except
        the exact-id ``all``, which ``evaluate`` recorded as ``recognition_accuracy_se``.
        """
        values, clips = self.scores(metric), self.scores(RECOGNITION_CLIPS)
        if task != "all":
            n = int(clips.get(task, 0))
            return binomial_se(values[task], n) if task in values and n > 0 else None
        tasks = [t for t in values if t != "all"]
        if tasks and all(clips.get(t) for t in tasks):
            return mean_rate_se([(values[t], int(clips[t])) for t in tasks])
        return self.scores(RECOGNITION_SE).get("all") if metric == RECOGNITION else None

    def success_mean(self, task: str) -> float | None:
        """Mean over evaluation seeds of ``success[task]`` (``None`` if absent)."""
        per_seed = self.success.get(task)
        if not per_seed:
            return None
        return float(np.mean(list(per_seed.values())))


@dataclass
class TsnePoints:
    """``probing/tsne_<run>.npz``: ``points [2N, 2]``, ``instruction_id [2N]``, ``model [2N]``."""

    run: str
    points: np.ndarray
    instruction_id: np.ndarray
    model: np.ndarray  # 0 = AU, 1 = EE


@dataclass
class ReportInputs:
    """Everything read from ``DIR``; ``notes`` lists what was missing or odd, by section key."""

    root: Path
    split: str
    config: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    runs: list[RunInfo] = field(default_factory=list)
    metrics: dict[str, RunMetrics] = field(default_factory=dict)
    along_training: list[MetricRecord] | None = None
    subsets: list[MetricRecord] | None = None
    subsets_skipped: dict[str, str] = field(default_factory=dict)  # comparison -> why not probed
    tsne: list[TsnePoints] = field(default_factory=list)
    train_logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def run(self, name: str) -> RunInfo | None:
        return next((r for r in self.runs if r.name == name), None)

    def group(self, group: str, method: str | None = None) -> list[RunInfo]:
        """Runs of ``group`` (and ``method``), sorted by seed then name."""
        found = [
            r for r in self.runs if r.group == group and (method is None or r.method == method)
        ]
        return sorted(found, key=lambda r: (r.seed, r.name))

    def seed_run(self, group: str, method: str, seed: int) -> RunInfo | None:
        """The first run of ``group`` and ``method`` trained with ``seed`` (None if there is none)."""
        return next((r for r in self.group(group, method) if r.seed == seed), None)

    def how_to_add(self, part: str) -> str:
        """The sentence telling how to add the ablation ``part`` (``table3``, ``beyond``,
        ``share``; ``pipeline.manifest.ABLATION_PARTS``) to this folder, for a missing table."""
        preset = (self.manifest or {}).get("preset", "quick")
        return (
            f"`reproduce` ran with `--skip-ablation` or an `--ablation` list without `{part}`; "
            f"add them with `mirror-align ablate --preset {preset} --out {self.root} "
            f"--ablation {part}`."
        )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserInputError(f"report: {path} is not valid JSON ({err})") from err


def _parse_run(entry: Any, path: Path, index: int) -> RunInfo:
    if not isinstance(entry, dict):
        raise UserInputError(f"report: {path} runs[{index}] is not an object")
    missing = [k for k in ("name", "method", "seed", "group") if k not in entry]
    if missing:
        raise UserInputError(f"report: {path} runs[{index}] lacks field(s) {', '.join(missing)}")
    tau = entry.get("tau")
    return RunInfo(
        name=str(entry["name"]),
        method=str(entry["method"]),
        seed=int(entry["seed"]),
        group=str(entry["group"]),
        pairing=entry.get("pairing"),
        tau=None if tau is None else float(tau),
        projector=entry.get("projector"),
        multi_positive=entry.get("multi_positive"),
        colour_tokens=entry.get("colour_tokens"),
        colour_moments=entry.get("colour_moments"),
        au_share=None if entry.get("au_share") is None else float(entry["au_share"]),
    )


def _latest(records: list[MetricRecord], metric: str) -> tuple[int | None, list[MetricRecord]]:
    """Records of ``metric`` at its latest step; a repeated (task, seed) keeps the last line."""
    chosen = [r for r in records if r.metric == metric]
    if not chosen:
        return None, []
    step = max(r.step for r in chosen)
    last: dict[tuple[str, int], MetricRecord] = {}
    for r in chosen:
        if r.step == step:
            last[(r.task, r.seed)] = r
    return step, list(last.values())


def read_run_metrics(path: Path, run: str, split: str, notes: list[str]) -> RunMetrics | None:
    """``runs/<run>/metrics.jsonl`` reduced to :class:`RunMetrics` (``None`` when absent)."""
    if not path.is_file():
        return None
    records, torn = read_metrics(path)
    if torn:
        notes.append(f"`{path}`: {torn} torn line(s) skipped (an interrupted write).")
    on_split = [r for r in records if r.split == split]
    if records and not on_split:
        others = ", ".join(sorted({r.split for r in records}))
        notes.append(
            f"`{path}` has no `{split}` records (only: {others}): "
            f"run `mirror-align evaluate {path.parent} --split {split}`."
        )
    out = RunMetrics(run=run, split=split)
    out.recognition_step, rec = _latest(on_split, RECOGNITION)
    by_task: dict[str, list[float]] = defaultdict(list)
    for r in rec:
        by_task[r.task].append(float(r.value))
    out.recognition = {t: float(np.mean(v)) for t, v in by_task.items()}
    for metric in RECOGNITION_EXTRA:  # the last line of a (task, metric) wins, as in _latest
        at_step = [r for r in on_split if r.metric == metric and r.step == out.recognition_step]
        if at_step:
            out.recognition_extra[metric] = {r.task: float(r.value) for r in at_step}
    out.success_step, suc = _latest(on_split, SUCCESS)
    for r in suc:
        out.success.setdefault(r.task, {})[int(r.seed)] = float(r.value)
    for metric in OFFLINE_REFERENCE:
        _, offline = _latest(on_split, metric)
        if offline:
            out.offline[metric] = {r.task: float(r.value) for r in offline}
    return out


def _read_probing(path: Path, notes: list[str]) -> list[MetricRecord] | None:
    if not path.is_file():  # the figure's section says so and names the command
        return None
    records, torn = read_metrics(path)
    if torn:
        notes.append(f"`{path}`: {torn} torn line(s) skipped.")
    return records


def _read_tsne(path: Path) -> TsnePoints:
    try:
        with np.load(path) as npz:
            arrays = {k: np.asarray(npz[k]) for k in ("points", "instruction_id", "model")}
    except KeyError as err:
        raise UserInputError(f"report: {path} lacks array {err}") from err
    except (OSError, ValueError) as err:
        raise UserInputError(f"report: {path} is not a readable .npz ({err})") from err
    points = arrays["points"]
    if points.ndim != 2 or points.shape[1] != 2:
        raise UserInputError(f"report: {path} points has shape {points.shape}, expected [2N, 2]")
    for key in ("instruction_id", "model"):
        if arrays[key].shape != (points.shape[0],):
            raise UserInputError(
                f"report: {path} {key} has shape {arrays[key].shape}, expected ({points.shape[0]},)"
            )
    run = path.stem.removeprefix("tsne_")
    return TsnePoints(run, points.astype(float), arrays["instruction_id"], arrays["model"])


def read_train_log(path: Path) -> list[dict[str, Any]]:
    """Records of a ``train_log.jsonl``; torn lines are skipped."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "step" in record:
            out.append(record)
    return out


def check_experiment_folder(root: Path) -> None:
    """Refuse, in one line, a folder that holds neither ``manifest.json`` nor any metrics file
    (``runs/*/metrics.jsonl``, ``probing/*.jsonl``): a report of it would only say "no records"."""
    if (root / "manifest.json").is_file():
        return
    metrics = [*root.glob("runs/*/metrics.jsonl"), *root.glob("probing/*.jsonl")]
    if not metrics:
        raise UserInputError(
            f"report: {root} is not an experiment folder (no manifest.json, no "
            f"runs/*/metrics.jsonl, no probing/*.jsonl); make one with "
            f"`mirror-align reproduce --out {root}`"
        )


def load_inputs(root: str | Path, split: str = "test") -> ReportInputs:
    """Read ``root`` (a `reproduce` folder) into :class:`ReportInputs`."""
    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"report: {root} is not a folder")
    check_experiment_folder(root)
    inputs = ReportInputs(root=root, split=split)
    notes = inputs.notes
    reproduce = f"mirror-align reproduce --out {root}"

    config_path = root / "config.json"
    if config_path.is_file():
        inputs.config = _read_json(config_path)
    else:
        notes["config"].append(f"`config.json` is missing: it is written by `{reproduce}`.")

    manifest_path = root / "manifest.json"
    if manifest_path.is_file():
        manifest = _read_json(manifest_path)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("runs"), list):
            raise UserInputError(f"report: {manifest_path} has no `runs` list")
        inputs.manifest = manifest
        inputs.runs = [_parse_run(e, manifest_path, i) for i, e in enumerate(manifest["runs"])]
    else:
        notes["manifest"].append(f"`manifest.json` is missing: it is written by `{reproduce}`.")

    unevaluated: dict[str, list[str]] = defaultdict(list)
    for info in inputs.runs:
        run_dir = root / "runs" / info.name
        metrics = read_run_metrics(run_dir / "metrics.jsonl", info.name, split, notes[info.group])
        if metrics is None:
            unevaluated[info.group].append(info.name)
        else:
            inputs.metrics[info.name] = metrics
        log_path = run_dir / "train_log.jsonl"
        if log_path.is_file():
            inputs.train_logs[info.name] = read_train_log(log_path)
    for group, names in unevaluated.items():
        where = root / "runs" / names[0] if len(names) == 1 else root / "runs" / "<run>"
        notes[group].append(
            f"`metrics.jsonl` is missing for {len(names)} run(s) ({', '.join(names)}): run "
            f"`mirror-align evaluate {where}`, or re-run `{reproduce}` (it resumes)."
        )
    if inputs.runs and not inputs.train_logs:
        notes["training"].append(
            f"no `runs/*/train_log.jsonl` found: they are written by `mirror-align train` ({reproduce})."
        )

    _read_probing_folder(inputs, root / "probing")
    return inputs


def _read_probing_folder(inputs: ReportInputs, probing: Path) -> None:
    """Fig. 3 left/right records, the t-SNE points and the notes of skipped t-SNEs."""
    notes = inputs.notes
    inputs.along_training = _read_probing(probing / "along_training.jsonl", notes["fig3_left"])
    inputs.subsets = _read_probing(probing / "subsets.jsonl", notes["fig3_right"])
    undefined = defaultdict(int)
    for record in inputs.along_training or []:
        if math.isnan(float(record.value)):
            undefined[record.metric] += 1
    for metric, count in sorted(undefined.items()):
        notes["fig3_left"].append(
            f"`{metric}` is undefined (NaN) in {count} record(s): the probe's test rows were "
            "fewer than max(4, k + 2), where the sample size alone fixes it, or the "
            "representations collapsed (docs/experiments.md); it is not drawn there."
        )
    if not probing.is_dir():
        return
    # A subset comparison the probing stage could not make (pipeline/probing/fig3_right.py).
    inputs.subsets_skipped = _skipped_notes(probing, "subsets_")
    for comparison, reason in inputs.subsets_skipped.items():
        notes["fig3_right"].append(f"Subset comparison `{comparison}` not probed: {reason}.")
    inputs.tsne = [_read_tsne(p) for p in sorted(probing.glob("tsne_*.npz"))]
    # A t-SNE skipped by the probing stage (pipeline/probing/fig6_tsne.py: collapsed points),
    # shown in place of its panel.
    for run, reason in _skipped_notes(probing, "tsne_").items():
        notes["fig6"].append(f"t-SNE of `{run}` skipped: {reason}.")


def _skipped_notes(probing: Path, prefix: str) -> dict[str, str]:
    """name -> reason of the ``<prefix><name>.skipped.json`` notes the probing stage leaves for a
    figure it could not make (``pipeline/probing/common.py``: ``SKIPPED_SUFFIX``)."""
    found = {}
    for path in sorted(probing.glob(f"{prefix}*.skipped.json")):
        note = _read_json(path)
        reason = note.get("reason", "no reason recorded") if isinstance(note, dict) else note
        found[path.name.removeprefix(prefix).removesuffix(".skipped.json")] = str(reason)
    return found
