"""Orchestration of whole experiments: reproduce and ablate stages, the manifest, probing experiments."""
