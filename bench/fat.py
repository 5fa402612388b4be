"""Fault-aware training (FAT, Zahid et al. 2020): accuracy against the bit-flip rate, trained
with and without faults, measured in the integer executor and re-measured in RTL.

    .venv/bin/python bench/fat.py [--epochs 4] [--limit 10000] [--train-rate 0.01]
        [--rates 0,1e-4,1e-3,3e-3,1e-2,3e-2,5e-2] [--test 10000] [--rtl-frames 300]
        [--rtl-rate 0.01] [--threads 1] [--quiet]

Trains cnv-small-pad-w2a2 (a CNV-style net: 6 conv 3x3 + 3 FC, 2-bit weights and
activations, 8-bit input) on Fashion-MNIST with qloom's trainer (`--limit` seeded training
images, `--epochs` epochs, seed 0; per-epoch validation on 2,000 test images) twice: plain,
and with FAT (`--fault-kind flip --fault-rate TRAIN_RATE` on every hidden activation
quantizer). Both exports are then evaluated by the integer executor on the first `--test`
test images with bit flips on every hidden activation (qloom.faults, seed 0, the same fault
positions for both models), per rate. One point (`--rtl-rate`, the FAT model) is re-measured
in RTL: the design folded for 1e4 frames/s at 100 MHz (the first conv's window generator
needs >= 7,056 cycles per 28 x 28 x 1 frame), a `qloom_fault` stage on every faulted stream,
`--rtl-frames` frames with 20 % random input stalls and output backpressure, each frame's
output compared with the integer executor's faulty output.

Writes bench/results/fat/{results.json, table.md, fat.png}; models under build/bench-fat/.
Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from benchlib import say

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "fat"
MODEL = "cnv-small-pad-w2a2"
DATASET = "fashion-mnist"


def _train(name: str, args, fault_rate: float | None, work: Path, t0: float) -> Path:
    from qloom.train.faults import FaultConfig
    from qloom.train.trainer import train

    out = work / f"{name}.onnx"
    if out.exists() and out.with_suffix(".json").exists():
        rec = json.loads(out.with_suffix(".json").read_text())
        same = rec.get("epochs") == args.epochs and rec.get("train_images") == args.limit
        same = same and (rec.get("faults") or {}).get("rate") == fault_rate
        if same:
            say(args.quiet, t0, f"{name}: reusing {out}")
            return out
    faults = FaultConfig(fault_rate, "flip") if fault_rate is not None else None
    say(args.quiet, t0, f"training {name} ({args.epochs} epochs, {args.limit} images)")
    train(MODEL, DATASET, epochs=args.epochs, out=out, seed=0, limit=args.limit,
          threads=args.threads, quiet=True, integer_check=False, faults=faults,
          test_limit=2000)  # fmt: skip
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--train-rate", type=float, default=0.01)
    ap.add_argument("--rates", default="0,1e-4,1e-3,3e-3,1e-2,3e-2,5e-2")
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--rtl-frames", type=int, default=300)
    ap.add_argument("--rtl-rate", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from qloom.data import load_dataset
    from qloom.faults import FaultModel, parse_rates, plot_sweep, resolve_targets, stream_masks
    from qloom.faults import sweep as fault_sweep
    from qloom.flow import compile_model, run_integer
    from qloom.frontend.domain import RAW_PIXELS

    t0 = time.monotonic()
    rates = parse_rates(args.rates)
    work = ROOT / "build" / "bench-fat"
    work.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    t_train = time.monotonic()
    models = {
        "plain": _train("plain", args, None, work, t0),
        f"FAT (flip {args.train_rate:g})": _train("fat", args, args.train_rate, work, t0),
    }
    train_s = time.monotonic() - t_train
    images, labels = load_dataset(DATASET, "test")
    images, labels = images[: args.test], labels[: args.test]
    curves, graphs = {}, {}
    for label, path in models.items():
        g = compile_model(path, RAW_PIXELS).integer  # the hardware takes the raw pixels
        graphs[label] = g
        say(args.quiet, t0, f"{label}: integer executor on {len(images)} images, {len(rates)} "
             "rates")  # fmt: skip
        curves[label] = fault_sweep(g, images, labels, rates, kind="flip", seed=0)
    # -- RTL: one point of the FAT model, faults injected on every faulted stream ---------
    from qloom.fold.solver import fold_design
    from qloom.sim.design import simulate, size_fifos

    label = list(models)[1]
    g = graphs[label]
    fm = FaultModel(args.rtl_rate, 0, "flip", resolve_targets(g, "flip", None))
    x = images[: args.rtl_frames]
    design = fold_design(g, 1e4, 100.0, "xc7z020").design
    say(args.quiet, t0, f"RTL: {design.cycles_per_frame()} cycles/frame, sizing FIFOs")
    depths = size_fifos(design, x[:3])
    masks = stream_masks(design, fm, len(x))
    say(args.quiet, t0, f"RTL: {len(x)} frames with faults on {len(masks)} streams")
    t_sim = time.monotonic()
    res = simulate(design, x, in_valid_prob=0.8, out_ready_prob=0.8, seed=1,
                   fifo_depths=depths, fault_masks=masks).check()  # fmt: skip
    sim_s = time.monotonic() - t_sim
    want = run_integer(g, x, faults=fm)
    clean = run_integer(g, x)
    out_name = g.outputs[0]
    got = res.outputs[out_name].reshape(len(x), -1)
    equal = int(np.all(got == want[out_name].reshape(len(x), -1), axis=1).sum())
    differ_clean = int(np.any(want[out_name].reshape(len(x), -1)
                              != clean[out_name].reshape(len(x), -1), axis=1).sum())  # fmt: skip
    rtl_acc = 100.0 * float(np.mean(got.argmax(1) == labels[: len(x)]))
    int_acc = 100.0 * float(np.mean(want[out_name].reshape(len(x), -1).argmax(1)
                                    == labels[: len(x)]))  # fmt: skip
    rtl = {
        "model": label,
        "rate": args.rtl_rate,
        "frames": len(x),
        "streams": len(masks),
        "flipped_bits": int(sum(bin(w).count("1") for ws in masks.values() for w in ws)),
        "rtl_equal_integer_faulty": equal,
        "frames_whose_output_the_faults_changed": differ_clean,
        "rtl_accuracy": rtl_acc,
        "integer_accuracy": int_acc,
        "cycles_per_frame": res.cycles_per_frame,
        "stall": 0.2,
        "sim_s": sim_s,
    }
    say(args.quiet, t0, f"RTL == integer (faulty) on {equal} / {len(x)} frames")

    # -- outputs -----------------------------------------------------------------------------
    head = "| fault rate | " + " | ".join(f"{k} top-1" for k in curves) + " |"
    lines = [head, "|---:|" + "---:|" * len(curves)]
    for i, r in enumerate(rates):
        cells = [f"{curves[k][i].accuracy:.2f} %" for k in curves]
        lines.append(f"| {r:g} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    rtl_line = (
        f"RTL ({label}, rate {args.rtl_rate:g}, {len(x)} frames, {len(masks)} faulted streams, "
        f"{rtl['flipped_bits']:,} bits flipped, 20 % stalls): outputs equal to the integer "
        f"executor's faulty outputs on {equal} / {len(x)} frames (the faults changed the "
        f"output of {differ_clean}); top-1 {rtl_acc:.2f} % in RTL, {int_acc:.2f} % integer"
    )
    (OUT / "table.md").write_text(table + "\n\n" + rtl_line + "\n")
    plot_sweep(OUT / "fat.png", curves,
               f"{MODEL} on Fashion-MNIST ({len(images):,} test images):\nbit flips on "
               "all hidden activations")  # fmt: skip
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.node(),
        "model": MODEL,
        "epochs": args.epochs,
        "train_images": args.limit,
        "train_fault_rate": args.train_rate,
        "test_images": len(images),
        "train_seconds_both": train_s,
        "curves": {
            k: [
                {"rate": p.rate, "accuracy": p.accuracy, "agree": p.agree, "faults": p.faults}
                for p in v
            ]
            for k, v in curves.items()
        },  # fmt: skip
        "rtl": rtl,
        "seconds": time.monotonic() - t0,
    }
    (OUT / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    print(table)
    print(rtl_line)
    return 0 if equal == len(x) else 1


if __name__ == "__main__":
    raise SystemExit(main())
