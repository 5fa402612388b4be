"""Don't-care truth tables (issue 16) on a trained LogicNets-style net: LUTs and accuracy.

    .venv/bin/python bench/logicnets_dontcare.py [--epochs 2] [--seed 0] [--limit N]
        [--fills table,nearest] [--device xcu280] [--synth-timeout 600] [--workers 1]
        [--frames 0] [--no-synth] [--onnx PATH]

Steps: train `img28-tt` on Fashion-MNIST (as bench/logicnets_fashion.py, `--epochs` epochs;
or take `--onnx`); lower every layer to a TruthTable stage, once exactly and once per fill
with "dont_care" = the 60,000 training images (their hardware inputs): every table address
that no training image produces becomes a don't-care (qloom.dataflow.truthtable
.fill_dont_cares). For each design: top-1 accuracy on the 10,000 test images (argmax, first
index on ties), the frames where it differs from the exact integer model, the share of table
entries seen in training, the address bits the tables still depend on, and Yosys synth_xilinx
LUT / FF per stage (qloom.synth.truthtable: neuron groups out of context, summed, plus the
handshake). With `--frames N`, N test images through Verilator for each don't-care design,
compared with that design's own folded model (the filled tables), not the integer graph.
Prints a table, writes bench/results/logicnets_dontcare.json. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from benchlib import load_average, say

ROOT = Path(__file__).resolve().parents[1]
MODEL, DATASET = "img28-tt", "fashion-mnist"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="training images (default: all)")
    ap.add_argument("--fills", default="table,nearest")
    ap.add_argument("--device", default="xcu280")
    ap.add_argument("--synth-timeout", type=float, default=600.0, help="seconds per group")
    ap.add_argument("--workers", type=int, default=1, help="Yosys runs in parallel")
    ap.add_argument("--frames", type=int, default=0, help="test images through Verilator")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--onnx", default=None, help="a trained img28-tt (skips training)")
    ap.add_argument("--out-dir", default=str(ROOT / "build" / "bench-logicnets-dontcare"))
    args = ap.parse_args(argv)

    import qloom
    from qloom.data import load_dataset
    from qloom.dataflow import to_dataflow
    from qloom.flow import run_integer
    from qloom.synth.truthtable import synth_truth_table
    from qloom.train.logicnets import train_logicnets

    t0 = time.monotonic()
    result: dict = {
        "command": "bench/logicnets_dontcare.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "load_average_start": load_average(),
    }
    times: dict[str, float] = {}
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx = Path(args.onnx) if args.onnx else out_dir / f"{MODEL}.onnx"
    if not args.onnx:
        say(False, t0, f"training {MODEL} on {DATASET}, {args.epochs} epochs")
        t = time.monotonic()
        rec = train_logicnets(MODEL, DATASET, epochs=args.epochs, out=onnx, seed=args.seed,
                              limit=args.limit, quiet=True, threads=1)  # fmt: skip
        times["train"] = round(time.monotonic() - t, 1)
        result["torch_accuracy"] = rec["test_accuracy"]
    m = qloom.load(onnx)
    g = m.compiled.integer
    xtr, _ = load_dataset(DATASET, "train")
    xte, yte = load_dataset(DATASET, "test")
    if args.limit:
        xtr = xtr[: args.limit]
    qtr = m.compiled.hardware_input(xtr.astype(np.float32) / np.float32(255))
    qte = m.compiled.hardware_input(xte.astype(np.float32) / np.float32(255))
    out = g.outputs[0]
    ref = np.asarray(run_integer(g, qte)[out]).reshape(len(qte), -1)
    layers = [n.name for n in g.nodes if n.op == "MatMul"]

    variants: dict[str, dict] = {"exact": {}} | {f: {} for f in args.fills.split(",") if f}
    designs = {}
    for v in variants:
        t = time.monotonic()
        entry: dict = {"style": "truth_table"}
        if v != "exact":
            entry |= {"dont_care": qtr, "dont_care_fill": v}
        designs[v] = to_dataflow(g, {name: dict(entry) for name in layers})
        times[f"lower {v}"] = round(time.monotonic() - t, 1)
    exact = designs["exact"]
    for v, d in designs.items():
        y = np.asarray(d.execute(qte)[out]).reshape(len(qte), -1)
        r = variants[v]
        r["test_accuracy"] = float((y.argmax(1) == yte).mean() * 100)
        r["differs_from_integer_model"] = int(np.any(y != ref, axis=1).sum())
        r["stages"] = {}
        for s, e in zip(d.stages, exact.stages, strict=True):
            r["stages"][s.name] = {
                "neurons": s.mh,
                "address_bits": s.address_bits,
                "entries_changed": int((s.tables != e.tables).sum()),
                "mean_support_bits": float(s.support().sum(axis=1).mean() * s.in_dtype.bits),
            }
        n_diff = r["differs_from_integer_model"]
        say(False, t0, f"{v}: test accuracy {r['test_accuracy']:.2f} %, {n_diff} of "
            f"{len(qte)} differ from the integer model")  # fmt: skip
    # the share of table entries the training set reaches, per layer
    from qloom.dataflow.truthtable import seen_mask

    keep = run_integer_all(g, qtr)
    tensor_of = {n.name: n.inputs[0] for n in g.nodes}
    seen = {}
    for s in exact.stages:
        x = np.asarray(keep[tensor_of[s.name]]).reshape(len(qtr), -1)
        mask = seen_mask(s.addresses(x), s.address_bits)
        seen[s.name] = float(mask.mean() * 100)
    result["seen_percent"] = seen

    if args.frames > 0:
        from qloom.sim.design import simulate

        n = min(args.frames, len(qte))
        for v, d in designs.items():
            if v == "exact":
                continue
            say(False, t0, f"{v}: {n} test images through Verilator")
            t = time.monotonic()
            res = simulate(d, qte[:n], quiet=True).check()
            got = np.asarray(res.outputs[out]).reshape(n, -1)
            want = np.asarray(d.execute(qte[:n])[out]).reshape(n, -1)
            variants[v]["rtl"] = {"frames": n, "mismatches": int(np.any(got != want, 1).sum()),
                                  "cycles_per_frame": res.cycles_per_frame}  # fmt: skip
            times[f"Verilator {v}"] = round(time.monotonic() - t, 1)

    if not args.no_synth:
        for v, d in designs.items():
            r = variants[v]
            for s in d.stages:
                say(False, t0, f"{v}: Yosys {args.device} {s.name} ({s.mh} x {s.address_bits} bit)")
                t = time.monotonic()
                sr = synth_truth_table(s, args.device, timeout=args.synth_timeout,
                                       workers=args.workers)  # fmt: skip
                r["stages"][s.name] |= {"LUT": sr.luts, "FF": sr.ffs,
                                        "yosys_seconds": sr.seconds,
                                        "wall_seconds": round(time.monotonic() - t, 1)}  # fmt: skip
            r["LUT"] = sum(st["LUT"] for st in r["stages"].values())
            r["FF"] = sum(st["FF"] for st in r["stages"].values())
            times[f"Yosys {v}"] = round(sum(st["wall_seconds"] for st in r["stages"].values()), 1)
    result["variants"] = variants
    result["seconds"] = times
    result["load_average_end"] = load_average()

    print()
    print(f"| {MODEL} on {DATASET} | test accuracy | differs from integer model | Yosys "
          f"{args.device} LUT | FF | support bits per neuron (per layer) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for v, r in variants.items():
        sup = " / ".join(f"{st['mean_support_bits']:.1f}" for st in r["stages"].values())
        print(f"| {v} | {r['test_accuracy']:.2f} % | {r['differs_from_integer_model']} | "
              f"{r.get('LUT', '-')} | {r.get('FF', '-')} | {sup} |")  # fmt: skip
    print(f"table entries seen in training, per layer: {seen}")
    print(f"seconds: {times}; load {result['load_average_start']} -> {result['load_average_end']}")
    path = ROOT / "bench" / "results" / "logicnets_dontcare.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return 0


def run_integer_all(g, x: np.ndarray) -> dict:
    from qloom.execute import execute

    return execute(g, x, keep_all=True)


if __name__ == "__main__":
    raise SystemExit(main())
