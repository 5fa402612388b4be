"""TruthTable: a sparse, low fan-in quantized layer as pure LUT logic (LogicNets, Umuroglu et
al., FPL 2020): one truth table per neuron, a register per layer, one inference per clock.

Why: a neuron that reads F inputs of IB bits and emits OB bits is a function of K = F * IB bits.
When K is small (LogicNets: 6 to 15) the whole neuron, its multiply-accumulate and its
threshold activation, is a table of 2^K entries that the synthesis tool turns into a handful of
LUTs, with nothing to fold and no arithmetic left: the layer takes its whole input vector in one
beat and emits its whole output vector in the next cycle.

Semantics: exactly the MVAU's with thresholds fused (qloom.dataflow.mvau): acc = W x over the
neuron's inputs (binary mode: popcount of XNOR), y = OUT_BASE + #{k : acc >= T[n][k]} (BIPOLAR
output: 2 * count - 1). `from_mvau` enumerates every input combination of every neuron at once
and applies the MVAU's own `activate` to the accumulators, so the tables are that MVAU by
construction. The folded model (`execute`) looks the outputs up in the tables, as the RTL does.

Connections: input f of neuron n is element `conn[n][f]` of the input vector (the columns of
row n with a nonzero weight, ascending). F is the largest fan-in of the layer; a neuron with
fewer inputs repeats element 0 with weight 0, on which its table then does not depend.

Table address of neuron n: a = sum_f bits(x[conn[n][f]]) << (f * IB), bits() being the stream
encoding (two's complement, BIPOLAR bit 1 = +1).

Memories ($readmemh; the RTL reads them into logic, not block RAM):
  CONN_FILE   MH*F words of max(1, clog2(MW)) bits: word n*F + f = conn[n][f]
  TABLE_FILE  MH words of 2^K * OB bits: word n holds entry a at bits [a*OB +: OB]
Cycles per frame: 1. Latency: 1 (the output register).

Chosen per layer by the folding file: {"<MatMul node>": {"style": "truth_table"}} (optional
"max_bits": the largest K accepted, default 12); "style": "mvau" keeps the MVAU. Without a
folding file the solver prices the tables (`MVAU.alternatives`, K <= 12) beside the MVAU's
foldings and takes the cheapest that meets the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from qloom.dataflow.mvau import MVAU
from qloom.dataflow.resources import Resources, clog2
from qloom.dataflow.stage import (
    Stage,
    StreamSpec,
    as_frames,
    check_stream,
    pack_words,
    restore,
    write_hex,
)
from qloom.datatype import DataType
from qloom.errors import FoldingError

if TYPE_CHECKING:
    from qloom.dataflow.lower import LoweringContext
    from qloom.ir import Node
    from qloom.synth.devices import Device

#: table address bits accepted unless the folding entry says otherwise (LogicNets' JSC-M/L
#: layers use 12 to 15; 2^12 entries per neuron enumerate in milliseconds)
DEFAULT_MAX_BITS = 12
#: beyond this a table is 1M entries per neuron: neither enumeration nor synthesis is sensible
MAX_BITS_LIMIT = 20
#: LUTs of the valid/ready logic of one stage (Yosys synth_xilinx: 2 * MH + 4 LUTs for every
#: layer of 2-bit 6-input random tables, MH = 5 .. 64)
CONTROL_LUTS = 4
STYLES = ("mvau", "truth_table")


def lut_cost(x_bits: int, y_bits: int) -> float:
    """LUT6 of one neuron with an x_bits-input, y_bits-output table: LogicNets' LUTCost(X, Y) =
    Y/3 * (2^(X-4) - (-1)^X) (FPL'20, fitted to Vivado on random tables), but at least one LUT
    per output bit (the formula goes to 0 at X = 4; any function of <= 6 bits is one LUT6) and
    none for a constant. Yosys (synth_xilinx, random 10-bit tables) came within 10 % of it."""
    if x_bits <= 0:
        return 0.0
    return y_bits * max(1.0, (2.0 ** (x_bits - 4) - (-1) ** x_bits) / 3.0)


@dataclass(frozen=True, eq=False)
class TruthTable(Stage):
    mw: int  # input elements (one beat)
    mh: int  # neurons (output elements, one beat)
    conn: np.ndarray  # (MH, F) input element of each neuron input
    tables: np.ndarray  # (MH, 2^(F*IB)) output *values* by table address
    in_dtype: DataType
    out_dtype: DataType
    max_bits: int = DEFAULT_MAX_BITS

    kind = "TruthTable"
    finn_op = ""  # FINN has no such layer (LogicNets generates its own Verilog)
    rtl_module = "qloom_truthtable"
    fold_params = ()  # one frame per cycle: nothing to fold

    @classmethod
    def example(cls) -> TruthTable:
        """A small instance (the protocol test and the docs use it): 8 INT2 inputs, 6 neurons of
        fan-in 2 with 3 thresholds each (UINT2 out)."""
        rng = np.random.default_rng(0)
        w = np.zeros((6, 8), np.int64)
        for n in range(6):
            w[n, rng.choice(8, 2, replace=False)] = rng.choice([-2, -1, 1], 2)
        t = np.sort(rng.integers(-4, 5, size=(6, 3)), axis=1)
        m = MVAU(
            "tt_example",
            8,
            6,
            w,
            DataType.int(2, True),
            thresholds=t,
            out_dtype=DataType.int(2, False),
        )
        return cls.from_mvau(m)

    def __post_init__(self) -> None:
        conn = np.asarray(self.conn, dtype=np.int64)
        tables = np.asarray(self.tables, dtype=np.int64)
        if conn.ndim != 2 or conn.shape[0] != self.mh or conn.shape[1] < 1:
            raise ValueError(f"TruthTable '{self.name}': conn {conn.shape} is not (MH, F)")
        if conn.min() < 0 or conn.max() >= self.mw:
            raise ValueError(f"TruthTable '{self.name}': conn has an index outside 0..MW-1")
        if tables.shape != (self.mh, 1 << (conn.shape[1] * self.in_dtype.bits)):
            raise ValueError(
                f"TruthTable '{self.name}': tables {tables.shape} are not (MH, 2^(F*IBITS))"
            )
        if not self.out_dtype.allowed(tables):
            raise ValueError(f"TruthTable '{self.name}': table values outside {self.out_dtype}")
        object.__setattr__(self, "conn", conn)
        object.__setattr__(self, "tables", tables)

    # -- building the tables ---------------------------------------------------------------------
    @classmethod
    def from_mvau(cls, m: MVAU, max_bits: int = DEFAULT_MAX_BITS) -> TruthTable:
        """The truth tables of a fully connected MVAU with thresholds (one vector per frame),
        enumerated with that MVAU's own accumulate-and-activate arithmetic. FoldingError when a
        neuron's fan-in x input bits exceeds `max_bits`."""
        name = m.name
        if not isinstance(max_bits, int) or not 1 <= max_bits <= MAX_BITS_LIMIT:
            raise FoldingError(
                f"TruthTable '{name}': max_bits={max_bits!r} is not an integer in "
                f"1..{MAX_BITS_LIMIT}"
            )
        if m.thresholds is None:
            raise FoldingError(
                f"TruthTable '{name}': style truth_table needs thresholds fused into the layer "
                "(a quantized activation that only this layer reads); found none, the layer "
                "outputs its accumulators; use style mvau"
            )
        if m.pixels != 1:
            raise FoldingError(
                f"TruthTable '{name}': style truth_table needs a fully connected layer; found "
                f"{m.pixels} vectors per frame (a convolution); use style mvau"
            )
        ib = m.in_dtype.bits
        nonzero = m.weights != 0
        fanin = nonzero.sum(axis=1)
        worst = int(np.argmax(fanin))
        if int(fanin[worst]) * ib > max_bits:
            raise FoldingError(
                f"TruthTable '{name}': neuron {worst} reads {int(fanin[worst])} inputs of {ib} "
                f"bits = {int(fanin[worst]) * ib} table address bits > max_bits={max_bits} "
                f"(at most {max_bits // ib} inputs per neuron at {ib} bits); prune the layer, "
                "raise max_bits in its folding entry or use style mvau"
            )
        f = max(1, int(fanin.max()))
        # row n: its nonzero columns ascending, then column 0 with weight 0 as padding
        order = np.argsort(~nonzero, axis=1, kind="stable")[:, :f]
        valid = np.take_along_axis(nonzero, order, axis=1)
        conn = np.where(valid, order, 0)
        wsel = np.where(valid, np.take_along_axis(m.weights, order, axis=1), 0)  # (MH, F)
        # every address at once: the value of each input field, then acc for every neuron
        k = f * ib
        addr = np.arange(1 << k, dtype=np.int64)
        fields = (addr[:, None] >> (ib * np.arange(f))) & ((1 << ib) - 1)  # (2^K, F)
        vals = m.in_dtype.from_bits(fields)
        acc = vals @ wsel.T  # (2^K, MH)
        if m.binary:  # popcount(xnor) over all MW inputs (every weight of a binary row is +-1)
            acc = (acc + m.mw) // 2
        tables = m.activate(acc).T
        return cls(
            name,
            m.mw,
            m.mh,
            conn,
            tables,
            m.in_dtype,
            m.out_dtype,
            max_bits=max_bits,
            inputs=m.inputs,
            outputs=m.outputs,
        )

    # -- shape -----------------------------------------------------------------------------------
    @property
    def fanin(self) -> int:
        return int(self.conn.shape[1])

    @property
    def address_bits(self) -> int:
        return self.fanin * self.in_dtype.bits

    def support(self) -> np.ndarray:
        """(MH, F) bool: whether neuron n's table depends on its input f (padding and inputs
        the thresholds make irrelevant do not: synthesis drops them)."""
        ib, f = self.in_dtype.bits, self.fanin
        out = np.zeros((self.mh, f), bool)
        for i in range(f):
            t = self.tables.reshape(self.mh, 1 << (ib * (f - 1 - i)), 1 << ib, 1 << (ib * i))
            out[:, i] = np.any(t != t[:, :, :1, :], axis=(1, 2, 3))
        return out

    def in_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.in_dtype, self.mw, 1),)

    def out_streams(self) -> tuple[StreamSpec, ...]:
        return (StreamSpec(self.out_dtype, self.mh, 1),)

    def cycles_per_frame(self) -> int:
        return 1

    def latency_cycles(self) -> int:
        return 2  # first input beat .. last output beat, both counted: one beat, one register

    def memory_bits(self) -> int:
        return 0  # the tables become logic (counted in LUTs), not memory

    def folding(self) -> dict:
        return {"style": "truth_table", "max_bits": self.max_bits}

    def estimate(self, device: Device) -> Resources:
        """LUT6: `lut_cost` per neuron over the input bits its table really depends on, plus
        the handshake; FFs: the output register and its valid flag. The input selection is
        wiring."""
        x_bits = self.support().sum(axis=1) * self.in_dtype.bits
        luts = CONTROL_LUTS + sum(lut_cost(int(x), self.out_dtype.bits) for x in x_bits)
        return Resources(lut=luts, ff=self.mh * self.out_dtype.bits + 1)

    # -- RTL -------------------------------------------------------------------------------------
    def rtl_params(self) -> dict:
        return {
            "NI": self.mw,
            "IBITS": self.in_dtype.bits,
            "NO": self.mh,
            "OBITS": self.out_dtype.bits,
            "FANIN": self.fanin,
        }

    @property
    def index_bits(self) -> int:
        return max(1, clog2(self.mw))

    def conn_words(self) -> list[int]:
        return [int(v) for v in self.conn.ravel()]

    def table_words(self) -> list[int]:
        return pack_words(self.out_dtype.to_bits(self.tables), self.out_dtype.bits)

    def memory_words(self) -> list[list[int]]:
        return [self.conn_words(), self.table_words()]

    def write_memories(self, directory: str | Path) -> dict[str, Path]:
        """Write the $readmemh files; returns {"CONN_FILE": path, "TABLE_FILE": path}."""
        d = Path(directory)
        width = (1 << self.address_bits) * self.out_dtype.bits
        return {
            "CONN_FILE": write_hex(
                d / f"{self.ident}_conn.hex", self.conn_words(), self.index_bits
            ),
            "TABLE_FILE": write_hex(d / f"{self.ident}_tables.hex", self.table_words(), width),
        }

    # -- folded model ----------------------------------------------------------------------------
    def execute(self, beats):
        """Look every neuron's output up in its table, as the RTL does."""
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        bits = self.in_dtype.to_bits(x[:, 0, :])  # (frames, MW)
        shifts = self.in_dtype.bits * np.arange(self.fanin)
        addr = (bits[:, self.conn] << shifts).sum(axis=2)  # (frames, MH)
        out = self.tables[np.arange(self.mh), addr]
        return restore(out[:, None, :], single)


