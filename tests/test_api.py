"""The documented Python API (qloom.api) and the example script that uses only it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tfc_data import tfc_path

import qloom
from qloom.flow import compile_model, run_integer
from qloom.frontend.domain import RAW_PIXELS

ROOT = Path(__file__).resolve().parents[1]


def test_predict_is_the_integer_model_in_the_models_domain():
    m = qloom.load(tfc_path("TFC_2W2A"))
    x = m.compiled.random_inputs(50, seed=3)
    c = compile_model(tfc_path("TFC_2W2A"))
    want = run_integer(c.integer, c.hardware_input(x))[c.integer.outputs[0]]
    assert np.array_equal(m.predict(x), want)
    assert "INT2" in m.domain.describe()
    raw = qloom.load(tfc_path("TFC_2W2A"), input_type="UINT8", input_scale="1/255")
    assert raw.spec == RAW_PIXELS and "UINT8" in raw.domain.describe()
    pixels = np.arange(784, dtype=np.float32).reshape(1, 1, 28, 28) % 256 / 255
    assert raw.predict(pixels).shape == m.predict(pixels).shape


def test_fold_takes_finn_names_and_targets():
    m = qloom.load(tfc_path("TFC_1W1A"))
    d = m.fold(folding={"Defaults": {"PE": [2, ["MVAU_hls"]]}, "MVAU_hls_0": {"SIMD": 16}})
    first = d.of_kind("MVAU")[0]
    assert (first.pe, first.simd) == (2, 16)
    assert m.fold(target_fps=1e6).cycles_per_frame() <= 100
    with pytest.raises(qloom.QloomError, match="not both"):
        m.fold(folding="parallel", target_fps=1e6)


def test_load_errors_are_messages():
    with pytest.raises(qloom.QloomError, match="input_scale needs input_type"):
        qloom.load(tfc_path("TFC_1W1A"), input_scale="1/255")
    with pytest.raises(qloom.QloomError):
        qloom.load(tfc_path("TFC_1W1A"), input_type="UINT99")


def test_example_script_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "QLOOM_QUIET": "1"}
    script = ROOT / "examples" / "api_tour.py"
    cmd = [sys.executable, str(script), str(tfc_path("TFC_2W2A")), "--frames", "40",
           "--out", str(tmp_path / "tour")]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "RTL == integer model on 40 / 40 frames" in r.stdout
    assert (tmp_path / "tour" / "report.json").is_file()
