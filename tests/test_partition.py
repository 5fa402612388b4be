"""Scale-out (issue 17 parts 3-4): a folded pipeline cut into contiguous segments, one per
device, joined by link models (qloom.fold.partition), and the proof in Verilator that the
chain of segment tops and links is bit-exact at the pace of its slowest stage or link
(qloom.sim.chain). The partition choice is checked against a brute force over every cut."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from tfc_data import tfc_path

from qloom.cli import main
from qloom.dataflow.stage import StreamSpec
from qloom.datatype import DataType
from qloom.fold import estimate_stage, fold_design
from qloom.fold.partition import (
    LINKS,
    PartitionError,
    cut_points,
    parse_devices,
    parse_link,
    parse_links,
    partition,
)
from qloom.fold.solver import fits
from qloom.report.model import BuildReport
from qloom.synth import get_device

A35T = get_device("xc7a35t")


@pytest.fixture(scope="module")
def tfc():
    """TFC_2W2A folded for 1e5 FPS at 100 MHz (MatMul_20: 896 cycles, 839 LUT, 7 BRAM18)."""
    from qloom.flow import compile_model

    compiled = compile_model(tfc_path("TFC_2W2A"))
    return compiled, fold_design(compiled.integer, 1e5, 100.0, "xc7a35t", bram_prices=(1.0,))


@pytest.fixture(scope="module")
def tfc_inputs(tfc, tmp_path_factory):
    """24 random inputs in the model's float domain (saved for `qloom build --data`) and the
    integers the hardware receives."""
    x = np.random.default_rng(7).random((24, 1, 28, 28), dtype=np.float32)
    path = tmp_path_factory.mktemp("tfc-in") / "x.npy"
    np.save(path, x)
    return path, tfc[0].hardware_input(x)


# -- parsing -------------------------------------------------------------------------------------
def test_devices_shorthand_and_lists():
    assert [d.name for d in parse_devices("4xxczu7ev")] == ["xczu7ev"] * 4
    assert [d.name for d in parse_devices("xc7a35t, 2xxczu7ev")] == [
        "xc7a35t",
        "xczu7ev",
        "xczu7ev",
    ]
    assert [d.name for d in parse_devices(["xczu7ev", "xczu7ev", "xczu7ev"])] == ["xczu7ev"] * 3
    with pytest.raises(PartitionError, match=r"--devices 0xxczu7ev: a count of 0; use 1 or more"):
        parse_devices("0xxczu7ev")
    with pytest.raises(Exception, match="xczu99"):
        parse_devices("2xxczu99")


def test_link_models_and_serialisation_cycles():
    aurora = parse_link("aurora-10g")
    assert aurora.bits_per_cycle(100.0) == 100 and aurora.latency_cycles(100.0) == 40
    assert aurora.bits_per_cycle(156.25) == 64 and aurora.latency_cycles(250.0) == 100
    assert parse_link("qsfp28").bits_per_cycle(100.0) == 1000
    assert parse_link("eth-1g").bits_per_cycle(100.0) == Fraction(957, 100)
    custom = parse_link("2.5:30")
    assert custom.bits_per_cycle(100.0) == 25 and custom.latency_cycles(100.0) == 30
    assert parse_link("aurora-10g:7").latency_cycles(100.0) == 7
    assert [m.name for m in parse_links("aurora-10g,eth-1g")] == ["aurora-10g", "eth-1g"]
    # a 56-bit stream of 28 beats (1,568 bits per frame) over 10 bits per cycle: serialised
    wide = StreamSpec(DataType.int(2, True), 28, 28)
    assert parse_link("1").cycles_per_frame(wide, 100.0) == 157  # ceil(1568 / 10)
    # a narrow stream over a fast link still moves one beat per cycle
    narrow = StreamSpec(DataType.int(2, True), 2, 32)
    assert aurora.cycles_per_frame(narrow, 100.0) == 32
    assert parse_link("0.01").cycles_per_frame(narrow, 100.0) == 1280  # 128 bits / 0.1
    with pytest.raises(PartitionError) as e:
        parse_link("warp-drive")
    assert str(e.value) == (
        "--link warp-drive: not a known link nor a positive bandwidth in Gbit/s; known links: "
        "aurora-10g (10 Gbit/s), qsfp28-100g (100 Gbit/s), eth-1g (0.957 Gbit/s), or "
        "GBPS[:LATENCY_CYCLES] such as 2.5:100"
    )
    with pytest.raises(PartitionError, match="not a whole number of cycles"):
        parse_link("aurora-10g:-3")
    assert set(LINKS) == {"aurora-10g", "qsfp28-100g", "eth-1g"}


# -- the choice ------------------------------------------------------------------------------------
def _brute_force(design, device, cap):
    """Every partition of `design` at single-stream cuts onto copies of `device`: the best by
    (fewest devices, smallest largest load, smallest sum of squared loads)."""
    est = [estimate_stage(s, device) for s in design.stages]
    capd = device.capacity()
    cuts = sorted(cut_points(design))
    n = len(design.stages)

    def load(lo, hi):
        total = est[lo]
        for r in est[lo + 1 : hi]:
            total = total + r
        used = total.as_dict()
        worst = max(used[k] / (cap * capd[k]) for k in ("LUT", "FF", "BRAM", "DSP") if used[k])
        return worst, fits(total, device, cap)

    for k in range(1, n + 1):
        best = None
        for combo in itertools.combinations(cuts, k - 1):
            bounds = [0, *combo, n]
            segs = [load(a, b) for a, b in itertools.pairwise(bounds)]
            if not all(ok for _, ok in segs):
                continue
            loads = [x for x, _ in segs]
            key = (max(loads), sum(x * x for x in loads))
            if best is None or key < best[0]:
                best = (key, list(combo))
        if best is not None:
            return best[1]
    return None


@pytest.mark.parametrize("cap", [0.8, 0.1, 0.08, 0.07])
def test_fewest_devices_then_balanced(tfc, cap):
    design = tfc[1].design
    p = partition(design, "6xxc7a35t", "aurora-10g", cap, 100.0, tfc[1].budget_cycles)
    want = _brute_force(design, A35T, cap)
    got = [design.stages.index(design.stage(s.stages[0])) for s in p.segments[1:]]
    assert got == want
    assert [s for seg in p.segments for s in seg.stages] == [s.name for s in design.stages]
    for seg in p.segments:
        assert fits(seg.estimate, seg.device, cap) and seg.load <= 1.0
    if cap == 0.8:
        assert len(p.segments) == 1 and not p.links
    else:
        assert len(p.segments) == 2  # MatMul_20 (7 BRAM18) alone on the first device
        assert p.segments[0].stages == ("MatMul_20",)
        (link,) = p.links
        # MatMul_20 at PE 4 (the solver's folding): 8-bit beats, 16 per frame
        assert (link.stream, link.bits_per_frame, link.cycles_per_frame) == ("51", 128, 16)
        assert p.cycles_per_frame() == 896 and p.bottleneck() == "MatMul_20"


def test_balanced_cut_on_a_per_resource_cap(tfc):
    """A LUT-only cap where several cuts fit: the largest segment is as small as possible."""
    design = tfc[1].design
    cap = {"LUT": 0.05, "BRAM": 1.0}  # 1,040 LUT per xc7a35t
    p = partition(design, "3xxc7a35t", None, cap, 100.0)
    loads = [s.load for s in p.segments]
    assert len(p.segments) == 2 and max(loads) <= 1.0
    # every other 2-way single-stream cut has a larger largest load
    est = [estimate_stage(s, A35T).lut for s in design.stages]
    for k in cut_points(design):
        other = max(sum(est[:k]), sum(est[k:])) / (0.05 * A35T.luts)
        assert max(loads) <= other + 1e-3  # (the load counts whole LUTs)


def test_glue_fifos_count_with_the_stage_they_feed(tfc):
    """Deep glue FIFOs (as FIFO sizing can make them) weigh on the cut: a FIFO on the stream
    into the second MVAU raises the loads; a stage whose FIFO alone overflows every device is
    named with it. Segment estimates stay the stages' own (the report adds the FIFOs)."""
    design = tfc[1].design
    cap = {"LUT": 0.05, "BRAM": 1.0}
    plain = partition(design, "3xxc7a35t", None, cap, 100.0)
    second = [s for s in design.stages if s.kind == "MVAU"][1]
    deep = {second.inputs[0]: 1 << 15}  # 16-bit beats: 30 of the 100 BRAM18
    cut = partition(design, "3xxc7a35t", None, cap, 100.0, fifo_depths=deep)
    assert sum(s.load for s in cut.segments) > sum(s.load for s in plain.segments) + 0.05
    for seg in cut.segments:
        assert seg.estimate.lut == pytest.approx(
            sum(estimate_stage(s, A35T).lut for s in seg.design.stages)
        )
    huge = {second.inputs[0]: 1 << 18}  # 240 BRAM18
    with pytest.raises(PartitionError, match=rf"'{second.name}' \(MVAU\) with the glue FIFO"):
        partition(design, "3xxc7a35t", None, cap, 100.0, fifo_depths=huge)


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """The zoo's resnet8-small-w2a2 (16 x 16 inputs) folded for 2e4 FPS at 100 MHz."""
    pytest.importorskip("brevitas")
    from qloom.flow import compile_model

    path = tmp_path_factory.mktemp("resnet") / "resnet8-small-w2a2.onnx"
    argv = ["export", "--model", "resnet8-small-w2a2", "--out", str(path), "--in-size", "16"]
    assert main(argv) == 0
    compiled = compile_model(path)
    return compiled, fold_design(compiled.integer, 2e4, 100.0, "xc7a35t", bram_prices=(1.0,))


