"""SWU: sliding-window unit (FINN's ConvolutionInputGenerator), the im2col of a convolution.

Input: an IFM_H x IFM_W x CH image, channels-last, H*W*CH/SIMD beats of SIMD elements.
Output: for each output pixel (oy, ox) in row-major order, its KH x KW x CH window in
(kh, kw, c) order, i.e. element index (kh*KW + kw)*CH + c, SIMD elements per beat
(KH*KW*CH/SIMD beats per pixel). Padding (top, left, bottom, right) inserts PAD_VALUE elements,
which must belong to the stream's type (0 is not BIPOLAR: lower.py widens such a stream to INT2
with a Thresholding stage first). PAD_VALUE goes to the RTL as its bit pattern. SIMD must divide
CH.
Depthwise order (KSIMD > 1, for a VVAU folded with SIMD = KSIMD taps): per output pixel, the
CH/SIMD channel groups in turn, each as K_H*K_W/KSIMD beats of KSIMD window positions x SIMD
channels (element j*SIMD + s of beat t of group g: position t*KSIMD + j, channel g*SIMD + s).
KSIMD divides K_W or is a multiple of K_W (a beat is part of one kernel row or whole rows);
the line buffer has KSIMD read ports. KSIMD is set by the VVAU's lowering, not folded here.
Cycles per frame (qloom_swu's schedule with its default line buffer of R = K_H + STRIDE_H rows):
max(IN, OUT + STALL) with IN / OUT the input / output beats and
STALL = max(0, K_H - PAD_T - (R - K_H) - 1) * IFM_W * CH/SIMD + K_W * CH/SIMD, the part of the
next frame's first window that cannot be loaded in advance (FINN's estimate is max(IN, OUT));
OUT counts beats of SIMD * KSIMD elements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import gcd
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import Resources, ram
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
from qloom.dataflow.thresholding import Thresholding
from qloom.datatype import DataType
from qloom.errors import FoldingError, UnsupportedModelError
from qloom.execute.kernels import pad_nhwc, windows_nhwc

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class SWU(Stage):
    ifm_h: int
    ifm_w: int
    channels: int
    k_h: int
    k_w: int
    dtype: DataType
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    pad_value: int = 0
    simd: int = 1
    ksimd: int = 1  # window positions per beat (> 1: depthwise order, see above)

    kind = "SWU"
    fold_params = ("SIMD",)
    finn_op = "ConvolutionInputGenerator"
    rtl_module = "qloom_swu"

    @classmethod
    def example(cls) -> SWU:
        """A small instance (the protocol test and the docs use it)."""
        return cls("swu_example", 6, 6, 4, 3, 3, DataType.int(4, False), pads=(1, 1, 1, 1), simd=2)

    def __post_init__(self) -> None:
        check_divides("SWU", self.name, "SIMD", self.simd, "CH", self.channels)
        if self.ksimd not in kernel_simd_values(self.k_h, self.k_w):
            raise ValueError(
                f"SWU '{self.name}': KSIMD={self.ksimd} is not one of "
                f"{kernel_simd_values(self.k_h, self.k_w)} (it must divide K_W={self.k_w} or be "
                "a multiple of it dividing K_H*K_W)"
            )
        if any(self.pads) and not self.dtype.allowed(np.array([self.pad_value])):
            hint = " (widen the stream to INT2 first)" if self.dtype.is_bipolar else ""
            raise UnsupportedModelError(
                f"SWU '{self.name}': padding value {self.pad_value} is not a {self.dtype} value"
                f"{hint}",
                self.name,
                "Conv",
            )
        if self.oh < 1 or self.ow < 1:
            raise ValueError(f"SWU '{self.name}': kernel larger than the padded image")

    @property
    def oh(self) -> int:
        t, _, b, _ = self.pads
        return (self.ifm_h + t + b - self.k_h) // self.stride[0] + 1

    @property
    def ow(self) -> int:
        _, left, _, r = self.pads
        return (self.ifm_w + left + r - self.k_w) // self.stride[1] + 1

    @property
    def window(self) -> int:
        return self.k_h * self.k_w * self.channels

    def in_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.ifm_h * self.ifm_w * self.channels // self.simd
        return (StreamSpec(self.dtype, self.simd, beats),)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.oh * self.ow * self.window // (self.simd * self.ksimd)
        return (StreamSpec(self.dtype, self.simd * self.ksimd, beats),)

    def cycles_per_frame(self) -> int:
        cf = self.channels // self.simd
        rows = min(max(self.k_h + self.stride[0], self.k_h), self.ifm_h)
        stall_rows = max(0, self.k_h - self.pads[0] - (rows - self.k_h) - 1)
        stall = stall_rows * self.ifm_w * cf + self.k_w * cf
        return max(self.in_streams()[0].beats, self.out_streams()[0].beats + stall)

    def _window_beats(self) -> int:
        """Output beats per window."""
        return self.k_h * self.k_w * self.channels // (self.simd * self.ksimd)

    def _pixels_until(self, oy: int, ox: int) -> int:
        """Input pixels up to and including the last one window (oy, ox) reads (padding
        rows and columns come from no input)."""
        r = min(self.ifm_h - 1, max(0, oy * self.stride[0] - self.pads[0] + self.k_h - 1))
        c = min(self.ifm_w - 1, max(0, ox * self.stride[1] - self.pads[1] + self.k_w - 1))
        return r * self.ifm_w + c + 1

    def latency_cycles(self) -> int:
        """The first window waits for its last input pixel (qloom_swu reads as soon as that is
        written; 3 cycles from its beat to the first output beat), then the windows leave one
        beat per cycle: with input beats one per cycle, first_out_cycles() + output beats."""
        return max(self.first_out_cycles() + self.out_streams()[0].beats, self.cycles_per_frame())

    def first_out_cycles(self, spacing: float = 1.0) -> int:
        """The first window's last input beat arrives after that many beats `spacing` apart:
        padding-aware, so a 3x3 padded window needs one row and two pixels, not two rows and
        three (the 34 % latency under-estimate of ResNet-18 came mostly from here)."""
        beats = self._pixels_until(0, 0) * self.channels // self.simd
        return round((beats - 1) * spacing) + 3

    def tail_cycles(self, spacing: float = 1.0) -> int:
        """After the last input beat: every window from the first one that reads the last pixel
        any window reads on (row-major order), one beat per cycle, plus the output register;
        less the input beats no window reads (a 1x1 stride-2 window skips the last row), which
        come after that pixel, `spacing` apart."""
        r_last, c_last = divmod(self._pixels_until(self.oh - 1, self.ow - 1) - 1, self.ifm_w)
        # the first output row / column whose windows reach that row / column
        oy = max(0, -(-(r_last - self.k_h + 1 + self.pads[0]) // self.stride[0]))
        ox = max(0, -(-(c_last - self.k_w + 1 + self.pads[1]) // self.stride[1]))
        windows = self.oh * self.ow - (oy * self.ow + ox)
        unread = (self.ifm_h * self.ifm_w - r_last * self.ifm_w - c_last - 1) * self.channels
        return windows * self._window_beats() + 2 - round(unread // self.simd * spacing)

    def memory_bits(self) -> int:
        """Line buffer: KH - 1 padded rows plus KW pixels (KSIMD copies: its read ports)."""
        width = self.ifm_w + self.pads[1] + self.pads[3]
        return ((self.k_h - 1) * width + self.k_w) * self.channels * self.dtype.bits * self.ksimd

    def legal_values(self) -> dict[str, list[int]]:
        """SIMD: channels per beat (divisors of CH), and beyond CH whole pixels: CH x the
        window positions one beat can hold (`kernel_simd_values`), so that an input with few
        channels (RGB: 3) is not held to one window position per cycle (a 7x7 stem: 49 beats
        per window)."""
        return {"SIMD": simd_values(self.channels, self.k_h, self.k_w)}

    def folding(self) -> dict:
        whole_pixels = self.simd == self.channels and self.ksimd > 1
        return {"SIMD": self.simd * self.ksimd if whole_pixels else self.simd}

    def refold(self, values, ram_style: str | None = None) -> SWU:
        """SIMD beyond CH: whole pixels, SIMD / CH window positions per beat (with all channels
        in a beat the depthwise order is the plain (kh, kw, c) order an MVAU reads)."""
        v = int(values.get("SIMD", self.simd))
        if v > self.channels:
            taps = pixel_taps(self.name, v, self.channels, self.k_h, self.k_w)
            return replace(self, simd=self.channels, ksimd=taps)
        taps = 1 if self.simd == self.channels else self.ksimd  # (depthwise order: kept)
        return replace(self, simd=v, ksimd=taps)

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_swu(self, device)

    def rtl_params(self) -> dict:
        return {
            "IFM_H": self.ifm_h,
            "IFM_W": self.ifm_w,
            "CH": self.channels,
            "K_H": self.k_h,
            "K_W": self.k_w,
            "STRIDE_H": self.stride[0],
            "STRIDE_W": self.stride[1],
            "PAD_T": self.pads[0],
            "PAD_L": self.pads[1],
            "PAD_B": self.pads[2],
            "PAD_R": self.pads[3],
            "PAD_VALUE": int(self.dtype.to_bits(np.array([self.pad_value]))[0])
            if self.dtype.allowed(np.array([self.pad_value]))
            else 0,
            "SIMD": self.simd,
            "BITS": self.dtype.bits,
            "KSIMD": self.ksimd,
        }

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        img = x.reshape(x.shape[0], self.ifm_h, self.ifm_w, self.channels)
        win = windows_nhwc(
            pad_nhwc(img, self.pads, self.pad_value), (self.k_h, self.k_w), self.stride
        )  # F, OH, OW, KH, KW, CH
        if self.ksimd > 1:  # depthwise order: channel group, then position, then channel
            f, oh, ow = win.shape[:3]
            k2, cf = self.k_h * self.k_w, self.channels // self.simd
            win = win.reshape(f, oh, ow, k2, cf, self.simd).transpose(0, 1, 2, 4, 3, 5)
        out = np.ascontiguousarray(win).reshape(x.shape[0], -1, self.simd * self.ksimd)
        return restore(out, single)


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
SWU_LUT = {"const": 120.0, "width": 1.0, "padding": 60.0}  # + line buffer LUTRAM


def estimate_swu(s: SWU, device: Device) -> Resources:
    """Coarse (3 calibration points): control logic + line buffer of R = K_H + STRIDE_H rows."""
    p = s.rtl_params()
    cf = s.channels // s.simd
    rows = min(s.k_h + s.stride[0], s.ifm_h)
    width = s.simd * p["BITS"]
    mem = ram(rows * s.ifm_w * cf, width, "auto", device)
    for _ in range(s.ksimd - 1):  # one line buffer copy per read port
        mem = mem + ram(rows * s.ifm_w * cf, width, "auto", device)
    width *= s.ksimd
    lut = SWU_LUT["const"] + SWU_LUT["width"] * width + SWU_LUT["padding"] * any(s.pads)
    return Resources(lut=lut, ff=105 + width) + mem


def kernel_simd_values(k_h: int, k_w: int) -> list[int]:
    """The window positions per beat of a depthwise-order SWU (and so the SIMD of a VVAU):
    divisors of K_W, and multiples of K_W that divide K_H * K_W (part of a row or whole rows)."""
    return [d for d in divisors(k_h * k_w) if k_w % d == 0 or d % k_w == 0]


def simd_values(channels: int, k_h: int, k_w: int) -> list[int]:
    """An SWU's legal SIMD: divisors of CH, then CH x the window positions a beat can hold."""
    return divisors(channels) + [channels * j for j in kernel_simd_values(k_h, k_w) if j > 1]


