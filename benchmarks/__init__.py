"""Benchmarks: ``python -m benchmarks.run --quick`` (``make bench``) or ``--full`` (``make bench-full``)."""
