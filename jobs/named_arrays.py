"""The named arrays of one data file, read lazily and memory-mapped where the storage allows.

Three formats, each a small class with the same five methods (``names``,
``info``, ``read``, ``rows``, ``close``):

* ``npz``, a NumPy ``.npz`` archive (:class:`Npz`). A member saved uncompressed
  (``np.savez``) is memory-mapped where it lies inside the archive; a compressed
  one (``np.savez_compressed``) cannot be, and is read into memory;
* ``npy``, a directory of ``.npy`` files (:class:`NpyDir`), one array each, named by
  their paths without the suffix (``spikes/times`` is ``spikes/times.npy``); memory-mapped;
* ``hdf5`` (:class:`Hdf5`): datasets by path. A contiguous, uncompressed dataset is
  memory-mapped; a chunked or compressed one is read.

``info`` reads only an array's header (shape, dtype, whether it is ragged: one
array per row, as an HDF5 variable-length dataset or a NumPy object array).
Object arrays are stored with pickle and are read only with ``allow_pickle``.
Problems are :class:`FileProblem` errors whose message starts with the file.
"""
from __future__ import annotations

import contextlib
import struct
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

SUFFIXES = {".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5"}
FORMATS = ("npz", "npy", "hdf5")


class FileProblem(ValueError):
    """A data file that cannot be read, or does not hold what its dataset section says; names the file."""


class ArrayInfo(NamedTuple):
    shape: tuple
    dtype: np.dtype  # an HDF5 ragged array's element dtype; object for a NumPy object array
    ragged: bool  # one array per row: HDF5 variable length, or NumPy object


def _npy_header(fh):
    """(shape, Fortran order, dtype, where the data start) of the .npy stream ``fh``."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    else:  # version 3 (unicode field names): read the array to learn its header
        array = np.lib.format.read_array(fh, allow_pickle=False)
        return array.shape, False, array.dtype, None
    return tuple(shape), fortran, dtype, fh.tell()


def _memmap(path, dtype, offset, shape, fortran) -> np.ndarray:
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class Npz:
    """An NPZ archive; a member stored uncompressed is memory-mapped where its data lie in the archive."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = zipfile.ZipFile(path)
        self.members = {i.filename[:-4]: i for i in self.zip.infolist() if i.filename.endswith(".npy")}

    def names(self) -> list[str]:
        return list(self.members)

    def _header(self, name):
        with self.zip.open(self.members[name]) as fh:
            return _npy_header(fh)

    def info(self, name) -> ArrayInfo:
        shape, _, dtype, _ = self._header(name)
        return ArrayInfo(shape, dtype, dtype.hasobject)

    def read(self, name, allow_pickle=False) -> np.ndarray:
        member = self.members[name]
        shape, fortran, dtype, start = self._header(name)
        if (member.compress_type == zipfile.ZIP_STORED and start is not None and not dtype.hasobject
                and int(np.prod(shape)) > 0):
            with open(self.path, "rb") as fh:  # the data follow the member's local header and the .npy header
                fh.seek(member.header_offset)
                local = fh.read(30)
            if local[:4] == b"PK\x03\x04":
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                return _memmap(self.path, dtype, member.header_offset + 30 + name_len + extra_len + start,
                               shape, fortran)
        with self.zip.open(member) as fh:
            return np.lib.format.read_array(fh, allow_pickle=allow_pickle)

    def rows(self, name, index=None, allow_pickle=False) -> np.ndarray:
        """The rows ``index`` (all: None) of a ragged array, an object array of 1-D arrays."""
        values = self.read(name, allow_pickle)
        return values if index is None else values[index]

    def close(self):
        self.zip.close()


class NpyDir:
    """A directory of .npy files, each memory-mapped."""

    def __init__(self, path: Path):
        self.files = {p.relative_to(path).with_suffix("").as_posix(): p for p in sorted(path.rglob("*.npy"))}

    def names(self) -> list[str]:
        return list(self.files)

    def info(self, name) -> ArrayInfo:
        with open(self.files[name], "rb") as fh:
            shape, _, dtype, _ = _npy_header(fh)
        return ArrayInfo(shape, dtype, dtype.hasobject)

    def read(self, name, allow_pickle=False) -> np.ndarray:
        info = self.info(name)
        mmap = None if info.ragged or int(np.prod(info.shape)) == 0 else "r"
        return np.load(self.files[name], mmap_mode=mmap, allow_pickle=allow_pickle)

    rows = Npz.rows

    def close(self):
        pass


class Hdf5:
    """An HDF5 file; a contiguous, uncompressed dataset is memory-mapped."""

    def __init__(self, path: Path):
        import h5py

        self.h5py, self.path = h5py, path
        self.file = h5py.File(path, "r")
        found = []
        self.file.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
        self.datasets = found

    def names(self) -> list[str]:
        return self.datasets

    def info(self, name) -> ArrayInfo:
        ds = self.file[name]
        base = self.h5py.check_vlen_dtype(ds.dtype)
        return ArrayInfo(tuple(ds.shape), base if base is not None else ds.dtype, base is not None)

    def read(self, name, allow_pickle=False) -> np.ndarray:
        ds = self.file[name]
        if ds.chunks is None and ds.external is None and ds.size and self.h5py.check_vlen_dtype(ds.dtype) is None:
            offset = ds.id.get_offset()
            if offset is not None:
                return _memmap(self.path, ds.dtype, offset, tuple(ds.shape), False)
        return np.asarray(ds[()])

    def rows(self, name, index=None, allow_pickle=False) -> np.ndarray:
        ds = self.file[name]
        return ds[()] if index is None else ds[index]

    def close(self):
        self.file.close()


def file_format(path: Path, fmt: str, shown: str) -> str:
    """``fmt``, or with ``auto`` the format its name says (a directory: ``npy``)."""
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "npy"
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise FileProblem(f"{shown}: cannot tell the format from the name (expected .npz, .h5, .hdf5 or a "
                          "directory of .npy files); set dataset.format")
    return found


@contextlib.contextmanager
def reading(path: Path, fmt: str, shown: str):
    """The arrays of ``path`` (``shown`` in messages), with ``.format`` set; closed after.

    Whatever NumPy, zipfile or HDF5 raise on a file they cannot read becomes a :class:`FileProblem`.
    """
    fmt = file_format(path, fmt, shown)
    if fmt == "npy" and not path.is_dir():
        raise FileProblem(f"{shown}: format npy reads a directory of .npy files, and this is a file")
    if fmt != "npy" and path.is_dir():
        raise FileProblem(f"{shown}: a directory, but format {fmt} reads a file")
    try:
        arrays = {"npz": Npz, "npy": NpyDir, "hdf5": Hdf5}[fmt](path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FileProblem(f"{shown}: cannot read it as {fmt.upper()}: {exc}") from None
    arrays.format = fmt
    try:
        yield arrays
    except FileProblem:
        raise
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise FileProblem(f"{shown}: cannot read it: {type(exc).__name__}: {exc}") from None
    finally:
        arrays.close()
