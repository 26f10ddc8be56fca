"""The experiment plan: which training runs ``reproduce`` and ``ablate`` make, and
``DIR/manifest.json``, which lists them for the report (layout: docs/experiments.md)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from mirror_align.atomic import write_json_atomic
from mirror_align.config.experiment import ExperimentConfig, loop_steps
from mirror_align.constants import ABLATION_PAIRINGS, ABLATION_TAUS, METHODS, PAPER_AU_SHARE
from mirror_align.errors import UserInputError

PROBE_CHECKPOINTS = 5  # checkpoints along training of the seed-0 baselines (Fig. 3 left)
# The parts of the ablation a user can pick (`--ablation`), each the manifest group it makes:
# Table 3's pairing x tau grid, the beyond-the-paper runs, and MN/AU at the paper's AU share.
ABLATION_PARTS: dict[str, str] = {"table3": "ablation", "beyond": "beyond", "share": "share"}


def parse_ablation_parts(value: str) -> frozenset[str]:
    """The parts named in a comma list such as ``"beyond,share"`` (``"all"``: every part), the
    value of ``--ablation``.

    Raises :class:`UserInputError` naming the option and the valid parts for an unknown or empty
    list."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == ["all"]:
        return frozenset(ABLATION_PARTS)
    unknown = [name for name in names if name not in ABLATION_PARTS]
    if unknown or not names:
        raise UserInputError(
            f"--ablation: unknown part {', '.join(unknown) or repr(value)}; give a comma list of "
            f"{', '.join(ABLATION_PARTS)}, or all"
        )
    return frozenset(names)