# -- lowering: the "truth_table" style of a MatMul layer (called by the MVAU's rule) -----------
def lower_truth_table(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    """Lower a MatMul (+ fused MultiThreshold) whose folding entry says style truth_table."""
    lin = nodes[0]
    fold = ctx.fold(lin.name, "TruthTable", {"style": "truth_table", "max_bits": DEFAULT_MAX_BITS})
    if fold["style"] not in STYLES:
        raise FoldingError(
            f"layer '{lin.name}': style={fold['style']!r} is not one of {', '.join(STYLES)}"
        )
    if lin.op not in ("MatMul", "XnorMatMul") or lin.attrs.get("groups", 1) != 1:
        raise FoldingError(
            f"TruthTable '{lin.name}': style truth_table needs a fully connected layer "
            f"(MatMul); found a {lin.op}; use style mvau"
        )
    x, mt = lin.inputs[0], (nodes[1] if len(nodes) > 1 else None)
    w = np.asarray(lin.attrs["weights"], dtype=np.int64).T  # (MH, MW)
    mh, mw = w.shape
    kwargs: dict = {}
    out = lin.outputs[0]
    if mt is not None:
        neg = mt.attrs.get("negate")
        if neg is not None:  # a decreasing activation: flip the rows (as the MVAU does)
            w = w * np.where(np.broadcast_to(neg, (mh,)), -1, 1)[:, None]
        kwargs = dict(
            thresholds=ctx.thresholds(mt, mh),
            out_base=int(mt.attrs["out_base"]),
            out_dtype=mt.attrs["out_dtype"],
        )
        out = mt.outputs[0]
    mvau = MVAU(lin.name, mw, mh, w, ctx.dtype_of[x], binary=lin.op == "XnorMatMul", **kwargs)
    ctx.place(TruthTable.from_mvau(mvau, fold["max_bits"]), [x], out)
