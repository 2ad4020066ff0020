"""The driver side: sweep spec, planner, run-store index, backends and the CLI."""
