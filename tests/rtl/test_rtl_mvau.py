"""qloom_mvau against the numpy model: binary and multi-bit, folded and fully parallel."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from rtl_golden import (
    beats,
    mvau,
    mvau_weight_words,
    rand_raw,
    random_thresholds,
    threshold_words,
    write_hex,
)
from rtl_support import build_lib, needs_verilator, run_check

pytestmark = needs_verilator

BASE = dict(
    IBITS=1,
    ISIGNED=0,
    WBITS=1,
    WSIGNED=0,
    BINARY=1,
    IBIPOLAR=0,
    WBIPOLAR=0,
    NT=0,
    TBITS=16,
    OBITS=16,
    OUT_BASE=0,
)

CASES = {
    # binary, fully folded (PE = SIMD = 1), one threshold (bipolar activation)
    "bin-folded": dict(MW=8, MH=4, PE=1, SIMD=1, ACC_BITS=4, NT=1, TBITS=5, OBITS=1),
    # binary, fully parallel, wide input (96 bits: VlWide), raw accumulator output
    "bin-parallel": dict(MW=96, MH=8, PE=8, SIMD=96, ACC_BITS=7),
    # unsigned 4-bit inputs x signed 3-bit weights, 3 thresholds, signed 2-bit outputs
    "u4xs3-thr": dict(
        BINARY=0,
        IBITS=4,
        ISIGNED=0,
        WBITS=3,
        WSIGNED=1,
        MW=12,
        MH=6,
        SIMD=3,
        PE=2,
        ACC_BITS=10,
        NT=3,
        TBITS=10,
        OBITS=2,
        OUT_BASE=-1,
    ),
    # signed 8 x signed 8, raw 20-bit accumulators, block RAM weights
    "s8xs8-acc": dict(
        BINARY=0,
        IBITS=8,
        ISIGNED=1,
        WBITS=8,
        WSIGNED=1,
        MW=6,
        MH=4,
        SIMD=2,
        PE=4,
        ACC_BITS=20,
        RAM_STYLE="block",
    ),
    # bipolar weights with unsigned 2-bit activations (TFC 1W2A style), wrapping 5-bit acc
    "bipw-u2": dict(
        BINARY=0,
        IBITS=2,
        ISIGNED=0,
        WBITS=1,
        WBIPOLAR=1,
        MW=10,
        MH=6,
        SIMD=5,
        PE=3,
        ACC_BITS=5,
        NT=3,
        TBITS=6,
        OBITS=2,
    ),
    # fully parallel multi-bit with SIMD > 64 (TFC 2W2A's first layer, narrower): the dot
    # product's loops stay loops in Verilator; signed 2-bit x signed 2-bit, 2 thresholds
    "s2xs2-parallel": dict(
        BINARY=0,
        IBITS=2,
        ISIGNED=1,
        WBITS=2,
        WSIGNED=1,
        MW=100,
        MH=4,
        SIMD=100,
        PE=4,
        ACC_BITS=10,
        NT=2,
        TBITS=8,
        OBITS=2,
        OUT_BASE=-1,
    ),
    # bipolar inputs x unsigned 3-bit weights, two SIMD folds of 70, raw accumulators
    "bipi-u3-wide": dict(
        BINARY=0,
        IBITS=1,
        IBIPOLAR=1,
        WBITS=3,
        WSIGNED=0,
        MW=140,
        MH=6,
        SIMD=70,
        PE=3,
        ACC_BITS=11,
    ),
    # bipolar weights x unsigned 2-bit activations, fully parallel, 66 lanes
    "bipw-u2-parallel": dict(
        BINARY=0,
        IBITS=2,
        ISIGNED=0,
        WBITS=1,
        WBIPOLAR=1,
        MW=66,
        MH=5,
        SIMD=66,
        PE=5,
        ACC_BITS=9,
    ),
}


def _setup(name, rng, tmp_path, n_vec):
    P = {**BASE, **CASES[name]}
    mw, mh, pe, simd = P["MW"], P["MH"], P["PE"], P["SIMD"]
    ow = P["OBITS"] if P["NT"] else P["ACC_BITS"]
    params = dict(P, WEIGHT_FILE="w.hex")
    if P["NT"]:
        params["THRESH_FILE"] = "t.hex"
    m = build_lib("qloom_mvau", params, [("s_axis", simd * P["IBITS"])], [("m_axis", pe * ow)])
    x = rand_raw(rng, (n_vec, mw), P["IBITS"])
    W = rand_raw(rng, (mh, mw), P["WBITS"])
    write_hex(
        tmp_path / "w.hex", mvau_weight_words(W, pe, simd, P["WBITS"]), pe * simd * P["WBITS"]
    )
    T = None
    if P["NT"]:
        acc_lo = 0 if P["BINARY"] else -(1 << (P["ACC_BITS"] - 1))
        acc_hi = mw if P["BINARY"] else (1 << (P["ACC_BITS"] - 1)) - 1
        spread = max(2, (acc_hi - acc_lo) // 3)
        mid = (acc_lo + acc_hi) // 2
        T = random_thresholds(rng, mh, P["NT"], mid - spread, mid + spread, P["TBITS"])
        write_hex(tmp_path / "t.hex", threshold_words(T, pe, P["TBITS"]), pe * P["NT"] * P["TBITS"])
    out = mvau(
        x,
        W,
        ibits=P["IBITS"],
        isigned=bool(P["ISIGNED"]),
        wbits=P["WBITS"],
        wsigned=bool(P["WSIGNED"]),
        binary=bool(P["BINARY"]),
        acc_bits=P["ACC_BITS"],
        ibipolar=bool(P["IBIPOLAR"]),
        wbipolar=bool(P["WBIPOLAR"]),
        T=T,
        out_base=P["OUT_BASE"],
        obits=P["OBITS"],
    )
    ins = [beats(x, simd, P["IBITS"])]
    exp = [beats(out, pe, ow)]
    return P, m, ins, exp


@pytest.mark.parametrize("name", list(CASES))
def test_mvau_backpressure(name, tmp_path):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    _, m, ins, exp = _setup(name, rng, tmp_path, 24)
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7), (1.0, 0.3)]):
        run_check(m, ins, exp, pi, po, seed=seed, cwd=tmp_path)


@pytest.mark.parametrize("name", list(CASES))
def test_mvau_full_rate(name, tmp_path):
    rng = np.random.default_rng(1 + zlib.crc32(name.encode()))
    P, m, ins, exp = _setup(name, rng, tmp_path, 300)
    res = run_check(m, ins, exp, cwd=tmp_path)
    ideal = 300 * (P["MH"] // P["PE"]) * (P["MW"] // P["SIMD"])
    assert ideal <= res.cycles <= ideal * 1.03 + 6, (res.cycles, ideal)
