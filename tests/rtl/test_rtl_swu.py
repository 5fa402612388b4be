"""qloom_swu (sliding window / im2col) against the numpy model, with padding and strides."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_golden import beats, rand_raw, swu, swu_dims
from rtl_support import build_lib, needs_verilator, run_check

pytestmark = needs_verilator

BASE = dict(STRIDE_H=1, STRIDE_W=1, PAD_T=0, PAD_L=0, PAD_B=0, PAD_R=0, PAD_VALUE=0)
CASES = {
    # binary 3x3 "same" convolution, PE-folded channels (SIMD = 1)
    "bin-3x3-same": dict(
        IFM_H=6, IFM_W=6, CH=2, SIMD=1, K_H=3, K_W=3, PAD_T=1, PAD_L=1, PAD_B=1, PAD_R=1, BITS=1
    ),
    # asymmetric kernel/padding, stride 2 rows (last input row unused), pad value 9
    "k3x2-s2x1-asym": dict(
        IFM_H=7,
        IFM_W=5,
        CH=3,
        SIMD=3,
        K_H=3,
        K_W=2,
        STRIDE_H=2,
        PAD_T=1,
        PAD_R=1,
        BITS=4,
        PAD_VALUE=9,
    ),
    # 1x1 kernel, stride 2: input-bound downsampling
    "k1-s2": dict(IFM_H=6, IFM_W=6, CH=4, SIMD=2, K_H=1, K_W=1, STRIDE_H=2, STRIDE_W=2, BITS=2),
    # valid 3x3 convolution, all channels per beat, block RAM line buffer with one extra row
    "k3-valid-wide": dict(
        IFM_H=8, IFM_W=8, CH=8, SIMD=8, K_H=3, K_W=3, BITS=2, RAM_STYLE="block", BUF_ROWS=5
    ),
    # kernel larger than the image (heavy padding): whole image buffered
    "tiny-image": dict(
        IFM_H=2,
        IFM_W=2,
        CH=1,
        SIMD=1,
        K_H=3,
        K_W=3,
        PAD_T=1,
        PAD_L=1,
        PAD_B=1,
        PAD_R=1,
        BITS=3,
        PAD_VALUE=7,
    ),
    # depthwise order for a VVAU with SIMD = 3: one kernel row of 2 channels per beat, padded,
    # stride 2 (the next frame's rows load while this one's windows are read)
    "dw-ks3-pad-s2": dict(
        IFM_H=5,
        IFM_W=5,
        CH=4,
        SIMD=2,
        K_H=3,
        K_W=3,
        BITS=3,
        KSIMD=3,
        PAD_T=1,
        PAD_L=1,
        PAD_B=1,
        PAD_R=1,
        STRIDE_H=2,
        STRIDE_W=2,
        PAD_VALUE=5,
    ),  # fmt: skip
    # the whole 3x3 kernel of one channel per beat (a VVAU with SIMD = K2): whole rows per beat
    "dw-ks9-valid": dict(IFM_H=5, IFM_W=4, CH=2, SIMD=1, K_H=3, K_W=3, BITS=2, KSIMD=9),
}


def _setup(name, frames, seed):
    P = {**BASE, **CASES[name]}
    simd, bits, ks = P["SIMD"], P["BITS"], P.get("KSIMD", 1)
    m = build_lib("qloom_swu", P, [("s_axis", simd * bits)], [("m_axis", ks * simd * bits)])
    rng = np.random.default_rng(seed)
    img = rand_raw(rng, (frames, P["IFM_H"], P["IFM_W"], P["CH"]), bits)
    win = swu(
        img,
        P["K_H"],
        P["K_W"],
        P["STRIDE_H"],
        P["STRIDE_W"],
        P["PAD_T"],
        P["PAD_L"],
        P["PAD_B"],
        P["PAD_R"],
        P["PAD_VALUE"],
    )
    if ks > 1:  # depthwise order: per window, channel group, then position, then channel
        f, oh, ow = win.shape[:3]
        win = win.reshape(f, oh, ow, P["K_H"] * P["K_W"], P["CH"] // simd, simd)
        win = win.transpose(0, 1, 2, 4, 3, 5)
    return P, m, [beats(img, simd, bits)], [beats(win, ks * simd, bits)]


@pytest.mark.parametrize("name", list(CASES))
def test_swu_backpressure(name):
    _, m, ins, exp = _setup(name, 3, 1)
    for seed, (pi, po) in enumerate([(0.6, 0.5), (0.5, 0.7), (1.0, 0.3), (0.3, 1.0)]):
        run_check(m, ins, exp, pi, po, seed=seed)


@pytest.mark.parametrize("name", list(CASES))
def test_swu_full_rate(name):
    frames = 40
    P, m, ins, exp = _setup(name, frames, 2)
    res = run_check(m, ins, exp)
    per_frame = max(len(ins[0]), len(exp[0])) / frames
    oh, ow = swu_dims(
        P["IFM_H"],
        P["IFM_W"],
        P["K_H"],
        P["K_W"],
        P["STRIDE_H"],
        P["STRIDE_W"],
        P["PAD_T"],
        P["PAD_L"],
        P["PAD_B"],
        P["PAD_R"],
    )
    window_beats = P["K_H"] * P["K_W"] * P["CH"] // (P["SIMD"] * P.get("KSIMD", 1))
    assert len(exp[0]) == frames * oh * ow * window_beats
    ratio = res.cycles / (frames * per_frame)
    print(f"{name}: {res.cycles} cycles for {frames} frames, {ratio:.3f} x max(in, out) beats")
    assert ratio <= 1.05 or res.cycles <= frames * per_frame + 200
