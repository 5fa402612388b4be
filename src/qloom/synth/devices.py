"""FPGA device database: resources, Yosys synthesis command and nextpnr arguments per part.

Numbers are the vendors' published device totals (whole device, programmable logic only):

- Xilinx 7-series: DS190 "Zynq-7000 SoC Data Sheet: Overview" (Table 1, PL resources) and
  DS180 "7 Series FPGAs Data Sheet: Overview" (Artix-7 table).
- Xilinx UltraScale / UltraScale+: DS890 "UltraScale Architecture and Product Data Sheet:
  Overview" (Kintex UltraScale and Zynq UltraScale+ MPSoC tables); the Alveo cards' DS962
  (U200/U250) and DS963 (U280) data sheets (device totals, the shell takes part of them).
- Lattice ECP5: FPGA-DS-02012 "ECP5 and ECP5-5G Family Data Sheet" (Table 1.1); the LUT and
  FF totals are the slice counts nextpnr-ecp5 reports as TRELLIS_COMB / TRELLIS_FF.
- Lattice iCE40: FPGA-DS-02008 "iCE40 UltraPlus Family Data Sheet" (Table 1.1) and the
  "iCE40 LP/HX Family Data Sheet" (Table 1.1).

Units: ``bram`` counts the family's basic block RAM: BRAM18 for Xilinx (a RAMB36 = 2 BRAM18),
EBR (DP16KD, 18 kbit) for ECP5, EBR (SB_RAM40_4K, 4 kbit) for iCE40. ``uram`` counts
UltraRAM (URAM288, 288 kbit) for Xilinx UltraScale+ and SPRAM (SB_SPRAM256KA, 256 kbit) for
the iCE40 UltraPlus. ``dsp`` counts DSP48E1 / DSP48E2 / MULT18X18D / SB_MAC16 blocks.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace

from qloom.errors import QloomError

#: family code -> (human name, Yosys synthesis command)
FAMILIES: dict[str, tuple[str, str]] = {
    "xc7": ("Xilinx 7-series", "synth_xilinx -family xc7"),
    "xcu": ("Xilinx UltraScale", "synth_xilinx -family xcu"),
    "xcup": ("Xilinx UltraScale+", "synth_xilinx -family xcup"),
    "ecp5": ("Lattice ECP5", "synth_ecp5"),
    "ice40": ("Lattice iCE40", "synth_ice40"),
}


class UnknownDeviceError(QloomError):
    """A part or board name that is not in the device database."""


@dataclass(frozen=True)
class Device:
    """One FPGA part and what the open tools need to target it.

    name: short canonical part name (``xc7z020``, ``LFE5U-85F``, ``iCE40UP5K``).
    part: full orderable part number, as Vivado's ``-part`` / the vendor names it.
    family: a key of `FAMILIES` (``xc7``, ``xcu``, ``xcup``, ``ecp5``, ``ice40``).
    """

    name: str
    part: str
    family: str
    luts: int
    lut_inputs: int
    ffs: int
    bram: int
    bram_kbits: int
    dsp: int
    uram: int = 0
    uram_kbits: int = 0
    boards: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    synth_args: tuple[str, ...] = ()
    nextpnr_args: tuple[str, ...] = ()
    clock_pin: str | None = None
    source: str = ""
    notes: str = field(default="", compare=False)

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: unknown family {self.family!r}")

    @property
    def vendor(self) -> str:
        return "xilinx" if self.is_xilinx else "lattice"

    @property
    def is_xilinx(self) -> bool:
        return self.family in ("xc7", "xcu", "xcup")

    @property
    def family_name(self) -> str:
        return FAMILIES[self.family][0]

    @property
    def synth_command(self) -> str:
        """The Yosys synthesis command (without -top), with this device's extra options."""
        return " ".join([FAMILIES[self.family][1], *self.synth_args])

    @property
    def nextpnr_tool(self) -> str | None:
        """``ecp5`` / ``ice40`` for the nextpnr architecture, None for Xilinx parts."""
        return self.family if self.family in ("ecp5", "ice40") else None

    @property
    def bram_name(self) -> str:
        return {"ecp5": "EBR18K", "ice40": "EBR4K"}.get(self.family, "BRAM18")

    @property
    def uram_name(self) -> str:
        return "SPRAM" if self.family == "ice40" else "URAM"

    @property
    def bram_bits(self) -> int:
        return self.bram * self.bram_kbits * 1024

    def capacity(self) -> dict[str, int]:
        """Resource totals keyed like `SynthResult.resources()`."""
        return {
            "LUT": self.luts,
            "FF": self.ffs,
            "BRAM": self.bram,
            "DSP": self.dsp,
            "URAM": self.uram,
        }

    def describe(self) -> str:
        boards = f" ({', '.join(self.boards)})" if self.boards else ""
        parts = [
            f"{self.luts:,} LUT{self.lut_inputs}",
            f"{self.ffs:,} FF",
            f"{self.bram} {self.bram_name}",
            f"{self.dsp} DSP",
        ]
        if self.uram:
            parts.append(f"{self.uram} {self.uram_name}")
        return f"{self.name} [{self.family_name}]{boards}: {', '.join(parts)}"


