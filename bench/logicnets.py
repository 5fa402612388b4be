"""LogicNets' architectures as qloom TruthTable stages, next to LogicNets' published results.

    .venv/bin/python bench/logicnets.py [--inputs 10000] [--frames 300] [--device xcu280]
                                        [--seed 0] [--no-synth]
    .venv/bin/python bench/logicnets.py --nets nid-s,jsc-s,nid-m,jsc-m,jsc-l,nid-l
        [--inputs 4000] [--frames 300] [--device xcu280] [--seed 0] [--synth-timeout 600]
        [--pnr-part LFE5U-85F] [--pnr-timeout 900] [--no-synth] [--no-pnr]

Without --nets (the original mode): the hand-built JSC-S graph below. With --nets: the zoo
models (qloom.train.logicnets, `qloom export --model NAME`), see `run_net` and the end of this
docstring.

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

--nets mode, per net: `export_untrained` (the published shape; random masks and weights from
`--seed`, BatchNorm statistics of a random batch: NO training, no jet / UNSW-NB15 data),
compiled by qloom, every MatMul lowered with {"style": "truth_table", "max_bits": the net's
widest table} (a layer that cannot be a table is reported and kept as an MVAU); the folded
model vs the integer executor on `--inputs` random hardware inputs; `--frames` of them through
Verilator at full rate with the glue FIFOs qloom sizes and stage to stage (no glue FIFOs: the
latency is then the register stages', as LogicNets'); Yosys synth_xilinx of every stage out of
context for `--device` with `--synth-timeout` seconds per stage (TruthTable stages of more
than 6 address bits neuron group by neuron group, qloom.synth.truthtable, `--workers` Yosys
runs at a time, summed; before 2026-12-06 afternoon whole stages; a stage that times out is
reported as timed out, the sum then as a lower bound, never estimated); nextpnr-ecp5 of the
whole stitched design (glue FIFOs included, inside qloom's 4-pin I/O harness) on `--pnr-part`
with `--pnr-timeout`, skipped (and said so) when a stage's Yosys run did not finish, when the
Xilinx LUT6 count x 4 exceeds the part's LUT4s (a random table of 6 or more inputs takes
four LUT4 per LUT6: 2^(K-4) against 2^(K-6)), or when
qloom's ECP5 estimate (optimistic for random tables) already exceeds the part; the first
neuron group of each layer shape is then placed instead (`pnr_layers`: the Fmax of one table
level between registers). `--only-pnr` keeps a net's stored row and redoes only nextpnr.
Results go to bench/results/logicnets.json under "nets" (the original mode's row under
"jsc_s_hand_built").
Caveats: Vivado 2019.2 (LogicNets) vs Yosys (here); random vs trained tables; the AXI-Stream
handshake and glue FIFOs in qloom's design; ECP5 (LUT4) Fmax is not comparable as a number
with LogicNets' UltraScale+ (LUT6) Fmax, it is another family.
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

from qloom.dataflow import to_dataflow
from qloom.datatype import DataType
from qloom.execute import execute
from qloom.ir import Graph, Node, TensorInfo

ROOT = Path(__file__).resolve().parents[1]
#: Xilinx/logicnets examples/jet_substructure/README.md (Vivado 2019.2)
PUBLISHED = {"LUT": 232, "FF": 268, "Fmax_MHz": 1394.70, "latency_cycles": 5, "accuracy": 68.8}
#: Xilinx/logicnets README (Vivado 2019.2, xcu280 family), as quoted in qloom issue 16: LUT,
#: FF, Fmax (MHz); the latency only for JSC-S (5 cycles: a register after each of its 5
#: layers). For the others None here: LogicNets registers every layer, so it would be the
#: layer count, but the number is not copied from the README.
PUBLISHED_ALL = {
    "jsc-s": {"LUT": 232, "FF": 268, "Fmax_MHz": 1394.70, "latency_cycles": 5},
    "jsc-m": {"LUT": 14_576, "FF": 803, "Fmax_MHz": 596.66, "latency_cycles": None},
    "jsc-l": {"LUT": 38_925, "FF": 2_418, "Fmax_MHz": 485.44, "latency_cycles": None},
    "nid-s": {"LUT": 110, "FF": 103, "Fmax_MHz": 1183.43, "latency_cycles": None},
    "nid-m": {"LUT": 3_058, "FF": 1_666, "Fmax_MHz": 801.28, "latency_cycles": None},
    "nid-l": {"LUT": 9_087, "FF": 4_579, "Fmax_MHz": 498.26, "latency_cycles": None},
}
RESULTS = ROOT / "bench" / "results" / "logicnets.json"
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


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def _say(t0: float, text: str) -> None:
    print(f"[{time.monotonic() - t0:6.0f} s] {text}", flush=True)


def random_inputs(g: Graph, n: int, rng: np.random.Generator) -> np.ndarray:
    """N random hardware inputs of graph G's input type (uniform over the type)."""
    info = g.tensors[g.inputs[0]]
    shape = (n, *info.shape)
    if info.dtype.name == "BIPOLAR":
        return 2 * rng.integers(0, 2, size=shape) - 1
    return rng.integers(info.dtype.min, info.dtype.max + 1, size=shape)


