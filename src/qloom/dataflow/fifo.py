"""FIFO: an AXI-Stream FIFO of DEPTH beats (FINN's StreamingFIFO); the data is unchanged.
Used on the bypass branch of a residual connection, sized (conservatively) to a whole frame so
the join never deadlocks. Cycles per frame: beats."""

from __future__ import annotations

from dataclasses import dataclass

from qloom.dataflow.stage import (
    RAM_STYLES,
    Stage,
    StreamSpec,
    as_frames,
    check_stream,
    restore,
)
from qloom.errors import FoldingError


@dataclass(frozen=True, eq=False)
class FIFO(Stage):
    stream: StreamSpec
    depth: int = 2
    ram_style: str = "auto"

    kind = "FIFO"
    finn_op = "StreamingFIFO"
    rtl_module = "qloom_fifo"

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
        return 3

    def memory_bits(self) -> int:
        return self.depth * self.stream.width

    def folding(self) -> dict:
        return {"depth": self.depth, "ram_style": self.ram_style}

    def rtl_params(self) -> dict:
        style = "auto" if self.ram_style == "ultra" else self.ram_style
        return {"WIDTH": self.stream.width, "DEPTH": self.depth, "RAM_STYLE": style}

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.stream)
        return restore(x, single)
