"""`qloom sweep`: a design-space sweep over zoo models, precisions, sparsities, widths, FPGA
parts and throughput targets, run as Ray tasks.

    qloom sweep SPEC --out DIR [--ray-address ADDR] [--quiet]

SPEC (JSON, or YAML through PyYAML, which Ray itself depends on) names the axes; their
cartesian product gives the points (qloom.sweep.spec). Each point trains a model (cached by
its training settings, resumed from the trainer's checkpoint after a crash), compiles it,
records the integer model's test accuracy and BOPs, and folds it to every FPS target on every
part, with estimated LUT / FF / BRAM / DSP and cycles per frame (qloom.sweep.point). A target
that cannot be met, or a design that does not fit, is a row with that status, not a failure.
The driver (qloom.sweep.driver) runs the points as Ray tasks (num_cpus=1 each; an embedded
local cluster by default), stores one JSON per finished point under DIR/points/ (a rerun
redoes only what is missing) and writes DIR/results.csv, results.json, the Pareto plots and
report.html (qloom.sweep.results).
"""

from __future__ import annotations

from qloom.sweep.spec import SweepSpec, load_spec

__all__ = ["SweepSpec", "load_spec", "run_sweep"]


def run_sweep(*args, **kwargs):
    """qloom.sweep.driver.run_sweep (imported lazily: Ray and torch load slowly)."""
    from qloom.sweep.driver import run_sweep as run

    return run(*args, **kwargs)
