"""Per-stage latency measured in RTL simulation next to each stage's formula (issue 15).

A small TFC-like network (input thresholds, three fully connected layers with threshold
activations, the last without), folded so that its streams carry several beats per frame
through two width converters and five glue FIFOs, is simulated at full rate and with random
input stalls and output backpressure (one Verilator build, ~20 s). The harness times the
first frame on every stream wire of the top (qloom.report.model.LatencyStep): the first-beat
delays of the stages and glue FIFOs, plus the output frame's span, must add up to the whole
design's latency as the ports measured it; Thresholding and MVAU fed at full rate take
exactly their formula; the report carries the numbers (report.json, report.html, the
`qloom sim` table)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from qloom.dataflow import to_dataflow
from qloom.dataflow.fifo import FIFO
from qloom.datatype import DataType
from qloom.flow import run_integer
from qloom.ir import Graph, Node, TensorInfo
from qloom.sim import VerilatorError, find_verilator

try:
    find_verilator()
except VerilatorError as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"no Verilator: {e}", allow_module_level=True)

from qloom.rtl.top import glue_streams  # noqa: E402
from qloom.sim.design import first_beat_sum, simulate, size_fifos  # noqa: E402

INT2, UINT2 = DataType("INT2"), DataType("UINT2")
DEEP = 80  # glue FIFO depth: block RAM


def tiny_tfc() -> Graph:
    """4x4 UINT8 -> thresholds INT2 -> FC 16x8 + thr UINT2 -> FC 8x8 + thr INT2 -> FC 8x4."""
    rng = np.random.default_rng(5)
    nodes: list[Node] = []
    tensors = {"img": TensorInfo((4, 4, 1), DataType("UINT8"), "NHWC")}

    def add(op, name, x, out, shape, dtype, **attrs):
        nodes.append(Node(op, name, (x,), (out,), attrs))
        tensors[out] = TensorInfo(shape, dtype, "NHWC" if len(shape) == 3 else "NC")

    def thr(name, x, out, shape, c, lo, hi, dtype, base):
        t = np.sort(rng.integers(lo, hi, size=(c, 3 if dtype.bits == 2 else 1)), axis=1)
        add("MultiThreshold", name, x, out, shape, dtype, thresholds=t, negate=None,
            out_base=base, out_dtype=dtype)  # fmt: skip

    thr("thr_in", "img", "a0", (4, 4, 1), 1, 0, 256, INT2, -2)
    add("MatMul", "fc0", "a0", "m0", (8,), DataType("INT8"), weights=rng.integers(-2, 2, (16, 8)))
    thr("thr0", "m0", "a1", (8,), 8, -8, 8, UINT2, 0)
    add("MatMul", "fc1", "a1", "m1", (8,), DataType("INT8"), weights=rng.integers(-2, 2, (8, 8)))
    thr("thr1", "m1", "a2", (8,), 8, -6, 6, INT2, -2)
    add("MatMul", "fc2", "a2", "out", (4,), DataType("INT8"), weights=rng.integers(-2, 2, (8, 4)))
    return Graph(tuple(nodes), ("img",), ("out",), tensors, name="tiny_tfc", kind="integer")


FOLDED = {
    "thr_in": {"PE": 1},  # 16 beats of one pixel, 16 cycles/frame
    "fc0": {"PE": 2, "SIMD": 16},  # SF 1 x NF 4: its input gathered by a DWC into one beat
    "fc1": {"PE": 4, "SIMD": 2},  # SF 4 x NF 2, fed one beat per cycle by fc0
    "fc2": {"PE": 4, "SIMD": 8},  # its input (2 beats of 4, 4 cycles apart) through a DWC
}


@pytest.fixture(scope="module")
def graph():
    return tiny_tfc()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).integers(0, 256, size=(6, 1, 4, 4), dtype=np.uint8)


def run(graph, images, **kw):
    """Simulated with block-RAM glue FIFOs (depth > 64): their outputs are registered, so a
    FIFO's output handshake comes cycles after its input's and a probe on the wrong side of a
    FIFO shows (a shallow FIFO falls through when empty: both sides move in the same cycle)."""
    design = to_dataflow(graph, FOLDED)
    deep = {s: DEEP for s in glue_streams(design)}
    res = simulate(design, images, quiet=True, fifo_depths=deep, **kw).check()
    want = run_integer(graph, images)["out"]
    assert np.array_equal(res.outputs["out"].reshape(want.shape), want)
    return design, res


@pytest.fixture(scope="module")
def folded(graph, images):
    """One Verilator build, shared by the tests of this file."""
    return run(graph, images)


def check_path(design, res) -> dict:
    """Every stage and glue FIFO timed, >= 1 cycle each, in pipeline order, and anchored to the
    ports as the harness measured them: the first-beat delays add up to the whole latency."""
    timing = res.stage_timing
    stages = [t for t in timing if not t.glue]
    assert [t.name for t in stages] == [s.name for s in design.stages]
    assert all(t.kind == "glue FIFO" and t.formula is None for t in timing if t.glue)
    glue = [t.name for t in timing if t.glue]
    assert sorted(glue) == sorted(f.stream for f in res.rtl.fifos if f.glue)
    for t in timing:
        assert None not in (t.first_in, t.first_out, t.last_out), t
        assert t.first_beat >= 1, t  # every stage (and a block-RAM FIFO) registers its output
        assert t.latency >= t.first_beat + 1, t
    for a, b in pairwise(timing):
        assert a.first_out == b.first_in, (a, b)  # one wire: a's output is b's input
    raw = res.raw
    assert timing[0].first_in == raw.in_cycles[0][0]
    assert timing[-1].first_out == raw.out_cycles[0][0]
    assert timing[-1].last_out == res.frame_end_cycles[0]
    assert first_beat_sum(timing) + res.output_span == res.latency
    return {t.name: t for t in stages}


def test_every_stage_and_fifo_timed_and_adding_up(folded):
    design, res = folded
    kinds = [s.kind for s in design.stages]
    assert kinds == ["Thresholding", "DWC", "MVAU", "MVAU", "DWC", "MVAU"]
    assert len([f for f in res.rtl.fifos if f.glue]) == 5
    check_path(design, res)
    assert res.output_span == 1  # one output beat per frame
    # the design's latency formula (stages overlapping, glue FIFOs falling through) plus the
    # 3 cycles of each block-RAM glue FIFO here: 44 + 15 = 59 against 57 simulated
    glue = FIFO("g", design.streams["a0"], depth=DEEP).first_out_cycles()
    estimate = design.latency_estimate() + 5 * glue
    assert glue == 3 and abs(estimate - res.latency) <= 0.05 * res.latency, (estimate, res)


def test_formula_exact_where_the_input_comes_at_full_rate(folded):
    """A stage's formula (first input beat .. last output beat) assumes its input beats come
    one per cycle. Where they did, Thresholding and MVAU take exactly that, with one output
    beat per frame or several (NF > 1), with one input beat (SF = 1) or several; a stage fed
    slower by the one before it takes longer."""
    design, res = folded
    timing = res.stage_timing
    full_rate = set()
    last_in = {timing[0].name: timing[0].first_in + design.input_spec.beats - 1}  # the port
    for a, b in pairwise(timing):
        last_in[b.name] = a.last_out
    for s in design.stages:
        t = next(t for t in timing if t.name == s.name)
        beats = design.streams[s.inputs[0]].beats
        if last_in[s.name] - t.first_in + 1 == beats:  # one input beat per cycle
            full_rate.add(s.name)
            if s.kind in ("Thresholding", "MVAU"):
                assert t.latency == s.latency_cycles(), (s.name, t)
    # thr_in: 16 cycles/frame; fc0: NF 4 x SF 1; fc1: NF 2 x SF 4; fc2: 1 x 1
    assert full_rate == {"thr_in", "fc0_dwc_a0", "fc0", "fc1", "fc2"}
    # fc1 sends its 2 beats 4 cycles apart: the DWC after it waits for the second
    dwc = next(t for t in timing if t.name == "fc2_dwc_a2")
    assert dwc.latency > dwc.formula


def test_stalls_still_add_up(graph, images, folded):
    """Random input stalls and output backpressure: the timing still adds up exactly, and a
    beat counts when it moves (valid and ready), not when it is offered: the output port held
    fc2's first beat back (seed chosen so), which its first-beat delay shows."""
    design, res = folded
    _, stalled = run(graph, images, in_valid_prob=0.6, out_ready_prob=0.3, seed=2)
    check_path(design, stalled)
    assert stalled.latency > res.latency
    full, held = (next(t for t in r.stage_timing if t.name == "fc2") for r in (res, stalled))
    assert held.first_beat > full.first_beat


