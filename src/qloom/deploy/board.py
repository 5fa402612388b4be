"""A qloom accelerator on a real ECP5 board, talking to the host over a serial port.

`write_board(rtl_top, in_width, out_width, out_dir)` writes, into `out_dir`:

    board_top.v      module ``qloom_board_top``: board pins -> PLL -> power-on reset ->
                     ``qloom_uart_bridge`` (UART 8N1 <-> the accelerator's AXI-Stream ports)
                     -> the accelerator top (`rtl_top`, e.g. `RtlFiles.top` of
                     ``qloom.rtl.top.generate_top``)
    board_pll.v      module ``qloom_board_pll``: an ECP5 EHXPLLL from the board's oscillator to
                     the requested clock, dividers computed by `pll_params` (synthesis only)
    board_pll_sim.v  the same module for simulation: the clock passes through, locked rises
                     after 16 cycles
    board.lpf        the pins used (clock, UART receive, UART transmit, error LED), their I/O
                     standard and the oscillator's frequency
    board.json       what the host needs: clock, baud, bytes per beat, receive FIFO size
    hdl/             copies of qloom_uart_bridge/rx/tx and qloom_fifo

Byte protocol: the host sends each input beat as ceil(W_in/8) little-endian bytes and receives
each output beat as ceil(W_out/8) little-endian bytes: exactly the bytes of
``qloom.deploy.driver.pack_input`` / ``unpack_output`` (`qloom.deploy.client` does this over
pyserial). A serial line has no flow control, so the bridge buffers received bytes in a FIFO of
`BoardFiles.rx_fifo_bytes`; a host that keeps at most `BoardFiles.max_window` frames in flight
(sends frame k + W only after frame k's result has arrived) can never overflow it, however long
the accelerator stalls. A lost byte (FIFO full) or a framing error lights the error LED until
the next configuration.

`place_and_route_board` runs Yosys (synth_ecp5), nextpnr-ecp5 with board.lpf (every pin
constrained, none left to the placer) and ecppack, and returns Fmax, whether timing is met, the
critical path and the bitstream (`BoardPnr.timing_line` says a miss loudly). `build_board_sim`
verilates the board top with the PLL model and a testbench (``tb_uart.cpp``) that drives the
UART receive pin bit by bit and decodes the transmit pin: `BoardSim.run` sends a whole byte
file with its own flow control, `BoardSim.open` is a live serial line (`SimLink`) that the host
client (`qloom.deploy.client.run_frames`) talks to exactly as it talks to a pyserial port.

Pins (`BOARDS`): ULX3S from emard/ulx3s ``doc/constraints/ulx3s_v20.lpf`` (clk_25mhz G2,
ftdi_txd M1 = FPGA receives, ftdi_rxd L4 = FPGA transmits, led[0] B2); OrangeCrab r0.2 from
litex-boards ``gsd_orangecrab.py`` (formerly ``orangecrab.py``) and orangecrab-examples
``orangecrab_r0.2.1.pcf`` (clk48 A9, Feather header pin 0 = N17 receive, pin 1 = M18
transmit, through an external 3.3 V USB-serial adapter since the OrangeCrab's USB port goes
straight into the FPGA; rgb_led0_r K4, active low).
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from qloom.errors import QloomError
from qloom.rtl.library import library_files

BOARD_TOP = "qloom_board_top"
PLL_MODULE = "qloom_board_pll"
TB_SOURCE = Path(__file__).with_name("tb_uart.cpp")

# ECP5 EHXPLLL limits, MHz (FPGA-DS-02012 "ECP5 and ECP5-5G Family Data Sheet", sysCLOCK PLL
# timing: f_IN 8..400, f_PFD 3.125..400, f_VCO 400..800, f_OUT 3.125..400; prjtrellis' ecppll
# searches the same ranges but warns below a 10 MHz output)
IN_MIN, IN_MAX = Fraction(8), Fraction(400)
PFD_MIN, PFD_MAX = Fraction(3125, 1000), Fraction(400)
VCO_MIN, VCO_MAX = Fraction(400), Fraction(800)
OUT_MIN, OUT_MAX = Fraction(3125, 1000), Fraction(400)
MAX_BAUD_ERROR = 0.02  # a UART tolerates ~5 % between the two ends; keep our share small


class BoardError(QloomError):
    """A board top cannot be written (unknown board or part, impossible clock or baud)."""


@dataclass(frozen=True)
class Pin:
    site: str
    iobuf: str  # LPF IOBUF attributes
    net: str  # the board's own name for the pin (schematic / vendor constraints file)


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    osc_mhz: float
    parts: dict[str, tuple[str, ...]]  # part -> nextpnr-ecp5 device/package/speed arguments
    default_part: str
    pins: dict[str, Pin]  # clk_in, uart_rx, uart_tx, led_err
    led_active_low: bool
    source: str
    notes: str = ""


BOARDS: dict[str, Board] = {
    "ulx3s": Board(
        name="ulx3s",
        title="Radiona ULX3S (FT231X USB-serial)",
        osc_mhz=25.0,
        parts={
            "LFE5U-85F": ("--85k", "--package", "CABGA381", "--speed", "6"),
            "LFE5U-45F": ("--45k", "--package", "CABGA381", "--speed", "6"),
            "LFE5U-25F": ("--25k", "--package", "CABGA381", "--speed", "6"),
            "LFE5U-12F": ("--12k", "--package", "CABGA381", "--speed", "6"),
        },
        default_part="LFE5U-85F",
        pins={
            "clk_in": Pin("G2", "PULLMODE=NONE IO_TYPE=LVCMOS33", "clk_25mhz, 25 MHz oscillator"),
            "uart_rx": Pin(
                "M1", "PULLMODE=UP IO_TYPE=LVCMOS33", "ftdi_txd: FTDI transmits, FPGA receives"
            ),
            "uart_tx": Pin(
                "L4", "PULLMODE=UP IO_TYPE=LVCMOS33 DRIVE=4", "ftdi_rxd: FPGA transmits to FTDI"
            ),
            "led_err": Pin("B2", "PULLMODE=NONE IO_TYPE=LVCMOS33 DRIVE=4", "led[0]"),
        },
        led_active_low=False,
        source="emard/ulx3s doc/constraints/ulx3s_v20.lpf (ULX3S v2.x / v3.x)",
    ),
    "orangecrab": Board(
        name="orangecrab",
        title="OrangeCrab r0.2 (UART on the Feather header, external USB-serial adapter)",
        osc_mhz=48.0,
        parts={
            "LFE5U-25F": ("--25k", "--package", "CSFBGA285", "--speed", "8"),
            "LFE5U-85F": ("--85k", "--package", "CSFBGA285", "--speed", "8"),
        },
        default_part="LFE5U-25F",
        pins={
            "clk_in": Pin("A9", "IO_TYPE=LVCMOS33", "clk48, 48 MHz oscillator"),
            "uart_rx": Pin("N17", "PULLMODE=UP IO_TYPE=LVCMOS33", "Feather pin 0 (RX)"),
            "uart_tx": Pin("M18", "IO_TYPE=LVCMOS33", "Feather pin 1 (TX)"),
            "led_err": Pin("K4", "IO_TYPE=LVCMOS33", "rgb_led0_r (active low)"),
        },
        led_active_low=True,
        source=(
            "litex-boards litex_boards/platforms/gsd_orangecrab.py (r0.2: clk48 A9, feather_serial "
            "rx GPIO:0 = N17, tx GPIO:1 = M18, rgb_led r K4; part LFE5U-xxF-8MG285C) and "
            "orangecrab-fpga/orangecrab-examples verilog/orangecrab_r0.2.1.pcf"
        ),
        notes="no on-board USB-serial: wire a 3.3 V adapter to header pins 0 (RX) / 1 (TX)",
    ),
}


def get_board(name: str) -> Board:
    """The board called `name` (case, '-' and '_' ignored); BoardError naming the known ones."""
    if not isinstance(name, str):
        raise BoardError(f"board must be a name ({', '.join(BOARDS)}), not {name!r}")
    key = name.lower().replace("_", "").replace("-", "")
    for b in BOARDS.values():
        if key == b.name.replace("-", ""):
            return b
    raise BoardError(f"unknown board {name!r}; known: {', '.join(BOARDS)}")


# ---------------------------------------------------------------------------------------------
# the PLL
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PllParams:
    """EHXPLLL settings: f_out = f_in / clki_div * clkfb_div (feedback from CLKOP), VCO =
    f_out * clkop_div."""

    fin_mhz: float
    requested_mhz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int
    fout: Fraction
    fvco: Fraction

    @property
    def fout_mhz(self) -> float:
        return float(self.fout)

    @property
    def fvco_mhz(self) -> float:
        return float(self.fvco)

    @property
    def cphase(self) -> int:
        # CLKOP's coarse phase, in VCO cycles. With the feedback taken from CLKOP itself the
        # loop cancels it; (div - 1) // 2 is what ecppll writes up to its float rounding
        return (self.clkop_div - 1) // 2

    def describe(self) -> str:
        return (
            f"EHXPLLL {self.fin_mhz:g} MHz / {self.clki_div} x {self.clkfb_div} = "
            f"{self.fout_mhz:.4f} MHz (VCO {self.fvco_mhz:.2f} MHz, CLKOP_DIV {self.clkop_div})"
        )


def pll_params(fin_mhz: float, fout_mhz: float) -> PllParams:
    """The EHXPLLL dividers whose output is closest to `fout_mhz` (ties: VCO closest to
    600 MHz, then the smallest dividers), searched as prjtrellis' ecppll does: CLKI_DIV 1..128
    with the phase detector at 3.125..400 MHz, CLKFB_DIV 1..80, CLKOP_DIV 1..128 with the VCO
    at 400..800 MHz. Exact arithmetic (fractions), so the result does not depend on float
    rounding. BoardError if either frequency is outside the PLL's range."""
    for what, f, lo, hi in (("oscillator", fin_mhz, IN_MIN, IN_MAX),
                            ("clock", fout_mhz, OUT_MIN, OUT_MAX)):  # fmt: skip
        if not (isinstance(f, int | float) and math.isfinite(f) and lo <= Fraction(f) <= hi):
            raise BoardError(
                f"{what} {f!r} MHz: an ECP5 PLL {'input' if what == 'oscillator' else 'output'}"
                f" must lie in {float(lo):g}..{float(hi):g} MHz"
            )
    fin = Fraction(fin_mhz).limit_denominator(10**6)
    want = Fraction(fout_mhz).limit_denominator(10**6)
    best = None
    for ci in range(1, 129):
        pfd = fin / ci
        if not PFD_MIN <= pfd <= PFD_MAX:
            continue
        for fb in range(1, 81):
            fout = pfd * fb
            # CLKOP_DIV only has to put the VCO in range; the nearest to 600 MHz is preferred
            lo = max(1, -(-VCO_MIN // fout))
            hi = min(128, VCO_MAX // fout)
            if lo > hi:
                continue
            op = min(range(int(lo), int(hi) + 1), key=lambda d: (abs(fout * d - 600), d))
            key = (abs(fout - want), abs(fout * op - 600))
            if best is None or key < best[0]:
                best = (key, ci, fb, op, fout)
    if best is None:
        raise BoardError(f"no ECP5 PLL setting reaches {fout_mhz:g} MHz from {fin_mhz:g} MHz")
    _, ci, fb, op, fout = best
    return PllParams(float(fin), float(fout_mhz), ci, fb, op, fout, fout * op)


def pll_verilog(p: PllParams) -> str:
    return f"""\
// Generated by qloom.deploy.board: {p.describe()}
// (requested {p.requested_mhz:g} MHz). Synthesis only; board_pll_sim.v is the simulation model.
`default_nettype none
/* verilator lint_off DECLFILENAME */
module {PLL_MODULE} (
    input  wire clkin,
    output wire clkout,
    output wire locked
);
  (* FREQUENCY_PIN_CLKI="{p.fin_mhz:g}" *)
  (* FREQUENCY_PIN_CLKOP="{p.fout_mhz:.6g}" *)
  (* ICP_CURRENT="12" *) (* LPF_RESISTOR="8" *) (* MFG_ENABLE_FILTEROPAMP="1" *)
  (* MFG_GMCREF_SEL="2" *)
  EHXPLLL #(
      .PLLRST_ENA("DISABLED"),
      .INTFB_WAKE("DISABLED"),
      .STDBY_ENABLE("DISABLED"),
      .DPHASE_SOURCE("DISABLED"),
      .OUTDIVIDER_MUXA("DIVA"),
      .OUTDIVIDER_MUXB("DIVB"),
      .OUTDIVIDER_MUXC("DIVC"),
      .OUTDIVIDER_MUXD("DIVD"),
      .CLKI_DIV({p.clki_div}),
      .CLKOP_ENABLE("ENABLED"),
      .CLKOP_DIV({p.clkop_div}),
      .CLKOP_CPHASE({p.cphase}),
      .CLKOP_FPHASE(0),
      .FEEDBK_PATH("CLKOP"),
      .CLKFB_DIV({p.clkfb_div})
  ) u_pll (
      .RST(1'b0),
      .STDBY(1'b0),
      .CLKI(clkin),
      .CLKOP(clkout),
      .CLKFB(clkout),
      .CLKINTFB(),
      .PHASESEL0(1'b0),
      .PHASESEL1(1'b0),
      .PHASEDIR(1'b1),
      .PHASESTEP(1'b1),
      .PHASELOADREG(1'b1),
      .PLLWAKESYNC(1'b0),
      .ENCLKOP(1'b0),
      .LOCK(locked)
  );
endmodule
"""


PLL_SIM = f"""\
// Generated by qloom.deploy.board: simulation model of {PLL_MODULE}. The clock passes
// through (the testbench drives the board top at the PLL's output frequency); locked rises
// after 16 cycles, so the board's power-on reset runs even from random initial state.
`default_nettype none
/* verilator lint_off DECLFILENAME */
module {PLL_MODULE} (
    input  wire clkin,
    output wire clkout,
    output wire locked
);
  reg [4:0] n;
  initial n = 5'd0;
  always @(posedge clkin) if (!n[4]) n <= n + 5'd1;
  assign clkout = clkin;
  assign locked = n[4];
endmodule
"""


# ---------------------------------------------------------------------------------------------
# the board top
# ---------------------------------------------------------------------------------------------


@dataclass
class BoardFiles:
    """What `write_board` wrote. `sources` / `sim_sources` are the board's own Verilog files
    (add the accelerator's, e.g. `RtlFiles.sources`); `top` is the module to synthesize."""

    board: str
    part: str
    top: str
    out_dir: Path
    top_file: Path
    pll_file: Path
    pll_sim_file: Path
    lpf: Path
    info_file: Path
    library: tuple[Path, ...]
    rtl_top: str
    in_width: int
    out_width: int
    in_bytes: int  # bytes per input beat
    out_bytes: int  # bytes per output beat
    pll: PllParams
    clock_mhz: float  # achieved by the PLL
    baud: int  # requested
    clks_per_bit: int
    baud_actual: float
    rx_fifo_bytes: int
    frame_bytes: int | None  # input bytes per frame, if given
    pins: dict[str, Pin] = field(default_factory=dict)
    nextpnr_args: tuple[str, ...] = ()

    @property
    def sources(self) -> list[Path]:
        """Synthesis: the board's files with the real PLL."""
        return [*self.library, self.pll_file, self.top_file]

    @property
    def sim_sources(self) -> list[Path]:
        """Simulation: the board's files with the clock-passthrough PLL model."""
        return [*self.library, self.pll_sim_file, self.top_file]

    @property
    def max_window(self) -> int | None:
        """Frames the host may keep in flight (None if the frame size was not given)."""
        return self.rx_fifo_bytes // self.frame_bytes if self.frame_bytes else None

    def info(self) -> dict:
        return {
            "board": self.board,
            "part": self.part,
            "top": self.top,
            "accelerator": self.rtl_top,
            "clock_mhz": self.clock_mhz,
            "pll": {
                "fin_mhz": self.pll.fin_mhz,
                "requested_mhz": self.pll.requested_mhz,
                "clki_div": self.pll.clki_div,
                "clkfb_div": self.pll.clkfb_div,
                "clkop_div": self.pll.clkop_div,
                "fvco_mhz": self.pll.fvco_mhz,
            },
            "baud": self.baud,
            "baud_actual": self.baud_actual,
            "clks_per_bit": self.clks_per_bit,
            "in_width": self.in_width,
            "out_width": self.out_width,
            "in_bytes": self.in_bytes,
            "out_bytes": self.out_bytes,
            "rx_fifo_bytes": self.rx_fifo_bytes,
            "frame_bytes": self.frame_bytes,
            "max_window": self.max_window,
            "pins": {k: asdict(v) for k, v in self.pins.items()},
        }


def _board_top_verilog(
    rtl_top: str,
    in_width: int,
    out_width: int,
    clks_per_bit: int,
    fifo: int,
    led_active_low: bool,
    in_port: str,
    out_port: str,
    note: str,
) -> str:
    led = "~err" if led_active_low else "err"
    cw = fifo.bit_length()  # = $clog2(RX_FIFO_DEPTH + 1), the bridge's rx_count width
    return f"""\
// Generated by qloom.deploy.board: {note}
// UART 8N1, {clks_per_bit} clocks per bit; input beat {in_width} bits = {(in_width + 7) // 8} \
bytes, output beat {out_width} bits = {(out_width + 7) // 8} bytes, little-endian;
// receive FIFO {fifo} bytes. led_err: a received byte was lost (FIFO full) or had no stop bit.
`default_nettype none
/* verilator lint_off DECLFILENAME */
module {BOARD_TOP} (
    input  wire clk_in,
    input  wire uart_rx,
    output wire uart_tx,
    output wire led_err
);
  wire clk;
  wire locked;
  {PLL_MODULE} u_pll (
      .clkin (clk_in),
      .clkout(clk),
      .locked(locked)
  );

  // power-on reset: held until the PLL has locked, then for 16 more cycles (flip-flops power
  // up at 0 after configuration; the simulation starts them random and this still holds)
  reg [1:0] lock_sync;
  reg [4:0] por;
  always @(posedge clk) begin
    lock_sync <= {{lock_sync[0], locked}};
    if (!lock_sync[1]) por <= 5'd0;
    else if (!por[4]) por <= por + 5'd1;
  end
  wire rst_n = por[4];

  wire [{in_width - 1}:0] in_tdata;
  wire        in_tvalid;
  wire        in_tready;
  wire [{out_width - 1}:0] out_tdata;
  wire        out_tvalid;
  wire        out_tready;
  wire        rx_overflow;
  wire        rx_frame_error;
  /* verilator lint_off UNUSEDSIGNAL */
  wire [{cw - 1}:0] rx_count;  // the receive FIFO's fill level, for the simulation to watch
  /* verilator lint_on UNUSEDSIGNAL */

  qloom_uart_bridge #(
      .IN_WIDTH({in_width}),
      .OUT_WIDTH({out_width}),
      .CLKS_PER_BIT({clks_per_bit}),
      .RX_FIFO_DEPTH({fifo})
  ) u_bridge (
      .ap_clk        (clk),
      .ap_rst_n      (rst_n),
      .uart_rx       (uart_rx),
      .uart_tx       (uart_tx),
      .m_axis_tdata  (in_tdata),
      .m_axis_tvalid (in_tvalid),
      .m_axis_tready (in_tready),
      .s_axis_tdata  (out_tdata),
      .s_axis_tvalid (out_tvalid),
      .s_axis_tready (out_tready),
      .rx_overflow   (rx_overflow),
      .rx_frame_error(rx_frame_error),
      .rx_count      (rx_count)
  );

  {rtl_top} u_accel (
      .ap_clk(clk),
      .ap_rst_n(rst_n),
      .{in_port}_tdata(in_tdata),
      .{in_port}_tvalid(in_tvalid),
      .{in_port}_tready(in_tready),
      .{out_port}_tdata(out_tdata),
      .{out_port}_tvalid(out_tvalid),
      .{out_port}_tready(out_tready)
  );

  wire err = rx_overflow | rx_frame_error;
  assign led_err = {led};
endmodule
"""


def _lpf(board: Board, clock_mhz: float) -> str:
    lines = [
        f"# Generated by qloom.deploy.board for the {board.title}: only the pins used.",
        f"# Pins from {board.source}.",
    ]
    for port, pin in board.pins.items():
        lines += [
            f'LOCATE COMP "{port}" SITE "{pin.site}"; # {pin.net}',
            f'IOBUF PORT "{port}" {pin.iobuf};',
        ]
    lines += [
        f'FREQUENCY PORT "clk_in" {board.osc_mhz:g} MHZ;',
        f'FREQUENCY NET "clk" {clock_mhz:.6g} MHZ; # the PLL output',
    ]
    return "\n".join(lines) + "\n"


def uart_timing(board: str, clock_mhz: float, baud: int) -> tuple[PllParams, int]:
    """The PLL setting for `clock_mhz` on `board` and the UART's clocks per bit for `baud`;
    BoardError if the clock is out of the PLL's reach or the baud is more than 2 % off (or
    under 2 clocks per bit). `qloom build --board` checks its options with this before it
    starts."""
    b = get_board(board)
    if not isinstance(baud, int) or isinstance(baud, bool) or baud < 1:
        raise BoardError(f"baud must be a positive integer, not {baud!r}")
    pll = pll_params(b.osc_mhz, clock_mhz)
    clk_hz = pll.fout_mhz * 1e6
    clks_per_bit = round(clk_hz / baud)
    err = abs(clk_hz / max(clks_per_bit, 1) - baud) / baud
    if clks_per_bit < 2 or err > MAX_BAUD_ERROR:
        raise BoardError(
            f"{baud} baud from a {pll.fout_mhz:.4f} MHz clock: {clk_hz / baud:.2f} clocks "
            f"per bit, {100 * err:.1f} % off (at most {100 * MAX_BAUD_ERROR:g} %, and >= 2 "
            "clocks per bit): choose a lower baud or another clock"
        )
    return pll, clks_per_bit


def write_board(
    rtl_top_name: str,
    in_width: int,
    out_width: int,
    out_dir: str | Path,
    board: str = "ulx3s",
    clock_mhz: float = 50.0,
    baud: int = 115_200,
    *,
    part: str | None = None,
    frame_bytes: int | None = None,
    window: int = 1,
    rx_fifo_bytes: int | None = None,
    clks_per_bit: int | None = None,
    in_port: str = "s_axis",
    out_port: str = "m_axis",
) -> BoardFiles:
    """Write the board top around accelerator `rtl_top_name` (one AXI-Stream input `in_port`
    of `in_width` bits, one output `out_port` of `out_width` bits, ``ap_clk`` / ``ap_rst_n``)
    into `out_dir` (see the module docstring) and return the files and settings.

    clock_mhz: the accelerator's clock, made by the PLL from the board's oscillator (the
        nearest reachable frequency is used: `BoardFiles.clock_mhz`).
    baud: the serial rate; CLKS_PER_BIT = round(clock / baud). An error above 2 % is refused.
        `clks_per_bit` overrides it (e.g. a small value for a short simulation); the rate
        recorded in board.json is then the one those clocks per bit give.
    frame_bytes: input bytes per frame (input beats x ceil(in_width / 8)); with `window`
        it sizes the receive FIFO (window x frame_bytes) unless `rx_fifo_bytes` is given.
        Neither given: 1024 bytes. A FIFO smaller than one frame is refused: a host could not
        keep even one frame in flight safely.
    """
    b = get_board(board)
    part = part or b.default_part
    if part not in b.parts:
        raise BoardError(f"{b.title}: part {part!r} not known; known: {', '.join(b.parts)}")
    if in_width < 1 or out_width < 1:
        raise BoardError(f"bad stream widths {in_width} / {out_width}")
    if window < 1:
        raise BoardError(f"window must be >= 1, not {window}")
    if clks_per_bit is None:
        pll, clks_per_bit = uart_timing(b.name, clock_mhz, baud)
    elif clks_per_bit < 2:
        raise BoardError(f"clks_per_bit must be >= 2, not {clks_per_bit}")
    else:
        pll = pll_params(b.osc_mhz, clock_mhz)
        baud = round(pll.fout_mhz * 1e6 / clks_per_bit)
    clk_hz = pll.fout_mhz * 1e6
    if rx_fifo_bytes is None:
        rx_fifo_bytes = window * frame_bytes if frame_bytes else 1024
    rx_fifo_bytes = max(2, int(rx_fifo_bytes))
    if frame_bytes and rx_fifo_bytes < frame_bytes:
        raise BoardError(
            f"a receive FIFO of {rx_fifo_bytes} bytes holds less than one frame "
            f"({frame_bytes} bytes): the host could overflow it while the accelerator stalls"
        )

    out = Path(out_dir).resolve()
    (out / "hdl").mkdir(parents=True, exist_ok=True)
    lib = []
    for f in library_files("qloom_uart_bridge"):
        shutil.copy(f, out / "hdl" / f.name)
        lib.append(out / "hdl" / f.name)
    note = (
        f"{b.title}, part {part}: {rtl_top_name} at {pll.fout_mhz:.4f} MHz "
        f"(requested {clock_mhz:g}), {baud} baud"
    )
    top_file = out / "board_top.v"
    top_file.write_text(
        _board_top_verilog(
            rtl_top_name,
            in_width,
            out_width,
            clks_per_bit,
            rx_fifo_bytes,
            b.led_active_low,
            in_port,
            out_port,
            note,
        )
    )
    pll_file = out / "board_pll.v"
    pll_file.write_text(pll_verilog(pll))
    pll_sim = out / "board_pll_sim.v"
    pll_sim.write_text(PLL_SIM)
    lpf = out / "board.lpf"
    lpf.write_text(_lpf(b, pll.fout_mhz))
    files = BoardFiles(
        board=b.name,
        part=part,
        top=BOARD_TOP,
        out_dir=out,
        top_file=top_file,
        pll_file=pll_file,
        pll_sim_file=pll_sim,
        lpf=lpf,
        info_file=out / "board.json",
        library=tuple(lib),
        rtl_top=rtl_top_name,
        in_width=in_width,
        out_width=out_width,
        in_bytes=(in_width + 7) // 8,
        out_bytes=(out_width + 7) // 8,
        pll=pll,
        clock_mhz=pll.fout_mhz,
        baud=baud,
        clks_per_bit=clks_per_bit,
        baud_actual=clk_hz / clks_per_bit,
        rx_fifo_bytes=rx_fifo_bytes,
        frame_bytes=frame_bytes,
        pins=dict(b.pins),
        nextpnr_args=b.parts[part],
    )
    files.info_file.write_text(json.dumps(files.info(), indent=2) + "\n")
    return files


def _unique_sources(*groups: Sequence[Path | str]) -> list[Path]:
    """Files by name, first occurrence kept (the library copies of the board and of the
    accelerator are the same files)."""
    seen: dict[str, Path] = {}
    for g in groups:
        for s in g:
            p = Path(s)
            seen.setdefault(p.name, p)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------
# place and route
# ---------------------------------------------------------------------------------------------


PNR_CELLS = ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D", "EHXPLLL", "TRELLIS_IO")


@dataclass
class BoardPnr:
    """Place and route of a board top. `fmax` is keyed by the board's own clock net names
    (nextpnr calls the PLL output ``$glbnet$clk`` once it is on a global network: the prefix
    is dropped), so ``fmax["clk"]`` is the accelerator's clock."""

    board: str
    part: str
    clock_mhz: float  # the PLL's output: the constraint on the accelerator's clock
    fmax: dict[str, float]  # achieved Fmax per clock net
    fmax_mhz: float | None  # of the accelerator's clock net "clk"
    timing_met: bool
    critical_path: str | None  # nextpnr's worst clocked path, summarized
    utilization: dict[str, dict[str, int]]
    bitstream: Path | None
    workdir: Path
    synth_seconds: float
    pnr_seconds: float
    pack_seconds: float

    @property
    def lut4(self) -> int:
        return int(self.utilization.get("TRELLIS_COMB", {}).get("used", 0))

    def timing_line(self) -> str:
        """One line that cannot be overlooked when the clock is not met."""
        fm = f"{self.fmax_mhz:.1f} MHz" if self.fmax_mhz else "none reported"
        if self.timing_met:
            return f"timing met: Fmax {fm} >= {self.clock_mhz:.4g} MHz"
        path = f", critical path: {self.critical_path}" if self.critical_path else ""
        return f"TIMING NOT MET: Fmax {fm} < {self.clock_mhz:.4g} MHz{path}"

    def summary(self) -> str:
        util = self.utilization
        used = {k: util[k]["used"] for k in PNR_CELLS if util.get(k, {}).get("used")}
        return (
            f"{self.board} {self.part}: {self.timing_line()}; {used}; synth "
            f"{self.synth_seconds:.0f} s, P&R {self.pnr_seconds:.0f} s, ecppack "
            f"{self.pack_seconds:.0f} s"
        )

    def to_json(self, base: Path | None = None) -> dict:
        """A dict for JSON; paths relative to `base` if given (a build directory is renamed
        when it is complete, so absolute paths would point at its work name)."""

        def path(p: Path | None) -> str | None:
            if p is None:
                return None
            return os.path.relpath(p, base) if base is not None else str(p)

        d = asdict(self)
        d["bitstream"] = path(self.bitstream)
        d["workdir"] = path(self.workdir)
        d["lut4"] = self.lut4
        d["timing"] = self.timing_line()
        return d


def _net(name: str) -> str:
    return name.removeprefix("$glbnet$")


def critical_path(report: dict, clock: str | None = None) -> str | None:
    """nextpnr's critical path between registers of `clock` (any clock if None; paths from
    or to the asynchronous pins are not timed), as one line: start -> end, total delay,
    the start cell's clock-to-output delay, logic levels and routing delay."""
    for cp in report.get("critical_paths") or []:
        ends = [str(cp.get("from", "")), str(cp.get("to", ""))]
        if any("<async>" in e for e in ends):
            continue
        if clock is not None and not all(_net(e.split()[-1]) == clock for e in ends):
            continue
        steps = cp.get("path") or []
        if not steps:
            continue

        def total(kind: str | None = None, steps: list = steps) -> float:
            return sum(float(x.get("delay", 0.0)) for x in steps if kind in (None, x.get("type")))

        first, last = steps[0].get("from", {}), steps[-1].get("to", {})
        levels = sum(1 for x in steps if x.get("type") == "logic")
        return (
            f"{first.get('cell')} ({first.get('port')}) -> {last.get('cell')} "
            f"({last.get('port')}), {total():.2f} ns: {total('clk-to-q'):.2f} ns clock-to-out, "
            f"{levels} logic levels, {total('routing'):.2f} ns routing"
        )
    return None


def place_and_route_board(
    board: BoardFiles,
    rtl_sources: Sequence[Path | str],
    memory_files: Mapping[str, Path] | Sequence[Path] = (),
    workdir: str | Path | None = None,
    *,
    seed: int = 1,
    bitstream: bool = True,
    timeout: float = 3600,
) -> BoardPnr:
    """Yosys synth_ecp5 + nextpnr-ecp5 (the board's LPF; no unconstrained pins) + ecppack for
    `board` around the accelerator in `rtl_sources` (memory files as for
    `qloom.synth.yosys.synthesize`, e.g. ``{"mem/w0.hex": path}``). Not cached."""
    from qloom.synth.nextpnr import PnrError, parse_report
    from qloom.synth.tools import ToolError, find_tool

    wd = Path(workdir or board.out_dir / "pnr").resolve()
    wd.mkdir(parents=True, exist_ok=True)
    # yowasp tools see relative paths only: stage everything in the work directory
    sources = _unique_sources(rtl_sources, board.sources)
    for s in sources:
        if Path(s).resolve() != (wd / Path(s).name).resolve():
            shutil.copy(s, wd / Path(s).name)
    mems = memory_files.items() if isinstance(memory_files, Mapping) else [
        (Path(m).name, Path(m)) for m in memory_files
    ]  # fmt: skip
    for rel, path in mems:
        (wd / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, wd / rel)
    # no `hierarchy -check` before synth_ecp5: the EHXPLLL primitive is known only once
    # synth_ecp5 has read the ECP5 cell library
    script = [f"read_verilog -sv {Path(s).name}" for s in sources]
    script += [f"synth_ecp5 -top {board.top}", "write_json netlist.json"]
    (wd / "synth.ys").write_text("\n".join(script) + "\n")
    (wd / "netlist.json").unlink(missing_ok=True)
    yosys = find_tool("yosys")
    try:
        synth_s = yosys.run(
            ["-q", "-l", "yosys.log", "-s", "synth.ys"], wd, wd / "yosys.run.log", timeout,
            what=f"Yosys synth_ecp5 of {board.top}",
        )  # fmt: skip
    except ToolError as e:
        raise PnrError(str(e)) from None
    shutil.copy(board.lpf, wd / "board.lpf")
    for stale in ("report.json", "top.config", "top.bit", "nextpnr.log"):
        (wd / stale).unlink(missing_ok=True)
    pnr = find_tool("nextpnr-ecp5")
    log = wd / "nextpnr.log"
    args = [
        *board.nextpnr_args, "--json", "netlist.json", "--lpf", "board.lpf",
        "--textcfg", "top.config", "--report", "report.json", "--timing-allow-fail",
        "--seed", str(seed),
    ]  # fmt: skip
    try:
        pnr_s = pnr.run(args, wd, log, timeout, what=f"nextpnr-ecp5 for {board.top}")
        pack_s = 0.0
        bit = None
        if bitstream:
            pack = find_tool("ecppack")
            pack_s = pack.run(["top.config", "top.bit"], wd, log, timeout, what="ecppack")
            bit = wd / "top.bit"
    except ToolError as e:
        raise PnrError(str(e)) from None
    try:
        report = json.loads((wd / "report.json").read_text())
    except (OSError, ValueError) as e:
        raise PnrError(f"nextpnr wrote no readable report.json ({e}); log: {log}") from None
    fmax, target, util = parse_report(report)
    fmax = {_net(k): v for k, v in fmax.items()}
    target = {_net(k): v for k, v in target.items()}
    # met: the accelerator's clock was timed, and every timed clock reaches its constraint
    met = "clk" in fmax and all(fmax[c] >= target.get(c, 0.0) for c in fmax)
    return BoardPnr(
        board=board.board,
        part=board.part,
        clock_mhz=board.clock_mhz,
        fmax=fmax,
        fmax_mhz=fmax.get("clk"),
        timing_met=met,
        critical_path=critical_path(report, "clk") or critical_path(report),
        utilization=util,
        bitstream=bit,
        workdir=wd,
        synth_seconds=round(synth_s, 1),
        pnr_seconds=round(pnr_s, 1),
        pack_seconds=round(pack_s, 1),
    )


# ---------------------------------------------------------------------------------------------
# simulation: the UART pins driven bit by bit
# ---------------------------------------------------------------------------------------------


@dataclass
class BoardSimResult:
    received: bytes  # what the host decoded from the transmit pin
    cycles: int
    bytes_sent: int
    led_err: int  # the error LED at the end (1 = lit, whatever the board's polarity)
    max_rx_fill: int  # highest receive-FIFO fill level seen
    host_frame_errors: int  # bytes from the board without a stop bit
    timed_out: bool
    max_in_flight: int  # most frames sent whose results had not fully arrived

    @classmethod
    def from_stats(cls, received: bytes, info: dict) -> BoardSimResult:
        return cls(
            received=received,
            cycles=info["cycles"],
            bytes_sent=info["bytes_sent"],
            led_err=info["led_err"],
            max_rx_fill=info["max_rx_fill"],
            host_frame_errors=info["host_frame_errors"],
            timed_out=bool(info["timed_out"]),
            max_in_flight=info["max_in_flight"],
        )


class SimLink:
    """The simulated board behind a serial line: a `qloom.deploy.client.Link` (``write`` /
    ``read`` as a pyserial port has them, ``read`` returning fewer bytes, or none, when
    `timeout` seconds pass without any), so the host client runs unchanged against the
    Verilator model. The testbench runs as a child process in pipe mode: it clocks the board
    while the host has frames in flight and waits (no cycles pass) while it has none; the
    bytes written here go bit by bit into the UART receive pin, the bytes decoded from the
    transmit pin come back. `close` ends it; `result` then holds its statistics (without the
    received bytes, which went to the host)."""

    def __init__(self, args: Sequence[str], cwd: Path, timeout: float):
        self.timeout = timeout
        self.result: BoardSimResult | None = None
        self._proc = subprocess.Popen(
            list(args), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, bufsize=0,
        )  # fmt: skip

    def write(self, data: bytes) -> int:
        view = memoryview(bytes(data))
        while view:
            n = os.write(self._proc.stdin.fileno(), view)
            view = view[n:]
        return len(data)

    def read(self, n: int) -> bytes:
        fd = self._proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], self.timeout)
        return os.read(fd, n) if ready else b""

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()  # end of input: the testbench finishes what is in flight
            self._proc.stdin = None  # (communicate() would flush the closed pipe)
        try:
            _, err = self._proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, err = self._proc.communicate()
        text = err.decode(errors="replace").strip()
        if self._proc.returncode != 0 or not text:
            raise QloomError(f"board simulation failed ({self._proc.returncode}):\n{text}")
        self.result = BoardSimResult.from_stats(b"", json.loads(text.splitlines()[-1]))

    def __enter__(self) -> SimLink:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:  # the host failed: stop the simulation, keep the host's exception
            self._proc.kill()
            self._proc.communicate()


@dataclass
class BoardSim:
    exe: Path
    run_dir: Path  # where the accelerator's memory files resolve (mem/...)
    clks_per_bit: int
    led_active_low: bool

    def _args(
        self, src: str, dst: str, frame_in: int, frame_out: int, window: int,
        host_cpb: int | None, gap_max: int, max_cycles: int, seed: int,
    ) -> list[str]:  # fmt: skip
        args = [
            self.exe, src, dst, frame_in, frame_out, window, host_cpb or self.clks_per_bit,
            gap_max, max_cycles, int(self.led_active_low), f"+verilator+seed+{seed}",
            "+verilator+rand+reset+2",
        ]  # fmt: skip
        return [str(a) for a in args]

    def run(
        self,
        data: bytes,
        frame_in: int,
        frame_out: int,
        window: int = 1,
        gap_max: int = 0,
        seed: int = 1,
        max_cycles: int = 50_000_000,
        host_clks_per_bit: int | None = None,
    ) -> BoardSimResult:
        """Send `data` (whole frames of `frame_in` bytes) into the UART receive pin with at
        most `window` frames in flight (a frame's `frame_out` result bytes must arrive before
        frame + window is sent), random idle gaps of 0..`gap_max` cycles between bytes;
        decode the transmit pin until every result byte has arrived or `max_cycles`.
        `host_clks_per_bit`: the host's bit time, to try a baud mismatch. Deterministic for a
        seed (flip-flops start random, ``+verilator+rand+reset+2``)."""
        if len(data) % frame_in:
            raise ValueError(f"{len(data)} bytes are not whole frames of {frame_in}")
        with tempfile.TemporaryDirectory(prefix="qloom-board-sim-") as tmp:
            src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
            src.write_bytes(data)
            args = self._args(str(src), str(dst), frame_in, frame_out, window,
                              host_clks_per_bit, gap_max, max_cycles, seed)  # fmt: skip
            res = subprocess.run(args, cwd=self.run_dir, capture_output=True, text=True)
            if res.returncode != 0:
                raise QloomError(f"board simulation failed ({res.returncode}):\n{res.stderr}")
            info = json.loads(res.stdout.strip().splitlines()[-1])
            return BoardSimResult.from_stats(dst.read_bytes(), info)

    def open(
        self,
        frame_in: int,
        frame_out: int,
        *,
        timeout: float = 30.0,
        seed: int = 1,
        max_cycles: int = 500_000_000,
    ) -> SimLink:
        """A live serial line to the simulated board (`SimLink`), for the host client:
        ``with sim.open(fi, fo) as link: y = run_frames(link, q, io, window)``. The host
        paces the frames; the testbench only needs the frame sizes to know when the board
        is idle. `max_cycles` bounds the simulated time (then reads time out)."""
        args = self._args("-", "-", frame_in, frame_out, 1, None, 0, max_cycles, seed)
        return SimLink(args, self.run_dir, timeout)


def build_board_sim(
    board: BoardFiles,
    rtl_sources: Sequence[Path | str],
    run_dir: str | Path,
    build_dir: str | Path | None = None,
    *,
    opt: str = "-O1",
    jobs: int = 1,
) -> BoardSim:
    """Verilate `board`'s top (PLL model) with the accelerator and ``tb_uart.cpp``."""
    from qloom.sim.verilator import VerilatorError, find_verilator

    tool = find_verilator()
    bd = Path(build_dir or board.out_dir / "sim").resolve()
    if bd.exists():
        shutil.rmtree(bd)
    bd.mkdir(parents=True)
    (bd / "tb.vlt").write_text(
        '`verilator_config\npublic_flat_rd -module "' + BOARD_TOP + '" -var "rx_count"\n'
    )
    sources = _unique_sources(rtl_sources, board.sim_sources)
    args = [
        "--cc", "--exe", "--top-module", BOARD_TOP, "-Wno-fatal", "-Wno-lint", "-Wno-style",
        "--x-assign", "unique", "--x-initial", "unique", "--Mdir", str(bd / "obj"),
        "-o", "Vtb", str(bd / "tb.vlt"), *[str(Path(s).resolve()) for s in sources],
        str(TB_SOURCE),
    ]  # fmt: skip
    res = tool.run(args, cwd=bd)
    log = res.stdout + res.stderr
    if res.returncode == 0:
        make = [
            "make", "-C", str(bd / "obj"), "-f", f"V{BOARD_TOP}.mk", "-j", str(max(1, jobs)),
            f"OPT_FAST={opt}", f"OPT_GLOBAL={opt}", f"OPT_SLOW={opt}",
            "CFG_CXXFLAGS_PCH_I=-include",
        ]  # fmt: skip
        res = subprocess.run(make, env=tool.env, capture_output=True, text=True)
        log += res.stdout + res.stderr
    exe = bd / "obj" / "Vtb"
    if res.returncode != 0 or not exe.exists():
        tail = "\n".join(log.splitlines()[-30:])
        raise VerilatorError(f"Verilator build of {BOARD_TOP} failed:\n{tail}")
    return BoardSim(exe, Path(run_dir).resolve(), board.clks_per_bit, _led_low(board))


def _led_low(board: BoardFiles) -> bool:
    return get_board(board.board).led_active_low


def summary_rows(board_dir: Path) -> list[tuple[str, str]]:
    """Rows for the build summary of a ``qloom build --board`` directory's ``board/``: the
    board's settings and, after place and route, whether the clock is met, in bold red with
    the failing path when it is not (rich markup). None without a board.json."""
    board_dir = Path(board_dir)
    if not (board_dir / "board.json").is_file():
        return []
    info = json.loads((board_dir / "board.json").read_text())
    rows = [
        (
            f"board top ({board_dir.name}/)",
            f"{info['board']} {info['part']}: PLL {info['clock_mhz']:.4f} MHz, "
            f"{info['baud']} baud, window {info['max_window']} frames",
        )
    ]
    if (board_dir / "pnr.json").is_file():
        pnr = json.loads((board_dir / "pnr.json").read_text())
        style = "green" if pnr["timing_met"] else "bold red"
        rows.append(("board timing (nextpnr)", f"[{style}]{pnr['timing']}[/]"))
        ff = pnr["utilization"].get("TRELLIS_FF", {}).get("used", 0)
        rows.append(("board LUT4 / FF (nextpnr)", f"{pnr['lut4']:,} / {ff:,}"))
    return rows


def lint_board(board: BoardFiles, rtl_sources: Sequence[Path | str]) -> tuple[int, str]:
    """``verilator --lint-only -Wall`` of the board top (PLL model) with the accelerator."""
    from qloom.sim import lint
    from qloom.sim.verilator import TOP_LINT_ARGS

    return lint(
        BOARD_TOP, _unique_sources(rtl_sources, board.sim_sources), extra_args=TOP_LINT_ARGS
    )


__all__ = [
    "BOARDS",
    "BOARD_TOP",
    "Board",
    "BoardError",
    "BoardFiles",
    "BoardPnr",
    "BoardSim",
    "BoardSimResult",
    "PllParams",
    "SimLink",
    "critical_path",
    "build_board_sim",
    "get_board",
    "lint_board",
    "place_and_route_board",
    "pll_params",
    "pll_verilog",
    "summary_rows",
    "uart_timing",
    "write_board",
]
