"""The decorator of every compiled function in kernels/, and where Numba caches them on disk.

:func:`njit` is ``numba.njit(cache=True, ...)``. Importing this module first
puts :class:`KeyedLocator` at the head of Numba's cache locators: a function
defined in a kernels/ file is cached where Numba would cache it (below
``NUMBA_CACHE_DIR`` when set, else in ``__pycache__`` beside the sources,
else in the user's cache directory), one directory further down, named by
:data:`SOURCES_KEY`, a hash of every ``*.py`` file of kernels/. Why: the
package docstring.
"""
from __future__ import annotations

import hashlib
import os

import numba
from numba.core import caching

KERNELS_DIR = os.path.dirname(os.path.realpath(__file__))


def sources_key(directory: str = KERNELS_DIR) -> str:
    """``snnbatch-`` and 16 hex digits of a sha256 of the names and contents of the ``*.py`` files in ``directory``."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(directory)):
        if name.endswith(".py"):
            with open(os.path.join(directory, name), "rb") as f:
                source = f.read()
            h.update(f"{name}\0{len(source)}\0".encode())
            h.update(source)
    return "snnbatch-" + h.hexdigest()[:16]


SOURCES_KEY = sources_key()

# Numba 0.60 calls the class with the list of locators _CacheImpl, later versions CacheImpl
_CACHE_IMPL = getattr(caching, "CacheImpl", None) or caching._CacheImpl


class KeyedLocator(caching._CacheLocator):
    """Numba's own cache directory for a function of kernels/, with :data:`SOURCES_KEY` appended.

    Functions defined anywhere else are left to Numba's locators.
    """

    def __init__(self, inner):
        self._inner = inner
        self._path = os.path.join(inner.get_cache_path(), SOURCES_KEY)

    def get_cache_path(self):
        return self._path

    def get_source_stamp(self):
        return self._inner.get_source_stamp()

    def get_disambiguator(self):
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func, py_file):
        if os.path.dirname(os.path.realpath(py_file)) != KERNELS_DIR:
            return None
        for other in _CACHE_IMPL._locator_classes:
            if other is cls:
                continue
            inner = other.from_function(py_func, py_file)
            if inner is None:
                continue
            self = cls(inner)
            try:
                self.ensure_cache_path()
            except OSError:  # not writable: the next of Numba's locators
                continue
            return self
        return None


def _install() -> None:
    locators = _CACHE_IMPL._locator_classes
    locators[:] = [c for c in locators if getattr(c, "__module__", None) != __name__]  # a reload replaces it
    locators.insert(0, KeyedLocator)


_install()


def njit(**options):
    """``numba.njit(cache=True, **options)``; this module's import has installed :class:`KeyedLocator`."""
    return numba.njit(cache=True, **options)
