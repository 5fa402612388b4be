"""A ResNet-8 trained on Fashion-MNIST, folded by the solver, bit-exact in RTL under stalls.

    .venv/bin/python bench/resnet8_fashion.py [--model resnet8-w2a2] [--epochs 3]
        [--limit 30000] [--seed 0] [--frames 1000] [--stall 0.3] [--target-fps 1e4]
        [--clock-mhz 100] [--part xc7z020] [--threads 1] [--out-dir DIR] [--quiet]

Steps (each announced as i/N with the elapsed time unless --quiet; the training prints one
line per epoch):
  1. train `--model` (qloom.train.zoo: the CIFAR-style ResNet-8, conv 16 -> basic blocks 16,
     32/2, 64/2 -> global average pool -> FC 10; 3x3 convs with padding 1, so 28 x 28 x 1
     Fashion-MNIST images go in as they are: 28 -> 14 -> 7) with qloom's trainer on `--limit`
     seeded Fashion-MNIST training images (0: all 60,000) for `--epochs` epochs, seed
     `--seed`, torch on `--threads` threads (per-epoch validation on the first 2,000 test
     images; a model trained with the same options under --out-dir is reused);
  2. top-1 on all 10,000 test images: qloom's integer executor (what the hardware computes,
     on the raw pixels' integers) and torch (the trained model, from its checkpoint), and on
     how many images their predictions agree;
  3. the folding solver for `--target-fps` at `--clock-mhz` on `--part` (PE / SIMD per
     stage, the estimate);
  4. `qloom build` with the solver (Model.build: fold, FIFO sizing, RTL, Verilator) with the
     first `--frames` test images at full rate: every frame's outputs compared with the
     integer executor, cycles per frame against the design's formula;
  5. the same `--frames` images through the built design (its sized FIFOs) with random input
     stalls and output backpressure (`qloom sim --stall P`: each cycle the testbench withholds
     an input beat / refuses an output beat with probability P): every frame compared with
     the integer executor, cycles per frame against the formula (5 % allowed).
Prints a markdown table, writes bench/results/resnet8_fashion.json (model and build under
--out-dir, default build/bench-resnet8-fashion/). Not a test: no timing thresholds; exit 1
when a frame differs or the cycles per frame are off the formula by more than 5 %.
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
DATASET = "fashion-mnist"
STEPS = 5
TOLERANCE = 0.05  # cycles per frame: measured within 5 % of the formula


def _train(args, onnx: Path, t0: float) -> dict[str, Any]:
    """Train (or reuse a model trained with the same options); returns the trainer's record."""
    from qloom.train.trainer import train

    rec_path = onnx.with_suffix(".json")
    limit = args.limit or None
    if onnx.exists() and rec_path.exists() and onnx.with_suffix(".pt").exists():
        rec = json.loads(rec_path.read_text())
        want = {"model": args.model, "epochs": args.epochs, "seed": args.seed}
        if all(rec.get(k) == v for k, v in want.items()) and rec.get("limit") == limit:
            say(args.quiet, t0, f"reusing {onnx} (trained with the same options)")
            return rec
    rec = train(args.model, DATASET, epochs=args.epochs, out=onnx, seed=args.seed, limit=limit,
                threads=args.threads, quiet=args.quiet, integer_check=False,
                test_limit=2000)  # fmt: skip
    rec["limit"] = limit  # so that a rerun with the same options reuses the model
    rec_path.write_text(json.dumps(rec, indent=2) + "\n")
    return rec


