"""`mirror-align tasks`: the 18 tasks, their variation counts and instructions."""

from __future__ import annotations

import argparse
import json

from mirror_align.sim import TASK_NAMES, instruction_table, is_implemented

NAME = "tasks"
HELP = "List the MirrorBench tasks, their variation counts and instructions."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run(args: argparse.Namespace) -> int:
    rows = instruction_table()
    listing = [
        {
            "task": name,
            "variations": sum(1 for r in rows if r[1] == name),
            "instructions": [r[3] for r in rows if r[1] == name],
            "implemented": is_implemented(name),
        }
        for name in TASK_NAMES
    ]
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for item in listing:
        mark = "" if item["implemented"] else "  (not implemented yet)"
        print(f"{item['task']:<30} {item['variations']:>3}  {item['instructions'][0]!r}{mark}")
    print(f"{len(listing)} tasks, {len(rows)} variations")
    return 0
