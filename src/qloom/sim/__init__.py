"""RTL simulation: the Verilator AXI-Stream harness (`build`, `SimModel.run`), packing helpers."""

from qloom.sim.verilator import (
    SimError,
    SimModel,
    SimResult,
    StreamSpec,
    VerilatorError,
    build,
    default_cache_dir,
    find_verilator,
    lint,
    pack,
    pack_beats,
    unpack,
    unpack_beats,
    verilator_version,
)

__all__ = [
    "SimError",
    "SimModel",
    "SimResult",
    "StreamSpec",
    "VerilatorError",
    "build",
    "default_cache_dir",
    "find_verilator",
    "lint",
    "pack",
    "pack_beats",
    "unpack",
    "unpack_beats",
    "verilator_version",
]
