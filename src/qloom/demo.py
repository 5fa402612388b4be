"""`make demo`: the main job end to end, as far as the flow reaches today.

1. Train a small binarized network (TFC-w1a1) on Fashion-MNIST with Brevitas, export QONNX
   (skipped when build/demo/tfc-w1a1.onnx is already there: the demo is idempotent).
2. Compile it and the shared MNIST TFC models to integer graphs and check, on every test
   image, that the integer graph predicts what the exported model predicts.
3. Print one summary table.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from qloom.data import load_dataset
from qloom.errors import QloomError
from qloom.flow import compile_model, predictions, run_imported, run_integer
from qloom.report.layers import layer_rows

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "demo"
SHARED_MODELS = ROOT.parent / "shared" / "models" / "mnist-tfc"
DEMO_MODEL = "tfc-w1a1-i8"  # 1-bit weights and activations, 8-bit input (as FINN CNV)
DEMO_EPOCHS = int(os.environ.get("QLOOM_DEMO_EPOCHS", "10"))


def train_demo_model(console: Console) -> Path | None:
    out = BUILD / f"{DEMO_MODEL}.onnx"
    if out.exists():
        console.print(f"[dim]using {out.relative_to(ROOT)} (delete it to retrain)[/]")
        return out
    try:
        from qloom.train.trainer import train
    except ImportError as e:
        console.print(f"[yellow]training skipped: {e}[/]")
        return None
    console.print(f"training {DEMO_MODEL} on Fashion-MNIST for {DEMO_EPOCHS} epochs")
    train(
        DEMO_MODEL,
        "fashion-mnist",
        DEMO_EPOCHS,
        out,
        seed=0,
        quiet=bool(os.environ.get("QLOOM_QUIET")),
    )
    return out


def evaluate(path: Path, dataset: str) -> dict:
    images, labels = load_dataset(dataset, "test")
    t0 = time.perf_counter()
    compiled = compile_model(path)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = run_integer(compiled.integer, images)
    t_int = time.perf_counter() - t0
    pred = predictions(compiled.integer, out)
    ref = predictions(compiled.imported, run_imported(compiled.imported, images))
    rows = layer_rows(compiled.integer)
    return {
        "model": path.stem,
        "dataset": dataset,
        "accuracy": float(np.mean(pred == labels)),
        "agree": int(np.sum(pred == ref)),
        "images": len(labels),
        "macs": sum(r.macs for r in rows),
        "param_bits": sum(r.param_bits for r in rows),
        "compile_s": t_compile,
        "images_per_s": len(labels) / t_int,
    }


def main() -> int:
    console = Console()
    BUILD.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Path, str]] = []
    try:
        trained = train_demo_model(console)
        if trained is not None:
            jobs.append((trained, "fashion-mnist"))
    except QloomError as e:
        console.print(f"[yellow]training skipped: {e}[/]")
    jobs += [(p, "mnist") for p in sorted(SHARED_MODELS.glob("TFC_*.onnx"))]
    if not jobs:
        console.print("[red]nothing to do: no dataset for training and no shared models[/]")
        return 1
    table = Table(title="qloom demo: QONNX -> integer graph, checked on every test image")
    for col in (
        "model",
        "dataset",
        "top-1",
        "integer = exported",
        "MACs/frame",
        "param KiB",
        "compile s",
        "images/s (software)",
    ):
        table.add_column(col)
    for path, dataset in jobs:
        r = evaluate(path, dataset)
        table.add_row(
            r["model"],
            r["dataset"],
            f"{100 * r['accuracy']:.2f} %",
            f"{r['agree']}/{r['images']}",
            f"{r['macs']:,}",
            f"{r['param_bits'] / 8192:.1f}",
            f"{r['compile_s']:.2f}",
            f"{r['images_per_s']:,.0f}",
        )
    console.print(table)
    console.print(
        "RTL generation, simulation and synthesis are not in the flow yet (issues 3 and 4)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
