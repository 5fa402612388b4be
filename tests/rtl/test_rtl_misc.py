"""Thresholding, max-pool and label-select against numpy models."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_golden import (
    beats,
    decode,
    labelselect,
    maxpool,
    multithreshold,
    rand_raw,
    random_thresholds,
    threshold_words,
    write_hex,
)
from rtl_support import build_lib, needs_verilator, run_check

pytestmark = needs_verilator

# ------------------------------------------------------------------------------- thresholding

THR_CASES = {
    "pe1-signed": dict(CH=4, PE=1, IBITS=8, ISIGNED=1, NT=3, TBITS=9, OBITS=2, OUT_BASE=0),
    "pe-all-unsigned": dict(CH=6, PE=6, IBITS=5, ISIGNED=0, NT=7, TBITS=6, OBITS=4, OUT_BASE=-3),
}


@pytest.mark.parametrize("name", list(THR_CASES))
def test_thresholding(name, tmp_path):
    P = dict(THR_CASES[name], THRESH_FILE="t.hex")
    ch, pe, ib = P["CH"], P["PE"], P["IBITS"]
    m = build_lib("qloom_thresholding", P, [("s_axis", pe * ib)], [("m_axis", pe * P["OBITS"])])
    rng = np.random.default_rng(len(name))
    lo = -(1 << (ib - 1)) if P["ISIGNED"] else 0
    hi = lo + (1 << ib) - 1
    T = random_thresholds(rng, ch, P["NT"], lo - 1, hi + 1, P["TBITS"])
    write_hex(tmp_path / "t.hex", threshold_words(T, pe, P["TBITS"]), pe * P["NT"] * P["TBITS"])
    pixels = 150
    x = rand_raw(rng, (pixels, ch), ib)
    out = multithreshold(decode(x, ib, bool(P["ISIGNED"])), T, P["OUT_BASE"], P["OBITS"])
    ins, exp = [beats(x, pe, ib)], [beats(out, pe, P["OBITS"])]
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7)]):
        run_check(m, ins, exp, pi, po, seed=seed, cwd=tmp_path)
    res = run_check(m, ins, exp, cwd=tmp_path)
    assert res.cycles <= len(exp[0]) + 3


# ------------------------------------------------------------------------------- max-pool

MP_CASES = {
    # binary data (OR), remainder row/column dropped, PE = 1
    "bin-2x2-floor": dict(IFM_H=5, IFM_W=7, CH=3, K=2, STRIDE=2, PE=1, BITS=1, SIGNED=0),
    # signed 4-bit, 3x3 windows, all channels in one beat
    "s4-3x3": dict(IFM_H=6, IFM_W=6, CH=4, K=3, STRIDE=3, PE=4, BITS=4, SIGNED=1),
    # a 1-D signal (L x 1 image), windows of 3 x 1, remainder dropped
    "s3-1d-3x1": dict(
        IFM_H=17, IFM_W=1, CH=4, K=3, STRIDE=3, K_W=1, STRIDE_W=1, PE=2, BITS=3, SIGNED=1
    ),  # fmt: skip
    # non-square 2-D windows
    "u2-2x3": dict(
        IFM_H=4, IFM_W=7, CH=2, K=2, STRIDE=2, K_W=3, STRIDE_W=3, PE=1, BITS=2, SIGNED=0
    ),  # fmt: skip
    # sum pooling (the SumPool stage): unsigned 3-bit into 5-bit sums; signed 4-bit, 1-D
    "sum-u3-2x2": dict(
        IFM_H=5, IFM_W=4, CH=4, K=2, STRIDE=2, PE=2, BITS=3, SIGNED=0, SUM=1, OBITS=5
    ),
    "sum-s4-4x1": dict(
        IFM_H=12,
        IFM_W=1,
        CH=3,
        K=4,
        STRIDE=4,
        K_W=1,
        STRIDE_W=1,
        PE=3,
        BITS=4,
        SIGNED=1,
        SUM=1,
        OBITS=6,
    ),
}


@pytest.mark.parametrize("name", list(MP_CASES))
def test_maxpool(name):
    P = MP_CASES[name]
    pe, bits = P["PE"], P["BITS"]
    obits = P.get("OBITS", 0)
    m = build_lib("qloom_maxpool", P, [("s_axis", pe * bits)], [("m_axis", pe * (obits or bits))])
    rng = np.random.default_rng(3 + len(name))
    frames = 6
    img = rand_raw(rng, (frames, P["IFM_H"], P["IFM_W"], P["CH"]), bits)
    out = maxpool(img, P["K"], bits, bool(P["SIGNED"]), P.get("K_W", 0), obits)
    ins, exp = [beats(img, pe, bits)], [beats(out, pe, obits or bits)]
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7), (1.0, 0.2)]):
        run_check(m, ins, exp, pi, po, seed=seed)
    res = run_check(m, ins, exp)
    in_beats = len(ins[0])
    # input-bound: one input beat per cycle; the last output leaves 1-2 cycles after the
    # last window's input beat (remainder rows at the end of the last frame come later)
    assert res.cycles <= in_beats + 2
    assert res.in_cycles[0][-1] <= in_beats + 1


# ------------------------------------------------------------------------------- window pool

WP_CASES = {
    "max-s4-3x3": dict(CH=6, PE=2, K2=9, BITS=4, SIGNED=1),
    "max-bin-2x2": dict(CH=4, PE=4, K2=4, BITS=1, SIGNED=0),
    "sum-u3-3x3": dict(CH=4, PE=1, K2=9, BITS=3, SIGNED=0, SUM=1, OBITS=7),
}


@pytest.mark.parametrize("name", list(WP_CASES))
def test_windowpool(name):
    P = WP_CASES[name]
    pe, bits, obits = P["PE"], P["BITS"], P.get("OBITS", P["BITS"])
    m = build_lib("qloom_windowpool", P, [("s_axis", pe * bits)], [("m_axis", pe * obits)])
    rng = np.random.default_rng(5 + len(name))
    pixels = 20
    win = rand_raw(rng, (pixels, P["K2"], P["CH"]), bits)  # the SWU's window stream
    v = decode(win, bits, bool(P["SIGNED"]))
    out = (v.sum(axis=1) if P.get("SUM") else v.max(axis=1)) & ((1 << obits) - 1)
    ins, exp = [beats(win, pe, bits)], [beats(out, pe, obits)]
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7), (1.0, 0.2)]):
        run_check(m, ins, exp, pi, po, seed=seed)
    res = run_check(m, ins, exp)
    assert res.cycles <= len(ins[0]) + 3  # one input beat per cycle


# ------------------------------------------------------------------------------- VVAU

VV_CASES = {
    # unsigned 4-bit activations x signed 4-bit weights, 3x3 taps, 2 channel groups
    "u4w4-3x3-pe2": dict(CH=4, PE=2, K2=9, IBITS=4, WBITS=4, ACC_BITS=12),
    # signed input, all channels per beat, narrow sums (the products are cut)
    "s3w2-pe-all": dict(CH=3, PE=3, K2=4, IBITS=3, ISIGNED=1, WBITS=2, ACC_BITS=5),
    # bipolar input and bipolar weights in the multi-bit datapath, one channel per beat
    "bip-bip-pe1": dict(
        CH=5, PE=1, K2=9, IBITS=1, IBIPOLAR=1, WBITS=1, WSIGNED=0, WBIPOLAR=1, ACC_BITS=5
    ),  # fmt: skip
    # one tap (first = last position)
    "u2w3-k1": dict(CH=2, PE=1, K2=1, IBITS=2, WBITS=3, ACC_BITS=6),
    # SIMD taps per beat (the SWU's depthwise order): a kernel row of 2 channels per beat
    "u4w4-pe2-simd3": dict(CH=4, PE=2, K2=9, SIMD=3, IBITS=4, WBITS=4, ACC_BITS=12),
    # the whole kernel of one channel per beat, signed input, narrow sums (products cut)
    "s3w2-pe1-simd9": dict(CH=3, PE=1, K2=9, SIMD=9, IBITS=3, ISIGNED=1, WBITS=2, ACC_BITS=5),
}


def _operand(raw, bits, signed, bipolar):
    return np.where(raw & 1, 1, -1) if bipolar else decode(raw, bits, signed)


@pytest.mark.parametrize("name", list(VV_CASES))
def test_vvau(name, tmp_path):
    P = dict(VV_CASES[name], WEIGHT_FILE="w.hex")
    ch, pe, k2, ib, wb, ab = P["CH"], P["PE"], P["K2"], P["IBITS"], P["WBITS"], P["ACC_BITS"]
    simd = P.get("SIMD", 1)
    m = build_lib("qloom_vvau", P, [("s_axis", simd * pe * ib)], [("m_axis", pe * ab)])
    rng = np.random.default_rng(7 + len(name))
    w_raw = rand_raw(rng, (ch, k2), wb)
    pixels = 30
    win = rand_raw(rng, (pixels, k2, ch), ib)  # the SWU's window stream, (kp, c) order
    x = _operand(win, ib, bool(P.get("ISIGNED", 0)), bool(P.get("IBIPOLAR", 0)))
    w = _operand(w_raw, wb, P.get("WSIGNED", 1) == 1, bool(P.get("WBIPOLAR", 0)))
    acc = np.einsum("pkc,ck->pc", x, w) & ((1 << ab) - 1)
    if simd == 1:
        # memory word kp * CH/PE + g, lane p = W[g*PE + p][kp]: the window stream's order
        write_hex(tmp_path / "w.hex", beats(w_raw.T, pe, wb), pe * wb)
    else:  # depthwise order: (g, kp, p) with SIMD positions x PE channels per beat
        win = win.reshape(pixels, k2, ch // pe, pe).transpose(0, 2, 1, 3)
        wt = w_raw.reshape(ch // pe, pe, k2).transpose(0, 2, 1)
        write_hex(tmp_path / "w.hex", beats(wt, simd * pe, wb), simd * pe * wb)
    ins, exp = [beats(win, simd * pe, ib)], [beats(acc, pe, ab)]
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7), (1.0, 0.2)]):
        run_check(m, ins, exp, pi, po, seed=seed, cwd=tmp_path)
    res = run_check(m, ins, exp, cwd=tmp_path)
    assert res.cycles <= len(ins[0]) + 3  # one input beat per cycle


# ------------------------------------------------------------------------------- label select

LS_CASES = {
    "pe1-top1": dict(N=10, PE=1, BITS=8, SIGNED=1, K=1),
    "pe5-top3-ties": dict(N=10, PE=5, BITS=2, SIGNED=0, K=3),
    "pe4-topall": dict(N=4, PE=4, BITS=3, SIGNED=1, K=4),
}


@pytest.mark.parametrize("name", list(LS_CASES))
def test_labelselect(name):
    P = LS_CASES[name]
    n, pe, bits, k = P["N"], P["PE"], P["BITS"], P["K"]
    iw = max(1, (n - 1).bit_length())
    m = build_lib("qloom_labelselect", P, [("s_axis", pe * bits)], [("m_axis", iw)])
    rng = np.random.default_rng(11 + len(name))
    frames = 60
    vals = rand_raw(rng, (frames, n), bits)  # 2-bit values: many ties
    out = labelselect(vals, k, bits, bool(P["SIGNED"]))
    ins, exp = [beats(vals, pe, bits)], [out.reshape(-1).tolist()]
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7)]):
        run_check(m, ins, exp, pi, po, seed=seed)
    res = run_check(m, ins, exp)
    # one input beat per cycle unless K > N/PE output beats per frame dominate
    assert res.cycles <= frames * max(n // pe, k) + k + 3
