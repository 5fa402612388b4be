"""Resource primitives every stage's estimate is built from: the Resources record, counter
widths, and the memories (ROMs, RAMs, block-RAM tiling) as Yosys maps them.

How the constants were measured, and the fitted per-stage coefficients, are described in
qloom.fold.estimate; each stage file holds its own coefficients and `estimate` method.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qloom.synth.devices import Device


def clog2(n: int) -> int:
    """Verilog $clog2."""
    return 0 if n <= 1 else (int(n) - 1).bit_length()


def counter_bits(n: int) -> int:
    """Counter width as the RTL declares it: $clog2(n) but at least 1."""
    return max(1, clog2(n))


@dataclass(frozen=True)
class Resources:
    lut: float = 0.0
    ff: float = 0.0
    bram: int = 0  # family block units (BRAM18 for Xilinx)
    dsp: int = 0
    lutram: float = 0.0  # part of `lut` used as memory
    uram: int = 0  # UltraRAM blocks (URAM288), run-time weights only: see `uram_blocks`

    def __add__(self, o: Resources) -> Resources:
        return Resources(
            self.lut + o.lut, self.ff + o.ff, self.bram + o.bram, self.dsp + o.dsp,
            self.lutram + o.lutram, self.uram + o.uram,
        )  # fmt: skip

    def as_dict(self) -> dict[str, int]:
        """LUT / FF / BRAM / DSP, and URAM where any is used (designs without keep their
        four keys)."""
        out = {
            "LUT": round(self.lut),
            "FF": round(self.ff),
            "BRAM": int(self.bram),
            "DSP": int(self.dsp),
        }
        if self.uram:
            out["URAM"] = int(self.uram)
        return out

    def cost(self, device: Device, bram_price: float = 1.0) -> float:
        """LUT-equivalent cost: LUTs + each other resource weighted by how many LUTs the part
        offers per unit of it (BRAM18 on xc7z020 = 190 LUT), so that minimizing the cost
        minimizes the sum of utilizations. `bram_price` < 1 values block RAM below that (the
        solver's price for block RAM the design would otherwise leave idle)."""
        c = self.lut + 0.05 * self.ff  # FFs are plentiful (2 per LUT on xc7): a tie-breaker
        if device.bram:
            c += bram_price * self.bram * device.luts / device.bram
        if device.dsp:
            c += self.dsp * device.luts / device.dsp
        elif self.dsp:
            c += self.dsp * 1e9
        if device.uram:
            c += self.uram * device.luts / device.uram
        elif self.uram:
            c += self.uram * 1e9
        return c

    def __str__(self) -> str:
        d = self.as_dict()
        uram = f", {d['URAM']} URAM" if self.uram else ""
        return f"{d['LUT']} LUT, {d['FF']} FF, {d['BRAM']} BRAM, {d['DSP']} DSP{uram}"


ZERO = Resources()

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


#: one URAM288 block: 4096 words of 72 bits (no narrower aspect ratios, unlike block RAM)
URAM_DEPTH, URAM_WIDTH = 4096, 72


def uram_blocks(depth: int, width: int) -> int:
    """URAM288 blocks of a depth x width memory: columns of 72 bits, rows of 4096 words."""
    if depth <= 0 or width <= 0:
        return 0
    return ceil(width / URAM_WIDTH) * ceil(depth / URAM_DEPTH)


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


def linear(coef: dict[str, float], feats: dict[str, float]) -> float:
    """A fitted LUT model: sum of coefficient x feature (never negative)."""
    return max(0.0, sum(coef[k] * v for k, v in feats.items()))


def rom_features(feats: dict, prefix: str, depth: int, width: int, style: str, device: Device):
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
