"""FIFO: an AXI-Stream FIFO of DEPTH beats (FINN's StreamingFIFO); the data is unchanged.
Used on the bypass branch of a residual connection, sized (conservatively) to a whole frame so
the join never deadlocks. Cycles per frame: beats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qloom.dataflow.resources import Resources, clog2, counter_bits, ram
from qloom.dataflow.stage import (
    RAM_STYLES,
    Stage,
    StreamSpec,
    as_frames,
    check_stream,
    restore,
)
from qloom.datatype import DataType
from qloom.errors import FoldingError

if TYPE_CHECKING:
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class FIFO(Stage):
    stream: StreamSpec
    depth: int = 2
    ram_style: str = "auto"

    kind = "FIFO"
    finn_op = "StreamingFIFO"
    rtl_module = "qloom_fifo"

    @classmethod
    def example(cls) -> FIFO:
        """A small instance (the protocol test and the docs use it)."""
        return cls("fifo_example", StreamSpec(DataType("INT4"), 4, 16), depth=8)

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or self.depth < 1:
            raise FoldingError(f"FIFO '{self.name}': depth={self.depth!r} must be >= 1")
        if self.ram_style not in RAM_STYLES + ("registers",):
            raise FoldingError(
                f"FIFO '{self.name}': ram_style={self.ram_style!r} is not one of "
                f"{', '.join(RAM_STYLES + ('registers',))}"
            )

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (self.stream,)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (self.stream,)

    def cycles_per_frame(self) -> int:
        return self.stream.beats

    def latency_cycles(self) -> int:
        return self.stream.beats + self.first_out_cycles()

    def first_out_cycles(self, spacing: float = 1.0) -> int:
        """First beat in to first beat out through an empty FIFO (qloom_fifo.v): a block
        RAM FIFO 3 cycles, a one-register slice 1, LUTRAM / registers 0 (fall-through)."""
        style = self.rtl_params()["RAM_STYLE"]
        if style == "block" or (style == "auto" and self.depth > 64):
            return 3
        return 1 if self.depth == 1 else 0

    def memory_bits(self) -> int:
        return self.depth * self.stream.width

    def folding(self) -> dict:
        return {"depth": self.depth, "ram_style": self.ram_style}

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_fifo(self, device)

    def rtl_params(self) -> dict:
        style = "auto" if self.ram_style == "ultra" else self.ram_style
        return {"WIDTH": self.stream.width, "DEPTH": self.depth, "RAM_STYLE": style}

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.stream)
        return restore(x, single)


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
#: distributed: const + ctrl_bits * (2 address + count bits) + LUTRAM; block: + width (output
#: buffer mux) with block_* constants
FIFO_LUT = {"const": 5.0, "ctrl_bits": 1.0, "block_const": 17.75, "block_ctrl_bits": 0.625,
            "block_width": 1.0}  # fmt: skip


def estimate_fifo(s: FIFO, device: Device) -> Resources:
    p = s.rtl_params()
    width, depth, style = p["WIDTH"], p["DEPTH"], p["RAM_STYLE"]
    if depth == 1:
        return Resources(lut=1, ff=width + 1)
    cw, aw = clog2(depth + 1), counter_bits(depth)
    block = style == "block" or (style == "auto" and depth > 64)
    if block:
        mem = ram(depth, width, "block", device)
        bits = 2 * aw + 2 * cw
        ff = bits + 3 + 2 * width  # pointers, counts, rd_v, ob_n, ob0/ob1 (rd_d is in the BRAM)
        lut = FIFO_LUT["block_const"] + FIFO_LUT["block_ctrl_bits"] * bits
        lut += FIFO_LUT["block_width"] * width
    else:
        mem = ram(depth, width, "registers" if style == "registers" else "distributed", device)
        ff = 2 * aw + cw + 2
        lut = FIFO_LUT["const"] + FIFO_LUT["ctrl_bits"] * (2 * aw + cw)
    return Resources(lut=lut, ff=ff) + mem
