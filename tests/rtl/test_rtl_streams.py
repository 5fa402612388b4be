"""FIFO, data-width converter, duplicate and add: random backpressure and full rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rtl_golden import add as add_model
from rtl_golden import beats, decode, dwc, rand_raw
from rtl_support import build_lib, needs_verilator, run_check

pytestmark = needs_verilator


def _words(rng, n, width):
    mask = (1 << width) - 1
    return [int.from_bytes(rng.bytes((width + 7) // 8), "little") & mask for _ in range(n)]


# ------------------------------------------------------------------------------------- FIFO


def _fifo(width, depth, style="auto"):
    return build_lib(
        "qloom_fifo",
        {"WIDTH": width, "DEPTH": depth, "RAM_STYLE": style},
        [("s_axis", width)],
        [("m_axis", width)],
        monitor=["qloom_fifo.count"],
    )


@pytest.mark.parametrize("width,depth", [(8, 1), (70, 100)])
def test_fifo_backpressure_and_rate(width, depth):
    m = _fifo(width, depth)
    rng = np.random.default_rng(depth)
    data = _words(rng, 600, width)
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7), (1.0, 0.3)]):
        res = run_check(m, [data], [data], pi, po, seed=seed)
        assert res.monitor_max["qloom_fifo.count"] <= depth
    res = run_check(m, [data], [data])
    assert res.cycles <= len(data) + 4  # one beat per cycle, small latency
    # a stalled consumer fills the FIFO exactly to its depth
    res = run_check(m, [data], [data], 1.0, 0.05, seed=9)
    assert res.monitor_max["qloom_fifo.count"] == depth


@settings(max_examples=12, deadline=None)
@given(
    data=st.lists(st.integers(0, 2**33 - 1), min_size=0, max_size=80),
    p_in=st.floats(0.2, 1.0),
    p_out=st.floats(0.2, 1.0),
    seed=st.integers(0, 1000),
)
def test_fifo_lutram_hypothesis(data, p_in, p_out, seed):
    m = _fifo(33, 5)
    run_check(m, [data], [data], p_in, p_out, seed=seed)


# ------------------------------------------------------------------------------------- DWC


@pytest.mark.parametrize("win,wout", [(16, 4), (3, 12), (8, 8)])
def test_dwc(win, wout):
    m = build_lib(
        "qloom_dwc", {"IN_WIDTH": win, "OUT_WIDTH": wout}, [("s_axis", win)], [("m_axis", wout)]
    )
    rng = np.random.default_rng(win * 100 + wout)
    n = 480 // win * 4
    data = _words(rng, n, win)
    exp = dwc(data, win, wout)
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7)]):
        run_check(m, [data], [exp], pi, po, seed=seed)
    res = run_check(m, [data], [exp])
    assert res.cycles <= max(len(data), len(exp)) + 3


# ------------------------------------------------------------------------------------- duplicate


def test_duplicate():
    w = 77
    m = build_lib(
        "qloom_duplicate", {"WIDTH": w}, [("s_axis", w)], [("m0_axis", w), ("m1_axis", w)]
    )
    rng = np.random.default_rng(5)
    data = _words(rng, 500, w)
    for seed, (pi, po) in enumerate([(0.6, [0.5, 0.7]), (1.0, [0.2, 1.0]), (0.5, [0.9, 0.3])]):
        run_check(m, [data], [data, data], pi, po, seed=seed)
    res = run_check(m, [data], [data, data])
    assert res.cycles <= len(data) + 2


# ------------------------------------------------------------------------------------- add


def test_add():
    P = dict(
        N=12, PE=3, ABITS=4, ASIGNED=1, BBITS=3, BSIGNED=0, OBITS=7, A_MUL=-3, B_MUL=2, BIAS=-5
    )
    m = build_lib("qloom_add", P, [("s0_axis", 3 * 4), ("s1_axis", 3 * 3)], [("m_axis", 3 * 7)])
    rng = np.random.default_rng(7)
    frames = 40
    a = rand_raw(rng, (frames, P["N"]), P["ABITS"])
    b = rand_raw(rng, (frames, P["N"]), P["BBITS"])
    out = add_model(a, b, 4, True, 3, False, 7, -3, 2, -5)
    ins = [beats(a, 3, 4), beats(b, 3, 3)]
    exp = [beats(out, 3, 7)]
    for seed, (pi, po) in enumerate([([0.6, 0.5], 0.5), ([1.0, 0.3], 0.7), ([0.5, 0.5], 1.0)]):
        run_check(m, ins, exp, pi, po, seed=seed)
    res = run_check(m, ins, exp)
    assert res.cycles <= len(exp[0]) + 2


# ------------------------------------------------------------------------------------- concat

CONCAT_CASES = {
    # signed 4-bit and unsigned 3-bit into 5-bit elements, 2 per beat
    "s4-u3-pe2": dict(CH0=4, CH1=6, PE=2, BITS0=4, SIGNED0=1, BITS1=3, SIGNED1=0, OBITS=5),
    # 1-bit (bipolar) data on both sides, one channel per beat
    "bin-pe1": dict(CH0=3, CH1=2, PE=1, BITS0=1, BITS1=1, OBITS=1),
}


@pytest.mark.parametrize("name", list(CONCAT_CASES))
def test_concat(name):
    P = CONCAT_CASES[name]
    pe, b0, b1, ob = P["PE"], P["BITS0"], P["BITS1"], P["OBITS"]
    m = build_lib("qloom_concat", P, [("s0_axis", pe * b0), ("s1_axis", pe * b1)],
                  [("m_axis", pe * ob)])  # fmt: skip
    rng = np.random.default_rng(11 + len(name))
    pixels = 30
    a = rand_raw(rng, (pixels, P["CH0"]), b0)
    b = rand_raw(rng, (pixels, P["CH1"]), b1)
    va, vb = decode(a, b0, bool(P.get("SIGNED0"))), decode(b, b1, bool(P.get("SIGNED1")))
    out = np.concatenate([va, vb], axis=1) & ((1 << ob) - 1)
    ins, exp = [beats(a, pe, b0), beats(b, pe, b1)], [beats(out, pe, ob)]
    for seed, (pi, po) in enumerate([([0.6, 0.5], 0.5), ([1.0, 0.3], 0.7), ([0.5, 0.5], 1.0)]):
        run_check(m, ins, exp, pi, po, seed=seed)
    res = run_check(m, ins, exp)
    assert res.cycles <= len(exp[0]) + 2  # one output beat per cycle
