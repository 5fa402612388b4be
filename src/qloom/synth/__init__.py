"""Synthesis and place-and-route with open tools (Yosys, nextpnr), plus Vivado TCL export.

- `devices`: the FPGA device database (`get_device`, `Device`).
- `yosys`: out-of-context synthesis with cell counts, cached by content (`synthesize`).
- `nextpnr`: ECP5 / iCE40 place and route behind an I/O-reducing harness, Fmax, bitstream
  (`place_and_route`).
- `vivado`: a TCL script for out-of-context Vivado synthesis (`vivado_tcl`), not run here.
"""

from qloom.synth.devices import DEVICES, Device, UnknownDeviceError, get_device, known_devices
from qloom.synth.nextpnr import PnrError, PnrResult, harness_verilog, place_and_route
from qloom.synth.tools import ToolError, tool_available
from qloom.synth.vivado import parse_utilization, vivado_tcl, write_vivado_project
from qloom.synth.yosys import (
    Port,
    SynthError,
    SynthResult,
    module_ports,
    synthesize,
    synthesize_many,
)

__all__ = [
    "DEVICES",
    "Device",
    "PnrError",
    "PnrResult",
    "Port",
    "SynthError",
    "SynthResult",
    "ToolError",
    "UnknownDeviceError",
    "get_device",
    "harness_verilog",
    "known_devices",
    "module_ports",
    "parse_utilization",
    "place_and_route",
    "synthesize",
    "synthesize_many",
    "tool_available",
    "vivado_tcl",
    "write_vivado_project",
]
