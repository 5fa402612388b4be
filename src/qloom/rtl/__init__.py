"""RTL: the hand-written Verilog stage library (`lib/`, its files: `library`) and the generated
top level (`top`)."""

from qloom.rtl.library import LIB, library_files
from qloom.rtl.top import FifoInfo, RtlError, RtlFiles, generate_top

__all__ = ["LIB", "FifoInfo", "RtlError", "RtlFiles", "generate_top", "library_files"]
