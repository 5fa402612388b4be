"""RTL simulation of FINN's CNV topology (random weights) against the integer executor.

    .venv/bin/python bench/rtl_cnv.py [--frames 200] [--models cnv-w1a1,cnv-w2a2,...]
                                      [--target-fps 1e4] [--clock-mhz 100] [--device xczu9eg]

For each network (zoo names: cnv-w1a1 / cnv-w2a2 on 32x32x3 without padding, cnv-pad-w1a1 /
cnv-pad-w2a2 on 28x28x3 with padding=1): random weights, BN statistics from one random
training-mode batch (as bench/executor_speed.py's cnv_model), Brevitas QONNX export,
streamlining, folding by `fold_for_target(target FPS, device)`, glue FIFOs sized by
`size_fifos` on 3 frames, then `--frames` random uint8 images through the stitched Verilog
in Verilator, every
output compared with `run_integer`.

Prints one row per network: padding, input, folding target, frames, mismatches, cycles/frame
measured (median frame interval at full rate) vs the formula, first-frame latency, Verilator
build seconds of the final run (FIFO sizing is timed separately in the JSON) and simulation
seconds. Writes
bench/results/rtl_cnv.json. Not a test: no timing thresholds. Needs Verilator (qloom[hw]).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["cnv-w1a1", "cnv-w2a2", "cnv-pad-w1a1", "cnv-pad-w2a2"]


def cnv_onnx(name: str, in_size: int, out: Path, seed: int = 0) -> Path:
    """Zoo model `name` with random weights and BN statistics from one random batch."""
    import torch

    from qloom.train.export import export_qonnx
    from qloom.train.zoo import build_model

    torch.manual_seed(seed)
    model = build_model(name, 3, in_size, 10)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 3, in_size, in_size))
    return export_qonnx(model.eval(), out, in_shape=(1, 3, in_size, in_size))


def run_one(
    name: str, frames: int, target_fps: float, clock_mhz: float, device: str, work: Path
) -> dict:
    from qloom.flow import compile_model, run_integer
    from qloom.fold.solver import fold_design
    from qloom.frontend.domain import RAW_PIXELS
    from qloom.sim.design import simulate, size_fifos

    pad = "-pad-" in name
    size = 28 if pad else 32
    t0 = time.monotonic()
    path = cnv_onnx(name, size, work / f"{name}.onnx")
    graph = compile_model(path, RAW_PIXELS).integer
    fold = fold_design(graph, target_fps, clock_mhz, device)
    design = fold.design
    compile_s = time.monotonic() - t0
    images = np.random.default_rng(1).integers(0, 256, (frames, 3, size, size), dtype=np.uint8)
    t0 = time.monotonic()
    ref = run_integer(graph, images)
    ref_s = time.monotonic() - t0
    t0 = time.monotonic()
    depths = size_fifos(design, images[:3])
    sizing_s = time.monotonic() - t0
    res = simulate(design, images, fifo_depths=depths)
    row = {
        "network": name,
        "padding": 1 if pad else 0,
        "input": f"3x{size}x{size}",
        "target_fps": target_fps,
        "device": device,
        "budget_cycles": fold.budget_cycles,
        "frames": frames,
        "ok": res.ok,
        "problems": res.problems + res.diagnosis,
        "formula_cycles": design.cycles_per_frame(),
        "stages": len(design.stages),
        "compile_s": compile_s,
        "integer_s": ref_s,
        "fifo_sizing_s": sizing_s,
        "build_s": res.build_s,
        "sim_s": res.wall_s,
        "folding": fold.folding,
    }
    if res.ok:
        bad = np.zeros(frames, dtype=bool)
        for t in graph.outputs:
            got, want = res.outputs[t].reshape(frames, -1), ref[t].reshape(frames, -1)
            bad |= ~np.all(got == want, axis=1)
        row.update(
            mismatches=int(bad.sum()),
            cycles_per_frame=res.cycles_per_frame,
            latency=res.latency,
            fifo_beats=sum(res.fifo_depths.values()),
            cycles_per_s=res.cycles_per_second,
        )
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--target-fps", type=float, default=1e4)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument(
        "--device", default="xczu9eg", help="part the solver folds for (1e4 FPS needs > xc7z020)"
    )
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    work = ROOT / "build" / "bench" / "rtl_cnv"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.models.split(","):
        t0 = time.monotonic()
        row = run_one(name, args.frames, args.target_fps, args.clock_mhz, args.device, work)
        row["total_s"] = time.monotonic() - t0
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "folding"}), flush=True)

    table = Table(title=f"RTL simulation (Verilator) of CNV, random weights, {args.frames} images")
    cols = ("network", "padding", "input", "target FPS", "frames", "mismatches",
            "cycles/frame RTL", "formula", "latency", "build s", "sim s")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "network" else "right")
    failed = False
    for r in rows:
        if not r["ok"]:
            failed = True
            print(r["network"], "FAILED:", *r["problems"], sep="\n  ")
        failed |= bool(r.get("mismatches", 1))
        cpf = r.get("cycles_per_frame")
        table.add_row(
            r["network"],
            str(r["padding"]),
            r["input"],
            f"{r['target_fps']:.0e} ({r['budget_cycles']:,} cycles)",
            str(r["frames"]),
            str(r["mismatches"]) if r["ok"] else "FAILED",
            f"{cpf:,.1f}" if cpf else "-",
            f"{r['formula_cycles']:,}",
            f"{r['latency']:,}" if r.get("latency") else "-",
            f"{r['build_s']:.1f}",
            f"{r['sim_s']:.1f}",
        )
    Console(width=160).print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.platform()}
    (out / "rtl_cnv.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