def run_net(name: str, args: argparse.Namespace, t_start: float) -> dict:
    """One zoo net, untrained: export, compile, tables, folded model, Verilator, Yosys, nextpnr."""
    import qloom
    from qloom.errors import QloomError
    from qloom.execute import execute as run_graph
    from qloom.fold.estimate import estimate_design
    from qloom.train.logicnets import LOGICNETS, export_untrained

    spec = LOGICNETS[name]
    work = ROOT / "build" / "bench-logicnets" / name
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    row: dict = {
        "net": name,
        "spec": spec.description,
        "weights": f"untrained: random masks and weights (seed {args.seed}), BatchNorm from a "
        "random batch; no training, no data set",
        "published": PUBLISHED_ALL[name],
        "seconds": times,
    }
    _say(t_start, f"{name}: export (untrained) + compile")
    t = time.monotonic()
    onnx = export_untrained(name, work / f"{name}.onnx", seed=args.seed)
    m = qloom.load(onnx)
    g = m.compiled.integer
    times["export + compile"] = round(time.monotonic() - t, 1)
    row["input_domain"] = m.domain.describe()

    # every MatMul a truth table; a layer that cannot be one stays an MVAU (and is reported)
    t = time.monotonic()
    max_bits = spec.max_table_bits()
    folding = {n.name: {"style": "truth_table", "max_bits": max_bits}
               for n in g.nodes if n.op == "MatMul"}  # fmt: skip
    not_tables: dict[str, str] = {}
    while True:
        try:
            design = to_dataflow(g, folding)
            break
        except QloomError as e:
            bad = next((k for k in folding if f"'{k}'" in str(e) and k not in not_tables), None)
            if bad is None:
                raise
            not_tables[bad] = str(e)
            folding[bad] = {"style": "mvau"}
    times["lower to tables"] = round(time.monotonic() - t, 1)
    row["stages"] = [
        {"name": s.name, "kind": s.kind, "mw": getattr(s, "mw", None),
         "mh": getattr(s, "mh", None), "address_bits": getattr(s, "address_bits", None)}
        for s in design.stages
    ]  # fmt: skip
    row["not_tables"] = not_tables
    row["cycles_per_frame_formula"] = design.cycles_per_frame()
    row["layers"] = sum(1 for n in g.nodes if n.op == "MatMul")
    print(design.summary())
    if args.only_pnr:  # keep the stored row (its RTL and Yosys results), place and route again
        stored = json.loads(RESULTS.read_text())["nets"][name] if RESULTS.exists() else {}
        if "yosys" not in stored:
            raise SystemExit(f"--only-pnr: {RESULTS} has no Yosys results for {name}")
        row = {**stored, "seconds": {**stored.get("seconds", {})}}
        row["pnr"] = pnr_net(name, design, row, args, work, t_start)
        row["seconds"]["nextpnr"] = row["pnr"].get("seconds", 0.0)
        return row

    # the folded model vs the integer executor
    rng = np.random.default_rng(args.seed + 1)
    x = random_inputs(g, args.inputs, rng)
    out = g.outputs[0]
    t = time.monotonic()
    got, want = design.execute(x), run_graph(g, x)
    diff = np.any(
        np.asarray(got[out]).reshape(len(x), -1) != np.asarray(want[out]).reshape(len(x), -1),
        axis=1,
    )  # noqa: E501
    row["model_inputs"] = args.inputs
    row["model_mismatches"] = int(diff.sum())
    times["folded model vs integer"] = round(time.monotonic() - t, 1)

    # Verilator: with the glue FIFOs qloom sizes, then stage to stage
    if args.frames > 0:
        from qloom.rtl.top import glue_streams
        from qloom.sim import VerilatorError
        from qloom.sim.design import simulate, size_fifos

        n = min(args.frames, len(x))
        ref = np.asarray(want[out]).reshape(len(x), -1)[:n]

        def bad_frames(res) -> int:
            o = np.asarray(res.outputs[out]).reshape(n, -1)
            return int(np.any(o != ref, axis=1).sum())

        _say(t_start, f"{name}: Verilator, {n} frames (glue FIFOs, then stage to stage)")
        t = time.monotonic()
        try:
            depths = size_fifos(design, x[:8], quiet=True)
            fifo = simulate(design, x[:n], fifo_depths=depths, quiet=True).check()
            direct = dict.fromkeys(glue_streams(design), 0)
            bare = simulate(design, x[:n], fifo_depths=direct, quiet=True).check()
            row["rtl"] = {
                "frames": n,
                "mismatches": bad_frames(fifo),
                "cycles_per_frame": fifo.cycles_per_frame,
                "latency_cycles": fifo.latency,
                "glue_fifo_depths": depths,
                "direct_mismatches": bad_frames(bare),
                "direct_cycles_per_frame": bare.cycles_per_frame,
                "direct_latency_cycles": bare.latency,
            }
        except (QloomError, VerilatorError) as e:
            row["rtl"] = {"error": str(e)[-2000:]}
        times["Verilator"] = round(time.monotonic() - t, 1)

    est = estimate_design(design, args.device)["total"]
    row["estimate"] = {"LUT": round(est.lut), "FF": round(est.ff)}

    # Yosys synth_xilinx per stage, out of context, a timeout per stage
    if not args.no_synth:
        from qloom.fold.synth import synth_stage
        from qloom.synth.truthtable import synth_truth_table

        per: dict[str, dict] = {}
        t = time.monotonic()
        for s in design.stages:
            _say(t_start, f"{name}: Yosys {args.device} stage {s.name} ({s.kind})")
            t1 = time.monotonic()
            try:
                if s.kind == "TruthTable":  # neuron groups out of context, summed
                    r = synth_truth_table(s, args.device, timeout=args.synth_timeout,
                                          workers=args.workers)  # fmt: skip
                else:
                    r = synth_stage(s, args.device, timeout=args.synth_timeout)
                per[s.name] = {"LUT": r.luts, "FF": r.ffs,
                               "seconds": round(time.monotonic() - t1, 1)}  # fmt: skip
            except QloomError as e:
                why = "timed out" if "timed out" in str(e) else "failed"
                per[s.name] = {"error": why, "message": str(e)[-800:],
                               "seconds": round(time.monotonic() - t1, 1)}  # fmt: skip
        times["Yosys per stage"] = round(time.monotonic() - t, 1)
        done = [v for v in per.values() if "LUT" in v]
        row["yosys"] = {
            "device": args.device,
            "per_stage": per,
            "complete": len(done) == len(per),
            "LUT": sum(v["LUT"] for v in done),
            "FF": sum(v["FF"] for v in done),
            "timeout_s": args.synth_timeout,
        }

    # nextpnr ECP5 on the whole stitched design
    if not args.no_pnr:
        row["pnr"] = pnr_net(name, design, row, args, work, t_start)
        times["nextpnr"] = row["pnr"].get("seconds", 0.0)
    return row


