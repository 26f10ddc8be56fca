"""The report's figures as PNG bytes (matplotlib, Agg, no pyplot global state).

Each function returns the PNG bytes or a :class:`~mirror_align.report.tables.Missing` saying what
input is absent and which command makes it.
"""

from __future__ import annotations

import io
from collections import defaultdict

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mirror_align.eval.metrics_log import MetricRecord
from mirror_align.report.inputs import ReportInputs
from mirror_align.report.tables import Missing

DPI = 110
METHOD_COLOURS = {"au": "tab:blue", "ee": "tab:orange", "mn": "tab:green"}
SEED_STYLES = ("-", "--", ":", "-.")
SUBSETS = (("au_correct", "au_incorrect"), ("ee_success", "ee_failure"))


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _by_step(records: list[MetricRecord], run: str, metric: str) -> tuple[np.ndarray, ...]:
    """Steps, mean and std over seeds of ``metric`` for ``run`` (std 0 for one seed)."""
    values: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r.run == run and r.metric == metric:
            values[int(r.step)].append(float(r.value))
    steps = np.array(sorted(values), dtype=float)
    mean = np.array([np.mean(values[int(s)]) for s in steps])
    std = np.array([np.std(values[int(s)]) for s in steps])
    return steps, mean, std


def _band(ax, steps, mean, std, label, colour, style="-") -> None:
    ax.plot(steps, mean, style, color=colour, marker="o", markersize=3, label=label)
    if np.any(std > 0):
        ax.fill_between(steps, mean - std, mean + std, color=colour, alpha=0.15)


def fig3_left(inputs: ReportInputs) -> bytes | Missing:
    """Probe Recall@1 along training (with chance) and mutual k-NN / CKA along training."""
    records = inputs.along_training
    if not records:
        return Missing(
            "No along-training probing records (`probing/along_training.jsonl`): made by "
            f"`mirror-align reproduce --out {inputs.root}` (probing stage)."
        )
    runs = sorted({r.run for r in records})
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    colours = iter(["tab:purple", "tab:red", "tab:brown", "tab:cyan", "tab:olive"] * 4)
    for run in runs:
        colour = next(colours)
        for metric, style, name in (
            ("probe_recall_at_1", "-", "Recall@1"),
            ("probe_recall_at_1_u2e", "--", "AU→EE"),
            ("probe_recall_at_1_e2u", ":", "EE→AU"),
        ):
            steps, mean, std = _by_step(records, run, metric)
            if len(steps):
                _band(left, steps, mean, std, f"{run} {name}", colour, style)
        steps, mean, _ = _by_step(records, run, "probe_chance")
        if len(steps):
            left.plot(steps, mean, color="grey", linestyle=(0, (2, 2)), label=f"{run} chance")
        for metric, style in (("mutual_knn", "-"), ("cka_linear", "--"), ("cka_unbiased", ":")):
            steps, mean, std = _by_step(records, run, metric)
            if len(steps):
                _band(right, steps, mean, std, f"{run} {metric}", colour, style)
    left.set(
        xlabel="training step", ylabel="probe Recall@1", title="Fig. 3 left: probing along training"
    )
    right.set(xlabel="training step", ylabel="score", title="mutual k-NN and CKA along training")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    return _png(fig)


def fig3_right(inputs: ReportInputs) -> bytes | Missing:
    """Subset Recall@1 bars (mean ± std over repeats): AU correct/incorrect, EE success/failure."""
    records = [r for r in inputs.subsets or [] if r.metric == "subset_recall_at_1"]
    if not records:
        if inputs.subsets_skipped:
            return Missing("No subset probing records: no comparison could be probed (notes).")
        return Missing(
            "No subset probing records (`probing/subsets.jsonl`): made by "
            f"`mirror-align reproduce --out {inputs.root}` (probing stage)."
        )
    runs = sorted({r.run for r in records})
    fig = Figure(figsize=(4 + 2.5 * len(runs), 4))
    ax = fig.subplots()
    width = 0.8 / len(runs)
    labels = [s for pair in SUBSETS for s in pair]
    x = np.arange(len(labels), dtype=float)
    tops: list[float] = []
    for k, run in enumerate(runs):
        means, stds, counts = [], [], []
        for subset in labels:
            vals = [float(r.value) for r in records if r.run == run and r.split == subset]
            means.append(np.mean(vals) if vals else np.nan)
            stds.append(np.std(vals, ddof=1) if len(vals) > 1 else 0.0)
            counts.append(len(vals))
        tops += [m + sd for m, sd in zip(means, stds, strict=True)]
        colours = ["tab:blue", "tab:gray", "tab:orange", "tab:gray"]
        bars = ax.bar(x + k * width, means, width, yerr=stds, capsize=4, color=colours, label=run)
        for bar, n, m, sd in zip(bars, counts, means, stds, strict=True):
            text = "no data" if n == 0 else f"{m:.2f}\n(n={n})"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, 0 if n == 0 else m + sd),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 3),
                textcoords="offset points",
            )
    # Headroom for the value labels above the error bars.
    ax.set_ylim(0.0, 1.25 * max([t for t in tops if np.isfinite(t)], default=0.0) or 1.0)
    ax.set_xticks(x + width * (len(runs) - 1) / 2, labels, rotation=15)
    ax.set(ylabel="probe Recall@1", title="Fig. 3 right: probing on subsets (equal sizes)")
    ax.grid(axis="y", alpha=0.3)
    if len(runs) > 1:
        ax.legend(fontsize=7)
    return _png(fig)


