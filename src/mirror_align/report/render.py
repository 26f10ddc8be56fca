"""Write ``DIR/report.md``, one self-contained ``DIR/report.html`` and ``DIR/figures/*.png``.

Every number comes from the files read by :func:`~mirror_align.report.inputs.load_inputs`; a
missing input gives a section that says what is missing and which command makes it. The HTML has
inline CSS and base64 PNGs and references no external resource. All files are written atomically.
"""

from __future__ import annotations

import base64
import html
import json
import platform
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from mirror_align.align.probe_subsets import MIN_SUBSET_ROWS
from mirror_align.atomic import write_bytes_atomic, write_text_atomic
from mirror_align.constants import RECOGNITION, SUCCESS
from mirror_align.report import keyframes as ee_diagnostics  # issue 11.7-11.9
from mirror_align.report import plots
from mirror_align.report.ablation_tables import beyond_table, colour_token_table, table3
from mirror_align.report.inputs import ReportInputs, load_inputs
from mirror_align.report.recognition_tables import text_table
from mirror_align.report.share_table import au_share_table
from mirror_align.report.tables import Missing, Table, inline_html, main_table, per_seed_tables
from mirror_align.report.verdict import comparison_table, verdict

FIGURES = {
    "fig3_left": plots.fig3_left,
    "fig3_right": plots.fig3_right,
    "fig6_tsne": plots.fig6,
    "training_curves": plots.training_curves,
    "keyframe_curve": ee_diagnostics.keyframe_curve,  # issue 11.7 (byod)
}


@dataclass(frozen=True)
class ReportPaths:
    """What :func:`render_report` wrote; iterating yields the written files (md, html, figures)."""

    markdown: Path
    html: Path
    figures: list[Path]
    verdict: str  # the report's plain-language verdict sentence(s)

    def __iter__(self) -> Iterator[Path]:
        return iter([self.markdown, self.html, *self.figures])


@dataclass
class Section:
    """A titled list of blocks: ``("text", str)``, ``("table", Table)``, ``("figure", name)``,
    ``("missing", str)`` or ``("pre", str)``."""

    anchor: str
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, item: Table | Missing | list[Table] | str, kind: str = "text") -> None:
        if isinstance(item, Missing):
            self.blocks.append(("missing", item.message))
        elif isinstance(item, Table):
            self.blocks.append(("table", item))
        elif isinstance(item, list):
            self.blocks.extend(("table", t) for t in item)
        else:
            self.blocks.append((kind, item))


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _recorded_versions(config: dict[str, Any] | None) -> dict[str, str]:
    """Top-level or ``versions`` entries of config.json whose key mentions a version."""
    if not config:
        return {}
    found = {k: str(v) for k, v in config.items() if "version" in k and not isinstance(v, dict)}
    nested = config.get("versions")
    if isinstance(nested, dict):
        found.update({k: str(v) for k, v in nested.items()})
    return found


def _with_notes(section: Section, notes: dict[str, list[str]], *keys: str) -> Section:
    for key in keys:
        for note in notes.get(key, []):
            section.add(note, "note")
    return section


def _figure(
    figures: dict[str, bytes | Missing],
    notes: dict[str, list[str]],
    anchor: str,
    title: str,
    name: str,
    caption: str,
) -> Section:
    """A figure's section (or what is missing), with the notes filed under ``anchor``'s key."""
    section = Section(anchor, title)
    fig = figures[name]
    if isinstance(fig, Missing):
        section.add(fig)
    else:
        section.blocks.append(("figure", (name, caption)))
    return _with_notes(section, notes, anchor)


def _summary_section(inputs: ReportInputs) -> Section:
    summary = Section("summary", "Summary and verdict")
    summary.add(verdict(inputs), "verdict")
    summary.add(comparison_table(inputs))
    preset = (inputs.manifest or {}).get("preset", "unknown")
    seeds = (inputs.manifest or {}).get("seeds", [])
    summary.add(
        f"Folder `{inputs.root}`, preset `{preset}`, training seeds {seeds}, split "
        f"`{inputs.split}`. Our numbers are MirrorBench (MuJoCo) results of this run; columns "
        "labelled 'paper (RLBench, GPU scale)' are the paper's own numbers, for reference."
    )
    return _with_notes(summary, inputs.notes, "manifest")


