"""Software model speed: qloom's integer executor vs qonnx's execute_onnx, same inputs, one run.

    .venv/bin/python bench/executor_speed.py [--models TFC_2W2A ...] [--qonnx-images 200] [--cnv]

--cnv adds FINN's CNV-w1a1 topology from the zoo (random weights, BN statistics from one
random batch, exported by Brevitas) on random 32x32x3 images.

Prints a table and writes bench/results/executor_speed.json. qonnx runs node by node, one image
per call (the models have a fixed batch of 1); qloom runs the whole test set in batches, its
binary layers on bit-packed words (compiled xor-popcount loops; QLOOM_NATIVE=0 for numpy's) with
one worker thread per core (QLOOM_THREADS=1 for one).
The machine may be shared: the load average before and after is printed and kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from qloom.data import load_dataset
from qloom.execute import native
from qloom.execute.kernels import threads
from qloom.flow import compile_model, predictions, run_integer
from qloom.frontend.domain import RAW_PIXELS
from qloom.frontend.reference import qonnx_executor

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models" / "mnist-tfc"


def cnv_model(out: Path) -> Path:
    import torch

    from qloom.train.export import export_qonnx
    from qloom.train.zoo import build_model

    torch.manual_seed(0)
    model = build_model("cnv-w1a1", 3, 32, 10)
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 3, 32, 32))
    return export_qonnx(model.eval(), out, in_shape=(1, 3, 32, 32))


def measure(path: Path, images: np.ndarray, n_qonnx: int) -> dict:
    compiled = compile_model(path, RAW_PIXELS)
    run_integer(compiled.integer, images[:10])  # warm-up
    t_int = float("inf")
    for _ in range(5):  # best of 5: the machine is shared, the minimum is the honest figure
        t0 = time.perf_counter()
        out = run_integer(compiled.integer, images)
        t_int = min(t_int, (time.perf_counter() - t0) / len(images))
    qonnx = qonnx_executor(path)
    x = images[:n_qonnx].astype(np.float32) / np.float32(255)
    qonnx(x[:1])
    ref, times = [], []
    for i in range(n_qonnx):
        t0 = time.perf_counter()
        ref.append(qonnx(x[i : i + 1]))
        times.append(time.perf_counter() - t0)
    ref = np.concatenate(ref)
    t_ref = float(np.median(times))  # median per image: robust to the shared machine's load
    agree = bool(np.array_equal(ref.argmax(1), predictions(compiled.integer, out)[:n_qonnx]))
    return {
        "model": path.stem,
        "images": len(images),
        "qonnx_images": n_qonnx,
        "qloom_us_per_image": t_int * 1e6,
        "qonnx_us_per_image_median": t_ref * 1e6,
        "speedup": t_ref / t_int,
        "predictions_agree": agree,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="*", default=["TFC_2W2A", "TFC_1W1A"])
    ap.add_argument("--qonnx-images", type=int, default=200)
    ap.add_argument("--cnv", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()
    images, _ = load_dataset("mnist", "test")
    rows = [measure(MODELS / f"{m}.onnx", images, args.qonnx_images) for m in args.models]
    if args.cnv:
        path = cnv_model(ROOT / "build" / "bench" / "cnv-w1a1.onnx")
        rgb = np.random.default_rng(0).integers(0, 256, (500, 3, 32, 32), dtype=np.uint8)
        rows.append(measure(path, rgb, min(args.qonnx_images, 20)))
    load = {"before": load_before, "after": os.getloadavg()}
    machine = platform.processor() or platform.machine()
    before, after = (", ".join(f"{v:.2f}" for v in load[k]) for k in ("before", "after"))
    table = Table(
        title=f"integer executor vs qonnx execute_onnx ({machine}, {threads()} threads, "
        f"XNOR kernels: {'compiled' if native.lib() else 'numpy'})",
        caption=f"load average (1, 5, 15 min): {before} before, {after} after",
    )
    for col in (
        "model",
        "qloom µs/image (best of 5)",
        "qonnx µs/image (median)",
        "speed-up",
        "same predictions",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["model"],
            f"{r['qloom_us_per_image']:.1f}",
            f"{r['qonnx_us_per_image_median']:.0f}",
            f"{r['speedup']:,.0f}x",
            str(r["predictions_agree"]),
        )
    Console().print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "threads": threads(),
        "xnor_kernels": "compiled" if native.lib() else "numpy",
        "load_average": load,
    }
    (out / "executor_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