def _is_mn(inputs: ReportInputs, run: str) -> bool:
    info = inputs.run(run)
    return info is not None and info.method == "mn"


def fig6(inputs: ReportInputs) -> bytes | Missing:
    """t-SNE of the shared space: colour by instruction, circle = AU, triangle = EE; MN first."""
    if not inputs.tsne:
        return Missing(
            "No t-SNE points (`probing/tsne_<run>.npz`): made by "
            f"`mirror-align reproduce --out {inputs.root}` (probing stage)."
        )
    panels = sorted(inputs.tsne, key=lambda t: (not _is_mn(inputs, t.run), t.run))
    fig = Figure(figsize=(5.2 * len(panels), 5))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    all_ids = sorted({int(i) for t in panels for i in t.instruction_id})
    palette = [tuple(c) for name in ("tab20", "tab20b") for c in colormaps[name].colors]
    colour_of = {iid: palette[k % len(palette)] for k, iid in enumerate(all_ids)}
    for ax, t in zip(axes, panels, strict=True):
        colours = [colour_of[int(i)] for i in t.instruction_id]
        for model, marker, name in ((0, "o", "AU"), (1, "^", "EE")):
            mask = t.model == model
            if mask.any():
                ax.scatter(
                    t.points[mask, 0],
                    t.points[mask, 1],
                    c=[c for c, m in zip(colours, mask, strict=True) if m],
                    marker=marker,
                    s=22,
                    alpha=0.8,
                    edgecolors="none",
                    label=name,
                )
        kind = "MN (own aligner)" if _is_mn(inputs, t.run) else "baseline (probe fitted)"
        ax.set_title(f"{kind}: {t.run}")
        ax.set_xticks([])
        ax.set_yticks([])
        legend = ax.legend(fontsize=8, loc="best")
        for handle in legend.legend_handles:
            handle.set_color("black")
    repeat = f"; colours repeat after {len(palette)}" if len(all_ids) > len(palette) else ""
    fig.suptitle(
        f"Fig. 6: t-SNE of the shared space ({len(all_ids)} instructions, colour = instruction"
        f"{repeat})"
    )
    return _png(fig)


TRAIN_TERMS = (
    ("loss", "total loss"),
    ("loss_au", "AU loss"),
    ("loss_ee", "EE loss"),
    ("loss_align", "alignment loss"),
    ("mi_lower_bound", "MI lower bound (nats)"),
)


def _smooth(values: np.ndarray) -> tuple[np.ndarray, int]:
    window = max(1, len(values) // 50)
    if window == 1:
        return values, 1
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid"), window


def training_curves(inputs: ReportInputs) -> bytes | Missing:
    """Loss terms and the MI lower bound of the ``main`` runs from ``runs/*/train_log.jsonl``."""
    runs = [r for r in inputs.group("main") if inputs.train_logs.get(r.name)]
    if not runs:
        return Missing(
            "No training logs of the main runs (`runs/<run>/train_log.jsonl`): made by "
            f"`mirror-align train` (via `mirror-align reproduce --out {inputs.root}`)."
        )
    present = [
        (k, t)
        for k, t in TRAIN_TERMS
        if any(k in rec for r in runs for rec in inputs.train_logs[r.name])
    ]
    fig = Figure(figsize=(4.2 * len(present), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(present)))
    windows = set()
    for ax, (key, title) in zip(axes, present, strict=True):
        for r in runs:
            points = [
                (rec["step"], rec[key])
                for rec in inputs.train_logs[r.name]
                if isinstance(rec.get(key), (int, float))
            ]
            if not points:
                continue
            steps = np.array([p[0] for p in points], dtype=float)
            values, window = _smooth(np.array([p[1] for p in points], dtype=float))
            windows.add(window)
            ax.plot(
                steps[window - 1 :],
                values,
                SEED_STYLES[r.seed % len(SEED_STYLES)],
                color=METHOD_COLOURS.get(r.method, "black"),
                label=r.name,
                linewidth=1.2,
            )
        ax.set(title=title, xlabel="step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    smoothing = ", ".join(str(w) for w in sorted(windows))
    fig.suptitle(
        f"Training curves of the main runs (moving average over {smoothing} logged step(s))"
    )
    return _png(fig)
