"""Place and route for Lattice ECP5 / iCE40 with nextpnr, Fmax and a bitstream.

Flow (all through the YoWASP wheels, run in the work directory with relative paths)::

    harness.v  (generated, see below) + sources
      -> yosys synth_ecp5 / synth_ice40, write_json netlist.json      (qloom.synth.yosys)
      -> nextpnr-ecp5  --json --lpf pins.lpf --freq F --report report.json --textcfg top.config
         nextpnr-ice40 --json --pcf pins.pcf --freq F --report report.json --asc top.asc
      -> ecppack top.config top.bit   /   icepack top.asc top.bin

The I/O harness. A dataflow stage has AXI-Stream ports hundreds or thousands of bits wide,
far more than a package has pins (CABGA381: ~200 user I/O; SG48: 39). Leaving them as
top-level ports makes place-and-route fail, and tying them to constants would let synthesis
delete the logic. So `place_and_route` (with ``wrap=True``, the default) synthesizes a
generated top module ``qloom_pnr_top`` with four pins (``clk``, ``rst_n``, ``din``,
``dout``) around the design:

- every input port except the clock and reset is fed from one serial-in shift register
  (``din`` -> ``sr[IW-1:0]``), so each input bit is an independent, live flip-flop;
- the reset goes through a two-flip-flop synchronizer;
- every output port bit is registered and folded by a pipelined XOR tree (4 bits per LUT
  and register level) into the ``dout`` pin, so no output logic can be optimized away.

Every path into and out of the design is thus register to register, as in Vivado's
out-of-context flow with registered I/O. The harness costs about IW + 1.34*OW flip-flops
and OW/3 LUTs (reported in `PnrResult.harness`); subtract them to compare with the design
alone, or use `synthesize` for its cell counts. ``wrap=False`` places the design with its
own ports as pins (only for designs with few port bits).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qloom.errors import QloomError
from qloom.synth.devices import Device, get_device
from qloom.synth.tools import (
    Hasher,
    ToolError,
    cached_tool_run,
    default_cache_dir,
    find_tool,
    status,
)
from qloom.synth.yosys import (
    DEFAULT_TIMEOUT,
    MemoryFiles,
    ParamValue,
    Port,
    SynthResult,
    _param_literal,
    _stage_inputs,
    module_ports,
    synthesize,
)

PNR_VERSION = "1"
HARNESS_TOP = "qloom_pnr_top"
_SELF_HASH = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


class PnrError(ToolError):
    """Place and route or bitstream packing failed (message holds the log tail)."""


@dataclass
class PnrResult:
    """Outcome of synthesis + place and route (+ bitstream) for one design on one part.

    fmax_mhz: the lowest achieved Fmax over the clocks (None if nextpnr reported none);
    fmax: achieved Fmax per clock net; utilization: nextpnr's per-BEL-type
    ``{"used": n, "available": m}`` (TRELLIS_COMB, TRELLIS_FF, DP16KD, MULT18X18D, ... for
    ECP5; ICESTORM_LC, ICESTORM_RAM, ICESTORM_DSP, ... for iCE40), harness included;
    harness: what the I/O harness added (see the module docstring).
    """

    top: str
    device: str
    fmax_mhz: float | None
    fmax: dict[str, float]
    target_mhz: float
    timing_met: bool
    utilization: dict[str, dict[str, int]]
    bitstream: Path | None
    log: Path
    report: Path
    seconds: float  # place and route + packing, of the run that produced the result
    key: str
    cached: bool = False
    synth: SynthResult | None = None
    harness: dict = field(default_factory=dict)

    def used(self, bel: str) -> int:
        return int(self.utilization.get(bel, {}).get("used", 0))

    def summary(self) -> str:
        fm = f"{self.fmax_mhz:.1f} MHz" if self.fmax_mhz else "no Fmax"
        util = ", ".join(
            f"{k} {v['used']}/{v['available']}"
            for k, v in self.utilization.items()
            if v.get("used")
        )
        src = "cached" if self.cached else f"{self.seconds:.1f} s"
        return f"{self.top} on {self.device}: Fmax {fm} (target {self.target_mhz}); {util} [{src}]"

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("bitstream", "log", "report"):
            d[k] = str(d[k]) if d[k] is not None else None
        d["synth"] = self.synth.to_dict() if self.synth else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PnrResult:
        d = dict(d)
        for k in ("bitstream", "log", "report"):
            d[k] = Path(d[k]) if d.get(k) else None
        d["synth"] = SynthResult.from_dict(d["synth"]) if d.get("synth") else None
        return cls(**d)


# ---------------------------------------------------------------------------------------------
# the I/O harness
# ---------------------------------------------------------------------------------------------


def harness_verilog(
    top: str,
    ports: Sequence[Port],
    params: dict[str, int | str],
    clock: str = "ap_clk",
    reset: str | None = "ap_rst_n",
) -> tuple[str, dict]:
    """Verilog of ``qloom_pnr_top`` wrapping `top` (see the module docstring) and a summary
    ``{"input_bits", "output_bits", "ffs", "luts"}`` of what the harness adds."""
    names = {p.name for p in ports}
    if clock not in names:
        raise QloomError(
            f"{top} has no clock port {clock!r} (ports: {', '.join(sorted(names))}); "
            "pass clock=<name>"
        )
    if any(p.direction == "inout" for p in ports):
        raise QloomError(f"{top}: inout ports are not supported by the place-and-route harness")
    ins = [p for p in ports if p.direction == "input" and p.name not in (clock, reset)]
    outs = [p for p in ports if p.direction == "output"]
    iw = sum(p.width for p in ins)
    ow = sum(p.width for p in outs)
    if ow == 0:
        raise QloomError(f"{top} has no outputs: place and route would remove all its logic")

    lines = [
        f"// generated by qloom.synth.nextpnr: I/O harness around {top} for place and route",
        f"module {HARNESS_TOP} (",
        "    input  wire clk,",
        "    input  wire rst_n,",
        "    input  wire din,",
        "    output wire dout",
        ");",
    ]
    ffs = 0
    conns = [f".{clock}(clk)"]
    if reset and reset in names:
        lines += [
            "  reg [1:0] rst_sync;",
            "  always @(posedge clk) rst_sync <= {rst_sync[0], rst_n};",
        ]
        conns.append(f".{reset}(rst_sync[1])")
        ffs += 2
    if iw:
        lines.append(f"  reg [{iw - 1}:0] sr;")
        if iw == 1:
            lines.append("  always @(posedge clk) sr <= din;")
        else:
            lines.append(f"  always @(posedge clk) sr <= {{sr[{iw - 2}:0], din}};")
        ffs += iw
    off = 0
    for p in ins:
        conns.append(f".{p.name}(sr[{off + p.width - 1}:{off}])")
        off += p.width
    lines.append(f"  wire [{ow - 1}:0] o;")
    off = 0
    for p in outs:
        conns.append(f".{p.name}(o[{off + p.width - 1}:{off}])")
        off += p.width
    pstr = ""
    if params:
        pstr = " #(" + ", ".join(f".{k}({_param_literal(v)})" for k, v in params.items()) + ")"
    lines.append(f"  {top}{pstr} dut (")
    lines.append("      " + ",\n      ".join(conns))
    lines.append("  );")
    # register the outputs, then fold 4:1 per level with a register after each level
    lines.append(f"  reg [{ow - 1}:0] x0;")
    lines.append("  always @(posedge clk) x0 <= o;")
    ffs += ow
    luts = 0
    width, level = ow, 0
    while width > 1:
        nxt = (width + 3) // 4
        pad = nxt * 4 - width
        padded = f"{{{pad}'b0, x{level}}}" if pad else f"x{level}"
        lines += [
            f"  wire [{nxt * 4 - 1}:0] p{level} = {padded};",
            f"  reg [{nxt - 1}:0] x{level + 1};",
            f"  integer i{level};",
            "  always @(posedge clk)",
            f"    for (i{level} = 0; i{level} < {nxt}; i{level} = i{level} + 1)",
            f"      x{level + 1}[i{level}] <= ^p{level}[4*i{level} +: 4];",
        ]
        ffs += nxt
        luts += nxt
        width, level = nxt, level + 1
    lines += [f"  assign dout = x{level}[0];", "endmodule", ""]
    info = {"wrapped": True, "input_bits": iw, "output_bits": ow, "ffs": ffs, "luts": luts}
    return "\n".join(lines), info


def _constraints(dev: Device, freq_mhz: float, clock_port: str) -> tuple[str, str]:
    """(file name, text) of a minimal LPF / PCF: the clock on the board's clock pin and its
    frequency; every other pin is left to the placer (``--lpf/pcf-allow-unconstrained``)."""
    text = ["# generated by qloom.synth.nextpnr"]
    if dev.family == "ecp5":
        if dev.clock_pin:
            text += [
                f'LOCATE COMP "{clock_port}" SITE "{dev.clock_pin}";',
                f'IOBUF PORT "{clock_port}" IO_TYPE=LVCMOS33;',
            ]
        text.append(f'FREQUENCY PORT "{clock_port}" {freq_mhz:g} MHZ;')
        return "pins.lpf", "\n".join(text) + "\n"
    if dev.clock_pin:
        text.append(f"set_io {clock_port} {dev.clock_pin}")
    return "pins.pcf", "\n".join(text) + "\n"


def parse_report(report: dict) -> tuple[dict[str, float], dict[str, float], dict]:
    """(achieved Fmax per clock, constraint per clock, utilization) from nextpnr's report."""
    fmax, target = {}, {}
    for clk, v in (report.get("fmax") or {}).items():
        if isinstance(v, dict) and "achieved" in v:
            fmax[clk] = round(float(v["achieved"]), 2)
            target[clk] = float(v.get("constraint", 0.0))
    util = {
        k: {"used": int(v.get("used", 0)), "available": int(v.get("available", 0))}
        for k, v in (report.get("utilization") or {}).items()
    }
    return fmax, target, util