def _figure_sections(inputs: ReportInputs, figures: dict[str, bytes | Missing]) -> list[Section]:
    """Fig. 3 left, Fig. 3 right and Fig. 6."""
    notes = inputs.notes
    return [
        _figure(
            figures,
            notes,
            "fig3_left",
            "Fig. 3 left: alignment probing along training",
            "fig3_left",
            "Probe Recall@1 (AU↔EE retrieval in the probe's shared space) of the separately "
            "trained AU and EE checkpoints at each training step, with chance; right: mutual k-NN "
            "and CKA. Lines are means over probe seeds, bands ± std.",
        ),
        _figure(
            figures,
            notes,
            "fig3_right",
            "Fig. 3 right: probing on success vs failure subsets",
            "fig3_right",
            "Subset Recall@1 with equal sample sizes per subset; bars are means over repeats, "
            "error bars the sample std over repeats. 'no data': that comparison had fewer than "
            f"{MIN_SUBSET_ROWS} episodes in one of its two subsets (e.g. too few successful "
            "rollouts), so it was not probed.",
        ),
        _figure(
            figures,
            notes,
            "fig6",
            "Fig. 6: t-SNE of the shared space (MN vs baseline)",
            "fig6_tsne",
            "Colour = instruction, circle = AU, triangle = EE. MN uses its own aligner; the "
            "baseline pair is mapped by a probe fitted first, as in the paper.",
        ),
    ]


def _config_section(inputs: ReportInputs) -> Section:
    config = _with_notes(Section("config", "Config and versions"), inputs.notes, "config")
    recorded = _recorded_versions(inputs.config)
    now = {
        "mirror_align": _version("mirror-align"),
        "torch": _version("torch"),
        "mujoco": _version("mujoco"),
        "python": platform.python_version(),
    }
    rows = [
        [name, recorded.get(name, "not recorded"), now.get(name, "-")]
        for name in [*now, *(k for k in recorded if k not in now)]
    ]
    config.add(
        Table(
            "Versions: recorded with the runs (config.json) and of the environment rendering "
            "this report",
            ["what", "runs (config.json)", "this report"],
            rows,
        )
    )
    if inputs.config is not None:
        config.add("`config.json`:")
        config.add(json.dumps(inputs.config, indent=2), "pre")
    return config


def build_sections(inputs: ReportInputs, figures: dict[str, bytes | Missing]) -> list[Section]:
    """The report's sections in order, from ``inputs`` and the rendered ``figures``."""
    notes = inputs.notes
    t1 = _with_notes(Section("table1", "Table 1: action recognition (AU vs MN)"), notes, "main")
    t1.add(main_table(inputs, RECOGNITION))
    t1.add(text_table(inputs))
    t2 = Section("table2", "Table 2: embodied execution (EE vs MN)")
    t2.add(main_table(inputs, SUCCESS))
    t3 = _with_notes(Section("table3", "Table 3: ablation (pairing × τ)"), notes, "ablation")
    t3.add(table3(inputs))
    beyond = _with_notes(Section("beyond", "Beyond the paper"), notes, "beyond")
    beyond.add(beyond_table(inputs))
    beyond.add(colour_token_table(inputs))
    beyond.add(au_share_table(inputs))
    beyond.add("Mutual k-NN and CKA along training are in the right panel of Fig. 3 left.")
    curves = _figure(
        figures,
        notes,
        "training",
        "Training curves",
        "training_curves",
        "Loss terms and the InfoNCE mutual-information lower bound of the main runs "
        "(colour = method, line style = seed).",
    )
    per_seed = Section("per_seed", "Per-seed numbers")
    per_seed.add(per_seed_tables(inputs))
    return [
        _summary_section(inputs),
        t1,
        t2,
        *ee_diagnostics.sections(inputs, figures, Section),  # issue 11.7-11.9
        t3,
        *_figure_sections(inputs, figures),
        beyond,
        curves,
        per_seed,
        _config_section(inputs),
    ]


