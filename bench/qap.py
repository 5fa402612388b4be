"""Quantization-aware pruning vs pruning after training: accuracy, BOPs and Yosys LUTs.

    .venv/bin/python bench/qap.py [--model tfc-w2a2] [--dataset fashion-mnist] [--epochs 5]
        [--limit 20000] [--sparsities 0.5,0.75,0.9] [--finetune 1] [--scope layer]
        [--synth 4,2:10] [--synth-methods all]
        [--synth-timeout 3600] [--slice-fallback 8] [--retrain] [--threads 1] [--quiet]

Trains tfc-w2a2 on Fashion-MNIST, or `--model` on `--dataset` (e.g. jet-mlp-w2a2, the hls4ml
jet-tagging MLP of Hawks et al.'s study, on the digits bundled with scikit-learn: every layer
small enough for Yosys whole) (`qloom train`'s trainer, `--limit` seeded training images,
`--epochs` epochs) dense and, per sparsity, (a) with quantization-aware pruning (QAP, the
default gradual schedule: dense first epoch, cubic ramp, last epoch with the final masks) and
(b) pruned after training: the dense model's weights pruned once by magnitude, evaluated as is
and after `--finetune` more epochs (at a tenth of the learning rate) from the dense checkpoint.
Per model: top-1 accuracy of qloom's integer model on all test images, the fraction of
exactly zero weights in the exported Quant nodes, BOPs (MACs x weight bits x input bits x
density, summed over the layers), and Yosys `synth_xilinx` LUTs (xc7z020, out of context,
cached by content) of fully parallel MVAUs (PE = MH, SIMD = MW: the weights are constants in
the logic, so every zero weight removes its product and adder input).

Models are re-used from `--out-dir` (no training) when the .onnx, the .pt checkpoint and the
record (.json) exist and the record holds the same settings (model, dataset, epochs, seed,
training images, batch size, learning rate, threads, pruning sparsity / schedule / scope /
fine-tuning epochs) and, for the runs that resume from the dense checkpoint, is newer than
it; `--retrain` trains every model again.

`--synth` names MVAUs, 1-based: `2` the whole layer, `2:10` its first 10 neurons, `1/8` the
layer as 8 disjoint neuron slices synthesized one by one and summed (the neurons of a fully
parallel MVAU are independent circuits: Yosys cannot share logic between slices, so the sum
is an upper bound of the whole layer, less a few LUTs where a slice's accumulator is narrower
than the layer's). A whole layer whose Yosys run fails or exceeds `--synth-timeout` seconds
is synthesized as `--slice-fallback` slices instead, and so is that layer in every later
model (one method per column). `--synth-methods` picks the models synthesized (dense, QAP,
after, after-ft; default all). With every MVAU named (`1,2,3,4`), the table adds the whole
design: the sum of the four fully parallel MVAUs, whose Thresholding is fused into the MVAU
(the last layer outputs its accumulator); not counted: the stream FIFOs / glue between the
stages, and what runs on the host (the input quantization of the pixels, the float scale of
the 10 outputs).

Prints a table, writes bench/results/qap[-MODEL-DATASET].json (models and checkpoints under
build/bench-qap[-MODEL-DATASET]/).
Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from benchlib import say

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MODEL = "tfc-w2a2"
DATASET = "fashion-mnist"
PART = "xc7z020"
METHODS = ("dense", "QAP", "after", "after-ft")  # --synth-methods keys


class Target(NamedTuple):
    layer: int  # 1-based MVAU
    first: int | None = None  # only the first N neurons
    slices: int | None = None  # the whole layer as this many disjoint neuron slices

    @property
    def label(self) -> str:
        return f"fc{self.layer}" if self.first is None else f"fc{self.layer}[:{self.first}]"


def _synth_targets(spec: str) -> list[Target]:
    """'4,2:10,1/8' -> [Target(4), Target(2, first=10), Target(1, slices=8)]."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if "/" in item:
            layer, _, k = item.partition("/")
            out.append(Target(int(layer), slices=int(k)))
        else:
            layer, _, n = item.partition(":")
            out.append(Target(int(layer), first=int(n) if n else None))
    return out


def _neurons(s, a: int, b: int):
    """MVAU `s` restricted to neurons a..b-1 (fully parallel: PE = the neurons kept)."""
    t = None if s.thresholds is None else s.thresholds[a:b]
    return dataclasses.replace(s, mh=b - a, pe=b - a, weights=s.weights[a:b], thresholds=t)


