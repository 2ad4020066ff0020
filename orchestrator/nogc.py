"""Python's cyclic garbage collector paused while many acyclic records are built."""
from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def without_gc():
    """Python's cyclic garbage collector paused: building a record per task of 100,000 (none of them
    cyclic) otherwise runs it over and over, a third of the time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