def pnr_net(name, design, row, args, work, t_start) -> dict:
    """nextpnr-ecp5 of the design with its glue FIFOs on args.pnr_part (time-boxed)."""
    from finn_compare import critical_path  # bench/ is on the path of a bench script

    from qloom.errors import QloomError
    from qloom.rtl.top import generate_top, glue_streams
    from qloom.synth import place_and_route
    from qloom.synth.devices import get_device

    dev = get_device(args.pnr_part)
    y = row.get("yosys", {})
    from qloom.fold.estimate import estimate_design

    # qloom's ECP5 estimate is optimistic for random tables (jsc-s: 616 LUT4 estimated,
    # 2,186 placed with the glue FIFOs), so a design it already puts over the part cannot fit
    est = round(estimate_design(design, dev.name)["total"].lut)
    why = None
    if y and not y["complete"]:
        why = "not run: a stage's Yosys run did not finish"
    elif 4 * y.get("LUT", 0) > dev.luts:
        why = (
            f"not run: Yosys needs {y['LUT']:,} LUT6 on {args.device}; a random table of 6 or "
            f"more inputs takes 4 LUT4 per LUT6 and {dev.name} has {dev.luts:,} LUT4"
        )
    elif est > dev.luts:
        why = f"not run: qloom estimates {est:,} LUT4 > {dev.luts:,} on {dev.name}"
    if why:  # the whole design does not fit: time one table level per layer shape instead
        layers = pnr_layers(name, design, args, work, t_start)
        return {"part": dev.name, "skipped": why, "estimate_lut4": est, "layers": layers,
                "seconds": layers["seconds"]}  # fmt: skip
    # a design that fits may also be timed layer shape by layer shape (--pnr-layers), to see
    # how far one table level alone is from the whole design
    layers = pnr_layers(name, design, args, work, t_start) if args.pnr_layers else None
    _say(t_start, f"{name}: nextpnr {dev.name} (timeout {args.pnr_timeout} s)")
    t = time.monotonic()
    # the glue FIFOs as the simulation sized them (without a simulation: generate_top's default)
    depths = row.get("rtl", {}).get("glue_fifo_depths")
    if depths:  # as stored; since 2026-12-06 evening two tables are joined without a FIFO
        glue = set(glue_streams(design))
        depths = {s: d for s, d in depths.items() if s in glue}
    rtl = generate_top(design, work / "rtl", depths, memory_subdir="")
    mems = [p for d in rtl.memories.values() for p in d.values()]
    try:
        res = place_and_route(rtl.sources, rtl.top, {}, dev.name, work / "pnr", mems,
                              args.pnr_mhz, timeout=args.pnr_timeout, quiet=True)  # fmt: skip
    except QloomError as e:
        why = "timed out" if "timed out" in str(e) else "failed"
        return {"part": dev.name, "error": why, "message": str(e)[-1500:],
                "seconds": round(time.monotonic() - t, 1)}  # fmt: skip
    used = {k: v["used"] for k, v in res.utilization.items()}
    return {
        "part": dev.name,
        "fmax_mhz": res.fmax_mhz,
        "target_mhz": args.pnr_mhz,
        "lut4": used.get("TRELLIS_COMB"),
        "ff": used.get("TRELLIS_FF"),
        "harness": res.harness,
        "critical_path": critical_path(res.report),
        "seconds": round(time.monotonic() - t, 1),
        **({"layers": layers} if layers else {}),
    }


