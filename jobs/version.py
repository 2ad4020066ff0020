"""The installed snnbatch's version, for the modules below the package root (none of them imports the root)."""
from __future__ import annotations

import functools
import importlib.metadata


@functools.cache
def snnbatch_version() -> str:
    """The version of the installed distribution (as ``snnbatch --version`` shows it)."""
    try:
        return importlib.metadata.version("snnbatch")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"
