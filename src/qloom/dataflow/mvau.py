"""MVAU: matrix-vector(-activation) unit, FINN's MatrixVectorActivation.

Computes, for each of `pixels` input vectors x (MW elements), acc = W x (MH outputs; W is MH x MW,
row = output neuron, column = input index) and then either the thresholded activation
OUT_BASE + #{k : acc[r] >= T[r][k]} (NT thresholds per row, ascending) or, with NT = 0,
the accumulator itself. Binary (XNOR) mode: input and weights are BIPOLAR bits and
acc = popcount(xnor(x, w)) = (x . w + MW) / 2, exactly what the integer graph's XnorMatMul computes.

Streams: input MW/SIMD beats of SIMD elements per vector, output MH/PE beats of PE elements per
vector; for convolutions the SWU feeds one window (in (kh, kw, c) order) per output pixel.

Memories ($readmemh, one word per line, fields two's complement / BIPOLAR bit 1 = +1):
  weights    depth NF*SF (NF = MH/PE, SF = MW/SIMD), address nf*SF + sf, word PE*SIMD*WBITS bits,
             lane (p, s) at bits [(p*SIMD + s)*WBITS +: WBITS] = W[nf*PE + p][sf*SIMD + s]
  thresholds depth NF, word PE*NT*TBITS bits, lane (p, k) at [(p*NT + k)*TBITS +: TBITS] =
             T[nf*PE + p][k] (ascending in k; clamped to [acc_min, acc_max + 1], which keeps
             every comparison's result)
Run-time weights (folding key "weights": "runtime"): the weight memory has no $readmemh
contents; after reset the top streams it in (qloom_mvau WLOAD = 1, `weight_stream_words`
gives the host words), and the accumulator and thresholds are sized for any weights of the
stage's weight type, so that other weights of that type can be loaded without a rebuild
(`with_weights`). The thresholds stay constant.
A BIPOLAR output (NT = 1) is the count bit itself: 1 = +1 (value 2*count - 1), OUT_BASE = 0.
The accumulator is unsigned (0..MW) in binary mode and two's complement otherwise (as the RTL
reads it); multi-bit mode stores +-1 weights as BIPOLAR bits (WBIPOLAR) and reads a BIPOLAR
input (IBIPOLAR) as +-1.
Cycles per frame: (MH/PE) * (MW/SIMD) * pixels.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import (
    Resources,
    clog2,
    counter_bits,
    linear,
    lutram_luts,
    ram,
    rom_features,
    uram_blocks,
)
from qloom.dataflow.rules import lowering_rule, unsupported
from qloom.dataflow.stage import (
    Stage,
    StreamSpec,
    as_frames,
    check_divides,
    check_ram_style,
    check_stream,
    divisors,
    host_words,
    pack_words,
    restore,
    signed_type,
    unpack_words,
    write_hex,
)
from qloom.dataflow.swu import place_conv_windows
from qloom.datatype import BIPOLAR, DataType
from qloom.errors import FoldingError
from qloom.execute.kernels import exact_matmul

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device

#: values of the folding key "weights": constant ($readmemh at configuration) or loaded over
#: the top's weight stream after reset
WEIGHT_MODES = ("constant", "runtime")


@dataclass(frozen=True, eq=False)
class MVAU(Stage):
    mw: int
    mh: int
    weights: np.ndarray  # (MH, MW) integers; BIPOLAR (+-1) in binary mode
    in_dtype: DataType
    pe: int = 1
    simd: int = 1
    pixels: int = 1  # vectors per frame (output pixels of a convolution)
    binary: bool = False
    thresholds: np.ndarray | None = None  # (MH, NT) ascending, or None: output the accumulator
    out_base: int = 0
    out_dtype: DataType | None = None  # required with thresholds
    ram_style: str = "auto"
    weight_mode: str = "constant"  # folding key "weights": one of WEIGHT_MODES

    kind = "MVAU"
    fold_params = ("PE", "SIMD")
    memory_styles = ("auto", "block")
    finn_op = "MVAU"
    rtl_module = "qloom_mvau"

    @classmethod
    def example(cls) -> MVAU:
        """A small instance (the protocol test and the docs use it)."""
        w = np.random.default_rng(0).integers(-2, 2, size=(8, 12))
        t = np.sort(np.random.default_rng(1).integers(-20, 20, size=(8, 3)), axis=1)
        return cls("mvau_example", 12, 8, w, DataType.int(2, True), pe=2, simd=3, pixels=2,
                   thresholds=t, out_dtype=DataType.int(2, False))  # fmt: skip

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=np.int64)
        if w.shape != (self.mh, self.mw):
            raise ValueError(f"MVAU '{self.name}': weights {w.shape} are not (MH, MW)")
        object.__setattr__(self, "weights", w)
        self._check_folding()
        if self.binary or np.all(np.abs(w) == 1):
            object.__setattr__(self, "w_dtype", BIPOLAR)
        else:
            object.__setattr__(self, "w_dtype", signed_type(w.min(), w.max()))
        if self.binary:
            if not self.in_dtype.is_bipolar or not np.all(np.abs(w) == 1):
                raise ValueError(f"MVAU '{self.name}': binary mode needs BIPOLAR input/weights")
            lo, hi = np.zeros(self.mh, np.int64), np.full(self.mh, self.mw, np.int64)
        elif self.runtime_weights:  # any weights of w_dtype may be loaded: the worst case
            ends = [a * b for a in (self.w_dtype.min, self.w_dtype.max)
                    for b in (self.in_dtype.min, self.in_dtype.max)]  # fmt: skip
            lo = np.full(self.mh, self.mw * min(ends), np.int64)
            hi = np.full(self.mh, self.mw * max(ends), np.int64)
        else:
            a, b = w * self.in_dtype.min, w * self.in_dtype.max
            lo, hi = np.minimum(a, b).sum(1), np.maximum(a, b).sum(1)
        # any partial sum lies in [lo, hi] too: every term's range contains 0
        acc_lo, acc_hi = int(lo.min()), int(hi.max())
        acc = DataType.for_range(0, self.mw) if self.binary else signed_type(acc_lo, acc_hi)
        # Ones' complement (+-1 weights, multi-bit inputs, thresholds): the RTL adds ~x = -x-1
        # for a -1 weight, so its accumulator is acc - shift[n] (shift = the neuron's -1
        # weights) and its threshold memory holds T - shift; acc_dtype / t_dtype are the RTL's.
        # Not with run-time weights: the shift depends on the weights, the thresholds do not.
        ones = not self.binary and self.thresholds is not None and bool(np.all(np.abs(w) == 1))
        ones = ones and not self.runtime_weights
        shift = (w < 0).sum(1) if ones else np.zeros(self.mh, np.int64)
        if ones:
            acc = signed_type(min(acc_lo, int((lo - shift).min())), int(hi.max()))
        object.__setattr__(self, "ones_complement", ones)
        object.__setattr__(self, "threshold_shift", shift)
        object.__setattr__(self, "acc_dtype", acc)
        if self.thresholds is not None:
            t = np.asarray(self.thresholds, dtype=np.int64)
            if t.ndim != 2 or t.shape[0] != self.mh or t.shape[1] < 1:
                raise ValueError(f"MVAU '{self.name}': thresholds {t.shape} are not (MH, NT)")
            if np.any(np.diff(t, axis=1) < 0):
                raise ValueError(f"MVAU '{self.name}': thresholds are not ascending")
            if self.out_dtype is None:
                raise ValueError(f"MVAU '{self.name}': thresholds need an out_dtype")
            if self.out_dtype.is_bipolar and t.shape[1] != 1:
                raise ValueError(f"MVAU '{self.name}': BIPOLAR output needs exactly 1 threshold")
            # as given: a refold to other weight modes clips them to its own accumulator range
            object.__setattr__(self, "thresholds_given", t)
            t = np.clip(t, acc_lo, acc_hi + 1)
            object.__setattr__(self, "thresholds", t)
            t_rtl = t - shift[:, None]
            object.__setattr__(self, "t_dtype", signed_type(t_rtl.min(), t_rtl.max()))
        else:
            object.__setattr__(self, "out_dtype", self.acc_dtype)
            object.__setattr__(self, "t_dtype", None)
            object.__setattr__(self, "thresholds_given", None)

    def refold(self, values: Mapping[str, int], ram_style: str | None = None) -> MVAU:
        """Another folding of the same layer. What __post_init__ derives from the weights (a
        pass over every one: 50 ms for a 4608 x 512 conv) depends on no folding parameter, so
        a copy keeps it and only the folding is checked: the solver refolds each layer of a
        ResNet-18 hundreds of times."""
        kw = {p.lower(): v for p, v in values.items()}
        if ram_style is not None:
            kw["ram_style"] = ram_style
        if "weights" in kw:  # the folding key; `weights` is the matrix
            kw["weight_mode"] = kw.pop("weights")
        if kw.get("weight_mode", self.weight_mode) != self.weight_mode:
            # another accumulator range: derived anew, the thresholds clipped to it as given
            return dataclasses.replace(self, thresholds=self.thresholds_given, **kw)
        kw.pop("weight_mode", None)
        if not set(kw) <= {"pe", "simd", "ram_style"}:
            return super().refold(values, ram_style)
        new = copy.copy(self)
        for k, v in kw.items():
            object.__setattr__(new, k, v)
        new._check_folding()
        return new

    def _check_folding(self) -> None:
        check_divides("MVAU", self.name, "PE", self.pe, "MH", self.mh)
        check_divides("MVAU", self.name, "SIMD", self.simd, "MW", self.mw)
        check_ram_style("MVAU", self.name, self.ram_style)
        if self.weight_mode not in WEIGHT_MODES:
            raise FoldingError(
                f"MVAU '{self.name}': weights={self.weight_mode!r} is not one of "
                f"{', '.join(WEIGHT_MODES)}"
            )

    @property
    def runtime_weights(self) -> bool:
        """Whether the weights are loaded over the top's weight stream after reset."""
        return self.weight_mode == "runtime"

    def with_weights(self, weights: np.ndarray) -> MVAU:
        """This run-time-weight stage holding other weights: the same hardware (every RTL
        parameter, the weight type, the thresholds), so that its `weight_stream_words` load
        into the design as it was built and its `execute` gives what that design then
        computes. The weights must fit the stage's weight type."""
        if not self.runtime_weights:
            raise FoldingError(f"MVAU '{self.name}': its weights are constant, not runtime")
        w = np.asarray(weights, dtype=np.int64)
        if w.shape != (self.mh, self.mw):
            raise ValueError(f"MVAU '{self.name}': weights {w.shape} are not (MH, MW)")
        if self.w_dtype.is_bipolar and not np.all(np.abs(w) == 1):
            raise ValueError(f"MVAU '{self.name}': the loaded weights must be +-1 (BIPOLAR)")
        if w.min() < self.w_dtype.min or w.max() > self.w_dtype.max:
            raise ValueError(
                f"MVAU '{self.name}': weights in [{w.min()}, {w.max()}] do not fit its weight "
                f"type {self.w_dtype} [{self.w_dtype.min}, {self.w_dtype.max}]"
            )
        new = copy.copy(self)
        object.__setattr__(new, "weights", w)
        return new

    def weight_stream_words(self) -> np.ndarray:
        """The uint32 host words that load this stage's weight memory (qloom_wload's format:
        each memory word of `weight_words` as ceil(width / 32) words, lowest bits first)."""
        if not self.runtime_weights:
            return np.zeros(0, np.uint32)
        return host_words(self.weight_words(), self.pe * self.simd * self.w_dtype.bits)

    # -- shape / folding -------------------------------------------------------------------------
    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nt(self) -> int:
        return 0 if self.thresholds is None else int(self.thresholds.shape[1])

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.in_dtype, self.simd, self.sf * self.pixels),)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.out_dtype, self.pe, self.nf * self.pixels),)

    def cycles_per_frame(self) -> int:
        return self.nf * self.sf * self.pixels

    def latency_cycles(self) -> int:
        p = self.rtl_params()
        return self.cycles_per_frame() + 4 + p["MEM_REG"] + p["DOT_CUT"]

    def first_out_cycles(self, spacing: float = 1.0) -> int:
        """The first output beat follows the first fold's SF input beats and the pipeline."""
        return self.latency_cycles() - self.cycles_per_frame() + round((self.sf - 1) * spacing)

    def tail_cycles(self, spacing: float = 1.0) -> int:
        """After a pixel's last input beat: its other NF - 1 folds and the pipeline."""
        return self.latency_cycles() - self.cycles_per_frame() + (self.nf - 1) * self.sf

    @property
    def mem_reg(self) -> bool:
        """Register the weight read twice (qloom_mvau MEM_REG) where the weights may sit in
        block RAM, whose clock-to-out would start the dot product's path: style block, or
        auto beyond 64 words (shallower ROMs go to LUTs); not for constant weights."""
        depth = self.nf * self.sf
        return depth > 1 and (self.ram_style in ("block", "ultra") or
                              (self.ram_style == "auto" and depth > 64))  # fmt: skip

    @property
    def dot_cut(self) -> bool:
        """Register the middle of the adder tree (qloom_dot CUT_REG) unless the tree is at most
        two adder levels over cheap products (XNOR full adders, or a +-1 / 1-bit operand):
        there the register adds a cycle of latency and serves no clock. Where it is deeper the
        register also saves LUTs: Yosys merges an unbroken adder tree into one $macc and maps
        that to full adders, dearer than the carry-chain adders of the two halves (XNOR, 8 PE x
        64 lanes: 984 LUT whole, 768 cut)."""
        p = self.rtl_params(cuts=False)
        cheap = p["BINARY"] or p["WBIPOLAR"] or p["IBIPOLAR"] or min(p["IBITS"], p["WBITS"]) == 1
        return not (cheap and clog2(tree_leaves(self)) <= 2)

    def memory_bits(self) -> int:
        t = self.mh * self.nt * self.t_dtype.bits if self.t_dtype else 0
        return self.mh * self.mw * self.w_dtype.bits + t

    def legal_values(self) -> dict[str, list[int]]:
        return {"PE": divisors(self.mh), "SIMD": divisors(self.mw)}

    def memory_words(self) -> list[list[int]]:
        return [self.weight_words(), self.threshold_words()]

    def folding(self) -> dict:
        out = {"PE": self.pe, "SIMD": self.simd, "ram_style": self.ram_style}
        if self.runtime_weights:  # constant designs keep FINN's three keys
            out["weights"] = self.weight_mode
        return out

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_mvau(self, device)

    def memory_styles_on(self, device: Device) -> tuple[str | None, ...]:
        """Run-time weights on a part with UltraRAM may also go there (the solver takes it
        where it costs less than block RAM: deep, wide memories); constant weights never
        (URAM has no initial contents)."""
        if self.runtime_weights and device.family == "xcup" and device.uram:
            return (*self.memory_styles, "ultra")
        return self.memory_styles

    def alternatives(self) -> list[Stage]:
        """The layer as LogicNets truth tables when every neuron reads few enough input bits
        (a sparse fully connected layer with fused thresholds; qloom.dataflow.truthtable)."""
        from qloom.dataflow.truthtable import TruthTable

        if self.thresholds is None or self.pixels != 1 or self.runtime_weights:
            return []  # truth tables bake the weights in
        try:
            return [TruthTable.from_mvau(self)]
        except FoldingError:  # a neuron reads more than the default max_bits
            return []

    def rtl_params(self, cuts: bool = True) -> dict:
        """Parameters of qloom_mvau (memory file names are added by the RTL generator);
        cuts=False leaves out the pipeline registers chosen from them (MEM_REG, DOT_CUT)."""
        bipolar_out = self.out_dtype.is_bipolar
        # UltraRAM has no initial contents ($readmemh is ignored there, UG901: it powers up at
        # 0), so only weights written after reset may live in it: constant weights and the
        # (constant) thresholds take block RAM instead.
        t_style = "block" if self.ram_style == "ultra" else self.ram_style
        style = self.ram_style if self.runtime_weights else t_style
        regs = {"MEM_REG": int(self.mem_reg), "DOT_CUT": int(self.dot_cut)} if cuts else {}
        load = {"WLOAD": 1} if self.runtime_weights else {}  # constant: qloom_mvau as before
        params = regs | {
            "MW": self.mw,
            "MH": self.mh,
            "PE": self.pe,
            "SIMD": self.simd,
            "IBITS": self.in_dtype.bits,
            "ISIGNED": int(self.in_dtype.signed and not self.in_dtype.is_bipolar),
            "WBITS": self.w_dtype.bits,
            "WSIGNED": int(not self.w_dtype.is_bipolar),
            "BINARY": int(self.binary),
            "IBIPOLAR": int(self.in_dtype.is_bipolar and not self.binary),
            "WBIPOLAR": int(self.w_dtype.is_bipolar and not self.binary),
            "ONES_COMP": int(self.ones_complement),
            "ACC_BITS": self.acc_dtype.bits,
            "NT": self.nt,
            "TBITS": self.t_dtype.bits if self.t_dtype else 1,
            "OBITS": self.out_dtype.bits,
            "OUT_BASE": 0 if bipolar_out or self.thresholds is None else self.out_base,
            "RAM_STYLE": style,
            "TRAM_STYLE": t_style,
        }
        return params | load

    # -- memories --------------------------------------------------------------------------------
    def weight_tiles(self) -> np.ndarray:
        """(NF, SF, PE, SIMD): tile[nf, sf, p, s] = W[nf*PE + p][sf*SIMD + s]."""
        w = self.weights.reshape(self.nf, self.pe, self.sf, self.simd)
        return w.transpose(0, 2, 1, 3)

    def weight_words(self) -> list[int]:
        fields = self.w_dtype.to_bits(self.weight_tiles().reshape(self.nf * self.sf, -1))
        return pack_words(fields, self.w_dtype.bits)

    def threshold_words(self) -> list[int]:
        if self.thresholds is None:
            return []
        t = self.thresholds - self.threshold_shift[:, None]  # the RTL's (ones' complement)
        fields = self.t_dtype.to_bits(t.reshape(self.nf, self.pe * self.nt))
        return pack_words(fields, self.t_dtype.bits)

    def weights_from_words(self, words: list[int]) -> np.ndarray:
        """Inverse of weight_words: the (MH, MW) matrix."""
        fields = unpack_words(words, self.pe * self.simd, self.w_dtype.bits)
        tiles = self.w_dtype.from_bits(fields).reshape(self.nf, self.sf, self.pe, self.simd)
        return tiles.transpose(0, 2, 1, 3).reshape(self.mh, self.mw)

    def thresholds_from_words(self, words: list[int]) -> np.ndarray:
        fields = unpack_words(words, self.pe * self.nt, self.t_dtype.bits)
        t = self.t_dtype.from_bits(fields).reshape(self.mh, self.nt)
        return t + self.threshold_shift[:, None]

    def write_memories(self, directory: str | Path) -> dict[str, Path]:
        """Write $readmemh files; returns {"WEIGHT_FILE": path[, "THRESH_FILE": path]}."""
        d = Path(directory)
        files = {}
        if not self.runtime_weights:  # run-time weights come over the weight stream
            files["WEIGHT_FILE"] = write_hex(
                d / f"{self.ident}_weights.hex",
                self.weight_words(),
                self.pe * self.simd * self.w_dtype.bits,
            )
        if self.thresholds is not None:
            files["THRESH_FILE"] = write_hex(
                d / f"{self.ident}_thresholds.hex",
                self.threshold_words(),
                self.pe * self.nt * self.t_dtype.bits,
            )
        return files

    # -- folded model ----------------------------------------------------------------------------
    def accumulate(self, beats: np.ndarray) -> np.ndarray:
        """Input beats (F, pixels*SF, SIMD) -> accumulators (F, pixels, MH), from the tiled
        weight memory."""
        f = beats.shape[0]
        x = beats.reshape(f * self.pixels, self.sf, self.simd)
        tiles = self.weight_tiles()  # NF, SF, PE, SIMD
        w = tiles.transpose(1, 3, 0, 2).reshape(self.mw, self.mh)  # input index, output row
        x = x.reshape(f * self.pixels, self.mw)
        if self.binary:
            xb, wb = (x > 0).astype(np.int64), (w > 0).astype(np.int64)
            acc = exact_matmul(xb, wb) + exact_matmul(1 - xb, 1 - wb)  # popcount(xnor)
        else:
            acc = exact_matmul(x, w)
        return acc.reshape(f, self.pixels, self.mh)

    def activate(self, acc: np.ndarray) -> np.ndarray:
        if self.thresholds is None:
            return acc
        count = np.zeros(acc.shape, np.int64)
        for k in range(self.nt):
            count += acc >= self.thresholds[:, k]
        if self.out_dtype.is_bipolar:
            return 2 * count - 1
        return self.out_base + count

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        out = self.activate(self.accumulate(x))
        return restore(out.reshape(x.shape[0], self.nf * self.pixels, self.pe), single)


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
#: MVAU LUTs = sum(coef * feature) + memories (see `_mvau_features`). Refitted 2026-12-06
#: (`fit("MVAU", drop=("const", "outadd", "rom_cols"))` on the 25 multi-bit calibration
#: configurations: the 19 before, 5 from ResNet-18 (two 8-bit DSP stems, 128 4-bit lanes at
#: PE 1 x SIMD 128 / PE 2 x SIMD 64, a 1x1 conv with 14 thresholds) and PE 64 x SIMD 1) with
#: "mul" counting partial-product bits (IBITS * WBITS, 1/16 more per tree level) instead of
#: (IBITS+1) * (WBITS+1), and "acc" fitted: within 12 % of Yosys on every configuration but
#: the w2a2 DSP stem (-17 %; the w4a4 one +12 %). The fit before: -35 % / -31 % on the 4-bit
#: 128-lane ones (ResNet-18 w4a4's 3x3 convs -24 % on xczu9eg), -38 % at PE 64 x SIMD 1;
#: earlier still: -27 % on wide SIMD, +64 % with DSPs, and no "sign" feature: +-1 weights on
#: 8-bit pixels were priced as multipliers, +76 % on CNV's first conv.
MVAU_LUT = {
    "const": 0.0,  # control (issue logic, valid pipeline): absorbed by the other terms
    "ctrl_bits": 1.1039,  # per counter bit (sf, nf, weight address)
    "mul": 2.1368,  # per partial-product bit (IBITS * WBITS) per LUT lane, +1/16 per level
    "sign": 1.5075,  # per input bit of a +-1-weight lane on multi-bit inputs (x or ~x)
    "tree": 0.2685,  # per adder-tree bit (PE * (SIMD-1) adders of PSW bits)
    "xnor": 0.0,  # per XNOR-popcount input (PE * SIMD): binary MVAUs use MVAU_XNOR_LUT
    "xnor_depth": 0.0,  # per XNOR lane and tree level (PE * SIMD * log2 SIMD): binary only
    "acc": 0.8689,  # per accumulator bit (PE * ACC_BITS): alone at SIMD 1 (PE 64: -38 % without)
    "cmp": 0.5221,  # per threshold comparator bit (PE * NT * CW)
    "outadd": 0.0,  # per output bit (PE * OBITS): count of passed thresholds + OUT_BASE
    "rom_cols": 0.0,  # per (distinct) output bit of a ROM built from logic
    "rom_bits": 4.3562,  # per 64 ROM bits built from logic (in context: ~5x a bare ROM)
}

