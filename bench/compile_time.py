"""Compile time: seconds from a QONNX file to verified RTL, without and with synthesis.

    .venv/bin/python bench/compile_time.py [--nets tfc,sfc,cnv] [--frames 8] [--no-synth]
        [--no-cold] [--fps cnv=3052] [--sim-shards 2]

Per network, the phases of `qloom build` timed one by one: compile (QONNX -> integer graph),
fold (`fold_design` for the target below at 100 MHz on xc7z020), generate (stitched Verilog
top), simulate (FIFO sizing + N random frames in Verilator, Verilator builds included),
verify (integer executor, outputs compared bit for bit), synth (per-stage Yosys
synth_xilinx for xc7z020). Plus Verilator's simulated cycles/s and frames/s.

Each network runs twice: "cold" with an empty temporary QLOOM_CACHE (Verilator and Yosys
build everything) and "warm" right after with the same cache (what a rebuild costs).
TFC_2W2A comes from ../shared/models/mnist-tfc; SFC-w1a1 and CNV-w1a1 are the zoo networks
with random weights exported by bench/finn_compare.py's `export_model`.

Prints a table and writes bench/results/compile_time.json. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QLOOM_SHARED", ROOT.parent / "shared"))
RESULTS = ROOT / "bench" / "results"
CLOCK_MHZ = 100.0
PART = "xc7z020"
#: network -> target FPS at 100 MHz (moderate foldings: a few frames simulate in seconds)
TARGETS = {"tfc": 1e5, "sfc": 1e5, "cnv": 1e3}


def model_path(net: str) -> Path:
    if net == "tfc":
        return SHARED / "models" / "mnist-tfc" / "TFC_2W2A.onnx"
    sys.path.insert(0, str(ROOT / "bench"))
    from finn_compare import export_model

    return export_model(net)


def run_once(path: Path, target: float, frames: int, synth: bool, shards: int = 1) -> dict:
    from qloom.flow import compile_model, run_integer
    from qloom.fold import fold_design
    from qloom.fold.synth import synth_stage
    from qloom.frontend.domain import RAW_PIXELS
    from qloom.rtl.top import generate_top
    from qloom.sim.design import size_fifos
    from qloom.sim.shard import simulate_sharded

    t: dict = {}
    t0 = time.monotonic()
    compiled = compile_model(path, RAW_PIXELS)
    t["compile_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    fr = fold_design(compiled.integer, target, CLOCK_MHZ, PART)
    design = fr.design
    t["fold_s"] = time.monotonic() - t0
    shape = compiled.imported.tensors[compiled.imported.inputs[0]].shape
    images = np.random.default_rng(0).integers(0, 256, size=(frames, *shape), dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="qloom-ct-") as tmp:
        t0 = time.monotonic()
        depths = size_fifos(design, images[:8], quiet=True)
        t["fifo_sizing_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        generate_top(design, Path(tmp) / "rtl", depths)
        t["generate_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    res = simulate_sharded(design, images, shards, fifo_depths=depths, quiet=True)
    t["simulate_s"] = time.monotonic() - t0
    t["verilator_build_s"] = res.build_s
    t["sim_run_s"] = res.wall_s
    t0 = time.monotonic()
    ref = run_integer(compiled.integer, images)
    bad = 0 if res.ok else frames
    if res.ok:
        for name in compiled.integer.outputs:
            got = np.asarray(res.outputs[name]).reshape(frames, -1)
            bad = max(
                bad, int((~np.all(got == np.asarray(ref[name]).reshape(frames, -1), 1)).sum())
            )
    t["verify_s"] = time.monotonic() - t0
    t["mismatches"] = bad
    t["to_verified_rtl_s"] = sum(
        t[k]
        for k in ("compile_s", "fold_s", "fifo_sizing_s", "generate_s", "simulate_s", "verify_s")
    )
    t["cycles_per_frame"] = design.cycles_per_frame()
    t["stages"] = len(design.stages)
    t["sim_cycles"] = res.total_cycles
    t["sim_cycles_per_s"] = res.cycles_per_second
    t["sim_frames_per_s"] = frames / res.wall_s if res.wall_s > 0 else None
    if synth:
        t0 = time.monotonic()
        lut = 0
        for s in design.stages:
            lut += synth_stage(s, PART).luts
        t["synth_s"] = time.monotonic() - t0
        t["synth_lut"] = lut
        t["with_synth_s"] = t["to_verified_rtl_s"] + t["synth_s"]
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="tfc,sfc,cnv")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--no-cold", action="store_true", help="only the user's cache (warm)")
    ap.add_argument("--fps", default="", help="targets other than TARGETS, e.g. cnv=3052")
    ap.add_argument("--sim-shards", type=int, default=1, help="frame shards simulated at once")
    args = ap.parse_args()
    targets = dict(TARGETS)
    for item in filter(None, args.fps.split(",")):
        net, fps = item.split("=")
        targets[net.strip()] = float(fps)

    rows = []
    out = RESULTS / "compile_time.json"
    for net in args.nets.split(","):
        path = model_path(net)
        modes = ["warm"] if args.no_cold else ["cold", "warm"]
        with tempfile.TemporaryDirectory(prefix="qloom-cache-") as cache:
            old = os.environ.get("QLOOM_CACHE")
            if not args.no_cold:
                os.environ["QLOOM_CACHE"] = cache
            try:
                for mode in modes:
                    print(f"[{time.strftime('%H:%M:%S')}] {net} {mode}...", flush=True)
                    r = run_once(path, targets[net], args.frames, not args.no_synth,
                                 args.sim_shards)  # fmt: skip
                    r.update(net=net, model=path.name, mode=mode, frames=args.frames,
                             target_fps=targets[net], sim_shards=args.sim_shards)  # fmt: skip
                    rows.append(r)
                    print(json.dumps(r, default=str), flush=True)
            finally:
                if old is None:
                    os.environ.pop("QLOOM_CACHE", None)
                else:
                    os.environ["QLOOM_CACHE"] = old
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": platform.platform(),
                "cpus": os.cpu_count(), "part": PART, "clock_mhz": CLOCK_MHZ}  # fmt: skip
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str))

    cols = ["model", "cache", "stages", "cyc/frame", "compile s", "fold s", "FIFO sizing s",
            "generate s", "simulate s (Verilator build)", "verify s", "to verified RTL s",
            "synth s", "with synth s", "bit-exact", "M sim cycles/s", "sim frames/s"]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        f = r.get("sim_frames_per_s")
        cells = [r["model"], r["mode"], str(r["stages"]), f"{r['cycles_per_frame']:,}",
                 f"{r['compile_s']:.1f}", f"{r['fold_s']:.1f}", f"{r['fifo_sizing_s']:.1f}",
                 f"{r['generate_s']:.2f}",
                 f"{r['simulate_s']:.1f} ({r['verilator_build_s']:.1f})", f"{r['verify_s']:.2f}",
                 f"{r['to_verified_rtl_s']:.1f}",
                 f"{r['synth_s']:.1f}" if "synth_s" in r else "-",
                 f"{r['with_synth_s']:.1f}" if "with_synth_s" in r else "-",
                 "yes" if r["mismatches"] == 0 else "NO",
                 f"{r['sim_cycles_per_s'] / 1e6:.2f}", f"{f:,.0f}" if f else "-"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
