"""Frame-sharded RTL simulation: the frames split into contiguous shards, each simulated by its
own run of the same Verilator model, on worker threads here or as Ray tasks on a cluster.

Why: a design's frames are independent, so the proof "every output equals the integer model"
parallelises over frames while one simulator is single-threaded. The model is built once per
machine (the Verilator cache is content-addressed and locked: concurrent shards wait for one
build); a Ray task generates its own top from the design and FIFO depths, so the sources and
hence the cached model are the same on every node. Shard i runs with seed + i (its own stall
pattern). Steady-state cycles/frame is the median frame interval over all shards; latency and
per-stage timing are the first shard's first frame."""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np

from qloom.dataflow.design import DataflowDesign
from qloom.rtl.top import RtlFiles, generate_top
from qloom.sim.design import DesignSimResult, simulate


def _merge(parts: list[DesignSimResult]) -> DesignSimResult:
    """One result for the whole frame range from the shards' results, in frame order."""
    first = parts[0]
    if not all(p.ok for p in parts):
        outputs: dict[str, np.ndarray] = {}
        beats: dict[str, np.ndarray] = {}
    else:
        outputs = {k: np.concatenate([p.outputs[k] for p in parts]) for k in first.outputs}
        beats = {k: np.concatenate([p.beats[k] for p in parts]) for k in first.beats}
    gaps = np.concatenate([np.diff(p.frame_end_cycles) for p in parts if p.frame_end_cycles])
    problems = [f"shard {i}: {m}" for i, p in enumerate(parts) for m in p.problems]
    diagnosis = [f"shard {i}: {m}" for i, p in enumerate(parts) for m in p.diagnosis]
    fifo_max: dict[str, int] = {}
    for p in parts:
        for k, v in p.fifo_max.items():
            fifo_max[k] = max(v, fifo_max.get(k, 0))
    return replace(
        first,
        outputs=outputs,
        beats=beats,
        frames=sum(p.frames for p in parts),
        total_cycles=sum(p.total_cycles for p in parts),
        cycles_per_frame=float(np.median(gaps)) if len(gaps) else None,
        cycles_per_frame_mean=float(np.mean(gaps)) if len(gaps) else None,
        fifo_max=fifo_max,
        ok=all(p.ok for p in parts),
        deadlock=any(p.deadlock for p in parts),
        problems=problems,
        diagnosis=diagnosis,
        wall_s=max(p.wall_s for p in parts),
        build_s=max(p.build_s for p in parts),
    )


def _glue_depths(rtl: RtlFiles) -> dict[str, int]:
    return {f.stream: f.depth for f in rtl.fifos if f.glue}


def simulate_sharded(
    design: DataflowDesign,
    images: np.ndarray,
    shards: int,
    *,
    rtl: RtlFiles | None = None,
    fifo_depths: dict[str, int] | None = None,
    ray_address: str | None = None,
    seed: int = 0,
    quiet: bool | None = True,
    **kw,
) -> DesignSimResult:
    """`simulate` over `shards` contiguous frame ranges in parallel, merged (see the module
    docstring). rtl: a generated top (a build's rtl/) run as it is by every shard here; with
    `ray_address` ("local" or HOST:PORT) each Ray task generates the same top itself.
    Other keyword arguments go to `simulate` (stall probabilities, cache_dir, ...)."""
    images = np.asarray(images)
    shards = max(1, min(shards, len(images)))
    chunks = np.array_split(images, shards)
    if ray_address is not None:
        from qloom.raytasks import ray_session

        depths = _glue_depths(rtl) if rtl is not None else fifo_depths
        with ray_session(None if ray_address == "local" else ray_address, bool(quiet)) as ray:
            task = ray.remote(num_cpus=1, max_retries=2)(simulate)
            refs = [
                task.remote(design, c, fifo_depths=depths, seed=seed + i, quiet=True, **kw)
                for i, c in enumerate(chunks)
            ]
            return _merge(ray.get(refs))
    with tempfile.TemporaryDirectory(prefix="qloom-shards-") as tmp:
        if rtl is None:
            rtl = generate_top(design, tmp, fifo_depths)
        if shards == 1:
            return simulate(design, images, rtl=rtl, seed=seed, quiet=quiet, **kw)
        workers = min(shards, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(simulate, design, c, rtl=rtl, seed=seed + i, quiet=True, **kw)
                for i, c in enumerate(chunks)
            ]
            return _merge([f.result() for f in futures])