@dataclass(frozen=True)
class RunSpec:
    """One training run of the experiment: what the manifest records about it."""

    name: str
    method: str
    seed: int
    group: str  # main | ablation | beyond | share
    pairing: str
    tau: float
    projector: str
    multi_positive: bool
    # au.colour_tokens of the run (a CPU-scale stand-in, docs/models.md); None: the base config's
    # (manifests written before the field existed).
    colour_tokens: bool | None = None
    # au.colour_moments of the run; None: the base config's.
    colour_moments: bool | None = None
    # train.au_share of the run; None: the base config's.
    au_share: float | None = None

    def configure(self, base: ExperimentConfig) -> ExperimentConfig:
        """The base config with this run's seed, aligner settings and AU colour tokens."""
        align = replace(
            base.align,
            pairing=self.pairing,
            tau=self.tau,
            projector=self.projector,
            multi_positive=self.multi_positive,
        )
        train = base.train
        if self.group == "main" and self.seed == base.seed and self.method in ("au", "ee"):
            # Keep checkpoints along training for probing the baselines (Fig. 3 left).
            every = max(1, len(loop_steps(base, self.method)) // PROBE_CHECKPOINTS)
            train = replace(train, checkpoint_every=every, keep_checkpoints=0)
        au = base.au
        if self.colour_tokens is not None:
            au = replace(au, colour_tokens=self.colour_tokens)
        if self.colour_moments is not None:
            au = replace(au, colour_moments=self.colour_moments)
        if self.au_share is not None:
            train = replace(train, au_share=self.au_share)
        return replace(base, seed=self.seed, align=align, train=train, au=au)


def plan_runs(
    config: ExperimentConfig,
    seeds: list[int],
    *,
    ablation: bool,
    main: bool = True,
    parts: Collection[str] = tuple(ABLATION_PARTS),
) -> list[RunSpec]:
    """The main comparison (AU, EE, MN) for every seed, then (unless skipped; only the
    :data:`ABLATION_PARTS` named in ``parts``) the Table 3 grid
    (:data:`~mirror_align.constants.ABLATION_PAIRINGS` x ``ABLATION_TAUS``, less the cell of the
    config's own pairing and τ, which is the main MN run ``mn_s<first>``) and the beyond-the-paper
    runs, both at the first seed: multi-positive loss and MLP projector (MN), and the AU with
    ``au.colour_tokens`` flipped, which ablates that deviation from ViCLIP against the main AU
    run (``au_no_colour_s<seed>`` where the preset has the tokens on, else ``au_colour_s<seed>``);
    where the tokens carry their colour moments, also the AU without them (``au_no_moments``).
    When the preset's ``train.au_share`` is not the paper's :data:`PAPER_AU_SHARE`, MN and the AU
    baseline are also trained at the paper's share (group ``share``), so that the AU baseline gets
    the same AU-loss steps as MN at either share."""
    a, colour = config.align, config.au.colour_tokens
    runs = []
    if main:
        runs = [
            RunSpec(
                f"{m}_s{s}", m, s, "main", a.pairing, a.tau, a.projector, a.multi_positive, colour
            )
            for s in seeds
            for m in METHODS
        ]
    if ablation:
        groups = {ABLATION_PARTS[part] for part in parts}
        runs += [spec for spec in _ablation_runs(config, seeds[0]) if spec.group in groups]
    return runs


def _ablation_runs(config: ExperimentConfig, first: int) -> list[RunSpec]:
    """Every ablation run of :func:`plan_runs` (all parts), at training seed ``first``."""
    a, colour = config.align, config.au.colour_tokens
    runs = []
    for pairing in ABLATION_PAIRINGS:
        for tau in ABLATION_TAUS:
            if pairing == a.pairing and abs(tau - a.tau) < 1e-9 and not a.multi_positive:
                # The main MN run of the first seed is this cell (same config and seed):
                # Table 3 reads it there instead of training it a second time.
                continue
            name = f"ablation_{pairing}_t{tau:g}"
            runs.append(
                RunSpec(name, "mn", first, "ablation", pairing, tau, a.projector, False, colour)
            )
    # (name, method, projector, multi_positive, colour_tokens)
    beyond = (
        ("mn_multi", "mn", a.projector, True, colour),
        ("mn_mlp", "mn", "mlp", False, colour),
        ("au_no_colour" if colour else "au_colour", "au", a.projector, False, not colour),
    )
    for name, method, *rest in beyond:
        runs.append(RunSpec(f"{name}_s{first}", method, first, "beyond", a.pairing, a.tau, *rest))
    if colour and config.au.colour_moments:
        runs.append(
            RunSpec(f"au_no_moments_s{first}", "au", first, "beyond", a.pairing, a.tau,
                    a.projector, False, colour_tokens=True, colour_moments=False)
        )  # fmt: skip
    if abs(config.train.au_share - PAPER_AU_SHARE) > 1e-9:
        for method in ("au", "mn"):
            runs.append(
                RunSpec(f"{method}_share{PAPER_AU_SHARE:g}_s{first}", method, first, "share",
                        a.pairing, a.tau, a.projector, False, colour,
                        au_share=PAPER_AU_SHARE)
            )  # fmt: skip
    return runs


def write_manifest(out: Path, preset: str, seeds: list[int], runs: list[RunSpec]) -> None:
    """``DIR/manifest.json`` (docs/experiments.md), atomically."""
    write_json_atomic(
        out / "manifest.json",
        {"preset": preset, "seeds": seeds, "runs": [asdict(r) for r in runs]},
    )


def load_manifest(out: str | Path) -> dict[str, Any]:
    """``DIR/manifest.json`` as a dict."""
    path = Path(out) / "manifest.json"
    if not path.is_file():
        raise UserInputError(f"{path} not found; run `mirror-align reproduce --out {out}` first")
    return json.loads(path.read_text())


def manifest_runs(out: Path) -> list[RunSpec]:
    """Runs already listed in ``out/manifest.json`` (none if it does not exist yet)."""
    path = out / "manifest.json"
    if not path.is_file():
        return []
    return [RunSpec(**r) for r in json.loads(path.read_text())["runs"]]


def extend_manifest(out: Path, preset: str, seeds: list[int], runs: list[RunSpec]) -> list[RunSpec]:
    """Add ``runs`` and ``seeds`` to ``out/manifest.json`` (``mirror-align ablate``) and return
    every run it then lists. A run of the same name is replaced; the earlier runs and training
    seeds stay, so that the report still names the main comparison's seeds."""
    path = out / "manifest.json"
    old_seeds = json.loads(path.read_text())["seeds"] if path.is_file() else []
    known = {r.name for r in runs}
    runs = [r for r in manifest_runs(out) if r.name not in known] + runs
    write_manifest(out, preset, sorted(set(old_seeds) | set(seeds)), runs)
    return runs
