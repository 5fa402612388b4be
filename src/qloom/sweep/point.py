"""One sweep point, as a Ray task runs it: train (cached), compile, measure, fold, estimate.

Training is cached under the cache folder by `SweepSpec.train_key` (the point and every
training setting): a finished model (its QONNX file and the trainer's .json record) is reused
as is; a model whose worker died mid-training resumes from the trainer's own per-epoch
checkpoint (the .pt next to it), which ends with the same weights as a straight run.

Each FPS target on each part is one row: 'ok' (met and fits within max_utilization),
'unreachable' (no folding meets the target at the clock), or 'does not fit' (met, but the
estimate exceeds the part; its resources are still recorded). A point whose training or
compilation fails is returned with status 'error' and the message, never raised: a sweep
records what it cannot do.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from qloom.errors import FoldingError, QloomError
from qloom.sweep.spec import Point, SweepSpec

#: test hook: a path; the first task to create this file kills its own worker process
CRASH_ENV = "QLOOM_SWEEP_CRASH_ONCE"


def ensure_topology(p: Point) -> None:
    """Register the zoo topology of a point with a width (tfc-h32: TFC's three hidden layers
    at 32 neurons) in this process."""
    if p.width is None:
        return
    from dataclasses import replace

    from qloom.train.zoo import TOPOLOGIES

    base = TOPOLOGIES[p.model]
    if p.topology not in TOPOLOGIES:
        TOPOLOGIES[p.topology] = replace(
            base,
            hidden=(p.width,) * len(base.hidden),
            description=f"{base.description.split(':')[0]} at {p.width} neurons per layer",
        )


def train_cached(spec: SweepSpec, p: Point, cache: Path) -> tuple[Path, dict, bool]:
    """(QONNX path, the trainer's record, whether it was trained now)."""
    import json

    from qloom.train.prune import PruneConfig
    from qloom.train.trainer import train

    folder = cache / spec.train_key(p)
    onnx = folder / "model.onnx"
    record = onnx.with_suffix(".json")
    if onnx.is_file() and record.is_file():
        return onnx, json.loads(record.read_text()), False
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = onnx.with_suffix(".pt")
    ensure_topology(p)
    rec = train(
        p.zoo_name,
        spec.dataset,
        epochs=spec.epochs,
        out=onnx,
        seed=spec.seed,
        batch_size=spec.batch_size,
        lr=spec.lr,
        resume=ckpt if ckpt.is_file() else None,
        quiet=True,
        data_dir=spec.data_dir,
        limit=spec.limit,
        threads=spec.threads,
        integer_check=False,  # measured below on the compiled integer graph
        prune=PruneConfig(p.sparsity) if p.sparsity else None,
    )
    return onnx, rec, True


def _crash_once(marker: str | None) -> None:
    """Test hook (CRASH_ENV): kill this worker the first time any point gets here."""
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    os._exit(17)


def fold_row(graph, spec: SweepSpec, part: str, fps: float) -> dict[str, Any]:
    """Fold GRAPH to FPS on PART: status, resources, cycles per frame."""
    from qloom.fold.solver import fits, fold_design
    from qloom.synth.devices import get_device

    device = get_device(part)
    row: dict[str, Any] = {"part": device.name, "target_fps": fps}
    try:
        # the solver's choice does not depend on the cap; checking the fit here keeps the
        # estimate of a design that does not fit
        res = fold_design(graph, fps, spec.clock_mhz, device, max_utilization=1e9)
    except FoldingError as e:
        return {**row, "status": "unreachable", "message": str(e)}
    total = res.estimate["total"].as_dict()
    cap = device.capacity()
    ok = fits(res.estimate["total"], device, spec.max_utilization)
    row.update(
        status="ok" if ok else "does not fit",
        message="" if ok else (
            f"estimate {', '.join(f'{k} {v:,}' for k, v in total.items())} exceeds "
            f"{spec.max_utilization:.0%} of {device.name}"
        ),
        lut=total["LUT"],
        ff=total["FF"],
        bram=total["BRAM"],
        dsp=total["DSP"],
        utilization={k: round(100.0 * v / cap[k], 2) if cap[k] else None
                     for k, v in total.items()},
        cycles_per_frame=res.design.cycles_per_frame(),
        fps=res.fps,
        bottleneck=res.design.bottleneck().name,
        folding=res.folding,
    )  # fmt: skip
    if ok and spec.synth:
        row["synth"] = _synthesize(res.design, device.name)
    return row


def _synthesize(design, part: str) -> dict[str, int]:
    """Yosys totals of every stage (out of context, cached by content)."""
    from qloom.fold.synth import synth_stage

    tot = {"lut": 0, "ff": 0, "bram": 0, "dsp": 0}
    for s in design.stages:
        r = synth_stage(s, part)
        tot["lut"] += r.luts
        tot["ff"] += r.ffs
        tot["bram"] += r.bram
        tot["dsp"] += r.dsp
    return tot


def run_point(
    spec: SweepSpec, p: Point, cache_dir: str, crash_marker: str | None = None
) -> dict[str, Any]:
    """The record of point P (see the module docstring); never raises for a point's own
    failure."""
    t0 = time.time()
    w, a, i = p.bits
    out: dict[str, Any] = {
        "key": p.key,
        "config_hash": spec.point_hash(p),
        "model": p.model,
        "width": p.width,
        "precision": p.precision,
        "weight_bits": w,
        "act_bits": a,
        "input_bits": i if i is not None else (8 if p.model.startswith("cnv") else a),
        "sparsity": p.sparsity,
        "dataset": spec.dataset,
        "epochs": spec.epochs,
        "seed": spec.seed,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t0)),
    }
    try:
        onnx, rec, trained = train_cached(spec, p, Path(cache_dir))
        _crash_once(crash_marker)
        out.update(
            onnx=str(onnx),
            trained_now=trained,
            train_seconds=rec.get("train_seconds"),
            torch_accuracy=rec.get("test_accuracy"),
        )
        measured = _measure(spec, onnx)
        graph = measured.pop("graph")
        out.update(measured)
        out["rows"] = [fold_row(graph, spec, part, fps)
                       for part in spec.parts for fps in spec.targets_fps]  # fmt: skip
        out["status"] = "ok"
    except QloomError as e:
        out.update(status="error", error=str(e))
    except Exception as e:  # a bug: recorded with its traceback, the sweep goes on
        out.update(
            status="error",
            error=f"internal error: {type(e).__name__}: {e}",
            traceback=traceback.format_exc(limit=8),
        )
    out["seconds"] = round(time.time() - t0, 2)
    return out


def _measure(spec: SweepSpec, onnx: Path) -> dict[str, Any]:
    """Accuracy of qloom's integer model (the hardware's raw pixels in) on the test set, and
    BOPs of its integer graph."""
    import numpy as np

    from qloom.data import load_dataset
    from qloom.flow import compile_model, predictions, run_integer
    from qloom.frontend.domain import RAW_PIXELS
    from qloom.train.prune import bops_record, layer_bops

    compiled = compile_model(onnx, RAW_PIXELS)
    x, y = load_dataset(spec.dataset, "test", spec.data_dir)
    if spec.test_limit is not None:
        x, y = x[: spec.test_limit], y[: spec.test_limit]
    pred = predictions(compiled.integer, run_integer(compiled.integer, x))
    b = bops_record(layer_bops(compiled.integer))
    return {
        "accuracy": float(np.mean(pred == y) * 100.0),
        "test_images": len(y),
        "bops": b["bops"],
        "bops_dense": b["bops_dense"],
        "graph": compiled.integer,
    }
