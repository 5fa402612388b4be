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

Don't-cares (off by default): "dont_care": a .npy / .npz file (or, from Python, an array) of
the integer graph's *hardware* inputs, typically the training set (Model.compiled
.hardware_input(x_train)). The lowering runs them through the integer executor to the
layer's input, and every table address that no calibration frame produces becomes a
don't-care, filled by `fill_dont_cares` ("dont_care_fill": "table" by default, or
"nearest") so that the function is simpler (fewer inputs it depends on, fewer LUTs). The
filled design is then a *different function* from the integer graph: equal on every input
whose table addresses were all seen in calibration (every calibration input, in particular),
free elsewhere. Its folded model (`execute`) is the filled tables, and that is what the RTL
must equal (qloom build compares against the design then, not the integer graph).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, replace
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
#: how unseen addresses are filled (`fill_dont_cares`)
DONT_CARE_FILLS = ("nearest", "table")


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
    #: where the don't-cares came from ("" = none: the tables are the MVAU's exactly), and the
    #: fill; both only recorded (folding.json), the filled tables are in `tables`
    dont_care: str = ""
    dont_care_fill: str = "table"

    kind = "TruthTable"
    finn_op = ""  # FINN has no such layer (LogicNets generates its own Verilog)
    rtl_module = "qloom_truthtable"
    fold_params = ()  # one frame per cycle: nothing to fold
    # one register per layer, as LogicNets': JSC-S's five tables on ECP5 joined directly place
    # in 878 LUT4 at 227 MHz, with a 2-deep glue FIFO between each two in 2,186 at 144 MHz
    elastic = True

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
        out: dict = {"style": "truth_table", "max_bits": self.max_bits}
        if self.dont_care:
            out |= {"dont_care": self.dont_care, "dont_care_fill": self.dont_care_fill}
        return out

    def estimate(self, device: Device) -> Resources:
        """LUT6: `lut_cost` per neuron over the input bits its table really depends on, plus
        the handshake; FFs: the output register and its valid flag. The input selection is
        wiring."""
        x_bits = self.support().sum(axis=1) * self.in_dtype.bits
        luts = CONTROL_LUTS + sum(lut_cost(int(x), self.out_dtype.bits) for x in x_bits)
        return Resources(lut=luts, ff=self.mh * self.out_dtype.bits + 1)

    def lut4_factor(self) -> float:
        """A K-input table is one LUT6 per output bit up to K = 6 but 2^(K-4) LUT4 (1, 2, 4
        for K = 4, 5, 6); bigger tables measured with Yosys synth_ecp5 against synth_xilinx
        (LUT4 / LUT6 per neuron of the same tables): 2.6 for JSC-M's 12-bit tables, 2.5 for
        NID-S's 14-bit, 3.4 for its 7-bit (bench/logicnets.py, 2026-12-06)."""
        k = self.address_bits
        return float(2 ** max(0, k - 4)) if k <= 6 else 2.6

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
    def addresses(self, x: np.ndarray) -> np.ndarray:
        """(frames, MH) table address of every neuron for input vectors x (frames, MW)."""
        bits = self.in_dtype.to_bits(np.asarray(x))  # (frames, MW)
        shifts = self.in_dtype.bits * np.arange(self.fanin)
        return (bits[:, self.conn] << shifts).sum(axis=2)

    def execute(self, beats):
        """Look every neuron's output up in its table, as the RTL does."""
        x, single = as_frames(beats)
        check_stream(self, x, self.in_streams()[0])
        out = self.tables[np.arange(self.mh), self.addresses(x[:, 0, :])]
        return restore(out[:, None, :], single)

    # -- don't-cares -----------------------------------------------------------------------------
    def with_dont_cares(
        self, x: np.ndarray, fill: str = "table", source: str = "array"
    ) -> TruthTable:
        """This layer with every table address that the input vectors x (frames, MW: the
        layer's inputs on calibration data) never produce filled by `fill_dont_cares`; the
        seen addresses keep their outputs. `source` is recorded in the folding entry."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.mw or len(x) == 0:
            raise FoldingError(
                f"TruthTable '{self.name}': don't-care data has shape {x.shape}, expected "
                f"(frames >= 1, {self.mw}) input vectors"
            )
        if not self.in_dtype.allowed(x):
            raise FoldingError(
                f"TruthTable '{self.name}': don't-care data has values outside {self.in_dtype}"
            )
        tables = fill_dont_cares(self.tables, self.addresses(x), self.address_bits, fill)
        return replace(self, tables=tables, dont_care=source, dont_care_fill=fill)


def seen_mask(addr: np.ndarray, k: int) -> np.ndarray:
    """(MH, 2^k) bool: which addresses of each neuron occur in addr (frames, MH)."""
    mh = addr.shape[1]
    seen = np.zeros((mh, 1 << k), bool)
    seen[np.broadcast_to(np.arange(mh), addr.shape), addr] = True
    return seen


def check_fill(fill: str, where: str = "") -> None:
    """FoldingError unless `fill` is one of DONT_CARE_FILLS (`where`: who asked, as a prefix)."""
    if fill not in DONT_CARE_FILLS:
        raise FoldingError(
            f"{where}dont_care_fill={fill!r} is not one of {', '.join(DONT_CARE_FILLS)}"
        )


def fill_dont_cares(
    tables: np.ndarray, addr: np.ndarray, k: int, fill: str = "table"
) -> np.ndarray:
    """Tables (MH, 2^k) where only the addresses in addr (frames, MH) are cared for.

    Why this shape of fill: a trained neuron often sees few of its 2^k addresses (constant
    inputs such as image borders, correlated or saturated activations). Two steps per neuron:
    1. drop address bits the seen entries do not need: bit b can go when every pair of seen
       addresses that differ only in the bits dropped so far and b has one output; greedily,
       the bit whose removal merges the most seen addresses first. The result depends on
       fewer inputs, which is where LUTs go (a LUT6 per output bit at <= 6 bits, about
       2^(k-6) at k).
    2. give every remaining unseen address a value that depends only on the kept bits:
       "table" (default): the original table at the same kept bits, the dropped bits taken
       from the most frequent seen address: the trained threshold function of the kept
       inputs, closest to the model on unseen inputs; "nearest": the output of the nearest
       seen address (Hamming distance over the kept bits, a breadth-first flood over
       single-bit flips; ties: the lowest flipped bit). Measured on img28-tt (Fashion-MNIST,
       bench/logicnets_dontcare.py): "nearest" cost 63 % *more* LUTs than the exact tables
       (Voronoi-shaped regions are not threshold functions, ABC finds no structure), so it
       is kept only as the comparison.
    Every seen address keeps its output, so the filled tables equal the originals on every
    calibration input."""
    check_fill(fill)
    tables = np.asarray(tables, dtype=np.int64)
    seen = seen_mask(addr, k)
    out = tables.copy()
    full = (1 << k) - 1
    everything = np.arange(1 << k, dtype=np.int64)
    for n in range(tables.shape[0]):
        s = np.flatnonzero(seen[n])
        if len(s) == 0 or len(s) == 1 << k:
            continue  # no data for this neuron (not reached) or nothing to fill
        v = tables[n, s]
        keep = _drop_bits(s, v, k)
        # the value at each kept-bits key, where a seen address has that key
        known = np.full(1 << k, -1, np.int64)
        known[s & keep] = 0
        val = np.zeros(1 << k, np.int64)
        val[s & keep] = v
        have = known[everything & keep] == 0
        res = val[everything & keep]
        if fill == "table":
            mode = int(np.bincount(addr[:, n], minlength=1 << k).argmax())
            res = np.where(have, res, tables[n, (everything & keep) | (mode & ~keep & full)])
        else:
            res = _flood(res, have, keep, k)
        out[n] = res
    return out


def _drop_bits(s: np.ndarray, v: np.ndarray, k: int) -> int:
    """The mask of address bits the outputs v at seen addresses s need (greedy, see
    `fill_dont_cares`)."""
    keep = (1 << k) - 1
    while True:
        best, best_groups = None, None
        for b in range(k):
            if not keep >> b & 1:
                continue
            key = s & (keep & ~(1 << b))
            order = np.argsort(key, kind="stable")
            ks, vs = key[order], v[order]
            starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
            if np.array_equal(np.minimum.reduceat(vs, starts), np.maximum.reduceat(vs, starts)):
                if best_groups is None or len(starts) < best_groups:
                    best, best_groups = b, len(starts)
        if best is None:
            return keep
        keep &= ~(1 << best)


def _flood(res: np.ndarray, have: np.ndarray, keep: int, k: int) -> np.ndarray:
    """Give each address without a value the value of its nearest valued address over the
    `keep` bits (breadth-first over single-bit flips; ties: the lowest flipped bit)."""
    res, have = res.copy(), have.copy()
    idx = np.arange(1 << k, dtype=np.int64)
    bits = [b for b in range(k) if keep >> b & 1]
    while not have.all():
        got = np.zeros_like(have)
        new = res.copy()
        for b in bits:
            nb = idx ^ (1 << b)
            take = ~have & ~got & have[nb]
            new[take] = res[nb[take]]
            got |= take
        if not got.any():
            break  # unreachable: every address has a kept-bit path to a seen one
        res, have = new, have | got
    return res


# -- lowering: the "truth_table" style of a MatMul layer (called by the MVAU's rule) -----------
def lower_truth_table(ctx: LoweringContext, nodes: tuple[Node, ...]) -> None:
    """Lower a MatMul (+ fused MultiThreshold) whose folding entry says style truth_table."""
    lin = nodes[0]
    fold = ctx.fold(
        lin.name,
        "TruthTable",
        {"style": "truth_table", "max_bits": DEFAULT_MAX_BITS, "dont_care": None,
         "dont_care_fill": "table"},
    )  # fmt: skip
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
    stage = TruthTable.from_mvau(mvau, fold["max_bits"])
    if fold["dont_care"] is not None and fold["dont_care"] is not False:
        spec = fold["dont_care"]
        fill = fold["dont_care_fill"]
        check_fill(fill, f"TruthTable '{lin.name}': ")  # before running the calibration data
        vectors, source = _layer_inputs(ctx, lin.name, spec, x)
        stage = stage.with_dont_cares(vectors, fill, source)
    ctx.place(stage, [x], out)


#: per lowering: the integer graph run once on each calibration array (every table layer
#: of a network reads its own input from the same run)
_RUNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _calibration(layer: str, spec) -> tuple[np.ndarray, str]:
    """The calibration inputs named by a "dont_care" folding value: an array, or a .npy /
    .npz file (its one array, or the one named "x") of the integer graph's hardware inputs."""
    if isinstance(spec, np.ndarray):
        return spec, f"array of {len(spec)} frames"
    if not isinstance(spec, str | Path) or not str(spec):
        raise FoldingError(
            f"TruthTable '{layer}': dont_care={spec!r} is not a .npy / .npz file of the "
            "network's hardware inputs (or an array); leave it out for exact tables"
        )
    path = Path(spec)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FoldingError(
            f"TruthTable '{layer}': dont_care file {path} cannot be read as .npy / .npz ({e})"
        ) from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            names = list(data.files)
            if len(names) != 1 and "x" not in names:
                raise FoldingError(
                    f"TruthTable '{layer}': dont_care file {path} holds {names}; expected one "
                    "array or one named 'x'"
                )
            data = data["x" if "x" in names else names[0]]
    return data, str(spec)


