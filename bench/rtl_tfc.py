"""RTL simulation of the TFC models on the MNIST test set: the stitched Verilog top level in
Verilator, every output compared with the integer executor.

    .venv/bin/python bench/rtl_tfc.py [--limit N] [--models TFC_1W1A,...] [--foldings a,b]

Prints one row per (model, folding): frames, mismatches vs the integer executor, top-1
accuracy, measured cycles/frame (median frame interval at full rate) vs the analytic
`design.cycles_per_frame()`, first-frame latency, total glue FIFO depth (sized by
`size_fifos` on 8 images unless --fifos default), build and simulation time, simulated
cycles per second.
Not a test: no timing thresholds. Needs Verilator (qloom[hw]) and ../shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from qloom.fold import parallel_folding

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QLOOM_SHARED", ROOT.parent / "shared"))
MODELS = ["TFC_1W1A", "TFC_1W2A", "TFC_2W2A"]
FOLDINGS = ["serial", "middle", "fast", "parallel"]


def tfc_folding(design, which: str) -> dict:
    """serial: PE = SIMD = 1 (50176 cycles/frame); middle: 128 cycles/frame with DWCs;
    fast: 16 cycles/frame; parallel: PE = MH and SIMD = MW everywhere (1 cycle/frame)."""
    thr = next(s.name for s in design.stages if s.kind == "Thresholding")
    mvaus = [s.name for s in design.stages if s.kind == "MVAU"]
    if which == "serial":
        return {}
    if which == "parallel":
        return parallel_folding(design)
    if which == "middle":
        plan = [(16, 49), (4, 8), (2, 32), (5, 4)]
        fold = {thr: {"PE": 8}}
    elif which == "fast":
        plan = [(16, 196), (16, 16), (16, 16), (5, 16)]
        fold = {thr: {"PE": 49}}
    else:
        raise ValueError(which)
    for name, (pe, simd) in zip(mvaus, plan, strict=True):
        fold[name] = {"PE": pe, "SIMD": simd, "ram_style": "distributed"}
    return fold


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=0, help="first N test images (0: all 10,000)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--foldings", default=",".join(FOLDINGS))
    ap.add_argument(
        "--fifos",
        choices=["sized", "default"],
        default="sized",
        help="sized: glue FIFOs from size_fifos on 8 images (default); default: depth 2",
    )
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from qloom.data import load_dataset
    from qloom.dataflow import to_dataflow
    from qloom.flow import compile_model, predictions, run_integer
    from qloom.frontend.domain import RAW_PIXELS
    from qloom.sim.design import simulate, size_fifos

    images, labels = load_dataset("mnist", "test")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    n = len(images)
    table = Table(title=f"RTL simulation (Verilator) of TFC on {n} MNIST test images")
    for col in ("model", "folding", "frames", "mismatches", "accuracy", "cycles/frame",
                "formula", "latency", "FIFO beats", "build s", "sim s", "M cycles/s"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("model", "folding") else "right")
    console = Console()
    failed = False
    for model in args.models.split(","):
        path = SHARED / "models" / "mnist-tfc" / f"{model}.onnx"
        if not path.exists():
            console.print(f"skipping {model}: {path} not present")
            continue
        graph = compile_model(path, RAW_PIXELS).integer
        ref = run_integer(graph, images)
        for which in args.foldings.split(","):
            design = to_dataflow(graph, tfc_folding(to_dataflow(graph), which))
            t0 = time.monotonic()
            depths = size_fifos(design, images[:8]) if args.fifos == "sized" else None
            res = simulate(design, images, fifo_depths=depths)
            if not res.ok:
                failed = True
                table.add_row(model, which, str(n), "FAILED", "-", "-",
                              str(design.cycles_per_frame()), "-", "-", "-", "-", "-")  # fmt: skip
                console.print(res.problems, res.diagnosis)
                continue
            bad = np.zeros(n, dtype=bool)
            for t in graph.outputs:
                bad |= ~np.all(res.outputs[t].reshape(n, -1) == ref[t].reshape(n, -1), axis=1)
            failed |= bool(bad.any())
            acc = float(np.mean(predictions(graph, res.outputs) == labels))
            row = [
                model,
                which,
                str(n),
                str(int(bad.sum())),
                f"{100 * acc:.2f} %",
                f"{res.cycles_per_frame:,.1f}" if res.cycles_per_frame else "-",
                f"{design.cycles_per_frame():,}",
                f"{res.latency:,}" if res.latency else "-",
                str(sum(res.fifo_depths.values())),
                f"{res.build_s:.1f}",
                f"{res.wall_s:.1f}",
                f"{res.cycles_per_second / 1e6:.2f}",
            ]
            table.add_row(*row)
            print("  ".join(row), f"(total {time.monotonic() - t0:.1f} s)", flush=True)
    console.print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
