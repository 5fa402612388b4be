"""VVAU: vector-vector unit (FINN's VectorVectorActivation), the multiply-accumulate of a
depthwise convolution (Conv with group = channels, one filter per channel).

An SWU in front emits, per output pixel, its K2 = K_H * K_W window positions, CH channels each
(element (kp, c)), CH/PE beats of PE channels per position; the VVAU computes
acc[c] = sum_kp W[c][kp] * x[kp][c] and streams the accumulators, CH/PE beats of PE per pixel.
The activation (the Conv's MultiThreshold) is a Thresholding stage after it, so the threshold
logic is the one of qloom_thresholding. RTL: qloom_vvau.

Folding (FINN's): PE channels (PE | CH) and SIMD kernel taps (SIMD | K2) per cycle; one input
beat of PE * SIMD elements per cycle, so cycles per frame = pixels * (CH / PE) * (K2 / SIMD).
SIMD = 1 reads the SWU's (kp, c) order. SIMD > 1 has the SWU emit its depthwise order
(KSIMD = SIMD, SWU SIMD = PE; set by this stage's lowering): per pixel, channel group g =
0..CH/PE-1 in turn, as K2/SIMD beats of SIMD taps x PE channels (element j*PE + p of beat t:
tap t*SIMD + j of channel g*PE + p), so the SWU keeps pace and a layer can go below
pixels * K2 cycles (SIMD = K2, PE = CH: one cycle per pixel). The taps of a beat lie in one
kernel row or cover whole rows: SIMD divides K_W or is a multiple of K_W (`legal_values`).
That SWU reads the image PE channels per beat, so with SIMD > 1 the cycle count is at least
in_pixels * CH/PE (`cycles_per_frame`); a strided layer needs PE to grow with SIMD.
Memory ($readmemh): the weights in the input beats' order, one word per beat of a pixel, lane
(j, p) at [(j*PE + p)*WBITS +: WBITS]: SIMD = 1: word kp * CH/PE + g = W[g*PE + p][kp];
SIMD > 1: word g * K2/SIMD + t = W[g*PE + p][t*SIMD + j]. +-1 weights are BIPOLAR bits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.mvau import product_on_dsp
from qloom.dataflow.resources import Resources, counter_bits, linear, lutram_luts, rom_features
from qloom.dataflow.rules import unsupported
from qloom.dataflow.stage import (
    Stage,
    StreamSpec,
    as_frames,
    check_divides,
    check_ram_style,
    check_stream,
    divisors,
    pack_words,
    restore,
    signed_type,
    unpack_words,
    write_hex,
)
from qloom.dataflow.swu import kernel_simd_values, place_conv_windows
from qloom.dataflow.thresholding import lower_thresholding
from qloom.datatype import BIPOLAR, DataType
from qloom.errors import FoldingError

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device


#: VVAU LUTs = sum(coef * feature) (the MVAU's multi-bit features): the MVAU coefficients as
#: fitted before the MVAU's 2026-12-06 refit, which the VVAU calibration runs still match
#: (-11 % .. +7 %; the MVAU's new ones would give -42 % .. -93 % here).
VVAU_LUT = {
    "const": 0.0,
    "ctrl_bits": 0.0,
    "mul": 0.7723,
    "sign": 0.0,
    "tree": 0.3458,
    "xnor": 1.6433,
    "acc": 2.7526,
    "cmp": 0.9651,
    "outadd": 0.0,
    "rom_cols": 0.3834,
    "rom_bits": 4.5022,
}


@dataclass(frozen=True, eq=False)
class VVAU(Stage):
    channels: int
    pixels: int  # output pixels per frame
    k2: int  # filter taps per channel
    weights: np.ndarray  # (CH, K2) integers
    in_dtype: DataType
    pe: int = 1
    ram_style: str = "auto"
    simd: int = 1  # kernel taps per beat
    k_w: int = 0  # kernel width (0: one row of K2 taps): which SIMD values the SWU can feed
    in_pixels: int = 0  # pixels of the image the SWU in front reads (0: not known)

    kind = "VVAU"
    finn_op = "VVAU"
    rtl_module = "qloom_vvau"
    fold_params = ("PE", "SIMD")
    memory_styles = ("auto", "block")

    @classmethod
    def example(cls) -> VVAU:
        """A small instance (the protocol test and the docs use it)."""
        w = np.random.default_rng(0).integers(-8, 8, size=(4, 9))
        return cls("vvau_example", 4, 6, 9, w, DataType.int(4, False), pe=2)

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.int64)
        if w.shape != (self.channels, self.k2):
            raise ValueError(f"VVAU '{self.name}': weights {w.shape} are not (CH, K2)")
        object.__setattr__(self, "weights", w)
        check_divides("VVAU", self.name, "PE", self.pe, "CH", self.channels)
        check_divides("VVAU", self.name, "SIMD", self.simd, "K2", self.k2)
        if self.simd not in self.simd_values():
            raise FoldingError(
                f"VVAU '{self.name}': SIMD={self.simd} taps would split a kernel row of "
                f"{self.k_w} unevenly; legal SIMD: {', '.join(map(str, self.simd_values()))}"
            )
        check_ram_style("VVAU", self.name, self.ram_style)
        a, b = w * self.in_dtype.min, w * self.in_dtype.max
        lo, hi = int(np.minimum(a, b).sum(1).min()), int(np.maximum(a, b).sum(1).max())
        # every partial sum lies in [lo, hi] too: every term's range contains 0
        object.__setattr__(self, "acc_dtype", signed_type(lo, hi))
        wt = BIPOLAR if np.all(np.abs(w) == 1) else signed_type(w.min(), w.max())
        object.__setattr__(self, "w_dtype", wt)

    @property
    def cf(self) -> int:
        return self.channels // self.pe

    @property
    def kb(self) -> int:
        """Beats per channel group and pixel."""
        return self.k2 // self.simd

    def simd_values(self) -> list[int]:
        return kernel_simd_values(self.k2 // (self.k_w or self.k2), self.k_w or self.k2)

    def in_streams(self) -> tuple[StreamSpec, ...]:
        beats = self.pixels * self.kb * self.cf
        return (StreamSpec(self.in_dtype, self.pe * self.simd, beats),)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.acc_dtype, self.pe, self.pixels * self.cf),)

    def cycles_per_frame(self) -> int:
        """One input beat per cycle; with SIMD > 1 also the SWU in front, which then takes
        the image PE channels per beat (in_pixels * CH/PE cycles: more than this stage's own
        beats with a stride, or PE too small for the taps), so that a folding chosen by this
        stage's cycles is one the pair reaches."""
        own = self.in_streams()[0].beats
        return max(own, self.in_pixels * self.cf) if self.simd > 1 else own

    def latency_cycles(self) -> int:
        return self.cycles_per_frame() + 3

    def memory_bits(self) -> int:
        return self.weights.size * self.w_dtype.bits + self.channels * self.acc_dtype.bits

    def legal_values(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.channels), "SIMD": self.simd_values()}

    def folding(self) -> dict:
        return {"PE": self.pe, "SIMD": self.simd, "ram_style": self.ram_style}

    def rtl_params(self) -> dict:
        return {
            "CH": self.channels,
            "PE": self.pe,
            "K2": self.k2,
            "SIMD": self.simd,
            "IBITS": self.in_dtype.bits,
            "ISIGNED": int(self.in_dtype.signed and not self.in_dtype.is_bipolar),
            "IBIPOLAR": int(self.in_dtype.is_bipolar),
            "WBITS": self.w_dtype.bits,
            "WSIGNED": int(not self.w_dtype.is_bipolar),
            "WBIPOLAR": int(self.w_dtype.is_bipolar),
            "ACC_BITS": self.acc_dtype.bits,
            "RAM_STYLE": "block" if self.ram_style == "ultra" else self.ram_style,
        }

    # -- memory ----------------------------------------------------------------------------------
    def weight_words(self) -> list[int]:
        if self.simd == 1:  # word kp*CF + g, lane p = W[g*PE + p][kp]
            tiles = self.weights.T.reshape(self.k2 * self.cf, self.pe)
        else:  # word g*KB + t, lane j*PE + p = W[g*PE + p][t*SIMD + j]
            w = self.weights.reshape(self.cf, self.pe, self.k2).transpose(0, 2, 1)
            tiles = w.reshape(self.cf * self.kb, self.simd * self.pe)
        return pack_words(self.w_dtype.to_bits(tiles), self.w_dtype.bits)

    def weights_from_words(self, words: list[int]) -> np.ndarray:
        fields = unpack_words(words, self.pe * self.simd, self.w_dtype.bits)
        w = self.w_dtype.from_bits(fields)
        if self.simd == 1:
            return w.reshape(self.k2, self.channels).T
        return w.reshape(self.cf, self.k2, self.pe).transpose(0, 2, 1).reshape(-1, self.k2)

    def memory_words(self) -> list[list[int]]:
        return [self.weight_words()]

    def write_memories(self, directory: str | Path) -> dict[str, Path]:
        path = Path(directory) / f"{self.ident}_weights.hex"
        width = self.simd * self.pe * self.w_dtype.bits
        return {"WEIGHT_FILE": write_hex(path, self.weight_words(), width)}

    # -- folded model ----------------------------------------------------------------------------
    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        f = x.shape[0]
        if self.simd == 1:  # (kp, c) order
            win = x.reshape(f, self.pixels, self.k2, self.channels)
            acc = np.einsum("fpkc,ck->fpc", win, self.weights)
        else:  # depthwise order: (g, kp, p)
            win = x.reshape(f, self.pixels, self.cf, self.k2, self.pe)
            w = self.weights.reshape(self.cf, self.pe, self.k2)
            acc = np.einsum("fpgkq,gqk->fpgq", win, w)
        return restore(acc.reshape(f, -1, self.pe), single)

    # -- resource estimate -----------------------------------------------------------------------
    def estimate(self, device: Device) -> Resources:
        """By analogy with the MVAU's fitted coefficients, scaled to 3 Yosys runs: PE
        multipliers (PE * SIMD) and accumulators (PE, and the adder of PE * SIMD products), the
        weight ROM, and the running sums (SIMD = 1: CH/PE words of PE * ACC_BITS bits, read
        asynchronously: LUTRAM; SIMD > 1: one word)."""
        p = self.rtl_params()
        xw = 2 if p["IBIPOLAR"] else p["IBITS"] + 1
        yw = 2 if p["WBIPOLAR"] else p["WBITS"] + 1
        lanes = self.pe * self.simd
        dsp = lanes if product_on_dsp(p) else 0
        depth = self.kb * self.cf
        feats = {
            "mul": 0.0 if dsp else lanes * xw * yw,
            "acc": lanes * p["ACC_BITS"],
            "ctrl_bits": 2 * counter_bits(depth),
        }
        fixed = rom_features(feats, "rom", depth, lanes * p["WBITS"], self.ram_style, device)
        sums = self.pe * p["ACC_BITS"]
        if self.cf > 1 and self.simd == 1:
            fixed = fixed + Resources(
                lut=lutram_luts(self.cf, sums), lutram=lutram_luts(self.cf, sums)
            )
        else:
            fixed = fixed + Resources(ff=sums)
        ff = 2 * counter_bits(depth) + 3 + lanes * (p["IBITS"] + p["WBITS"]) + sums
        r = Resources(lut=linear(VVAU_LUT, feats), ff=ff, dsp=dsp) + fixed
        return dataclasses.replace(r, lut=VVAU_LUT_SCALE * r.lut, ff=VVAU_FF_SCALE * r.ff)


