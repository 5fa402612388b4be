"""Thresholding: a standalone multi-threshold activation (FINN's Thresholding), e.g. on the raw
input pixels, or after a pool / add.

out = OUT_BASE + #{k : x >= T[c][k]} for each element x of channel c (BIPOLAR output: NT = 1,
the count bit itself, value 2*count - 1). The stream is channels-last, CH/PE beats of PE
elements per pixel: element p of the j-th beat has channel (j mod (CH/PE))*PE + p.

Memory ($readmemh): depth NF = CH/PE, word PE*NT*TBITS bits, lane (p, k) at bits
[(p*NT + k)*TBITS +: TBITS] = T[nf*PE + p][k], two's complement, ascending in k, clamped to
[in_min, in_max + 1] (which keeps every comparison's result).
A BIPOLAR input is compared as its raw bit b (0/1, ISIGNED = 0): the memory then holds the
thresholds mapped to the bit domain (t <= -1 -> 0, t in {0, 1} -> 1, t >= 2 -> 2), which
gives the same counts. (lower.py uses this, with T = [1, 1] and OUT_BASE = -1, to widen a
BIPOLAR stream to INT2 values +-1 before a zero-padded convolution.)
Cycles per frame: pixels * CH / PE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from math import lcm
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.resources import Resources, counter_bits, linear, rom_features
from qloom.dataflow.rules import lowering_rule, unsupported
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
from qloom.datatype import DataType

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device


@dataclass(frozen=True, eq=False)
class Thresholding(Stage):
    channels: int
    pixels: int
    thresholds: np.ndarray  # (CH, NT) ascending
    in_dtype: DataType
    out_dtype: DataType
    out_base: int = 0
    pe: int = 1
    ram_style: str = "auto"
    #: made by to_dataflow to widen a BIPOLAR stream before zero padding (not the user's layer:
    #: its channels are fixed by the convolution that follows)
    widen: bool = False

    kind = "Thresholding"
    fold_params = ("PE",)
    memory_styles = ("auto", "block")
    finn_op = "Thresholding"
    rtl_module = "qloom_thresholding"

    @classmethod
    def example(cls) -> Thresholding:
        """A small instance (the protocol test and the docs use it)."""
        t = np.sort(np.random.default_rng(0).integers(-100, 100, size=(6, 3)), axis=1)
        return cls("thr_example", 6, 4, t, DataType.int(8, True), DataType.int(2, False), pe=3)

    def __post_init__(self) -> None:
        check_divides("Thresholding", self.name, "PE", self.pe, "CH", self.channels)
        check_ram_style("Thresholding", self.name, self.ram_style)
        t = np.asarray(self.thresholds, dtype=np.int64)
        if t.ndim != 2 or t.shape[0] != self.channels or t.shape[1] < 1:
            raise ValueError(f"Thresholding '{self.name}': thresholds {t.shape} are not (CH, NT)")
        if np.any(np.diff(t, axis=1) < 0):
            raise ValueError(f"Thresholding '{self.name}': thresholds are not ascending")
        if self.out_dtype.is_bipolar and t.shape[1] != 1:
            raise ValueError(f"Thresholding '{self.name}': BIPOLAR output needs 1 threshold")
        t = np.clip(t, self.in_dtype.min, self.in_dtype.max + 1)
        object.__setattr__(self, "thresholds", t)
        mem = np.clip((t + 2) // 2, 0, 2) if self.in_dtype.is_bipolar else t
        object.__setattr__(self, "memory_thresholds", mem)
        object.__setattr__(self, "t_dtype", signed_type(mem.min(), mem.max()))

    @property
    def nf(self) -> int:
        return self.channels // self.pe

    @property
    def nt(self) -> int:
        return int(self.thresholds.shape[1])

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.in_dtype, self.pe, self.pixels * self.nf),)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.out_dtype, self.pe, self.pixels * self.nf),)

    def cycles_per_frame(self) -> int:
        return self.pixels * self.nf

    def memory_bits(self) -> int:
        return self.channels * self.nt * self.t_dtype.bits

    def folding(self) -> dict:
        return {"PE": self.pe, "ram_style": self.ram_style}

    def estimate(self, device: Device) -> Resources:
        """Estimated LUT / FF / BRAM / DSP of this stage on `device` (6-input LUTs)."""
        return estimate_thresholding(self, device)

    def rtl_params(self) -> dict:
        bip = self.out_dtype.is_bipolar
        return {
            "CH": self.channels,
            "PE": self.pe,
            "IBITS": self.in_dtype.bits,
            "ISIGNED": int(self.in_dtype.signed and not self.in_dtype.is_bipolar),
            "NT": self.nt,
            "TBITS": self.t_dtype.bits,
            "OBITS": self.out_dtype.bits,
            "OUT_BASE": 0 if bip else self.out_base,
            "RAM_STYLE": "block" if self.ram_style == "ultra" else self.ram_style,
        }

    def legal_values(self) -> dict[str, list[int]]:
        # one threshold set for every channel: any PE dividing the frame (see `refold`)
        if self.uniform and not self.widen:
            return {"PE": divisors(self.channels * self.pixels)}
        return {"PE": divisors(self.channels)}

    @property
    def uniform(self) -> bool:
        """All channels share one set of thresholds."""
        t = np.asarray(self.thresholds)
        return bool(np.all(t == t[:1]))

    def refold(self, values, ram_style: str | None = None) -> Thresholding:
        """A uniform stage with a PE that does not divide CH replicates its thresholds over
        lcm(CH, PE) channels (the frame is the same elements, regrouped)."""
        pe = values.get("PE", self.pe)
        if not self.uniform or not isinstance(pe, int) or pe < 1 or self.channels % pe == 0:
            return super().refold(values, ram_style)  # the constructor checks PE
        c = lcm(self.channels, pe)
        t = np.repeat(np.asarray(self.thresholds)[:1], c, axis=0)
        st = dataclasses.replace(
            self, channels=c, pixels=self.channels * self.pixels // c, thresholds=t
        )
        return super(Thresholding, st).refold(values, ram_style)

    def memory_words(self) -> list[list[int]]:
        return [self.threshold_words()]

    def threshold_words(self) -> list[int]:
        mem = self.memory_thresholds.reshape(self.nf, self.pe * self.nt)
        fields = self.t_dtype.to_bits(mem)
        return pack_words(fields, self.t_dtype.bits)

    def thresholds_from_words(self, words: list[int]) -> np.ndarray:
        """Inverse of threshold_words: `memory_thresholds` (CH, NT)."""
        fields = unpack_words(words, self.pe * self.nt, self.t_dtype.bits)
        return self.t_dtype.from_bits(fields).reshape(self.channels, self.nt)

    def write_memories(self, directory: str | Path) -> dict[str, Path]:
        """Write the $readmemh threshold file; returns {"THRESH_FILE": path}."""
        path = Path(directory) / f"{self.ident}_thresholds.hex"
        width = self.pe * self.nt * self.t_dtype.bits
        return {"THRESH_FILE": write_hex(path, self.threshold_words(), width)}

    def execute(self, beats):
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        j = np.arange(x.shape[1])[:, None]
        chan = (j % self.nf) * self.pe + np.arange(self.pe)[None, :]  # (beats, PE)
        count = np.zeros(x.shape, np.int64)
        for k in range(self.nt):
            count += x >= self.thresholds[chan, k]
        out = 2 * count - 1 if self.out_dtype.is_bipolar else self.out_base + count
        return restore(out, single)


# -- resource estimate (LUT coefficients fitted to Yosys: see qloom.fold.estimate) ---------
#: Thresholding LUTs (fit weighted by 1 / LUT**0.75: few, small configurations)
THR_LUT = {"const": 0.8597, "cmp": 0.6772, "cmp_const": 1.1514, "count": 0.0, "outadd": 0.0,
           "ctrl_bits": 0.0, "rom_cols": 0.3242, "rom_bits": 3.6949}  # fmt: skip


def _shared_comparisons(nt: int) -> float:
    return float(nt) if nt <= 3 else 3.0 * (nt / 3) ** 0.6


def thresholding_parts(s: Thresholding, device: Device) -> tuple[dict[str, float], Resources]:
    p = s.rtl_params()
    cw = max(p["IBITS"] + 1, p["TBITS"]) + 1
    # NF = 1, or one threshold set for every channel (an input quantizer): the memory holds the
    # same word at every address, which synthesis folds into constants (Yosys on 784 channels
    # of UINT8, PE 49, one threshold: 198 LUT, no memory; the ROM model said 881)
    nf = 1 if s.uniform else s.nf
    feats = {
        "const": 1.0,
        # constant thresholds: ~1 LUT for one comparison of a 4-bit input, ~4.5 for an 8-bit one,
        # (IBITS / 4)**2, up to 3 thresholds; more share logic: Yosys per lane of 8-bit input,
        # 15 / 127 / 255 thresholds: 33 / 127 / 225 LUT, i.e. 3 * (NT / 3)**0.6 comparisons
        "cmp": s.pe * s.nt * cw if nf > 1 else 0.0,
        "cmp_const": s.pe * _shared_comparisons(s.nt) * (p["IBITS"] / 4) ** 2 if nf <= 1 else 0.0,
        "count": s.pe * s.nt,  # popcount of the comparisons
        "outadd": s.pe * p["OBITS"] if s.nt > 1 else 0.0,  # + OUT_BASE
        "ctrl_bits": counter_bits(s.nf),
    }
    ff = counter_bits(s.nf) + 2 + s.pe * p["IBITS"] + s.pe * p["OBITS"]
    fixed = Resources(ff=ff) + rom_features(
        feats, "rom", nf, s.pe * s.nt * p["TBITS"], p["RAM_STYLE"], device
    )
    return feats, fixed


def estimate_thresholding(s: Thresholding, device: Device) -> Resources:
    feats, fixed = thresholding_parts(s, device)
    return Resources(lut=linear(THR_LUT, feats)) + fixed


# -- lowering rule: the integer-graph op(s) this stage implements -----------------------------
@lowering_rule("MultiThreshold")
def lower_thresholding(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    (node,) = nodes
    x = node.inputs[0]
    if node.attrs.get("negate") is not None:
        raise unsupported(
            node,
            "negated channels (a decreasing activation) after a pool/add/input have no "
            "Thresholding stage; only thresholds right after a MatMul/Conv can absorb them",
        )
    shape = ctx.g.tensors[x].shape
    c = shape[-1]
    total = int(np.prod(shape))
    fold = ctx.fold(node.name, "Thresholding", {"PE": 1, "ram_style": "auto"})
    stage = Thresholding(
        node.name,
        c,
        total // c,
        ctx.thresholds(node, c),
        ctx.dtype_of[x],
        node.attrs["out_dtype"],
        out_base=int(node.attrs["out_base"]),
        ram_style=fold["ram_style"],
    )
    if stage.uniform:  # one set of thresholds: any PE dividing the frame will do
        check_divides("Thresholding", node.name, "PE", fold["PE"], "N", total)
    ctx.place(stage.refold({"PE": fold["PE"]}), [x], node.outputs[0])