def test_report_and_cli(folded):
    """The numbers reach report.json (round trip), report.html and the `qloom sim` table."""
    from rich.console import Console

    from qloom.build import sim_stage_latency
    from qloom.report.html import render
    from qloom.report.model import BuildReport, Resources, SimSummary, StageRow, Totals
    from qloom.sim.cli import latency_table

    design, res = folded
    rows = [StageRow(s.name, s.kind, s.folding(), s.cycles_per_frame(), Resources(0, 0, 0, 0),
                     latency=s.latency_cycles()) for s in design.stages]  # fmt: skip
    report = BuildReport("tiny", "tiny.onnx", "xc7z020", 100.0, None, stages=rows)
    report.totals = Totals(design.cycles_per_frame(), design.bottleneck().name, 1.0,
                           design.latency_estimate(), Resources(0, 0, 0, 0))  # fmt: skip
    report.sim = SimSummary(res.frames, "random", 0, res.cycles_per_frame, res.latency,
                            res.total_cycles, res.fifo_depths, [], "yes")  # fmt: skip
    sim_stage_latency(report, res)
    timed = {t.name: t for t in res.stage_timing}
    for r in report.stages:
        assert r.latency_simulated == timed[r.name].latency
        assert r.first_beat_simulated == timed[r.name].first_beat
    assert report.sim.is_chain
    assert sum(s.first_beat for s in report.sim.latency_path) + report.sim.output_span == (
        report.sim.latency_cycles
    )
    back = BuildReport.from_json(report.to_json())
    assert back.to_json() == report.to_json()
    assert back.stages[0].latency_simulated == design.stages[0].latency_cycles()
    assert back.sim.latency_path == report.sim.latency_path

    page = render(report)
    assert "<th>latency sim</th>" in page and "Latency of the first frame" in page
    assert f"= {res.latency:,} cycles" in page
    # an older report.json (no simulated latency) still renders
    old = report.to_json()
    for s in old["stages"]:
        s.pop("latency_simulated"), s.pop("first_beat_simulated")
    old["sim"].pop("latency_path"), old["sim"].pop("output_span")
    assert "Latency of the first frame" not in render(old)

    console = Console(record=True, width=140)
    console.print(latency_table(res))
    text = console.export_text()
    assert "glue FIFO" in text and f"= {res.latency:,} cycles" in text


def test_latency_aware_folding_is_shorter_in_rtl(graph, images):
    """`fold_design(..., latency_slack=1.0)` trades up to twice the estimated cost for latency:
    at the same 16 cycles/frame, the design it picks is bit-exact and its simulated latency
    is shorter than the cheapest folding's, each within 20 % of its estimate."""
    from qloom.fold import fold_design

    measured = {}
    for slack in (0.0, 1.0):
        fr = fold_design(graph, 100e6 / 16, 100.0, "xc7z020", latency_slack=slack)
        depths = size_fifos(fr.design, images, quiet=True)  # as a build sizes its glue FIFOs
        res = simulate(fr.design, images, fifo_depths=depths, quiet=True).check()
        want = run_integer(graph, images)["out"]
        assert np.array_equal(res.outputs["out"].reshape(want.shape), want)
        assert res.cycles_per_frame <= 16
        est = fr.design.latency_estimate()
        assert abs(res.latency - est) <= 0.2 * est, (slack, res.latency, est)
        measured[slack] = res.latency
    print(f"latency cheapest {measured[0.0]} cycles, latency-aware {measured[1.0]}")
    assert measured[1.0] < 0.7 * measured[0.0], measured
