"""Whole designs in RTL: the generated top level (lint, Yosys hierarchy), Verilator simulation
of TFC and a small CNN bit-exact against the integer executor, with random input stalls and
output backpressure, measured cycles per frame against the formula, FIFO sizing, deadlock
diagnosis, and the `sim` command line."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from tfc_data import tfc_path

from qloom.dataflow import to_dataflow
from qloom.flow import compile_model, predictions, run_integer
from qloom.fold import parallel_folding
from qloom.frontend.domain import RAW_PIXELS
from qloom.sim import VerilatorError, find_verilator

try:
    find_verilator()
except VerilatorError as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"no Verilator: {e}", allow_module_level=True)

from qloom.rtl.top import RtlError, generate_top, glue_streams  # noqa: E402
from qloom.sim.design import simulate, size_fifos  # noqa: E402
from qloom.sim.rtlcheck import lint_top, yosys_check  # noqa: E402


def tfc_folding(graph, which: str) -> dict:
    """serial: PE = SIMD = 1 (50176 cycles/frame); middle: 128 cycles/frame with DWCs
    (split, gather and through lcm(8, 49)); fast: 16 cycles/frame; parallel: PE = MH and
    SIMD = MW everywhere (1 cycle/frame)."""
    base = to_dataflow(graph)
    if which == "parallel":
        return parallel_folding(base)
    thr = next(s.name for s in base.stages if s.kind == "Thresholding")
    mvaus = [s.name for s in base.stages if s.kind == "MVAU"]
    if which == "serial":
        return {}
    if which == "middle":
        plan, fold = [(16, 49), (4, 8), (2, 32), (5, 4)], {thr: {"PE": 8}}
    else:
        plan, fold = [(16, 196), (16, 16), (16, 16), (5, 16)], {thr: {"PE": 49}}
    for name, (pe, simd) in zip(mvaus, plan, strict=True):
        fold[name] = {"PE": pe, "SIMD": simd, "ram_style": "distributed"}
    return fold


def assert_equal_outputs(graph, got: dict, want: dict) -> None:
    for name in graph.outputs:
        assert got[name].shape == want[name].shape, name
        bad = np.flatnonzero(
            ~np.all(
                got[name].reshape(len(got[name]), -1) == want[name].reshape(len(got[name]), -1), 1
            )
        )
        assert bad.size == 0, f"{name}: frames {bad[:10].tolist()} differ from the integer model"


@pytest.fixture(scope="module")
def mnist(mnist_test):
    images, labels = mnist_test
    return images[:200], labels[:200]


@pytest.fixture(scope="module")
def tfc_graphs():
    return {m: compile_model(tfc_path(m), RAW_PIXELS).integer for m in ("TFC_1W1A", "TFC_2W2A")}


# -- the generated top level ----------------------------------------------------------------------
def test_top_lints_clean_and_elaborates_in_yosys(tfc_graphs, tmp_path):
    from test_dataflow import CNN_FOLDINGS, tiny_cnn

    from qloom.synth.tools import tool_available

    designs = [
        to_dataflow(tfc_graphs["TFC_2W2A"], tfc_folding(tfc_graphs["TFC_2W2A"], "middle")),
        to_dataflow(tiny_cnn("topk"), CNN_FOLDINGS["middle"]),
    ]
    for i, d in enumerate(designs):
        rtl = generate_top(d, tmp_path / f"d{i}")
        rc, text = lint_top(rtl)
        assert rc == 0 and text == "", text
        if tool_available("yosys"):
            yosys_check(rtl)
        # one instance per stage, a FIFO per stage-to-stage stream, memories relative to run dir
        v = rtl.top_file.read_text()
        assert v.count("qloom_fifo #(") == len(glue_streams(d)) + len(d.of_kind("FIFO"))
        for st in d.stages:
            assert f") {rtl.instances[st.name]} (" in v
        for files in rtl.memories.values():
            for p in files.values():
                assert f'"mem/{p.name}"' in v and p.exists()
        assert {f.stream for f in rtl.fifos if f.glue} == set(glue_streams(d))
        assert rtl.out_ports == ("m_axis",) and rtl.in_port == "s_axis"
    # depth 0 wires producer to consumer; unknown streams are rejected
    d = designs[0]
    s0 = glue_streams(d)[0]
    rtl = generate_top(d, tmp_path / "nofifo", {s0: 0})
    assert lint_top(rtl) == (0, "")
    assert len([f for f in rtl.fifos if f.glue]) == len(glue_streams(d)) - 1
    with pytest.raises(RtlError, match="without a glue FIFO"):
        generate_top(d, tmp_path / "bad", {"no_such_stream": 4})


# -- TFC on MNIST ---------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["TFC_1W1A", "TFC_2W2A"])
@pytest.mark.parametrize("which,frames", [("serial", 6), ("middle", 200)])
def test_tfc_rtl_matches_integer(model, which, frames, tfc_graphs, mnist):
    graph = tfc_graphs[model]
    images = mnist[0][:frames]
    design = to_dataflow(graph, tfc_folding(graph, which))
    res = simulate(design, images).check()
    ref = run_integer(graph, images)
    assert_equal_outputs(graph, res.outputs, ref)
    assert np.array_equal(predictions(graph, res.outputs), predictions(graph, ref))
    # the same frames through the folded Python model
    folded = design.execute(images)
    assert_equal_outputs(graph, res.outputs, folded)
    est = design.cycles_per_frame()
    assert res.estimate == est
    assert abs(res.cycles_per_frame - est) <= 0.05 * est, (res.cycles_per_frame, est)
    assert res.latency is not None and res.latency >= est
    assert set(res.fifo_max) == set(glue_streams(design))
    assert all(0 <= m <= res.fifo_depths[s] for s, m in res.fifo_max.items())
    if which == "middle":
        assert res.cycles_per_frame == est  # DWC chains and FIFOs keep the MVAU rate


def test_tfc_fully_parallel_rtl(tfc_graphs, mnist):
    """PE = MH, SIMD = MW everywhere: one frame per clock, bit-exact, also under stalls."""
    graph = tfc_graphs["TFC_1W1A"]
    images = mnist[0]
    design = to_dataflow(graph, tfc_folding(graph, "parallel"))
    assert [s.pe for s in design.stages if s.kind == "MVAU"] == [64, 64, 64, 10]
    assert [s.simd for s in design.stages if s.kind == "MVAU"] == [784, 64, 64, 64]
    assert design.cycles_per_frame() == 1
    ref = run_integer(graph, images)
    res = simulate(design, images).check()
    assert_equal_outputs(graph, res.outputs, ref)
    assert res.cycles_per_frame == 1.0
    assert res.latency is not None and res.latency < 40
    res = simulate(design, images[:50], in_valid_prob=0.6, out_ready_prob=0.5, seed=5).check()
    assert_equal_outputs(graph, res.outputs, run_integer(graph, images[:50]))


def test_tfc_2w2a_fully_parallel_rtl(tfc_graphs, mnist_test):
    """The fully parallel multi-bit TFC (50k 2-bit products per clock in the first layer):
    one frame per clock, bit-exact on 400 images. Its Verilator build takes ~30 s cold
    (qloom_dot's loops, which Verilator keeps as loops; it took 12-26 min when the products
    and adder trees were generate blocks: bench/verilator_speed.py)."""
    graph = tfc_graphs["TFC_2W2A"]
    images = mnist_test[0][:400]
    design = to_dataflow(graph, tfc_folding(graph, "parallel"))
    assert [s.pe for s in design.stages if s.kind == "MVAU"] == [64, 64, 64, 10]
    assert [s.simd for s in design.stages if s.kind == "MVAU"] == [784, 64, 64, 64]
    assert design.cycles_per_frame() == 1
    res = simulate(design, images).check()
    ref = run_integer(graph, images)
    assert_equal_outputs(graph, res.outputs, ref)
    assert np.array_equal(predictions(graph, res.outputs), predictions(graph, ref))
    assert res.cycles_per_frame == 1.0
    assert res.latency is not None and res.latency < 40


@pytest.mark.parametrize(
    "model,p_in,p_out,seed", [("TFC_1W1A", 0.5, 0.7, 1), ("TFC_2W2A", 0.7, 0.5, 2)]
)
def test_tfc_rtl_with_stalls_and_backpressure(model, p_in, p_out, seed, tfc_graphs, mnist):
    graph = tfc_graphs[model]
    images = mnist[0][:100]
    design = to_dataflow(graph, tfc_folding(graph, "middle"))
    res = simulate(design, images, in_valid_prob=p_in, out_ready_prob=p_out, seed=seed).check()
    assert_equal_outputs(graph, res.outputs, run_integer(graph, images))
    assert res.cycles_per_frame > design.cycles_per_frame()  # the testbench slowed it down
    # a serial design under stalls, a few frames
    serial = to_dataflow(graph)
    res = simulate(serial, images[:3], in_valid_prob=p_in, out_ready_prob=p_out, seed=seed)
    assert_equal_outputs(graph, res.check().outputs, run_integer(graph, images[:3]))


def test_fifo_sizing_keeps_throughput(tfc_graphs, mnist):
    """Depth-2 FIFOs cost throughput where an MVAU takes its input in bursts (fold 0 only);
    sized FIFOs (peak occupancy + margin from a generous run) reach the formula again."""
    graph = tfc_graphs["TFC_1W1A"]
    images = mnist[0][:24]
    for which, frames in (("fast", 24), ("serial", 5)):
        design = to_dataflow(graph, tfc_folding(graph, which))
        est = design.cycles_per_frame()
        x = images[:frames]
        small = simulate(design, x).check()
        assert small.cycles_per_frame > est  # 19 vs 16, 51859 vs 50176
        depths = size_fifos(design, x, margin=2)
        assert set(depths) == set(glue_streams(design)) and min(depths.values()) >= 2
        sized = simulate(design, x, fifo_depths=depths).check()
        assert abs(sized.cycles_per_frame - est) <= 0.02 * est, (sized.cycles_per_frame, est)
        assert_equal_outputs(graph, sized.outputs, run_integer(graph, x))
        # the sized FIFOs stay far below the generous two frames per stream
        assert sum(depths.values()) < sum(2 * design.streams[s].beats for s in depths)
        stalled = simulate(design, x[:4], fifo_depths=depths, in_valid_prob=0.6,
                           out_ready_prob=0.6, seed=5)  # fmt: skip
        assert_equal_outputs(graph, stalled.check().outputs, run_integer(graph, x[:4]))


def test_simulate_runs_generated_rtl_as_it_is(tfc_graphs, mnist, tmp_path):
    """simulate(rtl=...) runs a top that generate_top already wrote (a build's rtl/), from its
    directory and writing nothing there: the same run as generating it with those depths."""
    graph = tfc_graphs["TFC_1W1A"]
    design = to_dataflow(graph, tfc_folding(graph, "fast"))
    x = mnist[0][:6]
    depths = {s: 8 for s in glue_streams(design)}
    rtl = generate_top(design, tmp_path / "rtl", depths)
    files = sorted(tmp_path.rglob("*"))
    res = simulate(design, x, rtl=rtl).check()
    assert sorted(tmp_path.rglob("*")) == files
    same = simulate(design, x, fifo_depths=depths).check()
    assert res.fifo_depths == same.fifo_depths and res.total_cycles == same.total_cycles
    assert_equal_outputs(graph, res.outputs, run_integer(graph, x))
    with pytest.raises(ValueError, match="neither"):
        simulate(design, x, rtl=rtl, fifo_depths=depths)


# -- a small CNN: SWU, padding, max pool, residual add (duplicate + bypass FIFO), XNOR, top-k ----
@pytest.mark.parametrize("which", ["serial", "middle", "host-tail"])
def test_cnn_rtl_matches_integer(which):
    from test_dataflow import CNN_FOLDINGS, tiny_cnn

    if which == "host-tail":  # logits and argmax computed on the host from the RTL's output
        graph = tiny_cnn("both")
        fold = {k: v for k, v in CNN_FOLDINGS["middle"].items() if k != "topk"}
        design = to_dataflow(graph, fold)
        assert design.host is not None
    else:
        graph = tiny_cnn("topk")
        design = to_dataflow(graph, CNN_FOLDINGS[which])
        assert "LabelSelect" in {s.kind for s in design.stages}
    assert {"SWU", "MaxPool", "Add", "Duplicate", "FIFO"} <= {s.kind for s in design.stages}
    images = np.random.default_rng(5).integers(0, 256, size=(12, 3, 10, 10), dtype=np.uint8)
    ref = run_integer(graph, images)
    res = simulate(design, images).check()
    assert_equal_outputs(graph, res.outputs, ref)
    est = design.cycles_per_frame()
    assert abs(res.cycles_per_frame - est) <= 0.05 * est, (res.cycles_per_frame, est)
    res = simulate(design, images[:6], in_valid_prob=0.6, out_ready_prob=0.5, seed=3).check()
    assert_equal_outputs(graph, res.outputs, run_integer(graph, images[:6]))


def test_brevitas_cnn_rtl(tmp_path):
    pytest.importorskip("brevitas.nn")
    from test_streamline_random import small_cnn_onnx

    graph = compile_model(small_cnn_onnx(tmp_path / "m.onnx"), RAW_PIXELS)
    graph = graph.integer
    names = [n.name for n in graph.nodes if n.op == "Conv"]
    design = to_dataflow(graph, {names[0]: {"PE": 2, "SIMD": 18}, names[1]: {"PE": 4, "SIMD": 4}})
    images = np.random.default_rng(1).integers(0, 256, size=(16, 2, 10, 10), dtype=np.uint8)
    res = simulate(design, images, in_valid_prob=0.7, out_ready_prob=0.6, seed=4).check()
    assert_equal_outputs(graph, res.outputs, run_integer(graph, images))


def test_deadlock_is_diagnosed():
    """A residual bypass FIFO of depth 1 cannot hold what the main branch keeps in flight:
    the run deadlocks and the diagnosis names the join that waits."""
    from test_dataflow import tiny_cnn

    graph = tiny_cnn("topk")
    design = to_dataflow(graph, {"add0_fifo0": {"depth": 1}})
    images = np.random.default_rng(5).integers(0, 256, size=(2, 3, 10, 10), dtype=np.uint8)
    res = simulate(design, images, max_idle_cycles=5000)
    assert not res.ok and res.deadlock
    assert "Add 'add0' holds up" in res.diagnosis[0]
    assert any("FIFO 1/1 full" in d for d in res.diagnosis)
    with pytest.raises(Exception, match="deadlock"):
        res.check()
    # with random stalls the monitored handshakes keep toggling: the diagnosis rerun still
    # ends (where the failed run ended) and names the same join
    res = simulate(design, images, in_valid_prob=0.7, out_ready_prob=0.7, max_idle_cycles=5000)
    assert res.deadlock and "Add 'add0' holds up" in res.diagnosis[0]


# -- command line ---------------------------------------------------------------------------------
def test_sim_cli(tfc_graphs, tmp_path, capsys, monkeypatch):
    from qloom.sim.cli import add_parser, run

    monkeypatch.setenv("QLOOM_QUIET", "1")
    graph = tfc_graphs["TFC_1W1A"]
    folding = tmp_path / "folding.json"
    folding.write_text(json.dumps(tfc_folding(graph, "middle")))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    # the folding is of the raw-pixel design (tfc_graphs): the same domain on the command line
    argv = ["sim", str(tfc_path("TFC_1W1A")), "--data", "mnist-test", "--input-type", "UINT8",
            "--input-scale", "1/255", "--limit", "40", "--folding", str(folding),
            "--stall", "0.3", "--seed", "1", "--out", str(tmp_path / "run")]  # fmt: skip
    args = parser.parse_args(argv)
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "mismatches" in out and "all 40 frames equal" in out
    assert (tmp_path / "run" / "mem").is_dir()
    args = parser.parse_args(argv[:-4] + ["--size-fifos"])
    assert run(args) == 0
    capsys.readouterr()
    args = parser.parse_args(["sim", str(tfc_path("TFC_1W1A")), "--limit", "40", "--folding",
                              "parallel", "--data", "mnist-test"])  # fmt: skip
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "all 40 frames equal" in out and "BIPOLAR" in out  # the model's own input domain


def test_monitors_on_deep_long_instance_names(tmp_path):
    """A monitor on a signal whose hierarchical name is longer than Verilator's default symbol
    limit (deep, long layer names) still builds and reads the signal (it was hashed, and the
    harness named a member that did not exist)."""
    from qloom.sim.verilator import build

    inst = "u_" + "very_long_layer_name_" * 9
    (tmp_path / "t.v").write_text(
        "module inner(input wire ap_clk, input wire [7:0] d, output reg [7:0] q);\n"
        "  always @(posedge ap_clk) q <= d;\nendmodule\n"
        "module t(input wire ap_clk, input wire ap_rst_n, input wire [7:0] s_axis_tdata,\n"
        "  input wire s_axis_tvalid, output wire s_axis_tready, output wire [7:0] m_axis_tdata,\n"
        "  output wire m_axis_tvalid, input wire m_axis_tready);\n"
        "  assign s_axis_tready = m_axis_tready;\n  assign m_axis_tvalid = s_axis_tvalid;\n"
        f"  inner {inst} (.ap_clk(ap_clk), .d(s_axis_tdata), .q(m_axis_tdata));\nendmodule\n"
    )
    monitor = f"t.{inst}.q"
    assert len(monitor) > 150
    model = build("t", [tmp_path / "t.v"], inputs=[("s_axis", 8)], outputs=[("m_axis", 8)],
                  monitor=[monitor], cache_dir=tmp_path / "cache")  # fmt: skip
    res = model.run([[5, 200, 7]], n_out=[3])
    assert res.monitor_max[monitor] == 200