def test_residual_cuts_only_where_one_stream_crosses(resnet):
    """Inside a residual block the main path and the bypass both cross: no cut there."""
    design = resnet[1].design
    cuts = cut_points(design)
    for k, s in cuts.items():
        made = {design.input_stream} | {o for st in design.stages[:k] for o in st.outputs}
        assert [i for st in design.stages[k:] for i in st.inputs if i in made] == [s]
    adds = [i for i, s in enumerate(design.stages) if s.kind == "Add"]
    dups = [i for i, s in enumerate(design.stages) if s.kind == "Duplicate"]
    for d, a in zip(dups, adds, strict=True):  # no cut between a block's fork and its join
        assert not [k for k in cuts if d < k <= a]


# -- the errors ------------------------------------------------------------------------------------
def test_stage_larger_than_every_device_is_named(tfc):
    design = tfc[1].design
    est = estimate_stage(design.stage("MatMul_20"), A35T).as_dict()
    with pytest.raises(PartitionError) as e:
        partition(design, "4xxc7a35t", None, 0.05, 100.0, tfc[1].budget_cycles)
    assert str(e.value) == (
        f"stage 'MatMul_20' (MVAU) alone does not fit any of the devices at 5% utilization: "
        f"estimated LUT {est['LUT']:,}, FF {est['FF']:,}, BRAM {est['BRAM']}, DSP {est['DSP']} "
        "on xc7a35t, which offers LUT 1,040, FF 2,080, BRAM 5 (over), DSP 4. Fold it further "
        "(a lower --target-fps), raise --max-utilization or add a larger part to --devices"
    )