def _torch_predictions(args, ckpt: Path, images: np.ndarray, labels: np.ndarray):
    """Top-1 (%) and predictions of the trained torch model (its last epoch's checkpoint)."""
    import torch

    from qloom.data import dataset_info
    from qloom.train.trainer import evaluate
    from qloom.train.zoo import build_model

    info = dataset_info(DATASET)
    model = build_model(args.model, info.channels, info.size, info.num_classes)
    state = torch.load(str(ckpt), map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    model.eval()
    return evaluate(model, images, labels)


def _cycles_ok(measured: float | None, formula: int) -> bool:
    return measured is not None and abs(measured - formula) <= TOLERANCE * formula


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet8-w2a2", help="a zoo ResNet (resnet8-w2a2)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=30_000, help="training images (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=1000, help="test images through the RTL")
    ap.add_argument("--stall", type=float, default=0.3, help="stall probability (step 5)")
    ap.add_argument("--target-fps", type=float, default=1e4)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--part", default="xc7z020")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", default=str(ROOT / "build" / "bench-resnet8-fashion"))
    ap.add_argument("--quiet", action="store_true", help="only the table")
    args = ap.parse_args(argv)
    if not 0.0 <= args.stall < 1.0:
        ap.error(f"--stall must be in [0, 1), got {args.stall}")

    import torch

    torch.set_num_threads(args.threads)
    import qloom
    from qloom.data import load_dataset
    from qloom.flow import run_integer
    from qloom.rtl.top import glue_streams
    from qloom.sim.design import simulate

    t0 = time.monotonic()
    load_start = load_average()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx = out_dir / f"{args.model}.onnx"
    times: dict[str, float] = {}
    result: dict[str, Any] = {
        "model": args.model,
        "dataset": DATASET,
        "command": "bench/resnet8_fashion.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "options": vars(args),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "load_average_start": load_start,
    }

    # 1. training
    n_train = args.limit or 60_000
    say(args.quiet, t0, f"1/{STEPS} training {args.model} on {DATASET}: {n_train:,} images, "
         f"{args.epochs} epochs, {args.threads} thread(s)")  # fmt: skip
    t = time.monotonic()
    rec = _train(args, onnx, t0)
    times["train"] = round(time.monotonic() - t, 1)
    result["train"] = {
        k: rec.get(k) for k in ("train_images", "epochs", "seed", "lr", "batch_size",
                                "epoch_accuracy", "train_seconds", "bops")
    }  # fmt: skip

    # 2. integer executor and torch on all test images
    say(args.quiet, t0, f"2/{STEPS} integer executor and torch on the 10,000 test images")
    t = time.monotonic()
    xte, yte = load_dataset(DATASET, "test")
    m = qloom.load(onnx)
    y_int = m.predict(xte.astype(np.float32) / np.float32(255))
    int_pred = y_int.argmax(1)
    torch_acc, torch_pred = _torch_predictions(args, onnx.with_suffix(".pt"), xte, yte)
    result["integer_accuracy"] = float((int_pred == yte).mean() * 100)
    result["torch_accuracy"] = torch_acc
    result["integer_torch_agree"] = int((int_pred == torch_pred).sum())
    result["test_images"] = len(yte)
    result["input_domain"] = m.domain.describe()
    times["integer + torch on 10,000"] = round(time.monotonic() - t, 1)
    say(args.quiet, t0, f"   top-1 integer {result['integer_accuracy']:.2f} %, torch "
         f"{torch_acc:.2f} %, same prediction on {result['integer_torch_agree']:,} / "
         f"{len(yte):,}")  # fmt: skip

    # 3. the folding solver
    where = f"{args.target_fps:g} FPS at {args.clock_mhz:g} MHz on {args.part}"
    say(args.quiet, t0, f"3/{STEPS} folding solver: {where}")
    t = time.monotonic()
    design = m.fold(target_fps=args.target_fps, clock_mhz=args.clock_mhz, part=args.part)
    kinds: dict[str, int] = {}
    for s in design.stages:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    result["stages"] = [
        {"name": s.name, "kind": s.kind, "folding": s.folding(), "cycles": s.cycles_per_frame()}
        for s in design.stages
    ]
    result["stage_kinds"] = kinds
    result["bottleneck"] = design.bottleneck().name
    times["solver"] = round(time.monotonic() - t, 1)

    # 4. qloom build (solver, FIFO sizing, RTL, Verilator) with the test images at full rate
    frames = min(args.frames, len(xte))
    say(args.quiet, t0, f"4/{STEPS} qloom build for {where}, {frames} test images through "
         "Verilator at full rate (Verilator builds take minutes)")  # fmt: skip
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
    times["build + full-rate Verilator"] = round(time.monotonic() - t, 1)
    sim, tot = report.sim, report.totals
    formula = tot.cycles_per_frame
    est = tot.accelerator  # the stages' estimate + the glue FIFOs
    result["build"] = {
        "dir": str(report.dir),
        "cycles_per_frame_formula": formula,
        "fps_at_clock": tot.fps_at_clock,
        "estimate_with_glue_fifos": est.to_json() if est is not None else None,
        "utilization_percent": tot.utilization,
        "frames": sim.frames,
        "mismatches": sim.mismatches,
        "cycles_per_frame": sim.cycles_per_frame,
        "latency_cycles": sim.latency_cycles,
        "total_cycles": sim.total_cycles,
        "verdict": sim.verdict,
    }

    # 5. the built design (its sized glue FIFOs) with random stalls on both sides
    say(args.quiet, t0, f"5/{STEPS} {frames} test images through Verilator with stalls "
         f"(input and output, probability {args.stall:g})")  # fmt: skip
    t = time.monotonic()
    q = m.compiled.hardware_input(xte[:frames].astype(np.float32) / np.float32(255))
    glue = set(glue_streams(design))
    depths = {s: d for s, d in sim.fifo_depths.items() if s in glue}
    p = 1.0 - args.stall
    res = simulate(design, q, in_valid_prob=p, out_ready_prob=p, seed=args.seed,
                   fifo_depths=depths, quiet=args.quiet)  # fmt: skip
    ref = run_integer(m.compiled.integer, q)
    g_out = m.compiled.integer.outputs[0]
    want = np.asarray(ref[g_out]).reshape(frames, -1)
    if res.ok:
        got = np.asarray(res.outputs[g_out]).reshape(frames, -1)
        equal = int(np.all(got == want, axis=1).sum())
        rtl_acc = float((got.argmax(1) == yte[:frames]).mean() * 100)
    else:
        equal, rtl_acc = 0, None
    result["stalled"] = {
        "frames": frames,
        "stall": args.stall,
        "seed": args.seed,
        "ok": res.ok,
        "problems": res.problems + res.diagnosis,
        "frames_equal": equal,
        "rtl_accuracy": rtl_acc,
        "integer_accuracy_same_frames": float((want.argmax(1) == yte[:frames]).mean() * 100),
        "cycles_per_frame_median": res.cycles_per_frame,
        "cycles_per_frame_mean": res.cycles_per_frame_mean,
        "latency_cycles": res.latency,
        "total_cycles": res.total_cycles,
        "sim_wall_s": round(res.wall_s, 1),
        "m_cycles_per_s": round(res.cycles_per_second / 1e6, 3),
    }
    times["stalled Verilator"] = round(time.monotonic() - t, 1)
    result["seconds"] = times
    result["total_minutes"] = round((time.monotonic() - t0) / 60, 1)
    result["load_average_end"] = load_average()

    b, st = result["build"], result["stalled"]
    full_ok = b["mismatches"] == 0 and _cycles_ok(b["cycles_per_frame"], formula)
    stall_ok = (equal == frames and _cycles_ok(st["cycles_per_frame_median"], formula)
                and _cycles_ok(st["cycles_per_frame_mean"], formula))  # fmt: skip
    result["cycles_within_5_percent"] = {"full_rate": full_ok, "stalled": stall_ok}

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * (v - formula) / formula:+.2f} %"

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:,.1f}"

    def layer(name: str) -> str:  # '/blocks/blocks.0/conv1/Conv' -> 'blocks.0/conv1'
        parts = name.strip("/").split("/")[:-1] or [name]
        return "/".join(parts[1:] if parts[1:] and parts[1].startswith(parts[0]) else parts)

    folds = "; ".join(
        f"{layer(s['name'])} PE {s['folding'].get('PE', 1)} SIMD {s['folding'].get('SIMD', 1)}"
        for s in result["stages"] if s["kind"] == "MVAU"
    )  # fmt: skip
    u = b["utilization_percent"] or {}
    e = b["estimate_with_glue_fifos"] or {}
    print()
    print(f"| {args.model} on {DATASET} | measured |")
    print("|---|---|")
    val = ", ".join(f"{a:.1f}" for a in rec["epoch_accuracy"])
    print(f"| training | {rec['train_images']:,} images, {args.epochs} epochs, seed {args.seed}, "
          f"{times['train']:.0f} s on {args.threads} thread(s) (validation on 2,000 test "
          f"images per epoch: {val} %) |")  # fmt: skip
    print(f"| top-1, 10,000 test images | integer executor {result['integer_accuracy']:.2f} %, "
          f"torch {torch_acc:.2f} %; same prediction on {result['integer_torch_agree']:,} "
          "images |")  # fmt: skip
    print(f"| target | {where}: {formula:,} cycles/frame by the formula "
          f"({tot.fps_at_clock:,.0f} FPS), bottleneck {result['bottleneck']} |")  # fmt: skip
    print(f"| stages | {', '.join(f'{k} {v}' for k, v in kinds.items())} |")
    print(f"| folding (MVAU) | {folds} |")
    print(f"| estimate ({args.part}, with glue FIFOs) | {e.get('lut', 0):,.0f} LUT "
          f"({u.get('LUT', 0):.1f} %), {e.get('ff', 0):,.0f} FF, {e.get('bram', 0):,.0f} "
          f"BRAM18 ({u.get('BRAM', 0):.1f} %), {e.get('dsp', 0):,.0f} DSP |")  # fmt: skip
    print(f"| RTL at full rate (build) | {b['frames'] - b['mismatches']:,} / {b['frames']:,} "
          f"frames equal the integer executor; {num(b['cycles_per_frame'])} cycles/frame "
          f"({pct(b['cycles_per_frame'])} vs formula); latency {b['latency_cycles']:,} "
          "cycles |")  # fmt: skip
    print(f"| RTL with stalls (p = {args.stall:g} in and out) | {equal:,} / {frames:,} frames "
          f"equal the integer executor; cycles/frame median {num(st['cycles_per_frame_median'])}"
          f" ({pct(st['cycles_per_frame_median'])}), mean {num(st['cycles_per_frame_mean'])} "
          f"({pct(st['cycles_per_frame_mean'])}) vs formula {formula:,} |")  # fmt: skip
    if rtl_acc is not None:
        print(f"| top-1 on those {frames:,} | RTL {rtl_acc:.2f} %, integer "
              f"{st['integer_accuracy_same_frames']:.2f} % |")  # fmt: skip
    print(f"| time | {', '.join(f'{k} {v:.0f} s' for k, v in times.items())}; load average "
          f"{load_start} -> {result['load_average_end']} |")  # fmt: skip
    res_dir = ROOT / "bench" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    path = res_dir / "resnet8_fashion.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    if not res.ok:
        print("stalled simulation FAILED: " + "; ".join(st["problems"][:5]), file=sys.stderr)
    if not (full_ok and stall_ok):
        print("RTL differs from the integer executor, or cycles/frame off the formula by more "
              "than 5 %", file=sys.stderr)  # fmt: skip
    return 0 if full_ok and stall_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
