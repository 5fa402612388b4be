"""Xilinx deployment files of a build (qloom.deploy.ipxact, qloom.deploy.vivado_bd).

Vivado is not available here, so nothing is packaged or implemented: the IP wrapper (TLAST,
byte-padded TDATA) is simulated in Verilator with the driver's bytes under random stalls,
component.xml is parsed and checked against the wrapper's ports and files, and the TCL / XDC
are linted for structure (balanced brackets, objects created before use, part, IP VLNV)."""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from tfc_data import tfc_path

from qloom.dataflow import to_dataflow
from qloom.deploy import write_driver
from qloom.deploy.ipxact import byte_width, frame_beats, ports, vlnv, wrapper_name
from qloom.deploy.vivado_bd import BOARDS, bd_tcl, write_deploy
from qloom.flow import compile_model
from qloom.rtl.top import generate_top
from qloom.synth import get_device


def _have_verilator() -> bool:
    from qloom.sim import VerilatorError, find_verilator

    try:
        find_verilator()
        return True
    except VerilatorError:
        return False


needs_verilator = pytest.mark.skipif(not _have_verilator(), reason="Verilator not installed")
NS = {"spirit": "http://www.spiritconsortium.org/XMLSchema/SPIRIT/1685-2009"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ipx")
    c = compile_model(tfc_path("TFC_2W2A"))
    design = to_dataflow(c.integer)
    q = c.hardware_input(c.random_inputs(12, seed=3))
    from qloom.sim.design import size_fifos

    rtl = generate_top(design, tmp / "rtl", size_fifos(design, q[:4]))
    deploy = write_deploy(design, rtl, get_device("xc7z020"), 125.0, tmp / "deploy")
    driver = write_driver(design, tmp / "driver")
    spec = importlib.util.spec_from_file_location("driver_ipx", driver / "driver.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return design, rtl, deploy, mod, q


def test_component_xml_matches_the_wrapper(built):
    _, rtl, deploy, _, _ = built
    ip = deploy / "ip"
    root = ET.parse(ip / "component.xml").getroot()
    assert root.tag == f"{{{NS['spirit']}}}component"
    name = root.find("spirit:name", NS).text
    got_vlnv = ":".join(root.find(f"spirit:{k}", NS).text
                        for k in ("vendor", "library", "name", "version"))  # fmt: skip
    assert name == wrapper_name(rtl) and got_vlnv == vlnv(rtl)
    buses = {b.find("spirit:name", NS).text: b for b in root.iterfind(".//spirit:busInterface", NS)}
    assert set(buses) == {"s_axis", "m_axis", "ap_clk", "ap_rst_n"}
    for bus, mode in (("s_axis", "slave"), ("m_axis", "master")):
        b = buses[bus]
        assert b.find("spirit:busType", NS).get(f"{{{NS['spirit']}}}name") == "axis"
        assert b.find(f"spirit:{mode}", NS) is not None
        maps = {m.find("spirit:logicalPort/spirit:name", NS).text:
                m.find("spirit:physicalPort/spirit:name", NS).text
                for m in b.iterfind(".//spirit:portMap", NS)}  # fmt: skip
        assert maps == {k: f"{bus}_{k.lower()}" for k in ("TDATA", "TVALID", "TREADY", "TLAST")}
    params = {p.find("spirit:name", NS).text: p.find("spirit:value", NS).text
              for p in buses["ap_clk"].iterfind(".//spirit:parameter", NS)}  # fmt: skip
    assert params["ASSOCIATED_BUSIF"] == "s_axis:m_axis"
    assert params["ASSOCIATED_RESET"] == "ap_rst_n" and params["FREQ_HZ"] == "125000000"
    model_ports = {}
    for p in root.iterfind("spirit:model/spirit:ports/spirit:port", NS):
        left = p.find(".//spirit:left", NS)
        model_ports[p.find("spirit:name", NS).text] = (
            p.find(".//spirit:direction", NS).text,
            1 if left is None else int(left.text) + 1,
        )
    assert model_ports == {n: (d, w) for n, d, w in ports(rtl)}
    assert model_ports["s_axis_tdata"][1] == byte_width(rtl.in_width) >= rtl.in_width
    assert model_ports["m_axis_tdata"][1] == byte_width(rtl.out_widths[0])
    # the wrapper declares exactly these ports
    text = (ip / f"{name}.v").read_text()
    for n, d, w in ports(rtl):
        rng = rf"\[{w - 1}:0\] " if w > 1 else ""
        assert re.search(rf"{'input' if d == 'in' else 'output'}\s+wire {rng}{n}\b", text), n
    files = [f.text for f in root.iterfind(".//spirit:file/spirit:name", NS)]
    assert files and all((ip / f).is_file() for f in files)
    assert {f for f in files if f.endswith(".hex")} == {
        p.relative_to(rtl.run_dir).as_posix() for m in rtl.memories.values() for p in m.values()
    }
    assert f"{name}.v" in files and "hdl/qloom_tlast.v" in files
    assert rtl.top_file.relative_to(rtl.run_dir).as_posix() in files


def test_clocks_xdc_names_the_port_and_period(built):
    deploy = built[2]
    xdc = (deploy / "ip" / "clocks.xdc").read_text()
    assert "create_clock -period 8.000 -name ap_clk [get_ports ap_clk]" in xdc


def _lint_tcl(text: str) -> None:
    """Balanced braces/brackets/quotes per command; every cell named is created first."""
    depth = {"{": 0, "[": 0}
    for ch in text:
        if ch in "{[":
            depth[ch] += 1
        elif ch in "}]":
            depth["{" if ch == "}" else "["] -= 1
            assert min(depth.values()) >= 0, text
    assert depth == {"{": 0, "[": 0}
    created: set[str] = set()
    for line in text.splitlines():
        assert line.count('"') % 2 == 0, line
        m = re.match(r"create_bd_cell -type ip -vlnv (\[ipdef \w+\]|\S+) (\w+)$", line)
        if m:
            created.add(m.group(2))
        for cell in re.findall(r"get_bd_(?:intf_)?pins (\w+)/", line):
            assert cell in created, (cell, line)
        for cell in re.findall(r"get_bd_cells (\w+)\]", line):
            assert cell in created, (cell, line)
        if line.startswith(("set_property", "connect_bd")):
            assert "get_" in line or "current_" in line, line


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_block_design_tcl_is_well_formed(built, board):
    _, rtl, deploy, _, _ = built
    b = BOARDS[board]
    tcl = bd_tcl(b, rtl, 125.0)
    _lint_tcl(tcl)
    assert f"set part {b.part}" in tcl and f"[ipdef {b.ps}]" in tcl
    assert f"create_bd_cell -type ip -vlnv {vlnv(rtl)} accel_0" in tcl
    assert "CONFIG.c_include_sg {0}" in tcl and "{125}" in tcl
    for needle in ("create_bd_design", "apply_bd_automation", "make_wrapper",
                   "write_bitstream", "accel_0/s_axis", "accel_0/m_axis", "accel_0/ap_clk",
                   "axi_dma_0/M_AXIS_MM2S", "axi_dma_0/S_AXIS_S2MM"):  # fmt: skip
        assert needle in tcl, needle
    # a build for the PYNQ-Z2's part carries its script (and only that board's)
    assert sorted(p.name for p in deploy.glob("bd_*.tcl")) == ["bd_pynq-z2.tcl"]


TB = """\
`default_nettype none
module tb_ipx (
    input  wire ap_clk, input wire ap_rst_n,
    input  wire [{iw1}:0] s_axis_tdata, input wire s_axis_tvalid, output wire s_axis_tready,
    output wire [{ow}:0] o_tdata, output wire o_tvalid, input wire o_tready
);
  wire last;
  {name} u (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .s_axis_tdata(s_axis_tdata),
    .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), .s_axis_tlast(1'b0),
    .m_axis_tdata(o_tdata[{ow1}:0]), .m_axis_tvalid(o_tvalid), .m_axis_tready(o_tready),
    .m_axis_tlast(last));
  assign o_tdata[{ow}] = last;
endmodule
"""


@needs_verilator
@pytest.mark.parametrize("stall", [1.0, 0.6])
def test_driver_bytes_through_the_ip_with_tlast(built, stall, tmp_path):
    """The IP wrapper in Verilator, fed the driver's bytes: outputs unpack to the design's
    results, and TLAST (packed above TDATA by a test-only wrapper) is high exactly on each
    frame's last beat, under random stalls on both sides."""
    from qloom.sim import build

    design, rtl, deploy, driver, q = built
    ip = deploy / "ip"
    iw, ow = byte_width(rtl.in_width), byte_width(rtl.out_widths[0])
    tb = tmp_path / "tb_ipx.v"
    tb.write_text(TB.format(iw1=iw - 1, ow=ow, ow1=ow - 1, name=wrapper_name(rtl)))
    root = ET.parse(ip / "component.xml").getroot()
    srcs = [ip / f.text for f in root.iterfind(".//spirit:file/spirit:name", NS)
            if f.text.endswith(".v")]  # fmt: skip
    model = build("tb_ipx", [*srcs, tb], inputs=[("s_axis", iw)], outputs=[("o", ow + 1)],
                  extra_args=["-Wno-fatal"])  # fmt: skip
    buf = driver.pack_input(q)
    assert buf.shape[1] * 8 == iw
    words = [int.from_bytes(r.tobytes(), "little") for r in buf]
    out = driver.load_io()["outputs"][0]
    beats = frame_beats(design, rtl)
    assert out["beats"] == beats and out["bytes"] * 8 == ow
    res = model.run([words], [len(q) * beats], stall, stall, seed=7, cwd=ip).check()
    got = res.outputs[0]
    assert len(got) == len(q) * beats
    lasts = [w >> ow for w in got]
    assert lasts == [int(i % beats == beats - 1) for i in range(len(got))]
    data = b"".join((w & ((1 << ow) - 1)).to_bytes(ow // 8, "little") for w in got)
    y = driver.unpack_output(np.frombuffer(data, dtype=np.uint8), len(q))
    want = design.execute(q)[out["tensor"]]
    assert np.array_equal(y, want)


def test_every_xilinx_build_carries_deploy(tmp_path):
    from qloom.cli import main

    argv = ["--quiet", "build", str(tfc_path("TFC_1W1A")), "--sim-frames", "0",
            "--clock-mhz", "150", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    d = tmp_path / "TFC_1W1A" / "deploy"
    assert (d / "ip" / "component.xml").is_file() and (d / "bd_pynq-z2.tcl").is_file()
    xdc = (d / "ip" / "clocks.xdc").read_text()
    assert re.search(r"create_clock -period 6\.667 -name ap_clk \[get_ports ap_clk\]", xdc)
    _lint_tcl((d / "bd_pynq-z2.tcl").read_text())
    html = (tmp_path / "TFC_1W1A" / "report.html").read_text()  # the report links them
    for f in ("deploy/ip/component.xml", "deploy/bd_pynq-z2.tcl"):
        assert f"href='{f}'" in html


def test_non_xilinx_part_writes_no_deploy(built, tmp_path):
    design, rtl, *_ = built
    assert write_deploy(design, rtl, get_device(_lattice()), 50.0,
                        tmp_path / "d") is None  # fmt: skip
    assert not (tmp_path / "d").exists()


def _lattice() -> str:
    from qloom.synth.devices import DEVICES

    return next(d.name for d in DEVICES if not d.is_xilinx)