def test_slow_link_names_the_link_and_the_fps_it_allows(tfc, tmp_path, capsys):
    design, budget = tfc[1].design, tfc[1].budget_cycles
    with pytest.raises(PartitionError) as e:
        partition(design, "4xxc7a35t", "0.001", 0.08, 100.0, budget)
    msg = (
        "link 0 (0.001gbps, stream '51' after stage 'MatMul_20': 128 bits/frame at 0.01 "
        "bits/cycle) needs 12,800 cycles/frame, more than the budget of 1,000 cycles/frame for "
        "100,000 FPS at 100 MHz: it allows at most 7,812 FPS. Use a faster link (--link eth-1g "
        "or aurora-10g or qsfp28-100g), a target <= 7,812 FPS, or larger devices (fewer cuts; "
        "the design needs 2 of the given ones)"
    )
    assert str(e.value) == msg
    # without a target the chain runs at the link's pace, and says so
    p = partition(design, "4xxc7a35t", "0.01", 0.08, 100.0)
    assert p.cycles_per_frame() == 1280 and p.bottleneck() == "link 0 (0.01gbps, stream '51')"
    # the command line: exit 2, the same message (the folding target's budget is 1,000)
    argv = ["build", str(tfc_path("TFC_2W2A")), "--out", str(tmp_path), "--devices",
            "4xxc7a35t", "--max-utilization", "0.08", "--target-fps", "1e5", "--link", "0.001",
            "--sim-frames", "0"]  # fmt: skip
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert msg.replace("the design needs", "the target 100000 FPS design needs") in err


