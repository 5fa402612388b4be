"""Duplicate: broadcast one stream to two consumers (FINN's DuplicateStreams); each input beat
is delivered once on each output. Cycles per frame: beats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qloom.dataflow.resources import Resources
from qloom.dataflow.stage import Stage, StreamSpec, as_frames, check_stream, restore
from qloom.datatype import DataType

if TYPE_CHECKING:
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class Duplicate(Stage):
    stream: StreamSpec

    kind = "Duplicate"
    finn_op = "DuplicateStreams"
    rtl_module = "qloom_duplicate"

    @classmethod
    def example(cls) -> Duplicate:
        """A small instance (the protocol test and the docs use it)."""
        return cls("dup_example", StreamSpec(DataType("INT4"), 4, 16))

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (self.stream,)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (self.stream, self.stream)

    def cycles_per_frame(self) -> int:
        return self.stream.beats

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_duplicate(self, device)

    def rtl_params(self) -> dict:
        return {"WIDTH": self.stream.width}

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.stream)
        return restore(x, single), restore(x.copy(), single)


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
DUP_LUT = {"const": 3.0}


def estimate_duplicate(s: Duplicate, device: Device) -> Resources:
    return Resources(lut=DUP_LUT["const"], ff=2 * s.stream.width + 2)
