"""The store's plain-file-I/O paths write what Zarr writes and read what Zarr reads.

Group metadata (task records, scheduler records, checkpoint attrs) and checkpoint
arrays are written without Zarr's machinery for speed; these tests hold them to
Zarr's own output and read them back through Zarr.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from snnbatch.jobs.store import read_group_attrs, write_group, write_plain_array

DTYPES = ["bool", "int8", "uint8", "int16", "int32", "int64", "uint64", "float16", "float32", "float64",
          "complex64", "complex128"]
SHAPES = [(), (1,), (7,), (3, 4), (2, 3, 5)]


def _value(dtype: str, shape: tuple) -> np.ndarray:
    rng = np.random.default_rng(len(shape))
    raw = rng.normal(size=shape) * 50
    if dtype == "bool":
        return np.asarray(raw > 0)
    if dtype.startswith("complex"):
        return np.asarray(raw + 1j * raw[::-1] if raw.ndim else raw + 2j, dtype=dtype)
    if dtype.startswith("uint"):
        return np.asarray(np.abs(raw), dtype=dtype)
    return np.asarray(raw, dtype=dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_plain_array_matches_zarr(tmp_path, dtype, shape):
    value = _value(dtype, shape)
    group = zarr.open_group(str(tmp_path / "ref"), mode="w")
    group.create_array("a", data=value, chunks=value.shape if value.ndim else "auto", compressors=None)
    assert write_plain_array(tmp_path / "plain" / "a", value)

    ours = json.loads((tmp_path / "plain" / "a" / "zarr.json").read_text())
    theirs = json.loads((tmp_path / "ref" / "a" / "zarr.json").read_text())
    assert ours == theirs
    back = zarr.open_array(str(tmp_path / "plain" / "a"), mode="r")[...]
    assert back.dtype == value.dtype and back.shape == value.shape
    np.testing.assert_array_equal(back, value)


def test_what_it_does_not_handle_is_left_to_zarr(tmp_path):
    for value in (np.zeros((0, 3), np.float32), np.arange(3, dtype=">f8"), np.array(["a", "b"]),
                  np.zeros(2, np.longdouble)):
        assert not write_plain_array(tmp_path / "x", value)
        assert not (tmp_path / "x").exists()


def test_non_contiguous_input_is_written_in_c_order(tmp_path):
    value = np.arange(12, dtype=np.float64).reshape(3, 4).T
    assert write_plain_array(tmp_path / "a", value)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a"), mode="r")[...], value)


def test_group_metadata_round_trips_through_zarr(tmp_path):
    attrs = {"config": {"lr": 1e-3, "nested": [1, 2, {"x": None}]}, "nan": float("nan"), "name": "é"}
    assert write_group(tmp_path / "g", attrs)
    g = zarr.open_group(str(tmp_path / "g"), mode="r")
    assert g.attrs["config"] == attrs["config"] and np.isnan(g.attrs["nan"]) and g.attrs["name"] == "é"
    g = zarr.open_group(str(tmp_path / "g"), mode="r+")
    g.update_attributes({"more": 1})
    got = read_group_attrs(tmp_path / "g")
    assert got["more"] == 1 and got["config"] == attrs["config"]
    assert read_group_attrs(tmp_path / "missing") is None
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["zarr.json"]  # no temporary left behind


def test_exclusive_write_never_replaces(tmp_path):
    assert write_group(tmp_path / "g", {"first": True}, exclusive=True)
    assert not write_group(tmp_path / "g", {"second": True}, exclusive=True)
    assert read_group_attrs(tmp_path / "g") == {"first": True}
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["zarr.json"]


def test_damaged_group_metadata_is_an_error(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "zarr.json").write_text('{"attributes": {"trunc')
    with pytest.raises(ValueError):
        read_group_attrs(tmp_path / "g")
