"""CLI subcommands, one module each (see :mod:`mirror_align.cli`)."""
