"""WindowPool: the max (or sum) over each window of a sliding-window stream: the pooling a
plain MaxPool / SumPool stage cannot do, i.e. overlapping windows (stride < kernel) and padded
max pooling (padding with the type's lowest value). An SWU in front emits, per output pixel,
its K2 = K_H * K_W window positions, CH channels each (element (kp, c)); this stage reduces
over the positions. RTL: qloom_windowpool. Cycles per frame: input beats
(pixels * K2 * CH / PE), one per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import Resources, bram_tiling
from qloom.dataflow.rules import unsupported
from qloom.dataflow.stage import (
    Stage,
    StreamSpec,
    as_frames,
    check_divides,
    check_stream,
    divisors,
    restore,
)
from qloom.dataflow.swu import SWU
from qloom.datatype import DataType

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class WindowPool(Stage):
    channels: int
    pixels: int  # output pixels per frame
    k2: int  # window positions per pixel
    dtype: DataType
    pe: int = 1
    mode: str = "max"  # or "sum"
    sum_dtype: DataType | None = None  # "sum": the type of the sums (None: wide enough)

    kind = "WindowPool"
    finn_op = "Pool"
    rtl_module = "qloom_windowpool"
    fold_params = ("PE",)

    @classmethod
    def example(cls) -> WindowPool:
        """A small instance (the protocol test and the docs use it)."""
        return cls("windowpool_example", 4, 9, 9, DataType.int(4, True), pe=2)

    def __post_init__(self) -> None:
        check_divides("WindowPool", self.name, "PE", self.pe, "CH", self.channels)
        if self.mode not in ("max", "sum"):
            raise ValueError(f"WindowPool '{self.name}': mode {self.mode!r} is not max or sum")
        if self.mode == "sum" and self.dtype.is_bipolar:
            raise ValueError(f"WindowPool '{self.name}': sums of BIPOLAR values")
        if self.mode == "sum" and self.sum_dtype is None:
            dt = DataType.for_range(self.k2 * self.dtype.min, self.k2 * self.dtype.max)
            object.__setattr__(self, "sum_dtype", dt)

    @property
    def out_dtype(self) -> DataType:
        return self.sum_dtype if self.mode == "sum" else self.dtype

    def in_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.pixels * self.k2 * self.channels // self.pe
        return (StreamSpec(self.dtype, self.pe, beats),)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.pixels * self.channels // self.pe
        return (StreamSpec(self.out_dtype, self.pe, beats),)

    def cycles_per_frame(self) -> int:
        return self.in_streams()[0].beats

    def first_out_cycles(self, spacing: float = 1.0) -> int:
        """A pixel's first channel group is reduced when its last window position arrives:
        (K2 - 1) * CH/PE + 1 beats in, `spacing` apart, then the output register."""
        return round((self.k2 - 1) * (self.channels // self.pe) * spacing) + 2

    def tail_cycles(self, spacing: float = 1.0) -> int:
        """The last pixel follows the last input beat through the output register."""
        return 2

    def memory_bits(self) -> int:
        return self.channels * self.out_dtype.bits  # one running result per channel

    def legal_values(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.channels)}

    def folding(self) -> dict:
        return {"PE": self.pe}

    def estimate(self, device: Device) -> Resources:
        """By analogy with MaxPool (not calibrated on its own): a compare/add per lane and a
        memory of CH/PE words."""
        d, w = self.channels // self.pe, self.pe * self.out_dtype.bits
        units, bcost = bram_tiling(d, w, device)
        if 2 * w * ceil(d / 64) > bcost or device.family == "ice40":
            mem = Resources(bram=units)
        else:
            mem = Resources(lut=w * ceil(d / 64), lutram=w * ceil(d / 64))
        return Resources(lut=30.0 + 1.5 * w, ff=w + 16) + mem

    def rtl_params(self) -> dict:
        params = {
            "CH": self.channels,
            "PE": self.pe,
            "K2": self.k2,
            "BITS": self.dtype.bits,
            "SIGNED": int(self.dtype.signed and not self.dtype.is_bipolar),
        }
        if self.mode == "sum":
            params.update(SUM=1, OBITS=self.sum_dtype.bits)
        return params

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        f = x.shape[0]
        win = x.reshape(f, self.pixels, self.k2, self.channels)
        out = win.max(axis=2) if self.mode == "max" else win.sum(axis=2)
        return restore(out.reshape(f, -1, self.pe), single)


def place_window_pool(ctx: LoweringContext, node: Node, mode: str) -> None:
    """An SWU ("<node>_swu", padding with the type's lowest value for max, 0 for sum: the
    integer graph's padded average pool counts the padding) and a WindowPool
    (named as the node) for a pooling node whose windows overlap or are padded."""
    x = node.inputs[0]
    a = node.attrs
    kernel, stride, pads = tuple(a["kernel"]), tuple(a["stride"]), tuple(a["pads"])
    h, w, c = ctx.g.tensors[x].shape
    dtype = ctx.dtype_of[x]
    if mode == "sum" and dtype.is_bipolar:
        raise unsupported(node, "average pooling of a BIPOLAR stream has no stage yet")
    fold = ctx.fold(node.name, "WindowPool", {"PE": 1})
    swu_name = f"{node.name}_swu"
    sfold = ctx.fold(swu_name, "SWU", {"SIMD": np.gcd(fold["PE"], c) if fold["PE"] else 1})
    swu = SWU(swu_name, h, w, c, kernel[0], kernel[1], dtype, stride=stride, pads=pads,
              pad_value=dtype.min if mode == "max" else 0, simd=int(sfold["SIMD"]))  # fmt: skip
    windows = f"{node.name}_windows"
    ctx.place(swu, [x], windows)
    sums = ctx.g.tensors[node.outputs[0]].dtype if mode == "sum" else None
    pool = WindowPool(node.name, c, swu.oh * swu.ow, kernel[0] * kernel[1], dtype,
                      pe=fold["PE"], mode=mode, sum_dtype=sums)  # fmt: skip
    ctx.place(pool, [windows], node.outputs[0])
