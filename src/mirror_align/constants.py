"""Side-effect-free facts that every layer reads: one home each.

Importing this module imports numpy only; it sets no environment variable and registers nothing,
so any layer (align, data, sim, models, train, eval, pipeline, report) may import it at the top.
Units: metres, radians, seconds, unless a name says otherwise.
"""

from __future__ import annotations

# ---- methods and data splits -------------------------------------------------------------------
# What `train --method` trains: the AU model alone, the EE policy alone, or both aligned (MN).
METHODS: tuple[str, ...] = ("au", "ee", "mn")
# Dataset splits; disjoint seeds (the paper: 100/25/25 demos per task).
SPLITS: tuple[str, ...] = ("train", "val", "test")

# ---- pairing (paper Sec. 3.2; Table 3) -----------------------------------------------------------
# Pairing mode -> the sample key that defines a positive pair.
PAIRING_FIELDS: dict[str, str] = {
    "episode": "episode_id",
    "instruction": "instruction_id",
    "class": "task_id",
}
PAIRING_MODES: tuple[str, ...] = tuple(PAIRING_FIELDS)
# The paper's default: observing and executing the same instruction is a positive.
DEFAULT_PAIRING = "instruction"

# ---- the ablation grid (Table 3) ---------------------------------------------------------------
ABLATION_PAIRINGS: tuple[str, ...] = PAIRING_MODES
ABLATION_TAUS: tuple[float, ...] = (0.02, 0.1, 0.2)
# The paper's share of steps with the AU task loss (supplement C.3); reproduce compares a preset
# with another share against it (the `share` runs).
PAPER_AU_SHARE = 0.2

# ---- cameras and the workspace (docs/interfaces.md) --------------------------------------------
# Camera order of every observation, dataset and batch.
CAMERAS: tuple[str, ...] = ("front", "left_shoulder", "right_shoulder", "wrist")
# MirrorBench's workspace, (x_min, y_min, z_min, x_max, y_max, z_max) in metres. A dataset states
# its own bounds in dataset.json; this is the value MirrorBench writes there.
WORKSPACE_BOUNDS: tuple[float, float, float, float, float, float] = (
    -0.45,
    -0.45,
    0.0,
    0.45,
    0.45,
    0.6,
)

# ---- metric names in metrics.jsonl ---------------------------------------------------------------
RECOGNITION = "recognition_accuracy"  # top-1 over all instructions, by exact id (Table 1)
# Top-1 over all instructions scored by text: a prediction reading the same as the truth is right.
RECOGNITION_TEXT = "recognition_accuracy_text"
# Best exact-id accuracy reachable on the evaluated clips when identical texts score equally.
RECOGNITION_CEILING = "recognition_ceiling"
# Standard error of the exact-id mean over tasks (task "all" only).
RECOGNITION_SE = "recognition_accuracy_se"
# Clips the recognition accuracy of a task was measured on ("all": their sum); the report derives
# each task's binomial standard error from it.
RECOGNITION_CLIPS = "recognition_clips"
SUCCESS = "success_rate"  # rollout success (Table 2)