def parallel_luts(
    onnx: Path,
    targets: list[Target],
    timeout: float = 3600.0,
    fallback: int = 0,
    sliced: dict[int, int] | None = None,
    log=None,
) -> dict[str, Any]:
    """Yosys LUTs of the named MVAUs of ONNX's fully parallel design (a slice of neurons, or
    the sum of disjoint slices, where asked), with the density of the weights synthesized.

    A whole layer whose Yosys run fails (or times out) is synthesized as `fallback` slices,
    and `sliced` (layer -> slices, shared by the calls of one benchmark) remembers it."""
    from qloom.dataflow.lower import to_dataflow
    from qloom.flow import compile_model
    from qloom.fold.solver import parallel_folding
    from qloom.fold.synth import synth_stage

    sliced = {} if sliced is None else sliced
    log = log or (lambda text: None)
    graph = compile_model(onnx).integer
    design = to_dataflow(graph, parallel_folding(to_dataflow(graph)))
    mvaus = [s for s in design.stages if s.kind == "MVAU"]
    out: dict[str, Any] = {}
    for tg in targets:
        s = mvaus[tg.layer - 1]
        if tg.first is not None and tg.first < s.mh:
            s = _neurons(s, 0, tg.first)
        k = tg.slices or (sliced.get(tg.layer) if tg.first is None else None)
        entry: dict[str, Any] = {
            "shape": f"{s.mw}x{s.mh}",
            "density": float((s.weights != 0).mean()),
            "slices": None,
        }
        t0 = time.monotonic()
        if not k:
            try:
                r = synth_stage(s, PART, timeout=timeout)
            except Exception as e:  # noqa: BLE001 - a timeout or Yosys failure: slices or none
                entry["whole_error"] = str(e).splitlines()[0]
                entry["whole_wall_s"] = round(time.monotonic() - t0, 1)
                log(f"{onnx.stem} {tg.label}: {entry['whole_error']}")
                if not fallback or tg.first is not None:
                    entry.update(lut=None, ff=None, yosys_s=None, cached=False)
                    entry["wall_s"] = round(time.monotonic() - t0, 1)
                    out[tg.label] = entry
                    continue
                k = sliced[tg.layer] = fallback
                log(f"{onnx.stem} {tg.label}: synthesizing {k} neuron slices instead")
            else:
                entry.update(lut=r.luts, ff=r.ffs, yosys_s=round(r.seconds, 1), cached=r.cached)
        if k:
            bounds = [round(i * s.mh / k) for i in range(k + 1)]
            parts = []
            for a, b in zip(bounds, bounds[1:], strict=False):
                try:
                    r = synth_stage(_neurons(s, a, b), PART, timeout=timeout)
                except Exception as e:  # noqa: BLE001
                    parts.append({"neurons": f"{a}-{b - 1}", "error": str(e).splitlines()[0]})
                    log(f"{onnx.stem} {tg.label} neurons {a}-{b - 1}: {parts[-1]['error']}")
                    continue
                parts.append({"neurons": f"{a}-{b - 1}", "lut": r.luts, "ff": r.ffs,
                              "yosys_s": round(r.seconds, 1), "cached": r.cached})  # fmt: skip
                log(f"{onnx.stem} {tg.label} neurons {a}-{b - 1}: {r.luts:,} LUT "
                    f"({r.seconds:.0f} s{', cached' if r.cached else ''})")  # fmt: skip
            ok = all("lut" in p for p in parts)
            entry.update(
                slices=k,
                parts=parts,
                lut=sum(p["lut"] for p in parts) if ok else None,
                ff=sum(p["ff"] for p in parts) if ok else None,
                yosys_s=round(sum(p.get("yosys_s", 0) for p in parts), 1),
                cached=all(p.get("cached") for p in parts),
            )
        entry["wall_s"] = round(time.monotonic() - t0, 1)
        out[tg.label] = entry
        log(f"{onnx.stem} {tg.label}: {_fmt_lut(entry)} LUT ({entry['wall_s']:.0f} s wall)")
    return out


def _reusable(name: str, out_dir: Path, expect: dict, prune: dict | None, resumes: Path | None):
    """The stored record of run NAME when it can stand for a new training run (the module
    docstring), else None."""
    onnx, rec_path, ckpt = (out_dir / f"{name}{ext}" for ext in (".onnx", ".json", ".pt"))
    if not (onnx.is_file() and rec_path.is_file() and ckpt.is_file()):
        return None
    try:
        rec = json.loads(rec_path.read_text())
    except ValueError:
        return None
    if any(rec.get(k) != v for k, v in expect.items()) or "integer_accuracy" not in rec:
        return None
    got = rec.get("pruning")
    if (got is None) != (prune is None):
        return None
    if prune is not None and any(got.get(k) != v for k, v in prune.items()):
        return None
    if resumes is not None and rec_path.stat().st_mtime < resumes.stat().st_mtime:
        return None  # resumed from an older dense checkpoint
    return rec


