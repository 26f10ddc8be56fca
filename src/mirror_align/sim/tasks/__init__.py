"""sim/tasks."""