def test_too_few_devices_says_how_many(tfc):
    with pytest.raises(PartitionError) as e:
        partition(tfc[1].design, "xc7a35t", None, 0.08, 100.0, tfc[1].budget_cycles)
    assert str(e.value).endswith(
        "it needs 2 (1 more xc7a35t). Give more devices (e.g. --devices 2xxc7a35t), raise "
        "--max-utilization or lower the target"
    )
    assert main(["build", "m.onnx", "--link", "eth-1g"]) == 2  # --link without --devices


# -- the chain in Verilator ------------------------------------------------------------------------
def test_chain_is_bit_exact_at_the_pace_of_its_slowest_stage_or_link(tfc, tfc_inputs):
    from qloom.flow import run_integer
    from qloom.sim.chain import simulate_chain, simulate_segments
    from qloom.sim.design import size_fifos

    compiled, fold = tfc
    q = tfc_inputs[1]
    want = run_integer(compiled.integer, q)[compiled.integer.outputs[0]]
    depths = size_fifos(fold.design, q[:8])  # as the build sizes them
    p = partition(fold.design, "4xxc7a35t", "aurora-10g", 0.08, 100.0, fold.budget_cycles)
    stalled = simulate_chain(p, q, fifo_depths=depths, in_valid_prob=0.6, out_ready_prob=0.7,
                             seed=3).check()  # fmt: skip
    assert np.array_equal(stalled.outputs[compiled.integer.outputs[0]], want)
    full = simulate_chain(p, q, fifo_depths=depths).check()
    assert np.array_equal(full.outputs[compiled.integer.outputs[0]], want)
    assert full.cycles_per_frame == p.cycles_per_frame() == 896
    (lk,) = full.links
    assert lk.latency_min == lk.latency_formula == 41  # 8 bits at 100 bits/cycle, then 40
    # a link slower than every stage sets the pace: 128 bits/frame at 0.1 bits/cycle
    slow = partition(fold.design, "4xxc7a35t", "0.01:300", 0.08, 100.0)
    res = simulate_chain(slow, q, fifo_depths=depths).check()
    assert np.array_equal(res.outputs[compiled.integer.outputs[0]], want)
    assert slow.cycles_per_frame() == 1280 and abs(res.cycles_per_frame - 1280) <= 1
    assert res.links[0].latency_min == 80 + 300  # 8 bits at 0.1 bits/cycle, then 300
    # each segment top alone: bit-exact at its cut; the first runs at its formula, the second
    # (FIFOs sized for the chain's pace) at most at the chain's pace
    alone = simulate_segments(p, q, fifo_depths=depths)
    assert [s.mismatches for s in alone] == [0, 0] and all(s.ok for s in alone)
    assert alone[0].cycles_per_frame == alone[0].formula == 896
    assert alone[1].formula == 640 and alone[1].cycles_per_frame <= 896


