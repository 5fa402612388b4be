"""Quantization-aware pruning vs pruning after training: accuracy, BOPs and Yosys LUTs.

    .venv/bin/python bench/qap.py [--epochs 5] [--limit 20000] [--sparsities 0.5,0.75,0.9]
        [--finetune 1] [--scope layer] [--synth 4,2:10] [--threads 1] [--quiet]

Trains tfc-w2a2 on Fashion-MNIST (`qloom train`'s trainer, `--limit` seeded training images,
`--epochs` epochs) dense and, per sparsity, (a) with quantization-aware pruning (QAP, the
default gradual schedule: dense first epoch, cubic ramp, last epoch with the final masks) and
(b) pruned after training: the dense model's weights pruned once by magnitude, evaluated as is
and after `--finetune` more epochs (at a tenth of the learning rate) from the dense checkpoint.
Per model: top-1 accuracy of qloom's integer model on all 10,000 test images, the fraction of
exactly zero weights in the exported Quant nodes, BOPs (MACs x weight bits x input bits x
density, summed over the layers), and Yosys `synth_xilinx` LUTs (xc7z020, out of context,
cached by content) of fully parallel MVAUs (PE = MH, SIMD = MW: the weights are constants in
the logic, so every zero weight removes its product and adder input).

Why only some layers are synthesized: a fully parallel MVAU of this network is large for
Yosys here (the 64 x 10 last layer takes ~40 s on the 2-core VM, a dense 64 x 64 layer did
not finish in 15 min, the 784 x 64 first layer, ~50 k products, is far beyond), so `--synth`
names MVAUs, 1-based, each optionally with a number of its first neurons (`2:10`: the first
10 neurons of layer 2, a 64 x 10 slice: the neurons of a fully parallel MVAU are independent
circuits, so a slice is a fair sample of the layer). `--scope layer` (the default here) prunes
every layer to the same sparsity, so the synthesized layers carry the sparsity in the table.

Prints a table, writes bench/results/qap.json (models and checkpoints under build/bench-qap/).
Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MODEL = "tfc-w2a2"
DATASET = "fashion-mnist"
PART = "xc7z020"


def _say(quiet: bool, t0: float, text: str) -> None:
    if not quiet:
        print(f"[{time.monotonic() - t0:6.0f} s] {text}", flush=True)


def _synth_targets(spec: str) -> list[tuple[int, int | None]]:
    """'4,2:10' -> [(4, None), (2, 10)]: (1-based MVAU, first N neurons or all)."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        layer, _, n = item.partition(":")
        out.append((int(layer), int(n) if n else None))
    return out