def pnr_layers(name, design, args, work, t_start) -> dict:
    """nextpnr of the first neuron group of each TruthTable layer shape (address bits, output
    bits) on args.pnr_part (qloom.synth.truthtable.pnr_truth_table): one table level between
    registers, the path every layer of the pipeline has; the lowest Fmax over the shapes is
    the design's if it fitted, less the full stages' fan-out and routing pressure. Layers of
    one shape share the measurement (random tables of one shape are alike)."""
    from finn_compare import critical_path

    from qloom.errors import QloomError
    from qloom.synth.truthtable import PNR_GROUP_BITS, groups, pnr_truth_table

    t = time.monotonic()
    shapes: dict[tuple[int, int], dict] = {}
    for s in design.stages:
        if s.kind != "TruthTable":
            continue
        shape = (s.address_bits, s.out_dtype.bits)
        if shape in shapes:
            shapes[shape]["stages"].append(s.name)
            continue
        placed = len(groups(s, PNR_GROUP_BITS)[0])
        _say(t_start, f"{name}: nextpnr {args.pnr_part}, {placed} of {s.mh} neurons of "
                      f"{s.name} ({shape[0]}-bit tables, {shape[1]}-bit outputs)")  # fmt: skip
        entry: dict = {"stages": [s.name], "address_bits": shape[0], "out_bits": shape[1],
                       "neurons_placed": placed, "neurons": s.mh}  # fmt: skip
        t1 = time.monotonic()
        try:
            r = pnr_truth_table(s, args.pnr_part, args.pnr_mhz, timeout=args.pnr_timeout,
                                workdir=work / "pnr-layers" / f"{shape[0]}x{shape[1]}")  # fmt: skip
            entry |= {"fmax_mhz": r.fmax_mhz, "lut4": r.used("TRELLIS_COMB"),
                      "ff": r.used("TRELLIS_FF"), "harness": r.harness,
                      "critical_path": critical_path(r.report)}  # fmt: skip
        except QloomError as e:
            entry |= {"error": "timed out" if "timed out" in str(e) else "failed",
                      "message": str(e)[-1500:]}  # fmt: skip
        entry["seconds"] = round(time.monotonic() - t1, 1)
        shapes[shape] = entry
    got = [v["fmax_mhz"] for v in shapes.values() if v.get("fmax_mhz")]
    return {
        "what": "first neuron group of each layer shape, inside the I/O harness",
        "group_bits": PNR_GROUP_BITS,
        "target_mhz": args.pnr_mhz,
        "shapes": list(shapes.values()),
        "fmax_mhz": min(got) if len(got) == len(shapes) else None,
        "seconds": round(time.monotonic() - t, 1),
    }