def test_residual_chain_across_three_devices_under_stalls(resnet):
    from qloom.flow import run_integer
    from qloom.sim.chain import simulate_chain
    from qloom.sim.design import generous_depths

    c, fold = resnet
    p = partition(fold.design, "4xxc7a35t", "eth-1g", 0.08, 100.0, fold.budget_cycles)
    assert len(p.segments) == 3 and [s.kind for s in p.segments[1].design.stages][0] == (
        "Duplicate"
    )  # each later segment starts a residual block
    q = c.hardware_input(np.random.default_rng(1).random((20, 3, 16, 16), dtype=np.float32))
    want = run_integer(c.integer, q)[c.integer.outputs[0]]
    depths = generous_depths(fold.design)  # two frames per glue FIFO: never a deadlock
    res = simulate_chain(p, q, fifo_depths=depths, in_valid_prob=0.6, out_ready_prob=0.5,
                         seed=2).check()  # fmt: skip
    assert np.array_equal(res.outputs[c.integer.outputs[0]], want)
    assert [lk.latency_min == lk.latency_formula for lk in res.links] == [True, True]
    full = simulate_chain(p, q, fifo_depths=depths).check()
    assert abs(full.cycles_per_frame - p.cycles_per_frame()) <= 0.01 * p.cycles_per_frame()


# -- the build -------------------------------------------------------------------------------------
def test_build_writes_segments_and_lists_them(tfc_inputs, tmp_path, capsys):
    data = tfc_inputs[0]
    argv = ["build", str(tfc_path("TFC_2W2A")), "--out", str(tmp_path), "--devices",
            "3xxc7a35t", "--max-utilization", "0.08", "--target-fps", "1e5", "--data",
            str(data), "--sim-frames", "24"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "device 1: xc7a35t (5 stages)" in out and "link 0: device 0 -> 1" in out
    d = tmp_path / "TFC_2W2A"
    report = json.loads((d / "report.json").read_text())
    part = report["partition"]
    assert [s["stages"] for s in part["devices"]] == [
        ["MatMul_20"],
        ["MatMul_32_dwc_51", "MatMul_32", "MatMul_44_dwc_63", "MatMul_44", "MatMul_56"],
    ]
    assert [s["part"] for s in part["devices"]] == ["xc7a35t", "xc7a35t"]
    assert all(s["load"] <= 1 and s["utilization_percent"]["LUT"] > 0 for s in part["devices"])
    (link,) = part["links"]
    assert (link["stream"], link["cycles_per_frame"], link["bits_per_frame"]) == ("51", 16, 128)
    assert link["sim"]["mismatches"] == 0 and link["sim"]["beat_delay_min"] == 41
    assert report["sim"]["verdict"] == "yes" and report["sim"]["cycles_per_frame"] == 896
    assert report["totals"]["cycles_per_frame"] == part["cycles_per_frame"] == 896
    for s in part["devices"]:
        assert (d / s["dir"] / "rtl" / f"{s['rtl_top']}.v").is_file()
        assert s["sim"]["mismatches"] == 0
    assert not (d / "rtl").exists()  # a chain has no one-part top
    back = BuildReport.read(d)
    assert back.to_json() == report and back.partition.links[0].cycles_per_frame == 16
    # a one-part report has no partition section (report.json unchanged)
    one = BuildReport.from_json({k: v for k, v in report.items() if k != "partition"})
    assert "partition" not in one.to_json()
    assert math.isclose(report["totals"]["fps_at_clock"], 1e8 / 896)
    html = (d / "report.html").read_text()  # where the cuts are, and the segments' folders
    assert "Devices (the pipeline cut across parts)" in html and "aurora-10g" in html
    assert "href='segments/1_xc7a35t/'" in html and "href='rtl/'" not in html


def test_stage_whose_memory_outgrows_every_device_says_folding_will_not_help(tfc):
    """A layer whose weights alone exceed what the part can store (block RAM and LUTs at the
    cap) gets other advice than folding: folding moves work, not weight bits."""
    design = tfc[1].design
    bits = design.stage("MatMul_20").memory_bits()  # 784 x 64 x 2-bit weights: 100,352 bits
    cap = {"LUT": 0.001, "BRAM": 0.02}  # 20 LUTs and 2 BRAM18: far less than that
    with pytest.raises(PartitionError, match=r"stage 'MatMul_20' \(MVAU\) alone") as e:
        partition(design, "4xxc7a35t", None, cap, 100.0)
    assert f"Its memories hold {bits / 1e6:.1f} Mbit" in str(e.value)
    assert "whatever the folding" in str(e.value) and "Fold it further" not in str(e.value)