# ---------------------------------------------------------------------------------------------
# the flow
# ---------------------------------------------------------------------------------------------


def place_and_route(
    sources: Sequence[Path | str],
    top: str,
    params: dict[str, ParamValue] | None = None,
    device: Device | str = "LFE5U-85F",
    workdir: Path | str | None = None,
    memory_files: MemoryFiles = (),
    freq_mhz: float = 100.0,
    *,
    wrap: bool = True,
    clock: str = "ap_clk",
    reset: str | None = "ap_rst_n",
    bitstream: bool = True,
    seed: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    extra_nextpnr_args: Sequence[str] = (),
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
    quiet: bool | None = None,
) -> PnrResult:
    """Synthesize, place and route `top` on an ECP5 or iCE40 part; return Fmax, utilization
    and the bitstream (``top.bit`` for ECP5, ``top.bin`` for iCE40) in `workdir`.

    freq_mhz: the clock target given to nextpnr (``--freq``); a miss is not an error
        (``--timing-allow-fail``): check `PnrResult.timing_met`.
    wrap: place the design inside the 4-pin I/O harness (see the module docstring).
    memory_files: as for `qloom.synth.yosys.synthesize` (a mapping keeps relative paths such
        as ``mem/w0.hex``, as a generated top names its memory files).
    Cached by content under ``$QLOOM_CACHE/pnr`` (or `cache_dir`, whose ``synth``
    subdirectory then caches the synthesis step). Raises QloomError subclasses on failure.
    """
    dev = get_device(device)
    if dev.nextpnr_tool is None:
        raise QloomError(
            f"{dev.name} is a {dev.family_name} part: open place and route here supports "
            "ECP5 and iCE40 only (use synthesize() for Xilinx cell counts, or "
            "qloom.synth.vivado for a Vivado script)"
        )
    staged = _stage_inputs(sources, params or {}, memory_files)
    pnr_tool = find_tool(f"nextpnr-{dev.nextpnr_tool}")
    pack_tool = find_tool("ecppack" if dev.family == "ecp5" else "icepack") if bitstream else None
    yosys = find_tool("yosys")
    key = (
        Hasher()
        .feed(PNR_VERSION, _SELF_HASH, yosys.version, pnr_tool.version)
        .feed(pack_tool.version if pack_tool else None, dev.name, dev.nextpnr_args, top)
        .feed(sorted(staged.params.items()), staged.sources, float(freq_mhz), wrap, clock, reset)
        .feed(bitstream, seed, list(extra_nextpnr_args), dev.clock_pin)
        .feed(sorted((n, Hasher().feed(d).hexdigest(32)) for n, d in staged.files.items()))
        .hexdigest()
    )
    key = f"{top}-{dev.name}-{key}"
    cache = Path(cache_dir) if cache_dir else default_cache_dir("pnr")
    wd = Path(workdir).resolve() if workdir is not None else None
    bit_name = ("top.bit" if dev.family == "ecp5" else "top.bin") if bitstream else None
    cons_name = "pins.lpf" if dev.family == "ecp5" else "pins.pcf"
    outputs = ["report.json", "nextpnr.log", "yosys.log", "stat.json", cons_name]
    outputs += (["harness.v"] if wrap else []) + ([bit_name] if bit_name else [])

    def run(run_dir: Path) -> PnrResult:
        return _run_flow(
            staged, top, dev, run_dir, freq_mhz, wrap, clock, reset, bit_name, seed,
            timeout, list(extra_nextpnr_args), pnr_tool, pack_tool, key, cache_dir, quiet,
        )  # fmt: skip

    return cached_tool_run(
        cache, key, wd, outputs, PNR_VERSION, PnrResult.from_dict, _repoint, run, use_cache
    )