#: XNOR-popcount MVAU LUTs (BINARY = 1): fitted on the binary configurations alone (a PE x
#: SIMD sweep at equal lanes). Refitted 2026-12-06 for the full-adder leaves (3 lanes per
#: 6-input LUT pair) and the tree cut above 12 lanes (`fit("XNOR", drop=("const", "outadd"))`
#: on the 17 binary configurations): the lanes and their tree depth carry the cost (Yosys
#: builds each half of the tree as one $macc of full adders, dearer per lane the deeper it
#: is), so PE 32 x SIMD 64 (3,813 LUT) ranks below PE 2 x SIMD 1024 (5,334) as in Yosys;
#: within 15 % above 700 LUTs but PE 1 x SIMD 256 (-20 %), -29 % .. +11 % below 200.
MVAU_XNOR_LUT = {
    "const": 0.0,
    "ctrl_bits": 1.4772,
    "mul": 0.0,
    "sign": 0.0,
    "tree": 0.0,  # the adders' bits follow the lanes: priced by "xnor" and "xnor_depth"
    "xnor": 0.3259,
    "xnor_depth": 0.239,
    "acc": 2.0259,
    "cmp": 0.0,
    "outadd": 0.0,
    "rom_cols": 0.0052,
    "rom_bits": 4.0513,
}

