"""Shared test set-up: headless rendering must be configured before anything imports mujoco."""

from mirror_align.headless import configure_headless_rendering

configure_headless_rendering()
