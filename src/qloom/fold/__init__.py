"""Folding: resource estimates of dataflow stages (`estimate`) and the folding solver that picks
PE / SIMD / ram_style per stage for a throughput target or for the fastest design that fits a
part (`solver`). `calibrate` re-runs the Yosys calibration of the estimates."""

from qloom.fold.estimate import (
    MAX_STREAM_BITS,
    Resources,
    estimate_design,
    estimate_stage,
    utilization,
)
from qloom.fold.finn_config import Translation, translate_folding
from qloom.fold.solver import (
    FoldResult,
    check_fits,
    fold_design,
    fold_for_target,
    fold_max_fps,
    fold_max_fps_design,
    load_folding,
    minimality_violations,
    parallel_folding,
    read_folding,
)

__all__ = [
    "MAX_STREAM_BITS",
    "FoldResult",
    "Translation",
    "check_fits",
    "load_folding",
    "translate_folding",
    "Resources",
    "estimate_design",
    "estimate_stage",
    "fold_design",
    "fold_for_target",
    "fold_max_fps",
    "fold_max_fps_design",
    "minimality_violations",
    "parallel_folding",
    "read_folding",
    "utilization",
]