#: Yosys maps a signed product to a DSP48 when it is at least this wide (mul2dsp Y_MINWIDTH)
DSP_MIN_PRODUCT_BITS = 9


def tree_leaves(s: MVAU) -> int:
    """Leaves of the RTL's per-PE adder tree (NL): the SIMD products, or in XNOR mode the
    full adders counting the matches of 3 lanes; every node of the tree is PSW bits wide."""
    return tree_leaves_binary(s.simd) if s.binary else s.simd


def tree_leaves_binary(simd: int) -> int:
    """XNOR mode's leaves: one full adder per 3 lanes (qloom_dot CB)."""
    return -(-simd // 3)


def mvau_features(s: MVAU) -> dict[str, float]:
    p = s.rtl_params()
    pe, simd, nt = s.pe, s.simd, s.nt
    binary = bool(p["BINARY"])
    xw = 2 if p["IBIPOLAR"] else p["IBITS"] + 1
    yw = 2 if p["WBIPOLAR"] else p["WBITS"] + 1
    pw = xw + yw
    psw = clog2(simd + 1) if binary else pw + clog2(simd) + 1
    acc = p["ACC_BITS"]
    cw = max(acc + 1, p["TBITS"]) + 1
    lanes = pe * simd
    dsp_lanes = _dsp_lanes(s)
    # +-1 weights on multi-bit inputs: no product, x or ~x (ones' complement) into the tree
    sign = not binary and bool(p["WBIPOLAR"]) and not p["IBIPOLAR"]
    # Multiplier lanes: priced per partial-product bit (IBITS x WBITS per lane), dearer the
    # deeper the tree (+1/16 per level: the ratio a separate per-level feature took in the fit,
    # 0.067; Yosys sums each half of the tree with its products in full adders). The earlier
    # (IBITS+1) x (WBITS+1) priced 4-bit lanes too close to 2-bit ones: 128 4-bit lanes at
    # PE 1 x SIMD 128 were -35 % of Yosys, 2-bit ones -11 %.
    pp = p["IBITS"] * p["WBITS"] * (1 + math.log2(max(simd, 2)) / 16)
    return {
        "const": 1.0,
        "ctrl_bits": counter_bits(s.sf) + counter_bits(s.nf) + counter_bits(s.nf * s.sf),
        "mul": 0.0 if binary or sign else (lanes - dsp_lanes) * pp,
        "sign": float(lanes * xw) if sign else 0.0,
        "tree": 0.0 if binary else pe * (simd - 1) * psw,  # XNOR: in "xnor" / "xnor_depth"
        "xnor": float(lanes) if binary else 0.0,
        # Yosys merges each half of the tree (cut register) into one $macc that it builds from
        # full adders: dearer per lane the deeper the tree (PE 2 x SIMD 1024: 2.6 LUT per
        # lane, PE 32 x SIMD 64: 1.9)
        "xnor_depth": lanes * math.log2(max(simd, 2)) if binary else 0.0,
        "acc": pe * acc,
        "cmp": pe * nt * cw,
        "outadd": pe * p["OBITS"] if nt else 0.0,
    }


def _dsp_lanes(s: MVAU) -> int:
    """Lanes whose product Yosys maps to a DSP48: after wreduce a sign-extended operand keeps
    its own width, a zero-extended one one bit more; products of >= 9 bits go to DSPs
    (measured: 4x4-bit signed stays in LUTs, 8x4-bit signed uses one DSP48E1 per lane)."""
    return s.pe * s.simd if product_on_dsp(s.rtl_params()) else 0


def product_on_dsp(p: dict) -> bool:
    """Whether Yosys maps one lane's product to a DSP48, from the RTL parameters of a
    multiply lane (IBITS/ISIGNED/IBIPOLAR, WBITS/WSIGNED/WBIPOLAR; BINARY if any): after
    wreduce a sign-extended operand keeps its own width, a zero-extended one one bit more."""
    if p.get("BINARY") or p["IBIPOLAR"] or p["WBIPOLAR"]:
        return False  # a bipolar operand only selects the sign of the other (no multiplier)
    a = p["IBITS"] + (0 if p["ISIGNED"] else 1)
    b = p["WBITS"] + (0 if p["WSIGNED"] else 1)
    return a + b >= DSP_MIN_PRODUCT_BITS and min(a, b) >= 2


def mvau_ffs(s: MVAU) -> float:
    """Registers of qloom_mvau besides the memory read registers (counted with the memories)."""
    p = s.rtl_params()
    pe, simd = s.pe, s.simd
    binary = bool(p["BINARY"])
    xw = 2 if p["IBIPOLAR"] else p["IBITS"] + 1
    yw = 2 if p["WBIPOLAR"] else p["WBITS"] + 1
    psw = clog2(simd + 1) if binary else xw + yw + clog2(simd) + 1
    nfw, sfw, waw = counter_bits(s.nf), counter_bits(s.sf), counter_bits(s.nf * s.sf)
    ow = p["OBITS"] if s.nt else p["ACC_BITS"]
    ff = sfw + nfw + waw + 1  # counters, output valid
    stages = 2 + p["MEM_REG"] + p["DOT_CUT"]  # 1, [1b], [2a: the tree cut], 2
    ff += stages * (3 + nfw) + 1  # their v/f/l/n, v3
    if not _dsp_lanes(s):
        ff += (1 + p["MEM_REG"]) * simd * p["IBITS"]  # x1[, xb] (DSP48 input registers if used)
    if s.nf * s.sf > 1 and p["MEM_REG"]:
        ff += pe * simd * p["WBITS"]  # wb: the weight memory's output register
    # the adder tree's cut registers: level CUT of a tree over NL leaves padded to 2^LEVELS
    if p["DOT_CUT"]:
        leaves = tree_leaves(s)
        levels = clog2(leaves)
        cut = (levels + 1) // 2
        ff += pe * -(-leaves // 2 ** (levels - cut)) * psw
    ff += pe * psw + pe * p["ACC_BITS"] + pe * ow  # ps2, acc, od
    return ff


def mvau_parts(s: MVAU, device: Device) -> tuple[dict[str, float], Resources]:
    """(LUT features, resources not from the fitted LUT model) of an MVAU."""
    p = s.rtl_params()
    feats = mvau_features(s)
    if s.nf * s.sf <= 1 and not s.runtime_weights:  # constant weights: the products shrink
        feats["mul"] *= 0.5  # to additions of constants
    fixed = Resources(ff=mvau_ffs(s), dsp=_dsp_lanes(s))
    if s.runtime_weights:
        fixed = fixed + runtime_weight_memory(s, device)
    else:
        fixed = fixed + rom_features(feats, "rom", s.nf * s.sf, s.pe * s.simd * p["WBITS"],
                                   s.ram_style, device)  # fmt: skip
    if s.nt:
        if s.nf <= 1:  # constant thresholds: comparisons with constants
            feats["cmp"] *= 0.5
        fixed = fixed + rom_features(feats, "rom", s.nf, s.pe * s.nt * p["TBITS"],
                                   p["TRAM_STYLE"], device)  # fmt: skip
    if s.nf > 1:  # the input buffer (SF x SIMD*IBITS, async read) in LUTRAM or FFs
        d, w = s.sf, s.simd * p["IBITS"]
        if d > 1:
            fixed = fixed + Resources(lut=lutram_luts(d, w), lutram=lutram_luts(d, w))
        else:
            fixed = fixed + Resources(ff=w)
    return feats, fixed


#: LUTs / FFs of qloom_wload (counters, flags, the 32-bit output slice) besides its
#: assembly register (NW * 32 FFs); counted from the RTL, not fitted
WLOAD_LUT, WLOAD_FF = 24.0, 40.0


def runtime_weight_memory(s: MVAU, device: Device) -> Resources:
    """The weight RAM of a run-time-weight MVAU and its loader. ram_style "ultra": URAM288
    blocks, on parts that have them (else a FoldingError naming the layer and the part);
    otherwise a RAM as the FIFOs' (block RAM or LUTRAM), with its read register in FFs when
    it is not in block RAM."""
    depth, width = s.nf * s.sf, s.pe * s.simd * s.w_dtype.bits
    loader = Resources(lut=WLOAD_LUT, ff=WLOAD_FF + 32 * -(-width // 32))
    if s.ram_style == "ultra":
        if not device.uram or device.family != "xcup":  # (iCE40's SPRAM is no URAM288)
            raise FoldingError(
                f"MVAU '{s.name}': ram_style='ultra' needs UltraRAM, which {device.name} does "
                f"not have; use ram_style 'block' or 'auto', or an UltraScale+ part with "
                f"URAM (e.g. xczu7ev, xcu250)"
            )
        return loader + Resources(uram=uram_blocks(depth, width))
    mem = ram(depth, width, s.ram_style, device)
    return loader + mem + Resources(ff=0 if mem.bram else width)


def estimate_mvau(s: MVAU, device: Device) -> Resources:
    feats, fixed = mvau_parts(s, device)
    coef = MVAU_XNOR_LUT if s.binary else MVAU_LUT
    return Resources(lut=linear(coef, feats)) + fixed


# -- lowering rule: the integer-graph op(s) this stage implements -----------------------------
@lowering_rule("MatMul", "XnorMatMul", "Conv", "XnorConv")
def lower_mvau(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    lin = nodes[0]
    if ctx.folding.get(lin.name, {}).get("style", "mvau") != "mvau":  # LogicNets tables
        from qloom.dataflow.truthtable import lower_truth_table

        lower_truth_table(ctx, nodes)
        return
    if lin.attrs.get("groups", 1) != 1:  # depthwise: a VVAU
        from qloom.dataflow.vvau import lower_vvau

        lower_vvau(ctx, nodes)
        return
    mt = nodes[1] if len(nodes) > 1 else None
    g = ctx.g
    x = lin.inputs[0]
    in_dtype = ctx.dtype_of[x]
    binary = lin.op.startswith("Xnor")
    w = np.asarray(lin.attrs["weights"], dtype=np.int64)
    fold = ctx.fold(
        lin.name,
        "MVAU",
        {"PE": 1, "SIMD": 1, "ram_style": "auto", "weights": "constant", "style": "mvau"},
    )
    finn_rww = ctx.folding.get(lin.name, {}).get("runtime_writeable_weights")
    if finn_rww in (1, True) and "weights" not in ctx.folding.get(lin.name, {}):
        fold["weights"] = "runtime"  # FINN's name for the same thing
    pixels = 1
    conv = lin.op in ("Conv", "XnorConv")
    if conv:  # the SWU's windows feed it (a conv with a 1 x 1 output has one window)
        kh, kw, cin, cout = w.shape
        x, in_dtype, pixels = place_conv_windows(ctx, lin, fold["SIMD"], binary)
        wmat = w.reshape(kh * kw * cin, cout).T
    else:
        wmat = w.T
    mh, mw = wmat.shape
    if not conv and mw != int(np.prod(g.tensors[lin.inputs[0]].shape)):
        raise unsupported(lin, f"weights expect {mw} inputs")
    kwargs = {}
    out = lin.outputs[0]
    if mt is not None:
        neg = mt.attrs.get("negate")
        if neg is not None:
            wmat = wmat * np.where(np.broadcast_to(neg, (mh,)), -1, 1)[:, None]
        kwargs = dict(
            thresholds=ctx.thresholds(mt, mh),
            out_base=int(mt.attrs["out_base"]),
            out_dtype=mt.attrs["out_dtype"],
        )
        out = mt.outputs[0]
    stage = MVAU(
        lin.name,
        mw,
        mh,
        wmat,
        in_dtype,
        pe=fold["PE"],
        simd=fold["SIMD"],
        pixels=pixels,
        binary=binary,
        ram_style=fold["ram_style"],
        weight_mode=fold["weights"],
        **kwargs,
    )
    ctx.place(stage, [x], out)
