"""``write_json`` turns NumPy values and paths into plain JSON (``zoomrl.core.io.json_default``, which moved from
``core.config`` to ``core.io`` so the two modules no longer import each other)."""

from pathlib import Path

import numpy as np
import pytest

from zoomrl.core.io import json_default, read_json, write_json


def test_numpy_values_and_paths_round_trip_as_plain_json(tmp_path):
    path = tmp_path / "values.json"
    write_json(path, {"i": np.int64(3), "f": np.float32(0.5), "a": np.arange(3, dtype=np.int16), "p": Path("x/y")})
    assert path.read_text().replace(" ", "").replace("\n", "") == '{"i":3,"f":0.5,"a":[0,1,2],"p":"x/y"}'
    assert read_json(path) == {"i": 3, "f": 0.5, "a": [0, 1, 2], "p": "x/y"}


def test_anything_else_is_refused_by_name():
    with pytest.raises(TypeError, match="not JSON serialisable: set"):
        json_default({1})