_X7 = "DS190 Zynq-7000 SoC Data Sheet: Overview, Table 1"
_A7 = "DS180 7 Series FPGAs Data Sheet: Overview, Artix-7 table"
_ZUP = "DS891/DS890 Zynq UltraScale+ MPSoC overview tables"
_KU = "DS890 UltraScale Architecture and Product Data Sheet, Kintex UltraScale table"
_ECP5 = "FPGA-DS-02012 ECP5 and ECP5-5G Family Data Sheet, Table 1.1"
_UP = "FPGA-DS-02008 iCE40 UltraPlus Family Data Sheet, Table 1.1"
_HX = "FPGA-DS-02029 iCE40 LP/HX Family Data Sheet, Table 1.1"

DEVICES: tuple[Device, ...] = (
    # ---- Xilinx 7-series (6-input LUTs, BRAM18 = half a RAMB36E1, DSP48E1) ----------------
    Device(
        "xc7z020",
        "xc7z020clg400-1",
        "xc7",
        luts=53_200,
        lut_inputs=6,
        ffs=106_400,
        bram=280,
        bram_kbits=18,
        dsp=220,
        boards=("Pynq-Z1", "Pynq-Z2"),
        aliases=("pynq", "pynq-z1", "pynq-z2", "z7020", "7z020"),
        source=_X7 + " (140 RAMB36)",
    ),
    Device(
        "xc7z045",
        "xc7z045ffg900-2",
        "xc7",
        luts=218_600,
        lut_inputs=6,
        ffs=437_200,
        bram=1_090,
        bram_kbits=18,
        dsp=900,
        boards=("ZC706",),
        aliases=("zc706", "z7045", "7z045"),
        source=_X7 + " (545 RAMB36)",
    ),
    Device(
        "xc7a35t",
        "xc7a35ticsg324-1L",
        "xc7",
        luts=20_800,
        lut_inputs=6,
        ffs=41_600,
        bram=100,
        bram_kbits=18,
        dsp=90,
        boards=("Arty A7-35",),
        aliases=("arty", "arty-a7-35", "arty-a7", "a35t"),
        source=_A7 + " (50 RAMB36)",
    ),
    Device(
        "xc7a100t",
        "xc7a100tcsg324-1",
        "xc7",
        luts=63_400,
        lut_inputs=6,
        ffs=126_800,
        bram=270,
        bram_kbits=18,
        dsp=240,
        boards=("Arty A7-100", "Nexys A7-100T"),
        aliases=("arty-a7-100", "nexys-a7", "a100t"),
        source=_A7 + " (135 RAMB36)",
    ),
    # ---- Xilinx UltraScale (Kintex UltraScale) --------------------------------------------
    Device(
        "xcku115",
        "xcku115-flvb2104-2-e",
        "xcu",
        luts=663_360,
        lut_inputs=6,
        ffs=1_326_720,
        bram=4_320,
        bram_kbits=18,
        dsp=5_520,
        boards=("ADM-PCIE-8K5",),
        aliases=("adm-pcie-8k5", "8k5", "ku115"),
        source=_KU + " (2,160 RAMB36)",
    ),
    # ---- Xilinx UltraScale+ ---------------------------------------------------------------
    Device(
        "xczu3eg",
        "xczu3eg-sbva484-1-e",
        "xcup",
        luts=70_560,
        lut_inputs=6,
        ffs=141_120,
        bram=432,
        bram_kbits=18,
        dsp=360,
        boards=("Ultra96", "Ultra96-V2"),
        aliases=("ultra96", "ultra96-v2", "ultra96v2", "zu3eg"),
        source=_ZUP + " (216 RAMB36)",
    ),
    Device(
        "xczu7ev",
        "xczu7ev-ffvc1156-2-e",
        "xcup",
        luts=230_400,
        lut_inputs=6,
        ffs=460_800,
        bram=624,
        bram_kbits=18,
        dsp=1_728,
        uram=96,
        uram_kbits=288,
        boards=("ZCU104",),
        aliases=("zcu104", "zu7ev"),
        source=_ZUP + " (312 RAMB36, 96 URAM288)",
    ),
    Device(
        "xczu9eg",
        "xczu9eg-ffvb1156-2-e",
        "xcup",
        luts=274_080,
        lut_inputs=6,
        ffs=548_160,
        bram=1_824,
        bram_kbits=18,
        dsp=2_520,
        boards=("ZCU102",),
        aliases=("zcu102", "zu9eg"),
        source=_ZUP + " (912 RAMB36)",
    ),
    Device(
        "xcu250",
        "xcu250-figd2104-2L-e",
        "xcup",
        luts=1_728_000,
        lut_inputs=6,
        ffs=3_456_000,
        bram=5_376,
        bram_kbits=18,
        dsp=12_288,
        uram=1_280,
        uram_kbits=288,
        boards=("Alveo U250",),
        aliases=("u250", "alveo-u250"),
        source="DS962 Alveo U200/U250 Data Sheet (2,688 RAMB36, 1,280 URAM288); device totals,"
        " the XDMA shell uses part of them",
    ),
    Device(
        "xcu280",
        "xcu280-fsvh2892-2L-e",
        "xcup",
        luts=1_303_680,
        lut_inputs=6,
        ffs=2_607_360,
        bram=4_032,
        bram_kbits=18,
        dsp=9_024,
        uram=960,
        uram_kbits=288,
        boards=("Alveo U280",),
        aliases=("u280", "alveo-u280"),
        source="DS963 Alveo U280 Data Sheet (2,016 RAMB36, 960 URAM288); device totals",
    ),
    # ---- Lattice ECP5 (4-input LUTs, 18 kbit EBR, MULT18X18D) -------------------------------
    Device(
        "LFE5U-85F",
        "LFE5U-85F-6BG381C",
        "ecp5",
        luts=83_640,
        lut_inputs=4,
        ffs=83_640,
        bram=208,
        bram_kbits=18,
        dsp=156,
        boards=("ULX3S-85F", "OrangeCrab-85F"),
        aliases=("ecp5-85k", "ecp5-85", "ecp5", "ulx3s", "ulx3s-85f", "lfe5u-85", "85k"),
        nextpnr_args=("--85k", "--package", "CABGA381", "--speed", "6"),
        clock_pin="G2",  # ULX3S 25 MHz oscillator, a primary clock pin of CABGA381
        source=_ECP5 + " (84k LUTs, 208 EBR, 156 18x18 multipliers)",
    ),
    Device(
        "LFE5U-45F",
        "LFE5U-45F-6BG381C",
        "ecp5",
        luts=43_848,
        lut_inputs=4,
        ffs=43_848,
        bram=108,
        bram_kbits=18,
        dsp=72,
        boards=("ULX3S-45F",),
        aliases=("ecp5-45k", "ulx3s-45f", "lfe5u-45", "45k"),
        nextpnr_args=("--45k", "--package", "CABGA381", "--speed", "6"),
        clock_pin="G2",
        source=_ECP5 + " (44k LUTs, 108 EBR, 72 18x18 multipliers)",
    ),
    Device(
        "LFE5U-25F",
        "LFE5U-25F-6BG381C",
        "ecp5",
        luts=24_288,
        lut_inputs=4,
        ffs=24_288,
        bram=56,
        bram_kbits=18,
        dsp=28,
        boards=("ULX3S-25F",),
        aliases=("ecp5-25k", "ulx3s-25f", "lfe5u-25", "25k"),
        nextpnr_args=("--25k", "--package", "CABGA381", "--speed", "6"),
        clock_pin="G2",
        source=_ECP5 + " (24k LUTs, 56 EBR, 28 18x18 multipliers)",
    ),
    # ---- Lattice iCE40 ----------------------------------------------------------------------
    Device(
        "iCE40UP5K",
        "iCE40UP5K-SG48I",
        "ice40",
        luts=5_280,
        lut_inputs=4,
        ffs=5_280,
        bram=30,
        bram_kbits=4,
        dsp=8,
        uram=4,
        uram_kbits=256,
        boards=("iCEBreaker", "UPduino"),
        aliases=("up5k", "ice40-up5k", "icebreaker", "upduino"),
        synth_args=("-dsp",),
        nextpnr_args=("--up5k", "--package", "sg48"),
        clock_pin="35",  # iCEBreaker 12 MHz oscillator (a global buffer input)
        source=_UP + " (5,280 LUTs, 120 kbit EBR in 30 blocks, 1 Mbit SPRAM, 8 DSP)",
    ),
    Device(
        "iCE40HX8K",
        "iCE40HX8K-CT256",
        "ice40",
        luts=7_680,
        lut_inputs=4,
        ffs=7_680,
        bram=32,
        bram_kbits=4,
        dsp=0,
        boards=("iCE40-HX8K Breakout",),
        aliases=("hx8k", "ice40-hx8k"),
        nextpnr_args=("--hx8k", "--package", "ct256"),
        clock_pin="J3",  # HX8K breakout board 12 MHz oscillator
        source=_HX + " (7,680 LUTs, 128 kbit EBR in 32 blocks)",
    ),
)


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-./]", "", name.lower())


