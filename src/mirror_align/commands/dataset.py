"""`mirror-align dataset info|verify DIR`: summarise or check a dataset folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "dataset"
HELP = (
    "Inspect a dataset folder: `info` (counts, size on disk), `verify` (schema, checksums), "
    "`export-robomimic` (one robomimic-style HDF5 file)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    info = sub.add_parser("info", help="episodes per split, task and variation; size on disk")
    info.add_argument("dir", help="dataset folder")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    verify = sub.add_parser("verify", help="check schema and per-episode checksums")
    verify.add_argument("dir", help="dataset folder")
    export = sub.add_parser(
        "export-robomimic", help="write the keyframe transitions as one robomimic-style HDF5 file"
    )
    export.add_argument("dir", help="dataset folder")
    export.add_argument("--out", required=True, help="output .hdf5 file")
    export.add_argument(
        "--include-failed", action="store_true", help="also export failed expert demos"
    )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GB"


def _print_info(summary: dict) -> None:
    print(
        f"{summary['root']}: {summary['episodes']} episodes ({summary['failed']} failed demos), "
        f"{_size(summary['bytes_on_disk'])} on disk, {_size(summary['bytes_per_episode'])}/episode"
    )
    print(
        f"  schema v{summary['schema_version']}, source {summary['source']}, made by "
        f"{summary['created_by'].get('package')} {summary['created_by'].get('version')}; "
        f"{summary['image_size']} px, {summary['video_frames']} video frames, "
        f"{len(summary['cameras'])} cameras, depth {summary['depth_dtype']}, "
        f"{summary['num_tasks']} tasks, {summary['num_instructions']} instructions"
    )
    for split, node in summary["splits"].items():
        print(
            f"  {split}: {node['episodes']} episodes, {node['failed']} failed, "
            f"{node['keyframes']} keyframe transitions"
        )
        for task, counts in node["tasks"].items():
            variations = " ".join(f"v{v}:{n}" for v, n in counts["variations"].items())
            print(f"    {task}: {counts['episodes']} ({counts['failed']} failed)  {variations}")


def run(args: argparse.Namespace) -> int:
    from mirror_align.data.reader import DatasetReader
    from mirror_align.data.verify import verify_dataset

    if args.dataset_command == "export-robomimic":
        from mirror_align.data.export import export_robomimic

        counts = export_robomimic(args.dir, args.out, include_failed=args.include_failed)
        print(
            f"export-robomimic: {counts['demos']} demos, {counts['samples']} samples -> {args.out}"
        )
        return 0
    if args.dataset_command == "info":
        from mirror_align.data.tool_frame import singularity_warning

        summary = DatasetReader(args.dir).summary()
        warning = singularity_warning(args.dir)  # Euler singularity of the rotation tokens
        if args.json:
            print(json.dumps({**summary, "warnings": [warning] if warning else []}, indent=2))
        else:
            _print_info(summary)
            if warning:
                print(warning)
        return 0
    from tqdm import tqdm

    from mirror_align.data.schema import META_FILE
    from mirror_align.data.writer import load_meta

    if not (Path(args.dir) / META_FILE).is_file():
        load_meta(args.dir)  # not a dataset folder at all: bad input, one line, exit 2
    with tqdm(desc="verify", unit="episode", file=sys.stderr, leave=False) as bar:
        problems, checked = verify_dataset(args.dir, progress=bar.update)
    for line in problems:
        print(line)
    if problems:
        print(f"{args.dir}: {len(problems)} problem(s) in {checked} episodes", file=sys.stderr)
        return 1
    print(f"{args.dir}: ok, {checked} episodes match the schema and their checksums")
    return 0
