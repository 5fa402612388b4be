"""The host driver (qloom.deploy): its DMA bytes are what the simulated RTL consumes and
produces, on a flat MLP input and on a multi-channel image (NCHW -> channels-last)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from model_corpus import brevitas_padded_avgpool_cnn
from tfc_data import tfc_path

from qloom.dataflow import to_dataflow
from qloom.deploy import write_driver
from qloom.flow import compile_model
from qloom.sim.design import input_words, simulate, size_fifos


def _driver_module(d):
    spec = importlib.util.spec_from_file_location(f"driver_{id(d)}", d / "driver.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _driver(design, where):
    return _driver_module(write_driver(design, where))


@pytest.mark.parametrize("which", ["tfc", "cnn"])
def test_driver_bytes_drive_the_rtl_bit_exactly(which, tmp_path):
    model = (
        tfc_path("TFC_2W2A")
        if which == "tfc"
        else brevitas_padded_avgpool_cnn(tmp_path / "cnn.onnx")
    )
    c = compile_model(model)
    design = to_dataflow(c.integer)
    driver = _driver(design, tmp_path / "driver")
    frames = 100 if which == "tfc" else 20
    q = c.hardware_input(c.random_inputs(frames, seed=1))
    # the simulated DMA: the bytes the driver packs, beat by beat, are the RTL's input words
    buf = driver.pack_input(q)
    assert buf.dtype == np.uint8 and buf.shape[1] == (design.input_spec.width + 7) // 8
    words = [int.from_bytes(row.tobytes(), "little") for row in buf]
    assert words == input_words(design, q)
    res = simulate(design, q, fifo_depths=size_fifos(design, q[:4]), in_valid_prob=0.7,
                   out_ready_prob=0.7).check()  # fmt: skip
    out = driver.load_io()["outputs"][0]
    got_words = res.raw.outputs[0]
    dma_out = np.frombuffer(
        b"".join(w.to_bytes(out["bytes"], "little") for w in got_words), dtype=np.uint8
    )
    y = driver.unpack_output(dma_out, frames)
    want = design.execute(q)[out["tensor"]]
    assert y.shape == want.shape and np.array_equal(y, want)


def test_every_build_carries_its_driver(tmp_path):
    from qloom.cli import main

    argv = ["--quiet", "build", str(tfc_path("TFC_1W1A")), "--sim-frames", "0",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    d = tmp_path / "TFC_1W1A" / "driver"
    assert (d / "driver.py").is_file() and (d / "io.json").is_file()
    io = _driver_module(d).load_io()
    out = io["outputs"][0]
    assert io["input"]["dtype"] == "BIPOLAR" and out["elems"] * out["beats"] == 10
