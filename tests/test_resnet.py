"""Residual networks from the zoo (`qloom export`): basic blocks with identity and 1x1 stride-2
shortcuts become Duplicate + frame-deep FIFO + Add stages; exact against qonnx, and the RTL is
bit-exact under random stalls on both sides with the cycles of the formula."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brevitas")

from qloom.cli import main  # noqa: E402
from qloom.dataflow import to_dataflow  # noqa: E402
from qloom.flow import compile_model, run_integer  # noqa: E402
from qloom.fold import fold_design  # noqa: E402
from qloom.frontend.reference import qonnx_outputs  # noqa: E402
from qloom.sim.design import simulate, size_fifos  # noqa: E402


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    path = tmp_path_factory.mktemp("resnet") / "resnet8-small-w2a2.onnx"
    argv = ["export", "--model", "resnet8-small-w2a2", "--out", str(path), "--in-size", "16"]
    assert main(argv) == 0
    return path


def test_resnet_integer_model_equals_qonnx(resnet):
    c = compile_model(resnet)
    x = np.random.default_rng(0).random((300, 3, 16, 16), dtype=np.float32)
    ref = qonnx_outputs(resnet, x, 100)
    np.testing.assert_array_equal(c.run(x)[c.integer.outputs[0]], ref)
    assert [n.op for n in c.integer.nodes].count("Add") == 3  # one per residual block


def test_resnet_rtl_survives_stalls(resnet):
    c = compile_model(resnet)
    design = fold_design(c.integer, 2e4, 100.0, "xc7z020").design
    kinds = [s.kind for s in design.stages]
    assert kinds.count("Add") == 3 and kinds.count("Duplicate") == 3 and "FIFO" in kinds
    q = c.hardware_input(np.random.default_rng(1).random((60, 3, 16, 16), dtype=np.float32))
    depths = size_fifos(design, q[:8])
    want = run_integer(c.integer, q)[c.integer.outputs[0]]
    full = simulate(design, q, fifo_depths=depths).check()
    assert np.array_equal(full.outputs[c.integer.outputs[0]], want)
    assert (
        abs(full.cycles_per_frame - design.cycles_per_frame()) <= 0.05 * design.cycles_per_frame()
    )
    for p_in, p_out, seed in ((0.5, 1.0, 1), (1.0, 0.4, 2), (0.6, 0.6, 3)):
        res = simulate(design, q, fifo_depths=depths, in_valid_prob=p_in, out_ready_prob=p_out,
                       seed=seed).check()  # fmt: skip
        assert np.array_equal(res.outputs[c.integer.outputs[0]], want), (p_in, p_out)


def test_export_errors_are_messages(tmp_path, capsys):
    assert main(["export", "--model", "resnet9-w2a2", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "unknown model 'resnet9-w2a2'" in capsys.readouterr().err
    assert main(["export", "--model", "resnet8-w2a2", "--out", "/nonexistent/x.onnx"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unfolded_resnet_lowers(resnet):
    assert to_dataflow(compile_model(resnet).integer).cycles_per_frame() > 0