#: the MVAU-coefficient estimate was 11-32 % high on LUTs and 15-29 % high on FFs against
#: Yosys on the three VVAU calibration runs (`python -m qloom.fold.calibrate --only vvau`):
#: scaled by the mean ratios
VVAU_LUT_SCALE = 0.81
VVAU_FF_SCALE = 0.77


# -- lowering: called by the Conv rule (qloom.dataflow.mvau) for a depthwise Conv ---------------
def lower_vvau(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    """SWU + VVAU (named as the Conv) + Thresholding (named as the MultiThreshold, if any)."""
    conv = nodes[0]
    mt = nodes[1] if len(nodes) > 1 else None
    w = np.asarray(conv.attrs["weights"], dtype=np.int64)  # (KH, KW, 1, CH)
    kh, kw, cin_g, c = w.shape
    h, wd = ctx.g.tensors[conv.inputs[0]].shape[:2]
    if cin_g != 1 or c != ctx.g.tensors[conv.inputs[0]].shape[-1]:
        raise unsupported(
            conv,
            f"grouped convolution with {cin_g} input channel(s) per group and {c} outputs: "
            "only depthwise (one input channel per group, as many outputs as inputs) has a stage",
        )
    fold = ctx.fold(conv.name, "VVAU", {"PE": 1, "SIMD": 1, "ram_style": "auto"})
    legal = kernel_simd_values(kh, kw)
    if fold["SIMD"] not in legal:  # checked here: the SWU in front is built from it
        raise FoldingError(
            f"VVAU '{conv.name}': SIMD={fold['SIMD']!r} is not a legal number of taps of a "
            f"{kh}x{kw} kernel per beat; legal SIMD: {', '.join(map(str, legal))}"
        )
    check_divides("VVAU", conv.name, "PE", fold["PE"], "CH", c)
    x, in_dtype, pixels = place_conv_windows(ctx, conv, fold["PE"], ksimd=fold["SIMD"])
    wmat = w.reshape(kh * kw, c).T
    if mt is not None and mt.attrs.get("negate") is not None:
        wmat = wmat * np.where(np.broadcast_to(mt.attrs["negate"], (c,)), -1, 1)[:, None]
        mt = mt.with_attrs(negate=None)  # the flipped filters absorb it
    stage = VVAU(conv.name, c, pixels, kh * kw, wmat, in_dtype, pe=fold["PE"],
                 ram_style=fold["ram_style"], simd=fold["SIMD"], k_w=kw,
                 in_pixels=h * wd)  # fmt: skip
    ctx.place(stage, [x], conv.outputs[0])
    if mt is not None:
        ctx.uses[conv.outputs[0]] = 1
        lower_thresholding(ctx, (mt,))