def _run_flow(
    staged, top, dev, run_dir, freq_mhz, wrap, clock, reset, bit_name, seed, timeout,
    extra, pnr_tool, pack_tool, key, cache_dir, quiet,
) -> PnrResult:  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    sources = [staged.paths[n] for n in staged.sources]
    # by their staged names: a memory file staged as mem/w0.hex stays there for Yosys
    mems = {n: staged.paths[n] for n in staged.files if n not in staged.sources}
    synth_cache = Path(cache_dir) / "synth" if cache_dir else None
    if wrap:
        ports = module_ports(sources, top, staged.params, run_dir, mems)
        text, harness = harness_verilog(top, ports, staged.params, clock, reset)
        (run_dir / "harness.v").write_text(text)
        synth = synthesize(
            [*sources, run_dir / "harness.v"], HARNESS_TOP, {}, dev, run_dir, mems,
            timeout, netlist=True, cache_dir=synth_cache, quiet=quiet,
        )  # fmt: skip
    else:
        synth = synthesize(
            sources, top, staged.params, dev, run_dir, mems, timeout, netlist=True,
            cache_dir=synth_cache, quiet=quiet,
        )  # fmt: skip
        harness = {"wrapped": False, "input_bits": 0, "output_bits": 0, "ffs": 0, "luts": 0}
    cons_name, cons_text = _constraints(dev, freq_mhz, "clk" if wrap else clock)
    (run_dir / cons_name).write_text(cons_text)
    for stale in ("report.json", "nextpnr.log", "top.config", "top.asc", "top.bit", "top.bin"):
        (run_dir / stale).unlink(missing_ok=True)
    log = run_dir / "nextpnr.log"
    args = [*dev.nextpnr_args, "--json", "netlist.json"]
    if dev.family == "ecp5":
        args += ["--lpf", cons_name, "--lpf-allow-unconstrained", "--textcfg", "top.config"]
    else:
        args += ["--pcf", cons_name, "--pcf-allow-unconstrained", "--asc", "top.asc"]
    args += ["--freq", f"{freq_mhz:g}", "--report", "report.json", "--timing-allow-fail"]
    args += ["--seed", str(seed), *extra]
    name = HARNESS_TOP if wrap else top
    with status(f"placing and routing {top} on {dev.name}...", quiet):
        try:
            seconds = pnr_tool.run(
                args, run_dir, log, timeout, what=f"nextpnr-{dev.family} for {top} ({name})"
            )
            if bit_name:
                src = "top.config" if dev.family == "ecp5" else "top.asc"
                seconds += pack_tool.run(
                    [src, bit_name], run_dir, log, timeout, what=f"bitstream packing of {top}"
                )
        except ToolError as e:
            raise PnrError(str(e)) from None
    try:
        report = json.loads((run_dir / "report.json").read_text())
    except (OSError, ValueError) as e:
        raise PnrError(f"nextpnr wrote no readable report.json ({e}); log: {log}") from None
    fmax, target, util = parse_report(report)
    fmin = min(fmax.values()) if fmax else None
    met = all(fmax[c] >= target.get(c, 0.0) for c in fmax) if fmax else False
    return PnrResult(
        top=top,
        device=dev.name,
        fmax_mhz=fmin,
        fmax=fmax,
        target_mhz=float(freq_mhz),
        timing_met=met,
        utilization=util,
        bitstream=(run_dir / bit_name) if bit_name else None,
        log=log,
        report=run_dir / "report.json",
        seconds=round(seconds, 3),
        key=key,
        cached=False,
        synth=synth,
        harness=harness,
    )


def _repoint(result: PnrResult, where: Path) -> None:
    result.log = where / "nextpnr.log"
    result.report = where / "report.json"
    if result.synth is not None:
        result.synth.log = where / "yosys.log"
        result.synth.stat_json = where / "stat.json"
        if result.synth.netlist is not None and not (where / "netlist.json").is_file():
            result.synth.netlist = None  # not kept in the place-and-route cache
    if result.bitstream is not None:
        result.bitstream = where / result.bitstream.name


def fmax_of(report_path: Path | str) -> float | None:
    """Lowest achieved Fmax in a nextpnr ``--report`` file (None if it has none)."""
    fmax, _, _ = parse_report(json.loads(Path(report_path).read_text()))
    return min(fmax.values()) if fmax else None
