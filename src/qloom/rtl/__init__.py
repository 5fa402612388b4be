"""RTL: the hand-written Verilog stage library (`lib/`) and the generated top level (`top`)."""

from qloom.rtl.top import FifoInfo, RtlError, RtlFiles, generate_top, lint_top, yosys_check

__all__ = ["FifoInfo", "RtlError", "RtlFiles", "generate_top", "lint_top", "yosys_check"]