def _layer_inputs(ctx: LoweringContext, layer: str, spec, tensor: str) -> tuple[np.ndarray, str]:
    """(frames, elements) of `tensor` in the integer graph on the calibration inputs that the
    folding value `spec` names, and a description of them (run once per lowering and spec)."""
    from qloom.execute import execute

    runs = _RUNS.setdefault(ctx, {})
    key = ("array", id(spec)) if isinstance(spec, np.ndarray) else ("file", str(spec))
    if key not in runs:
        data, source = _calibration(layer, spec)
        g = ctx.g
        want = g.tensors[g.inputs[0]]
        if data.ndim < 1 or len(data) == 0 or tuple(data.shape[1:]) != tuple(want.shape):
            raise FoldingError(
                f"TruthTable '{layer}': dont_care data ({source}) has shape {data.shape}; the "
                f"network's hardware input is (frames >= 1, {', '.join(map(str, want.shape))})"
            )
        if not want.dtype.allowed(data):
            raise FoldingError(
                f"TruthTable '{layer}': dont_care data ({source}) has values outside the "
                f"network's hardware input type {want.dtype} (give integer inputs: "
                "Model.compiled.hardware_input(x))"
            )
        runs[key] = (spec, source, execute(g, data, keep_all=True))
    _, source, env = runs[key]
    vectors = np.asarray(env[tensor])
    return vectors.reshape(len(vectors), -1), source