def parallel_luts(onnx: Path, targets: list[tuple[int, int | None]]) -> dict[str, Any]:
    """Yosys LUTs of the named MVAUs of ONNX's fully parallel design (a slice of neurons
    where asked), with the density of the weights synthesized."""
    from qloom.dataflow.lower import to_dataflow
    from qloom.flow import compile_model
    from qloom.fold.solver import parallel_folding
    from qloom.fold.synth import synth_stage

    graph = compile_model(onnx).integer
    design = to_dataflow(graph, parallel_folding(to_dataflow(graph)))
    mvaus = [s for s in design.stages if s.kind == "MVAU"]
    out = {}
    for layer, n in targets:
        s = mvaus[layer - 1]
        label = f"fc{layer}"
        if n is not None and n < s.mh:
            t = None if s.thresholds is None else s.thresholds[:n]
            s = dataclasses.replace(s, mh=n, pe=n, weights=s.weights[:n], thresholds=t)
            label = f"fc{layer}[:{n}]"
        t0 = time.monotonic()
        r = synth_stage(s, PART)
        out[label] = {
            "shape": f"{s.mw}x{s.mh}",
            "density": float((s.weights != 0).mean()),
            "lut": r.luts,
            "ff": r.ffs,
            "yosys_s": round(r.seconds, 1),
            "cached": r.cached,
            "wall_s": round(time.monotonic() - t0, 1),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=20_000, help="training images (seeded subset)")
    ap.add_argument("--sparsities", default="0.5,0.75,0.9")
    ap.add_argument("--finetune", type=int, default=1, help="epochs after pruning-after-training")
    ap.add_argument("--scope", default="layer", choices=("global", "layer"))
    ap.add_argument("--schedule", default="gradual", help="QAP's --prune-schedule")
    ap.add_argument("--synth", default="4,2:10", help="MVAUs to synthesize ('' for none)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default=str(ROOT / "build" / "bench-qap"))
    ap.add_argument("--quiet", action="store_true", help="only the table")
    args = ap.parse_args(argv)

    from qloom.train.prune import PruneConfig
    from qloom.train.trainer import train

    t0 = time.monotonic()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sparsities = [float(s) for s in args.sparsities.split(",") if s.strip()]
    targets = _synth_targets(args.synth)
    common = dict(epochs=args.epochs, seed=args.seed, quiet=True, limit=args.limit,
                  threads=args.threads)  # fmt: skip

    # (name, method, sparsity, keyword arguments of train()); the after-training runs resume
    # from the dense checkpoint, so they share its first epochs exactly.
    dense_ckpt = out_dir / "dense.pt"
    runs: list[tuple[str, str, float, dict]] = [("dense", "dense", 0.0, {})]
    for s in sparsities:
        tag = f"{round(s * 100)}"
        qap = PruneConfig(s, schedule=args.schedule, scope=args.scope)
        after = PruneConfig(s, schedule="after", scope=args.scope)
        runs.append((f"qap-{tag}", "QAP", s, {"prune": qap}))
        runs.append((f"after-{tag}", "after", s, {"resume": dense_ckpt, "prune": after}))
        if args.finetune:
            ft = dataclasses.replace(after, finetune_epochs=args.finetune)
            method = f"after + {args.finetune} ep"
            runs.append((f"after-ft-{tag}", method, s, {"resume": dense_ckpt, "prune": ft}))

    rows: list[dict[str, Any]] = []
    synth_jobs: list[Future] = []
    pool = ThreadPoolExecutor(max_workers=1)
    for i, (name, method, sparsity, kw) in enumerate(runs, 1):
        onnx = out_dir / f"{name}.onnx"
        t_run = time.monotonic()
        _say(args.quiet, t0, f"{i}/{len(runs)} training {name}...")
        rec = train(MODEL, DATASET, out=onnx, checkpoint=out_dir / f"{name}.pt", **common, **kw)
        train_s = time.monotonic() - t_run
        zeros = None
        if "pruning" in rec:
            z = rec["pruning"]["qonnx_quant_zeros"]
            zeros = z["zero"] / z["weights"]
        else:  # the dense model: its Quant nodes' own zeros (ternary weights have many)
            from qloom.train.prune import quantized_weights

            q = quantized_weights(onnx)
            zeros = sum(int((w == 0).sum()) for w in q.values()) / sum(w.size for w in q.values())
        row = {
            "name": name,
            "method": method,
            "sparsity": sparsity,
            "epochs": rec["epochs"] + rec.get("finetune_epochs", 0),
            "integer_accuracy": rec.get("integer_accuracy"),
            "torch_accuracy": rec["test_accuracy"],
            "zero_weights": zeros,
            "bops": rec["bops"]["bops"],
            "bops_dense": rec["bops"]["bops_dense"],
            "bops_layers": rec["bops"]["layers"],
            "pruning": rec.get("pruning"),
            "train_s": round(train_s, 1),
        }
        if targets:  # Yosys runs beside the next training (one process each)
            synth_jobs.append(pool.submit(parallel_luts, onnx, targets))
        rows.append(row)
        _say(
            args.quiet,
            t0,
            f"{i}/{len(runs)} {name}: integer accuracy {row['integer_accuracy']:.2f} %, zero "
            f"weights {zeros:.3f}, BOPs {row['bops']:,} ({train_s:.0f} s)",
        )
    for i, (row, job) in enumerate(zip(rows, synth_jobs, strict=False), 1):
        row["luts"] = job.result()
        luts = ", ".join(f"{k} {v['lut']:,} LUT" for k, v in row["luts"].items())
        _say(args.quiet, t0, f"Yosys {i}/{len(rows)} {row['name']}: {luts}")
    pool.shutdown()

    labels = list(rows[0].get("luts", {}))
    head = ["sparsity", "method", "epochs", "accuracy", "zero weights", "BOPs"]
    head += [f"LUT {k} ({rows[0]['luts'][k]['shape']})" for k in labels]
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [
            f"{r['sparsity']:.0%}",
            r["method"],
            str(r["epochs"]),
            f"{r['integer_accuracy']:.2f} %",
            f"{r['zero_weights']:.3f}",
            f"{r['bops']:,}",
        ]
        cells += [f"{r['luts'][k]['lut']:,} (density {r['luts'][k]['density']:.2f})"
                  for k in labels]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    total = time.monotonic() - t0
    print(
        f"\n{MODEL} on {DATASET}: {args.limit} training images, {args.epochs} epochs, "
        f"scope {args.scope}, QAP schedule {args.schedule}; accuracy of qloom's integer model "
        f"on the 10,000 test images; LUTs: Yosys synth_xilinx {PART}, fully parallel MVAUs; "
        f"{total / 60:.1f} min"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "qap.json"
    result = {
        "model": MODEL,
        "dataset": DATASET,
        "options": vars(args),
        "rows": rows,
        "seconds": round(total, 1),
        "machine": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
