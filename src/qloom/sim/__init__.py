"""RTL simulation: the Verilator AXI-Stream harness (`build`, `SimModel.run`), packing helpers."""

from qloom.sim.verilator import (
    Port,
    SimError,
    SimModel,
    SimResult,
    VerilatorError,
    build,
    default_cache_dir,
    find_verilator,
    lint,
    pack,
    unpack,
    verilator_version,
)

__all__ = [
    "Port",
    "SimError",
    "SimModel",
    "SimResult",
    "VerilatorError",
    "build",
    "default_cache_dir",
    "find_verilator",
    "lint",
    "pack",
    "unpack",
    "verilator_version",
]
