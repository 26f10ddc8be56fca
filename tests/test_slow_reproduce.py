"""Slow lane: ``reproduce --preset tiny`` as shipped, ablation included, into a fresh folder.

The default lane runs the same pipeline with 6 training steps and one evaluation episode and checks
that the report's sections exist. This runs the preset unshortened (only ``train.threads=1`` is
set, for the shared machine) and reads the report's tables: every Table 3 cell (pairing x tau from
``constants``), both MN beyond-the-paper variants and the AU with and without its colour tokens
must carry a measured number, not "not run" or "missing". 6.5 min on 2 shared cores; run with
``make test-slow``.
"""

from __future__ import annotations

import json
import re

import pytest

from mirror_align.cli import main
from mirror_align.constants import ABLATION_PAIRINGS, ABLATION_TAUS

NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def table_rows(markdown: str, title: str) -> list[list[str]]:
    """The body rows of the first markdown table after the line starting with ``title``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip("# ").startswith(title))
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # drop the header and the |---| rule


def _measured(cell: str) -> bool:
    return bool(NUMBER.match(cell)) and 0.0 <= float(cell) <= 100.0


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 6.5 min on the shared 2-core machine; the default limit is 600 s
def test_reproduce_tiny_with_ablation(tmp_path) -> None:
    out = tmp_path / "experiment"
    argv = ["reproduce", "--preset", "tiny", "--out", str(out), "--workers", "1"]
    assert main([*argv, "--set", "train.threads=1"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    groups = [run["group"] for run in manifest["runs"]]
    # the config's own cell (instruction, its τ) is the main MN run, not trained twice
    assert groups.count("ablation") == len(ABLATION_PAIRINGS) * len(ABLATION_TAUS) - 1
    assert groups.count("beyond") == 3  # multi-positive, MLP projector (MN); colour tokens (AU)
    markdown = (out / "report.md").read_text()

    table3 = {(row[0], row[1]): row for row in table_rows(markdown, "Table 3: ablation")}
    for pairing in ABLATION_PAIRINGS:
        for tau in ABLATION_TAUS:
            row = table3[(pairing, f"{tau:g}")]
            assert _measured(row[2]) and _measured(row[6]), row  # AU accuracy, EE success
    assert _measured(table3[("baseline (AU alone)", "-")][2])  # AU accuracy of au_s0
    assert _measured(table3[("baseline (EE alone)", "-")][6])  # EE success of ee_s0

    beyond = {row[0]: row for row in table_rows(markdown, "Beyond the paper")}
    mn_beyond = {
        r["name"] for r in manifest["runs"] if r["group"] == "beyond" and r["method"] == "mn"
    }
    assert set(beyond) == mn_beyond
    for name, row in beyond.items():
        assert row[1] != "-", name  # the difference from its reference MN run is named
        assert all(_measured(row[i]) for i in (2, 3, 5, 6)), row

    # tiny has au.colour_tokens off: au_colour_s0 is the run with them, au_s0 the one without
    colour = {row[1]: row for row in table_rows(markdown, "*Beyond the paper: the AU's")}
    assert set(colour) == {"exact id", "by text"}
    for row in colour.values():
        assert row[0] == "colour tokens", row
        with_tokens, without, diff = (cell.split(" ± ")[0] for cell in row[2:5])
        assert _measured(with_tokens) and _measured(without), row
        assert abs(float(diff) - (float(with_tokens) - float(without))) <= 0.11, row
        assert row[6] == "au_colour_s0 / au_s0", row
