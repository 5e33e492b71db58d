"""Benchmarks: run each as `uv run python -m bench.<name>`; results go to bench/results/."""
