"""A LogicNets-style truth-table network trained on Fashion-MNIST, built and verified in RTL.

    .venv/bin/python bench/logicnets_fashion.py [--epochs 10] [--seed 0] [--limit N]
        [--frames 10000] [--target-fps 1e8] [--clock-mhz 100] [--part xcu280]
        [--threads 1] [--no-direct] [--quiet]

Steps (each announced as i/N with the elapsed time unless --quiet; the training prints one
line per epoch):
  1. train `img28-tt` (qloom.train.logicnets: 784-256-100-10, pixels quantized to 2 bits on
     the host, every neuron reads 6 inputs of 2 bits: 12-bit tables, 8-bit outputs) on the
     60,000 Fashion-MNIST training images (seeded; `--limit` a seeded subset), `--epochs`
     epochs, Adam with a cosine learning rate, torch on `--threads` threads;
  2. top-1 accuracy of qloom's integer model (what the hardware computes, argmax of the
     outputs, first index on ties) on all 10,000 test images;
  3. the folding solver at `--target-fps` and `--clock-mhz` on `--part` (qloom.api
     Model.fold): which layers become TruthTable stages (all three at 1e8 FPS = 1 cycle per
     frame at 100 MHz), also at 1e5 and 1e6 FPS for comparison;
  4. `qloom build` with the solver (Model.build: fold, FIFO sizing, RTL, Verilator) with
     `--frames` Fashion-MNIST test images (all 10,000 by default) as the simulation data: every
     frame's RTL outputs are compared with the integer executor, cycles per frame and latency
     are measured (with the glue FIFOs the build sizes);
  5. (unless --no-direct) the same design stage to stage, without glue FIFOs (as LogicNets'
     pipeline), the same frames: latency = the register stages.
Prints a table, writes bench/results/logicnets_fashion.json (model and build under
build/bench-logicnets-fashion/). Not a test: no thresholds (but it says when frames differ).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import load_average, say

ROOT = Path(__file__).resolve().parents[1]
MODEL = "img28-tt"
DATASET = "fashion-mnist"
STEPS = 5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--frames", type=int, default=10_000, help="test images through the RTL")
    ap.add_argument("--target-fps", type=float, default=1e8)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--part", default="xcu280", help="LogicNets' part family (default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-direct", action="store_true", help="skip step 5")
    ap.add_argument("--out-dir", default=str(ROOT / "build" / "bench-logicnets-fashion"))
    ap.add_argument("--quiet", action="store_true", help="only the table")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import qloom
    from qloom.data import load_dataset
    from qloom.errors import QloomError
    from qloom.train.logicnets import LOGICNETS, train_logicnets

    t0 = time.monotonic()
    load_start = load_average()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx = out_dir / f"{MODEL}.onnx"
    times: dict[str, float] = {}
    result: dict[str, Any] = {
        "model": MODEL,
        "spec": LOGICNETS[MODEL].description,
        "dataset": DATASET,
        "command": "bench/logicnets_fashion.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "options": vars(args),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "load_average_start": load_start,
    }

    # 1. training
    say(args.quiet, t0, f"1/{STEPS} training {MODEL} on {DATASET}, {args.epochs} epochs")
    t = time.monotonic()
    rec = train_logicnets(MODEL, DATASET, epochs=args.epochs, out=onnx, seed=args.seed,
                          limit=args.limit, quiet=args.quiet, threads=args.threads)  # fmt: skip
    times["train"] = round(time.monotonic() - t, 1)
    result["train"] = {k: rec[k] for k in ("train_rows", "test_rows", "history", "fanins")}
    result["torch_accuracy"] = rec["test_accuracy"]

    # 2. the integer model on all test images
    say(args.quiet, t0, f"2/{STEPS} integer model on the 10,000 test images")
    t = time.monotonic()
    xte, yte = load_dataset(DATASET, "test")
    x = xte.astype(np.float32) / np.float32(255)
    m = qloom.load(onnx)
    y_int = m.predict(x)
    pred = y_int.argmax(1)
    top = y_int.max(axis=1, keepdims=True)
    result["integer_accuracy"] = float((pred == yte).mean() * 100)
    result["integer_ties"] = int(((y_int == top).sum(axis=1) > 1).sum())
    result["input_domain"] = m.domain.describe()
    times["integer model"] = round(time.monotonic() - t, 1)

    # 3. the solver
    say(args.quiet, t0, f"3/{STEPS} folding solver on {args.part} at {args.clock_mhz:g} MHz")
    t = time.monotonic()
    solver: dict[str, Any] = {}
    for fps in sorted({1e5, 1e6, args.target_fps}):
        try:
            d = m.fold(target_fps=fps, clock_mhz=args.clock_mhz, part=args.part)
            solver[f"{fps:g}"] = {
                "stages": [s.kind for s in d.stages],
                "cycles_per_frame": d.cycles_per_frame(),
            }
        except QloomError as e:  # e.g. the part is too small
            solver[f"{fps:g}"] = {"error": str(e)}
    result["solver"] = solver
    design = m.fold(target_fps=args.target_fps, clock_mhz=args.clock_mhz, part=args.part)
    result["stages"] = [
        {"name": s.name, "kind": s.kind, "mw": getattr(s, "mw", None),
         "mh": getattr(s, "mh", None), "address_bits": getattr(s, "address_bits", None)}
        for s in design.stages
    ]  # fmt: skip
    all_tables = all(s.kind == "TruthTable" for s in design.stages)
    times["solver"] = round(time.monotonic() - t, 1)

    # 4. qloom build: the solver, FIFO sizing, RTL, all test frames through Verilator
    frames = min(args.frames, len(x))
    say(args.quiet, t0, f"4/{STEPS} qloom build at {args.target_fps:g} FPS, {frames} test "
         "images through Verilator (compiles take minutes)")  # fmt: skip
    t = time.monotonic()
    report = m.build(
        {
            "output_dir": str(out_dir / "build"),
            "target_fps": args.target_fps,
            "synth_clk_period_ns": 1000.0 / args.clock_mhz,
            "fpga_part": args.part,
        },
        data=f"{DATASET}-test",
        sim_frames=frames,
        quiet=True,
    )
    times["build + Verilator"] = round(time.monotonic() - t, 1)
    sim = report.sim
    est = report.totals.est
    result["build"] = {
        "dir": str(report.dir),
        "stages": [s.kind for s in design.stages],
        "cycles_per_frame_formula": report.totals.cycles_per_frame,
        "estimate": {"LUT": round(est.lut), "FF": round(est.ff)} if est is not None else None,
        "sim_frames": sim.frames,
        "sim_inputs": sim.inputs,
        "mismatches": sim.mismatches,
        "cycles_per_frame": sim.cycles_per_frame,
        "latency_cycles": sim.latency_cycles,
        "total_cycles": sim.total_cycles,
        "fifo_depths": sim.fifo_depths,
        "verdict": sim.verdict,
    }

    # 5. stage to stage (no glue FIFOs): the latency is the register stages'
    if not args.no_direct:
        from qloom.flow import run_integer
        from qloom.rtl.top import glue_streams
        from qloom.sim.design import simulate

        say(args.quiet, t0, f"5/{STEPS} stage to stage (no glue FIFOs), {frames} frames")
        t = time.monotonic()
        q = m.compiled.hardware_input(x[:frames])
        res = simulate(design, q, fifo_depths=dict.fromkeys(glue_streams(design), 0),
                       quiet=True).check()  # fmt: skip
        ref = run_integer(m.compiled.integer, q)
        # the design's output stream is the integer graph's output (the host tail follows)
        g_out = m.compiled.integer.outputs[0]
        got = np.asarray(res.outputs[g_out]).reshape(frames, -1)
        want = np.asarray(ref[g_out]).reshape(frames, -1)
        rtl_pred = got.argmax(1)
        result["direct"] = {
            "frames": frames,
            "mismatches": int(np.any(got != want, axis=1).sum()),
            "rtl_accuracy": float((rtl_pred == yte[:frames]).mean() * 100),
            "cycles_per_frame": res.cycles_per_frame,
            "latency_cycles": res.latency,
            "total_cycles": res.total_cycles,
        }
        times["stage to stage Verilator"] = round(time.monotonic() - t, 1)
    result["seconds"] = times
    result["total_minutes"] = round((time.monotonic() - t0) / 60, 1)
    result["load_average_end"] = load_average()

    b, dr = result["build"], result.get("direct", {})
    kinds = ", ".join(f"{k}: {'/'.join(v['stages'])}" if "stages" in v else f"{k}: {v['error']}"
                      for k, v in solver.items())  # fmt: skip
    print()
    print(f"| {MODEL} on {DATASET} | measured |")
    print("|---|---|")
    print(f"| training | {rec['train_rows']:,} images, {args.epochs} epochs, seed {args.seed}, "
          f"{times['train']:.0f} s on {args.threads} thread(s) |")  # fmt: skip
    acc, tacc, ties = result["integer_accuracy"], result["torch_accuracy"], result["integer_ties"]
    print(f"| test accuracy (integer model, 10,000 images) | {acc:.2f} % "
          f"(torch {tacc:.2f} %; {ties} argmax ties) |")  # fmt: skip
    yes = "yes" if all_tables else "NO"
    print(f"| solver at {args.target_fps:g} FPS, {args.clock_mhz:g} MHz, {args.part} | "
          f"{' / '.join(b['stages'])} (all truth tables: {yes}) |")  # fmt: skip
    print(f"| solver at other targets | {kinds} |")
    if b["estimate"] is not None:
        print(f"| estimate | {b['estimate']['LUT']:,} LUT, {b['estimate']['FF']:,} FF |")
    print(f"| RTL vs integer executor (build, glue FIFOs) | {b['mismatches']} of "
          f"{b['sim_frames']:,} frames differ ({b['verdict']}) |")  # fmt: skip
    print(f"| cycles per frame | {b['cycles_per_frame']} measured "
          f"(formula {b['cycles_per_frame_formula']}) |")  # fmt: skip
    print(
        f"| latency | {b['latency_cycles']} cycles with the build's glue FIFOs; "
        f"{dr.get('latency_cycles', '-')} stage to stage ({len(design.stages)} register "
        "stages) |"
    )
    if dr:
        print(f"| stage to stage | {dr['mismatches']} of {dr['frames']:,} differ, "
              f"{dr['cycles_per_frame']} cycles/frame, RTL accuracy "
              f"{dr['rtl_accuracy']:.2f} % |")  # fmt: skip
    print(f"| time | {', '.join(f'{k} {v:.0f} s' for k, v in times.items())}; "
          f"load average {load_start} -> {result['load_average_end']} |")  # fmt: skip
    res_dir = ROOT / "bench" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    path = res_dir / "logicnets_fashion.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    ok = b["mismatches"] == 0 and dr.get("mismatches", 0) == 0
    if not ok:
        print("RTL and integer executor DIFFER", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
