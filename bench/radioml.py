"""The RadioML challenge baseline shape (VGG10, 1-D) through qloom, end to end.

    .venv/bin/python bench/radioml.py [--inputs 1000] [--frames 100] [--target-fps 3000]
                                      [--clock-mhz 100] [--device xczu9eg] [--wbits 8 --abits 8]

The network is `tests/model_corpus.brevitas_radio_1d` at full size: 2 x 1024 I/Q input
through an 8-bit quantizer, seven (QuantConv1d k3 pad 1, 64 channels, BN, QuantReLU,
MaxPool1d 2) blocks, two 128-wide QuantLinear + BN + QuantReLU layers and a 24-class
classifier; weights and activations `--wbits` / `--abits` (8 / 8 as the challenge's
baseline), random weights and BN statistics from one random batch (no RadioML data here).
Steps, each timed: Brevitas export; `compile_model` (the input domain from the model);
the integer model vs qonnx's `execute_onnx` on `--inputs` random Gaussian signals (max |diff|,
top-1 agreement); `fold_design` to the target; glue FIFOs sized on 3 frames; `--frames`
signals through the stitched Verilog in Verilator with random stalls on input and output
(every output compared with the integer model), then at full rate for cycles per frame vs
the formula. Prints one table, writes bench/results/radioml.json. Not a test: no timing
thresholds. Needs Verilator (qloom[hw]).
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
sys.path.insert(0, str(ROOT / "tests"))  # the model corpus generates the network


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=1000, help="signals compared with qonnx")
    ap.add_argument("--frames", type=int, default=100, help="signals through the RTL")
    ap.add_argument("--target-fps", type=float, default=3000.0)
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--device", default="xczu9eg")
    ap.add_argument("--wbits", type=int, default=8)
    ap.add_argument("--abits", type=int, default=8)
    ap.add_argument("--fixed-point", action="store_true", help="power-of-two scales")
    ap.add_argument("--stall", type=float, default=0.3, help="probability of a stall per cycle")
    args = ap.parse_args(argv)

    from model_corpus import brevitas_radio_1d

    from qloom.flow import compile_model, run_integer
    from qloom.fold.solver import fold_design
    from qloom.frontend.reference import qonnx_outputs
    from qloom.sim.design import simulate, size_fifos

    work = ROOT / "bench" / "results" / "radioml"
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        times[name] = round(time.monotonic() - t0, 1)
        print(f"  {name}: {times[name]} s", file=sys.stderr, flush=True)

    t0 = time.monotonic()
    stem = "vgg10_fixed" if args.fixed_point else "vgg10"
    path = brevitas_radio_1d(work / f"{stem}.onnx", blocks=7, length=1024, width=64,
                             wbits=args.wbits, abits=args.abits, hidden=(128, 128),
                             classes=24, fixed_point=args.fixed_point)  # fmt: skip
    step("export", t0)
    t0 = time.monotonic()
    compiled = compile_model(path)
    step("compile", t0)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (args.inputs, 2, 1024)).astype(np.float32)
    t0 = time.monotonic()
    ours = compiled.run(x)[compiled.integer.outputs[0]]
    step("integer model", t0)
    t0 = time.monotonic()
    ref = qonnx_outputs(path, x, 50)
    step("qonnx", t0)
    top1 = float(np.mean(ours.argmax(1) == ref.argmax(1)))
    # qloom's accumulators are exact integers; qonnx sums dequantized float32 products, so
    # with non-power-of-two scales a value next to a quantizer threshold can round to the
    # other side there: count the outputs (and signals) where the two differ at all
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    differ = np.abs(ours - ref) > tol

    t0 = time.monotonic()
    fold = fold_design(compiled.integer, args.target_fps, args.clock_mhz, args.device)
    design = fold.design
    step("fold", t0)
    hw = compiled.hardware_input(x[: args.frames])
    t0 = time.monotonic()
    depths = size_fifos(design, hw[:3])
    step("FIFO sizing", t0)
    t0 = time.monotonic()
    stalled = simulate(design, hw, fifo_depths=depths, in_valid_prob=1 - args.stall,
                       out_ready_prob=1 - args.stall, seed=1)  # fmt: skip
    stalled.check()
    step("RTL with stalls", t0)
    t0 = time.monotonic()
    full = simulate(design, hw, fifo_depths=depths)
    full.check()
    step("RTL full rate", t0)
    want = run_integer(compiled.integer, hw)
    bad = np.zeros(len(hw), bool)
    for name, ref_int in want.items():
        got = stalled.outputs[name]
        bad |= ~np.all(got.reshape(len(hw), -1) == ref_int.reshape(len(hw), -1), axis=1)
    mismatches = int(bad.sum())
    kinds: dict[str, int] = {}
    for s in design.stages:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    row = {
        "network": f"VGG10-1D w{args.wbits}a{args.abits} (2x1024, 7 conv1d blocks, 24 classes, "
        f"{'power-of-two' if args.fixed_point else 'float'} scales)",
        "stages": kinds,
        "inputs_vs_qonnx": args.inputs,
        "max_abs_diff_vs_qonnx": float(np.abs(ours - ref).max()),
        "top1_agreement_vs_qonnx": top1,
        "outputs_differing_vs_qonnx": int(differ.sum()),
        "signals_differing_vs_qonnx": int(differ.any(axis=1).sum()),
        "outputs_total": int(differ.size),
        "target_fps": args.target_fps,
        "clock_mhz": args.clock_mhz,
        "device": args.device,
        "frames": args.frames,
        "stall_probability": args.stall,
        "rtl_mismatches": mismatches,
        "cycles_per_frame_formula": design.cycles_per_frame(),
        "cycles_per_frame_measured": full.cycles_per_frame,
        "estimate": fold.estimate["total"].as_dict(),
        "seconds": times,
        "machine": f"{platform.platform()}, {platform.machine()}",
    }
    out = ROOT / "bench" / "results" / f"radioml{'_fixed' if args.fixed_point else ''}.json"
    out.write_text(json.dumps(row, indent=2) + "\n")
    cpf, meas = row["cycles_per_frame_formula"], row["cycles_per_frame_measured"]
    print(f"| network | {row['network']} |")
    print("|---|---|")
    print(f"| stages | {', '.join(f'{k} {v}' for k, v in kinds.items())} |")
    print(f"| integer vs qonnx ({args.inputs} signals) | max abs diff "
          f"{row['max_abs_diff_vs_qonnx']:.2e}, top-1 agreement {top1:.1%}, "
          f"{row['outputs_differing_vs_qonnx']:,} of {differ.size:,} outputs differ "
          f"(in {row['signals_differing_vs_qonnx']} signals) |")  # fmt: skip
    print(f"| RTL vs integer ({args.frames} frames, stalls {args.stall}) | "
          f"{mismatches} mismatching frames |")  # fmt: skip
    print(f"| cycles/frame formula vs measured | {cpf:,} vs {meas:,.0f} "
          f"({(meas - cpf) / cpf:+.1%}) |")  # fmt: skip
    fps = args.clock_mhz * 1e6 / max(cpf, 1)
    print(f"| throughput at {args.clock_mhz:g} MHz | {fps:,.0f} frames/s (target "
          f"{args.target_fps:,.0f}) |")  # fmt: skip
    e = row["estimate"]
    print(f"| estimate on {args.device} | {e['LUT']:,} LUT, {e['FF']:,} FF, {e['BRAM']} BRAM18, "
          f"{e['DSP']} DSP |")  # fmt: skip
    print(f"| seconds | {', '.join(f'{k} {v}' for k, v in times.items())} |")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