def to_markdown(sections: list[Section]) -> str:
    """The report as Markdown; figures are referenced as ``figures/<name>.png``."""
    out = ["# mirror-align report", ""]
    out += [f"- [{s.title}](#{s.anchor})" for s in sections] + [""]
    for s in sections:
        out += [f'<a id="{s.anchor}"></a>', f"## {s.title}", ""]
        for kind, item in s.blocks:
            if kind == "table":
                out.append(item.to_markdown())
            elif kind == "figure":
                name, caption = item
                out += [f"![{s.title}](figures/{name}.png)", "", f"*{caption}*", ""]
            elif kind == "missing":
                out += [f"> **Missing:** {item}", ""]
            elif kind == "note":
                out += [f"> Note: {item}", ""]
            elif kind == "pre":
                out += ["```json", item, "```", ""]
            elif kind == "verdict":
                out += [f"**Verdict:** {item}", ""]
            else:
                out += [item, ""]
    return "\n".join(out).rstrip() + "\n"


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
caption{font-weight:600;text-align:left;padding:4px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f2f2f2}tbody tr:nth-child(even){background:#fafafa}
.missing{background:#fff4e5;border-left:4px solid #f0a030;padding:.6em 1em}
.note{background:#eef4ff;border-left:4px solid #6a8fd8;padding:.4em 1em;font-size:13px}
.verdict{font-size:15px;background:#f3f8f1;border-left:4px solid #4a9a4a;padding:.6em 1em}
img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}figcaption{font-size:13px;color:#555}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px;max-height:30em}
ul.notes{font-size:12px;color:#555}nav a{margin-right:1em}
"""


def to_html(sections: list[Section], figures: dict[str, bytes | Missing]) -> str:
    """One self-contained HTML page: inline CSS, figures as ``data:image/png;base64`` URIs."""
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        body.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>')
        for kind, item in s.blocks:
            if kind == "table":
                body.append(item.to_html())
            elif kind == "figure":
                name, caption = item
                data = base64.b64encode(figures[name]).decode("ascii")
                body.append(
                    f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{inline_html(caption)}</figcaption></figure>"
                )
            elif kind == "missing":
                body.append(f'<p class="missing"><b>Missing:</b> {inline_html(item)}</p>')
            elif kind == "note":
                body.append(f'<p class="note">Note: {inline_html(item)}</p>')
            elif kind == "pre":
                body.append(f"<pre>{html.escape(item)}</pre>")
            elif kind == "verdict":
                body.append(f'<p class="verdict"><b>Verdict:</b> {inline_html(item)}</p>')
            else:
                body.append(f"<p>{inline_html(item)}</p>")
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>mirror-align report</title>"
        f"<style>{CSS}</style></head><body><h1>mirror-align report</h1><nav>{nav}</nav>"
        + "".join(body)
        + "</body></html>\n"
    )


def render_report(root: str | Path, split: str = "test") -> ReportPaths:
    """Read ``root`` (a `reproduce` folder) and write its report; returns the written paths."""
    root = Path(root)
    inputs = load_inputs(root, split=split)
    figures = {name: make(inputs) for name, make in FIGURES.items()}
    sections = build_sections(inputs, figures)
    written = []
    for name, fig in figures.items():
        path = root / "figures" / f"{name}.png"
        if isinstance(fig, Missing):
            path.unlink(missing_ok=True)  # a stale figure from an earlier render would mislead
        else:
            write_bytes_atomic(path, fig)
            written.append(path)
    md_path, html_path = root / "report.md", root / "report.html"
    write_text_atomic(md_path, to_markdown(sections))
    write_text_atomic(html_path, to_html(sections, figures))
    return ReportPaths(md_path, html_path, written, verdict(inputs))
