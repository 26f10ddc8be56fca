"""The `mirror-align` command: one entry point, one module per subcommand in `commands/`.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
Usable as ``python -m mirror_align.cli`` (e.g. under torchrun).

Process set-up is explicit and happens here, in this order: the OpenMP wait policy and thread
count before any command module imports torch (:mod:`mirror_align.threads`), then the headless GL
backend is chosen and checked before anything imports mujoco (:mod:`mirror_align.headless`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mirror_align import __version__
from mirror_align.errors import UserInputError
from mirror_align.headless import configure_headless_rendering
from mirror_align.threads import configure_cpu_threads

# Module names under mirror_align.commands, in the order `--help` lists them.
COMMAND_MODULES: list[str] = [
    "demo",
    "probe",
    "dataset",
    "import_rlbench",
    "generate",
    "tasks",
    "validate",
    "show",
    "train",
    "evaluate",
    "reproduce",
    "ablate",
    "report",
    "probe_runs",
    "config",
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per command module."""
    parser = argparse.ArgumentParser(
        prog="mirror-align",
        description="Embodied representation alignment with mirror neurons.",
    )
    parser.add_argument("--version", action="version", version=f"mirror-align {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"mirror_align.commands.{module_name}")
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; bad input (including a ``MUJOCO_GL`` that is not
    a backend, or no usable OpenGL) exits 2 with one error line."""
    configure_cpu_threads()  # before build_parser: command modules import torch
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_headless_rendering()
        return int(args._run(args) or 0)
    except UserInputError as err:
        message = str(err)
        # A library error names its stage ("report: ..."); the command line already says it.
        message = message.removeprefix(f"{args.command}: ")
        print(f"mirror-align {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mirror-align {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`mirror-align tasks --json | head`): stop quietly, and
        # point stdout at devnull so that flushing it at exit raises nothing either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
