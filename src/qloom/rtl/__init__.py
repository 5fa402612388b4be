"""RTL: the hand-written Verilog stage library (`lib/`) and the generated top level (`top`)."""

from qloom.rtl.top import FifoInfo, RtlError, RtlFiles, generate_top

__all__ = ["FifoInfo", "RtlError", "RtlFiles", "generate_top"]
