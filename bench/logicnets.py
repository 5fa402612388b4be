"""LogicNets JSC-S as qloom TruthTable stages, next to LogicNets' published result.

    .venv/bin/python bench/logicnets.py [--inputs 10000] [--frames 300] [--device xcu280]
                                        [--seed 0] [--no-synth]

The network is JSC-S's architecture (Umuroglu et al., FPL'20; Xilinx/logicnets
examples/jet_substructure): 16 inputs at 2 bits, layers of 64, 32, 32, 32 and 5 neurons,
every neuron reading 3 inputs (input, hidden and output fan-in 3), 2-bit activations and
2-bit outputs, so every neuron is a 6-bit table. No jet data and no training here: the masks
and weights are random (seeded), and each neuron's 3 thresholds are the quartiles of its
accumulator over random inputs (so few tables are constant). Built directly as a qloom
integer graph (MatMul + MultiThreshold per layer), lowered with {"style": "truth_table"} for
every layer. Steps: the folded model vs the integer executor on `--inputs` random inputs;
`--frames` inputs through the stitched Verilog in Verilator with 30 % random stalls on input
and output, then at full rate (cycles per frame, latency); Yosys synth_xilinx of each stage
out of context for `--device` (LUT / FF summed over the stages), next to qloom's estimate and
LogicNets' published Vivado 2019.2 result (232 LUT, 268 FF, 1394.70 MHz, 5 cycles).

Why the numbers differ: random tables use every LUT their size allows (one LUT6 per output
bit), trained ones are often simpler; qloom's stages carry AXI-Stream valid/ready (a valid
flag and a few LUTs per stage) and the design puts glue FIFOs between stages (not in the
per-stage sums). Yosys cannot time Xilinx parts: no Fmax here; each layer is one LUT level
(a 6-bit table is one LUT6) between registers, as in LogicNets.
Prints one table, writes bench/results/logicnets.json. Not a test: no timing thresholds.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from qloom.dataflow import to_dataflow
from qloom.datatype import DataType
from qloom.execute import execute
from qloom.ir import Graph, Node, TensorInfo

ROOT = Path(__file__).resolve().parents[1]
#: Xilinx/logicnets examples/jet_substructure/README.md (Vivado 2019.2)
PUBLISHED = {"LUT": 232, "FF": 268, "Fmax_MHz": 1394.70, "latency_cycles": 5, "accuracy": 68.8}
JSC_S = {"inputs": 16, "layers": (64, 32, 32, 32, 5), "bits": 2, "fanin": 3}


def jsc_s_graph(seed: int = 0) -> Graph:
    """The JSC-S integer graph with random masks, weights and quartile thresholds."""
    rng = np.random.default_rng(seed)
    bits, fanin = JSC_S["bits"], JSC_S["fanin"]
    in_t = DataType.int(bits, True)  # the 2-bit input quantizer (signed, as LogicNets' input)
    act_t = DataType.int(bits, False)
    tensors = {"x": TensorInfo((JSC_S["inputs"],), in_t, "NC")}
    nodes: list[Node] = []
    x, width = "x", JSC_S["inputs"]
    probe = rng.integers(in_t.min, in_t.max + 1, size=(4096, width))
    for i, mh in enumerate(JSC_S["layers"]):
        w = np.zeros((width, mh), np.int64)
        for n in range(mh):
            w[rng.choice(width, fanin, replace=False), n] = rng.choice([-3, -2, -1, 1, 2, 3], 3)
        acc = probe @ w
        t = np.quantile(acc, [0.25, 0.5, 0.75], axis=0).T
        t = np.ceil(t).astype(np.int64) + np.array([0, 0, 1])  # ascending, quartiles rounded up
        t = np.maximum.accumulate(t, axis=1)
        a, y = f"acc{i}", f"act{i}"
        tensors[a] = TensorInfo((mh,), DataType("INT32"), "NC")
        tensors[y] = TensorInfo((mh,), act_t, "NC")
        nodes.append(Node("MatMul", f"fc{i}", (x,), (a,), {"weights": w}))
        nodes.append(
            Node(
                "MultiThreshold",
                f"act{i}",
                (a,),
                (y,),
                dict(thresholds=t, negate=None, out_base=0, out_dtype=act_t),
            )
        )
        # the next layer's probe: this layer's outputs on the same random inputs
        count = (acc[:, :, None] >= t[None]).sum(axis=2)
        probe, x, width = count, y, mh
    return Graph(tuple(nodes), ("x",), (x,), tensors, name="jsc_s", kind="integer")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=10_000, help="inputs through the folded model")
    ap.add_argument("--frames", type=int, default=300, help="inputs through the RTL")
    ap.add_argument("--device", default="xcu280", help="Yosys part (LogicNets: xcu280 family)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stall", type=float, default=0.3)
    ap.add_argument("--no-synth", action="store_true")
    args = ap.parse_args(argv)

    times: dict[str, float] = {}
    t0 = time.monotonic()
    g = jsc_s_graph(args.seed)
    folding = {n.name: {"style": "truth_table"} for n in g.nodes if n.op == "MatMul"}
    design = to_dataflow(g, folding)
    times["build + enumerate tables"] = round(time.monotonic() - t0, 2)
    print(design.summary())

    rng = np.random.default_rng(args.seed + 1)
    x = rng.integers(-2, 2, size=(args.inputs, JSC_S["inputs"]))
    t0 = time.monotonic()
    got, want = design.execute(x), execute(g, x)
    out = g.outputs[0]
    model_diff = int(np.sum(np.any(got[out] != want[out], axis=1)))
    times["folded model vs integer"] = round(time.monotonic() - t0, 2)
    row: dict = {
        "network": "JSC-S shape, random masks/weights",
        "stages": [s.kind for s in design.stages],
        "model_inputs": args.inputs,
        "model_mismatches": model_diff,
        "cycles_per_frame_formula": design.cycles_per_frame(),
    }

    from qloom.sim import VerilatorError, find_verilator

    try:
        find_verilator()
        from qloom.rtl.top import glue_streams
        from qloom.sim.design import simulate, size_fifos

        t0 = time.monotonic()
        depths = size_fifos(design, x[:8])
        p = 1.0 - args.stall
        sim = simulate(
            design,
            x[: args.frames],
            in_valid_prob=p,
            out_ready_prob=p,
            fifo_depths=depths,
            seed=args.seed,
        ).check()
        fast = simulate(design, x[: args.frames], fifo_depths=depths).check()
        # without glue FIFOs (stage to stage, as LogicNets' pipeline): the latency is the
        # registers' alone; the ready chain is combinational through the stages
        direct = dict.fromkeys(glue_streams(design), 0)
        bare = simulate(
            design,
            x[: args.frames],
            in_valid_prob=p,
            out_ready_prob=p,
            fifo_depths=direct,
            seed=args.seed + 1,
        ).check()
        bare_fast = simulate(design, x[: args.frames], fifo_depths=direct).check()
        times["Verilator (stalls + full rate)"] = round(time.monotonic() - t0, 1)
        row.update(
            rtl_frames=args.frames,
            rtl_mismatches=int(np.sum(np.any(sim.outputs[out] != want[out][: args.frames], 1))),
            rtl_cycles_per_frame=fast.cycles_per_frame,
            rtl_latency_cycles=fast.latency,
            glue_fifo_depths=depths,
            direct_mismatches=int(np.sum(np.any(bare.outputs[out] != want[out][: args.frames], 1))),
            direct_cycles_per_frame=bare_fast.cycles_per_frame,
            direct_latency_cycles=bare_fast.latency,
        )
    except VerilatorError as e:
        print(f"no Verilator ({e}): RTL simulation skipped")

    from qloom.fold.estimate import estimate_design

    est = estimate_design(design, args.device)
    row["estimate"] = {"LUT": round(est["total"].lut), "FF": round(est["total"].ff)}
    if not args.no_synth:
        from qloom.fold.synth import synth_stage

        t0 = time.monotonic()
        per = {s.name: synth_stage(s, args.device) for s in design.stages}
        times["Yosys per stage"] = round(time.monotonic() - t0, 1)
        row["yosys_per_stage"] = {n: {"LUT": r.luts, "FF": r.ffs} for n, r in per.items()}
        row["yosys"] = {
            "LUT": sum(r.luts for r in per.values()),
            "FF": sum(r.ffs for r in per.values()),
        }
    row["device"] = args.device
    row["published"] = PUBLISHED
    row["seconds"] = times
    row["machine"] = platform.platform()

    print()
    print("| | qloom (random tables) | LogicNets JSC-S (published, Vivado) |")
    print("|---|---|---|")
    y = row.get("yosys", {})
    print(
        f"| LUT | {y.get('LUT', '-')} (Yosys {args.device}), estimate {row['estimate']['LUT']} "
        f"| {PUBLISHED['LUT']} |"
    )
    print(f"| FF | {y.get('FF', '-')}, estimate {row['estimate']['FF']} | {PUBLISHED['FF']} |")
    print(
        f"| cycles per frame | {row.get('rtl_cycles_per_frame', '-')} (RTL), "
        f"{row['cycles_per_frame_formula']} (formula) | 1 |"
    )
    print(
        f"| latency | {row.get('rtl_latency_cycles', '-')} cycles (RTL, with glue FIFOs); "
        f"{row.get('direct_latency_cycles', '-')} stage to stage (first input to last "
        "output cycle, both counted: 5 register stages) "
        f"({row.get('direct_cycles_per_frame', '-')} cycle/frame) "
        f"| {PUBLISHED['latency_cycles']} cycles |"
    )
    print(f"| Fmax | not measured (Yosys has no Xilinx timing) | {PUBLISHED['Fmax_MHz']} MHz |")
    print(
        f"| exact | folded model {row['model_mismatches']} of {args.inputs} differ; RTL "
        f"{row.get('rtl_mismatches', '-')} (stage to stage "
        f"{row.get('direct_mismatches', '-')}) of {row.get('rtl_frames', '-')} (stalls "
        f"{args.stall:.0%}) | |"
    )
    print(f"seconds: {times}")
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "logicnets.json").write_text(json.dumps(row, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
