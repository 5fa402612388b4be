"""DWC: data-width converter (FINN's StreamingDataWidthConverter) between a producer emitting
IN_ELEMS elements per beat and a consumer taking OUT_ELEMS; one must divide the other.
Splitting sends the lowest elements (element 0 first) first; gathering puts the first input beat
in the least significant bits. The element order of the stream never changes.
Cycles per frame: max(input beats, output beats)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qloom.dataflow.resources import Resources
from qloom.dataflow.stage import Stage, StreamSpec, as_frames, check_stream, restore
from qloom.datatype import DataType
from qloom.errors import FoldingError

if TYPE_CHECKING:
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class DWC(Stage):
    dtype: DataType
    frame_elems: int
    in_elems: int
    out_elems: int

    kind = "DWC"
    finn_op = "StreamingDataWidthConverter"
    rtl_module = "qloom_dwc"

    @classmethod
    def example(cls) -> DWC:
        """A small instance (the protocol test and the docs use it)."""
        return cls("dwc_example", DataType.int(2, True), 64, 16, 4)

    def __post_init__(self) -> None:
        a, b = self.in_elems, self.out_elems
        if a < 1 or b < 1 or (a % b and b % a):
            raise FoldingError(
                f"DWC '{self.name}': {a} and {b} elements per beat do not divide each other"
            )
        if self.frame_elems % a or self.frame_elems % b:
            raise FoldingError(
                f"DWC '{self.name}': {self.frame_elems} elements per frame are not a multiple "
                f"of {a} and {b}"
            )

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.dtype, self.in_elems, self.frame_elems // self.in_elems),)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.dtype, self.out_elems, self.frame_elems // self.out_elems),)

    def cycles_per_frame(self) -> int:
        return self.frame_elems // min(self.in_elems, self.out_elems)

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_dwc(self, device)

    def rtl_params(self) -> dict:
        bits = self.dtype.bits
        return {"IN_WIDTH": self.in_elems * bits, "OUT_WIDTH": self.out_elems * bits}

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        return restore(x.reshape(x.shape[0], -1, self.out_elems), single)


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
DWC_LUT = {"const": 4.0, "split_width": 1.0}


def estimate_dwc(s: DWC, device: Device) -> Resources:
    p = s.rtl_params()
    iw, ow = p["IN_WIDTH"], p["OUT_WIDTH"]
    if iw > ow:  # split: a shift register of the input word
        return Resources(lut=DWC_LUT["const"] + DWC_LUT["split_width"] * iw, ff=iw + 3)
    if iw < ow:  # gather: shift in, then an output register
        return Resources(lut=DWC_LUT["const"] + 2, ff=2 * ow - iw + 4)
    return Resources(lut=1, ff=iw + 1)
