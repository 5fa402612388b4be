"""MaxPool: non-overlapping K x K_W max pooling (stride = window, no padding; FINN's
StreamingMaxPool) on a channels-last stream, CH/PE beats of PE elements per pixel in and out.
K_W defaults to K; K x 1 pools a 1-D signal (held as an L x 1 image).
Output is OFM = floor(IFM / window): remainder rows/columns are dropped (ONNX floor mode).
On 1-bit (BIPOLAR/BINARY) data the max is an OR of the bits.
Cycles per frame: input beats (IFM_H * IFM_W * CH / PE).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import Resources, bram_tiling
from qloom.dataflow.rules import lowering_rule, unsupported
from qloom.dataflow.stage import (
    Stage,
    StreamSpec,
    as_frames,
    check_divides,
    check_stream,
    divisors,
    restore,
)
from qloom.datatype import DataType

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class MaxPool(Stage):
    ifm_h: int
    ifm_w: int
    channels: int
    k: int
    dtype: DataType
    pe: int = 1
    k_w: int | None = None  # window width (None: k, a square window)

    kind = "MaxPool"
    fold_params = ("PE",)
    finn_op = "StreamingMaxPool"
    rtl_module = "qloom_maxpool"

    @classmethod
    def example(cls) -> MaxPool:
        """A small instance (the protocol test and the docs use it)."""
        return cls("maxpool_example", 4, 4, 4, 2, DataType.int(3, True), pe=2)

    def __post_init__(self) -> None:
        check_divides("MaxPool", self.name, "PE", self.pe, "CH", self.channels)
        if min(self.k, self.kw) < 1 or self.ifm_h < self.k or self.ifm_w < self.kw:
            raise ValueError(
                f"MaxPool '{self.name}': kernel {self.k}x{self.kw} larger than the image"
            )

    @property
    def kw(self) -> int:
        return self.k if self.k_w is None else self.k_w

    @property
    def ofm_h(self) -> int:
        return self.ifm_h // self.k

    @property
    def ofm_w(self) -> int:
        return self.ifm_w // self.kw

    def in_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.ifm_h * self.ifm_w * self.channels // self.pe
        return (StreamSpec(self.dtype, self.pe, beats),)

    @property
    def out_dtype(self) -> DataType:
        return self.dtype

    def out_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.ofm_h * self.ofm_w * self.channels // self.pe
        return (StreamSpec(self.out_dtype, self.pe, beats),)

    def cycles_per_frame(self) -> int:
        return self.in_streams()[0].beats

    def latency_cycles(self) -> int:
        return self.cycles_per_frame() + 2

    def first_out_cycles(self, spacing: float = 1.0) -> int:
        """The first pooled pixel leaves with the last beat of its window's first channel
        group: K - 1 rows and K_W pixels in (a global pool: the whole frame), `spacing` apart."""
        beats = ((self.k - 1) * self.ifm_w + self.kw - 1) * self.channels // self.pe + 1
        return round((beats - 1) * spacing) + 2

    def tail_cycles(self, spacing: float = 1.0) -> int:
        """The last pooled pixel follows the last input beat through the output register."""
        return 2

    def memory_bits(self) -> int:
        return self.ofm_w * self.channels * self.out_dtype.bits  # running maxima of one row

    def legal_values(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.channels)}

    def folding(self) -> dict:
        return {"PE": self.pe}

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_maxpool(self, device)

    def rtl_params(self) -> dict:
        params = {
            "IFM_H": self.ifm_h,
            "IFM_W": self.ifm_w,
            "CH": self.channels,
            "K": self.k,
            "STRIDE": self.k,
            "PE": self.pe,
            "BITS": self.dtype.bits,
            "SIGNED": int(self.dtype.signed and not self.dtype.is_bipolar),
        }
        if self.kw != self.k:  # a K x K_W window (square windows keep the shorter form)
            params.update(K_W=self.kw, STRIDE_W=self.kw)
        return params

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        f, k, kw = x.shape[0], self.k, self.kw
        img = x.reshape(f, self.ifm_h, self.ifm_w, self.channels)
        img = img[:, : self.ofm_h * k, : self.ofm_w * kw]
        windows = img.reshape(f, self.ofm_h, k, self.ofm_w, kw, self.channels)
        return restore(self._reduce(windows).reshape(f, -1, self.pe), single)

    @staticmethod
    def _reduce(windows: np.ndarray) -> np.ndarray:
        return windows.max(axis=(2, 4))


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
MAXPOOL_LUT = {"const": 30.0, "cmp_bits": 1.5}


def estimate_maxpool(s: MaxPool, device: Device) -> Resources:
    p = s.rtl_params()
    d, w = s.ofm_w * s.channels // s.pe, s.pe * p.get("OBITS", p["BITS"])
    units, bcost = bram_tiling(d, w, device)
    if 2 * w * ceil(d / 64) > bcost or device.family == "ice40":
        mem = Resources(bram=units)
    else:  # single-port LUTRAM (RAM64X1S: 64 x 1 per LUT)
        mem = Resources(lut=w * ceil(d / 64), lutram=w * ceil(d / 64))
    lut = MAXPOOL_LUT["const"] + MAXPOOL_LUT["cmp_bits"] * w
    return Resources(lut=lut, ff=w + 23) + mem


# -- lowering rule: the integer-graph op(s) this stage implements -----------------------------
def pool_args(ctx: LoweringContext, node: Node) -> tuple[tuple, dict]:
    """(positional, keyword) arguments of the pooling stage of `node` (MaxPool or SumPool):
    non-overlapping windows (stride = kernel) without padding, else a clear refusal."""
    x = node.inputs[0]
    a = node.attrs
    k, s, pads = tuple(a["kernel"]), tuple(a["stride"]), tuple(a["pads"])
    what = "max" if node.op == "MaxPool" else "average"
    if s != k or any(pads):
        raise unsupported(
            node,
            f"{what} pooling with kernel {k}, stride {s}, pads {pads}: the {node.op} stage "
            "supports non-overlapping windows (stride = kernel) without padding",
        )
    h, w, c = ctx.g.tensors[x].shape
    fold = ctx.fold(node.name, node.op, {"PE": 1})
    k_w = None if k[1] == k[0] else k[1]
    return (node.name, h, w, c, k[0], ctx.dtype_of[x]), {"pe": fold["PE"], "k_w": k_w}


def non_overlapping(node: Node) -> bool:
    a = node.attrs
    return tuple(a["stride"]) == tuple(a["kernel"]) and not any(a["pads"])


@lowering_rule("MaxPool")
def lower_maxpool(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    """Non-overlapping unpadded windows: a MaxPool stage; else SWU + WindowPool."""
    (node,) = nodes
    if not non_overlapping(node):
        from qloom.dataflow.windowpool import place_window_pool

        place_window_pool(ctx, node, "max")
        return
    args, kwargs = pool_args(ctx, node)
    ctx.place(MaxPool(*args, **kwargs), [node.inputs[0]], node.outputs[0])