def _num(v, spec: str = ",") -> str:
    return "-" if v is None else format(v, spec)


def print_nets(rows: dict[str, dict], device: str) -> None:
    """One markdown table: qloom (random tables) beside LogicNets' published numbers."""
    print()
    print(f"| net | tables (address bits) | folded / RTL exact | Yosys {device} LUT | FF | "
          "LogicNets LUT | FF | ECP5 Fmax (MHz), LUT4 | LogicNets Fmax (xcu280) | latency "
          "stage to stage / with glue FIFOs (cycles) | LogicNets latency |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        pub = r["published"]
        kinds = "/".join(str(s["address_bits"]) if s["kind"] == "TruthTable" else s["kind"]
                         for s in r["stages"])  # fmt: skip
        rtl = r.get("rtl", {})
        exact = f"{r['model_mismatches']}/{r['model_inputs']}"
        if "frames" in rtl:
            exact += f"; {rtl['mismatches']}+{rtl['direct_mismatches']} of {rtl['frames']}"
        elif "error" in rtl:
            exact += "; RTL error"
        y = r.get("yosys", {})
        lut, ff = _num(y.get("LUT")), _num(y.get("FF"))
        if y and not y["complete"]:
            bad = [f"{k}: {v['error']}" for k, v in y["per_stage"].items() if "error" in v]
            lut, ff = f">= {lut} ({', '.join(bad)})", f">= {ff}"
        p = r.get("pnr", {})
        per = ", ".join(
            f"{v['address_bits']}x{v['out_bits']}b: {_num(v.get('fmax_mhz'), '.1f')} "
            f"({v['neurons_placed']} neurons, {_num(v.get('lut4'))} LUT4)"
            for v in p.get("layers", {}).get("shapes", [])
        )
        if "fmax_mhz" in p:
            pnr = f"{_num(p['fmax_mhz'], '.1f')}, {_num(p['lut4'])} LUT4"
            pnr += f"; one level per layer shape {per}" if per else ""
        elif per:
            pnr = f"design does not fit; one level per layer shape {per}"
        else:
            pnr = p.get("skipped") or p.get("error") or "-"
        lat = f"{_num(rtl.get('direct_latency_cycles'))} / {_num(rtl.get('latency_cycles'))}"
        pub_lat = (
            _num(pub["latency_cycles"]) if pub["latency_cycles"] else f"({r['layers']} layers)"
        )
        print(f"| {name} | {kinds} | {exact} | {lut} | {ff} | {pub['LUT']:,} | {pub['FF']:,} | "
              f"{pnr} | {pub['Fmax_MHz']} | {lat} | {pub_lat} |")  # fmt: skip
    for name, r in rows.items():
        print(f"{name} seconds: {r['seconds']}")


def main_nets(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    load_start = _load()
    rows: dict[str, dict] = {}
    for name in [n.strip().lower() for n in args.nets.split(",") if n.strip()]:
        if name not in PUBLISHED_ALL:
            raise SystemExit(f"unknown net {name!r}; one of {', '.join(PUBLISHED_ALL)}")
        t = time.monotonic()
        rows[name] = run_net(name, args, t0)
        rows[name]["pnr_run" if args.only_pnr else "run"] = {
            "command": "bench/logicnets.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.platform()}, {os.cpu_count()} cores",
            "load_average_start": load_start,
            "load_average_end": _load(),
            "minutes": round((time.monotonic() - t) / 60, 1),
        }
        load_start = rows[name]["run"]["load_average_end"]
        _save({"nets": {name: rows[name]}})  # after each net: a later one may be killed
    print_nets(rows, args.device)
    return 0


def _save(update: dict) -> None:
    """Merge UPDATE into bench/results/logicnets.json ("nets" merged per net). The original
    mode's row moves under "jsc_s_hand_built" if the file still has it at the top level."""
    data: dict = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if "network" in data:  # the file of the original mode: one JSC-S row
        data = {"jsc_s_hand_built": data}
    for k, v in update.items():
        if k == "nets":
            data.setdefault("nets", {}).update(v)
        else:
            data[k] = v
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--inputs", type=int, default=10_000, help="inputs through the folded model")
    ap.add_argument("--frames", type=int, default=300, help="inputs through the RTL")
    ap.add_argument("--device", default="xcu280", help="Yosys part (LogicNets: xcu280 family)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stall", type=float, default=0.3)
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument(
        "--nets",
        default=None,
        help="zoo nets, e.g. jsc-s,jsc-m,jsc-l,nid-s,nid-m,nid-l (untrained); without it the "
        "hand-built JSC-S graph",
    )
    ap.add_argument(
        "--synth-timeout",
        type=float,
        default=600.0,
        help="Yosys seconds per stage (per neuron group of a TruthTable stage)",
    )
    ap.add_argument("--workers", type=int, default=1, help="Yosys runs in parallel")
    ap.add_argument("--pnr-part", default="LFE5U-85F")
    ap.add_argument("--pnr-mhz", type=float, default=300.0, help="nextpnr's clock target")
    ap.add_argument("--pnr-timeout", type=float, default=900.0, help="nextpnr seconds per net")
    ap.add_argument("--no-pnr", action="store_true")
    ap.add_argument(
        "--pnr-layers",
        action="store_true",
        help="also place one neuron group per layer shape where the whole design fits",
    )
    ap.add_argument(
        "--only-pnr",
        action="store_true",
        help="keep each net's stored row (RTL, Yosys) and run nextpnr again",
    )
    args = ap.parse_args(argv)
    if args.nets:
        if "--inputs" not in (sys.argv if argv is None else argv):
            args.inputs = 4000
        return main_nets(args)

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
    _save({"jsc_s_hand_built": row})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