def pixel_taps(name: str, simd: int, channels: int, k_h: int, k_w: int) -> int:
    """The window positions per beat of an SWU folded to SIMD > CH (whole pixels)."""
    if simd not in simd_values(channels, k_h, k_w):
        raise FoldingError(
            f"SWU '{name}': SIMD={simd} is not one of {simd_values(channels, k_h, k_w)} (above "
            f"CH={channels}: CH x the window positions per beat, {kernel_simd_values(k_h, k_w)})"
        )
    return simd // channels


# -- the windows of a convolution (used by the MVAU and VVAU rules) ------------------------------
def place_conv_windows(
    ctx: LoweringContext, conv: Node, simd, binary: bool = False, ksimd: int = 1
) -> tuple[str, DataType, int]:
    """Place the SWU "<conv>_swu" (SIMD gcd(simd, channels) unless folded) in front of a Conv
    node, with the "<conv>_widen" Thresholding before it when zero padding needs a BIPOLAR
    stream widened to INT2 values +-1. Returns (window tensor, its type, output pixels).
    ksimd > 1 (a VVAU folded with SIMD = ksimd): the SWU emits the depthwise order with
    SIMD = `simd` channels, whatever its own folding says (the VVAU's beats fix both).
    A 1 x 1 kernel with stride 1 and no padding (a pointwise conv) needs no windows: the
    pixels stream straight in."""
    x = conv.inputs[0]
    in_dtype = ctx.dtype_of[x]
    kh, kw = conv.attrs["weights"].shape[:2]
    h, wd, c = ctx.g.tensors[x].shape
    pads = tuple(int(p) for p in conv.attrs["pads"])
    stride = tuple(int(s) for s in conv.attrs["stride"])
    if (kh, kw) == (1, 1) and stride == (1, 1) and not any(pads):
        return x, in_dtype, h * wd
    pad_value = 0 if binary else int(conv.attrs.get("pad_value", 0))
    widen = None
    if any(pads) and in_dtype.is_bipolar and pad_value == 0 and not binary:
        widen = DataType("INT2")
    if any(pads) and not (widen or in_dtype).allowed(np.array([pad_value])):
        raise unsupported(
            conv,
            f"zero padding (value {pad_value}) of a {in_dtype} input: the value is not a "
            f"{in_dtype} value, so the {in_dtype.bits}-bit stream cannot carry it; remove "
            "the padding or use a multi-bit input quantizer",
        )
    swu_name = f"{conv.name}_swu"
    swu_simd = gcd(simd, c) if isinstance(simd, int) and simd > 0 else 1
    sfold = ctx.fold(swu_name, "SWU", {"SIMD": swu_simd})
    if ksimd > 1:
        sfold = {**sfold, "SIMD": simd}
    elif sfold["SIMD"] > c:  # whole pixels, several window positions per beat (SWU.refold)
        sfold, ksimd = {**sfold, "SIMD": c}, pixel_taps(swu_name, sfold["SIMD"], c, kh, kw)
    if widen is not None:
        wname = f"{conv.name}_widen"
        wfold = ctx.fold(wname, "Thresholding", {"PE": sfold["SIMD"], "ram_style": "auto"})
        conv_stage = Thresholding(wname, c, h * wd, np.ones((c, 2), np.int64), in_dtype, widen,
                                  out_base=-1, pe=wfold["PE"], ram_style=wfold["ram_style"],
                                  widen=True)  # fmt: skip
        ctx.place(conv_stage, [x], f"{conv.name}_widened")
        x, in_dtype = f"{conv.name}_widened", widen
        ctx.uses[x] = 1
    swu = SWU(swu_name, h, wd, c, kh, kw, in_dtype,
              stride=stride, pads=pads,
              pad_value=pad_value, simd=sfold["SIMD"], ksimd=ksimd)  # fmt: skip
    win = f"{conv.name}_windows"
    ctx.place(swu, [x], win)
    return win, swu.out_streams()[0].dtype, swu.oh * swu.ow