def _fmt_lut(e: dict | None) -> str:
    if e is None:
        return "-"
    if e.get("lut") is None:
        return "failed"
    return f"{e['lut']:,}" + (f" ({e['slices']} slices)" if e.get("slices") else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL, help="zoo FC model (e.g. jet-mlp-w2a2)")
    ap.add_argument("--dataset", default=DATASET, help="image data set (e.g. digits, bundled)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--limit", type=int, default=20_000, help="training images (seeded subset)")
    ap.add_argument("--sparsities", default="0.5,0.75,0.9")
    ap.add_argument("--finetune", type=int, default=1, help="epochs after pruning-after-training")
    ap.add_argument("--scope", default="layer", choices=("global", "layer"))
    ap.add_argument("--schedule", default="gradual", help="QAP's --prune-schedule")
    ap.add_argument("--synth", default="4,2:10", help="MVAUs to synthesize ('' for none)")
    ap.add_argument("--synth-methods", default="all",
                    help=f"models to synthesize: 'all' or some of {','.join(METHODS)}")  # fmt: skip
    ap.add_argument("--synth-timeout", type=float, default=3600.0, help="seconds per Yosys run")
    ap.add_argument(
        "--slice-fallback",
        type=int,
        default=8,
        help="neuron slices for a whole layer that fails or times out (0: none)",
    )
    ap.add_argument("--retrain", action="store_true", help="train even where a model is stored")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default=None, help="default build/bench-qap[-MODEL-DATASET]")
    ap.add_argument("--quiet", action="store_true", help="only the table")
    args = ap.parse_args(argv)

    from qloom.data import load_dataset
    from qloom.train.prune import PruneConfig, parse_schedule
    from qloom.train.trainer import DEFAULT_BATCH_SIZE, DEFAULT_LR, train

    t0 = time.monotonic()
    load0 = os.getloadavg()
    default = (args.model, args.dataset) == (MODEL, DATASET)
    args.tag = "" if default else f"-{args.model}-{args.dataset}"
    out_dir = Path(args.out_dir or ROOT / "build" / f"bench-qap{args.tag}")
    n_train = args.n_train = min(args.limit, len(load_dataset(args.dataset, "train")[1]))
    args.test_images = len(load_dataset(args.dataset, "test")[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    sparsities = [float(s) for s in args.sparsities.split(",") if s.strip()]
    targets = _synth_targets(args.synth)
    if args.synth_methods.strip().lower() == "all":
        synth_methods = set(METHODS)
    else:
        synth_methods = {m.strip() for m in args.synth_methods.split(",") if m.strip()}
        keys = {m.lower(): m for m in METHODS}
        if bad := [m for m in synth_methods if m.lower() not in keys]:
            ap.error(f"--synth-methods: unknown {', '.join(bad)} (use {', '.join(METHODS)})")
        synth_methods = {keys[m.lower()] for m in synth_methods}
    common = dict(epochs=args.epochs, seed=args.seed, quiet=True, limit=args.limit,
                  threads=args.threads)  # fmt: skip
    # what a stored record must hold to be re-used (train()'s defaults for the rest)
    expect = {"model": args.model, "dataset": args.dataset, "epochs": args.epochs,
              "seed": args.seed, "train_images": n_train, "batch_size": DEFAULT_BATCH_SIZE,
              "lr": DEFAULT_LR, "weight_decay": 0.0, "dropout": None,
              "threads": args.threads}  # fmt: skip
    steps_per_epoch = math.ceil(n_train / DEFAULT_BATCH_SIZE)

    def prune_record(cfg: PruneConfig) -> dict:
        sched = parse_schedule(cfg.schedule, cfg.sparsity, args.epochs, steps_per_epoch)
        return {"sparsity": cfg.sparsity, "schedule": sched.describe(), "scope": cfg.scope,
                "structure": cfg.structure, "finetune_epochs": cfg.finetune_epochs}  # fmt: skip

    # (name, method, key, sparsity, keyword arguments of train()); the after-training runs
    # resume from the dense checkpoint, so they share its first epochs exactly.
    dense_ckpt = out_dir / "dense.pt"
    runs: list[tuple[str, str, str, float, dict]] = [("dense", "dense", "dense", 0.0, {})]
    for s in sparsities:
        tag = f"{round(s * 100)}"
        qap = PruneConfig(s, schedule=args.schedule, scope=args.scope)
        after = PruneConfig(s, schedule="after", scope=args.scope)
        runs.append((f"qap-{tag}", "QAP", "QAP", s, {"prune": qap}))
        runs.append((f"after-{tag}", "after", "after", s, {"resume": dense_ckpt, "prune": after}))
        if args.finetune:
            ft = dataclasses.replace(after, finetune_epochs=args.finetune)
            method = f"after + {args.finetune} ep"
            kw = {"resume": dense_ckpt, "prune": ft}
            runs.append((f"after-ft-{tag}", method, "after-ft", s, kw))

    rows: list[dict[str, Any]] = []
    synth_jobs: list[tuple[dict, Future]] = []
    pool = ThreadPoolExecutor(max_workers=1)
    sliced: dict[int, int] = {}  # layers that fell back to slices (the pool's one thread)
    retrained = args.retrain
    for i, (name, method, key, sparsity, kw) in enumerate(runs, 1):
        onnx = out_dir / f"{name}.onnx"
        t_run = time.monotonic()
        prune = prune_record(kw["prune"]) if "prune" in kw else None
        rec = None
        if not retrained:  # a retrained dense model invalidates the stored resumed runs
            rec = _reusable(name, out_dir, expect, prune, kw.get("resume"))
        reused = rec is not None
        if rec is None:
            say(args.quiet, t0, f"{i}/{len(runs)} training {name}...")
            rec = train(
                args.model,
                args.dataset,
                out=onnx,
                checkpoint=out_dir / f"{name}.pt",
                **common,
                **kw,
            )
            retrained = retrained or name == "dense"
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
            "reused": reused,
            "train_s": None if reused else round(train_s, 1),
        }
        if targets and key in synth_methods:  # Yosys runs beside the next training
            log = lambda text: say(args.quiet, t0, text)  # noqa: E731
            fb = args.slice_fallback
            job = pool.submit(parallel_luts, onnx, targets, args.synth_timeout, fb, sliced, log)
            synth_jobs.append((row, job))
        rows.append(row)
        say(
            args.quiet,
            t0,
            f"{i}/{len(runs)} {name}: integer accuracy {row['integer_accuracy']:.2f} %, zero "
            f"weights {zeros:.3f}, BOPs {row['bops']:,} "
            f"({'stored' if row['reused'] else f'{train_s:.0f} s'})",
        )
    for i, (row, job) in enumerate(synth_jobs, 1):
        row["luts"] = job.result()
        luts = ", ".join(f"{k} {_fmt_lut(v)} LUT" for k, v in row["luts"].items())
        say(args.quiet, t0, f"Yosys {i}/{len(synth_jobs)} {row['name']}: {luts}")
    pool.shutdown()
    return _report(args, rows, targets, t0, load0)


def _report(args, rows: list[dict], targets: list[Target], t0: float, load0) -> int:
    labels = [tg.label for tg in targets]
    shapes = {}
    for r in rows:
        for k, v in r.get("luts", {}).items():
            shapes.setdefault(k, v["shape"])
    n_mvaus = len(rows[0]["bops_layers"])
    whole = {f"fc{j}" for j in range(1, n_mvaus + 1)} <= set(labels)
    for r in rows:
        if "luts" in r:
            r["yosys_s"] = round(sum(v.get("yosys_s") or 0 for v in r["luts"].values()), 1)
            if whole:
                parts = [r["luts"][f"fc{j}"]["lut"] for j in range(1, n_mvaus + 1)]
                r["lut_whole_design"] = None if None in parts else sum(parts)
    head = ["sparsity", "method", "epochs", "accuracy", "zero weights", "BOPs"]
    head += [f"LUT {k} ({shapes.get(k, '?')})" for k in labels]
    head += ["LUT whole design"] if whole else []
    head += ["Yosys s"] if labels else []
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
        luts = r.get("luts")
        cells += [_fmt_lut(luts.get(k)) if luts else "-" for k in labels]
        if whole:
            w = r.get("lut_whole_design")
            cells.append("-" if luts is None else "failed" if w is None else f"**{w:,}**")
        if labels:
            cells.append("-" if luts is None else f"{r['yosys_s']:,.0f}")
        print("| " + " | ".join(cells) + " |")
    total = time.monotonic() - t0
    load1 = os.getloadavg()
    print(
        f"\n{args.model} on {args.dataset}: {args.n_train} training images, {args.epochs} epochs, "
        f"scope {args.scope}, QAP schedule {args.schedule}; accuracy of qloom's integer model "
        f"on the {args.test_images:,} test images; LUTs: Yosys synth_xilinx {PART}, fully "
        f"parallel MVAUs (thresholds fused; N slices: the sum of N disjoint neuron slices "
        f"synthesized one by one, an upper bound of the whole layer); {total / 60:.1f} min; "
        f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"qap{args.tag}.json"
    result = {
        "model": args.model,
        "dataset": args.dataset,
        "options": vars(args),
        "rows": rows,
        "seconds": round(total, 1),
        "load_average": {"start": load0, "end": load1},
        "machine": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