def _index() -> dict[str, Device]:
    idx: dict[str, Device] = {}
    for d in DEVICES:
        keys = [d.name, d.part, *d.aliases, *d.boards]
        for k in keys:
            n = _norm(k)
            if n in idx and idx[n] is not d:
                raise AssertionError(f"device alias {k!r} is ambiguous")
            idx[n] = d
    return idx


_INDEX = _index()


def known_devices() -> list[str]:
    """Canonical part names, in database order."""
    return [d.name for d in DEVICES]


def list_devices() -> str:
    """One line per device (for `qloom devices` style listings and error messages)."""
    return "\n".join(d.describe() for d in DEVICES)


def get_device(name: str | Device) -> Device:
    """Look up a part or board name, case-insensitively.

    Accepts the short part (``xc7z020``), the full Xilinx part number (``xc7z020clg400-1``,
    which is kept as `Device.part`), Lattice ordering codes (``LFE5U-85F-6BG381C``), board
    names and aliases (``pynq-z2``, ``zc706``, ``ultra96``, ``zcu104``, ``u250``,
    ``ecp5-85k``, ``ulx3s``, ``up5k``). Raises `UnknownDeviceError` listing the known parts.
    """
    if isinstance(name, Device):
        return name
    if not isinstance(name, str) or not name.strip():
        raise UnknownDeviceError(f"no FPGA part given ({name!r}); known parts: {_known_text()}")
    n = _norm(name)
    if n in _INDEX:
        return _INDEX[n]
    # a longer vendor part number (package / speed grade / temperature suffix)
    best: Device | None = None
    best_len = 0
    for d in DEVICES:
        dn = _norm(d.name)
        if n.startswith(dn) and len(dn) > best_len:
            best, best_len = d, len(dn)
    if best is not None:
        if best.is_xilinx:
            return replace(best, part=name.strip().lower())
        return best
    close = difflib.get_close_matches(n, list(_INDEX), n=3, cutoff=0.6)
    hint = ""
    if close:
        names = list(dict.fromkeys(_INDEX[c].name for c in close))  # best match first
        hint = f" Did you mean {' or '.join(names)}?"
    raise UnknownDeviceError(
        f"unknown FPGA part or board {name!r}.{hint} Known parts: {_known_text()}"
    )


def _known_text() -> str:
    items = []
    for d in DEVICES:
        boards = f" ({', '.join(d.boards)})" if d.boards else ""
        items.append(f"{d.name}{boards}")
    return "; ".join(items)
