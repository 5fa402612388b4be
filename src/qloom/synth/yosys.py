"""Out-of-context synthesis with Yosys, cached by content.

`synthesize` copies the Verilog sources and the ``$readmemh`` memory files into a work
directory, writes a Yosys script (``read_verilog -sv``, ``chparam``, ``synth_xilinx`` /
``synth_ecp5`` / ``synth_ice40``, ``stat -json``), runs it there with relative paths (the
YoWASP build cannot see absolute ``/tmp`` paths) and parses the cell counts into a
`SynthResult`. Results are cached under ``$QLOOM_CACHE/synth`` (default
``~/.cache/qloom/synth``) by a hash of the sources, memory files, parameters, device, script
and Yosys version, so a second call with the same inputs returns at once without Yosys.

Example::

    from qloom.synth import synthesize
    r = synthesize([lib / "qloom_fifo.v"], "qloom_fifo", {"WIDTH": 8, "DEPTH": 256},
                   "xc7z020", workdir=build / "synth" / "fifo0")
    print(r.luts, r.ffs, r.bram, r.cached)

Parameters whose value is a `Path`, or a string holding an absolute path to an existing file,
are treated as memory files: the file is copied into the work directory and the parameter is
rewritten to its bare name, so ``WEIGHT_FILE=/abs/build/rtl/w0.mem`` works unchanged.

Xilinx counting (comparable to Vivado's ``report_utilization``): LUT1..LUT6 and INV are LUTs
as logic; LUTRAM/SRL primitives count as the LUTs they occupy (RAM32M = 4, RAM64X1D = 2,
SRLC32E = 1, ...) and are also reported separately; FDRE/FDSE/FDCE/FDPE are FFs; BRAM is
counted in BRAM18 units (a RAMB36 = 2); DSP48E1/E2 and URAM288 are counted as blocks. ECP5:
LUT4 + 2 per CCU2C (a carry cell holds two LUT4s) as LUTs, TRELLIS_FF, DP16KD, MULT18X18D,
TRELLIS_DPR16X4 (distributed RAM, 4 LUT4 each). iCE40: SB_LUT4, SB_DFF*, SB_RAM40_4K,
SB_MAC16, SB_SPRAM256KA. The iCE40 has no distributed RAM, so memories marked
``ram_style``/``rom_style = "distributed"`` are built from logic there (Yosys would refuse them).

Large initialised block RAMs (Xilinx, no netlist asked for, memory files of `BRAM_INIT_STRIP_BYTES`
or more): ``synth_xilinx``'s ``map_memory`` step is run as its own commands with the block RAM
cells' ``INIT`` dropped between ``memory_libmap`` and the block RAM techmap. That techmap
elaborates its template once per distinct parameter set, and every initialised 36-Kbit block has
its own ``INIT``: ~1.1 s per block (a 4,608 x 512 2-bit MVAU: 128 RAMB36, 149 of its 174 s).
Without ``INIT`` the blocks share a template (25 s in all); the cell counts are the same, since
nothing after ``memory_libmap`` reads a block RAM's contents (only the netlist would miss them).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qloom.errors import QloomError
from qloom.synth.devices import Device, get_device
from qloom.synth.tools import (
    Hasher,
    Tool,
    ToolError,
    cached_tool_run,
    default_cache_dir,
    find_tool,
    status,
)

SYNTH_VERSION = "1"  # bump when the script or the parsing changes meaning
DEFAULT_TIMEOUT = 3600.0

ParamValue = int | bool | str | Path
# memory files: paths (staged by file name), or staged name -> path, where a name may keep a
# relative directory ("mem/w0.hex") as the Verilog that reads it names it
MemoryFiles = Sequence[Path | str] | Mapping[str, Path | str]


class SynthError(ToolError):
    """Synthesis failed (message holds the end of the Yosys log)."""


# ---------------------------------------------------------------------------------------------
# cell classification
# ---------------------------------------------------------------------------------------------

_XILINX_LUT = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "INV"}
# LUTs occupied by each distributed-RAM / shift-register primitive (UG953 / UG974)
_XILINX_LUTRAM = {
    "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
    "RAM512X1S": 8, "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
    "RAM256X1D": 8, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
    "RAM32X16DR8": 8, "RAM64X8SW": 8, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
    "CFGLUT5": 1,
}  # fmt: skip
_XILINX_FF = {"FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1"}
_XILINX_LATCH = {"LDCE", "LDPE"}
_XILINX_BRAM18 = {
    "RAMB18E1": 1, "RAMB36E1": 2, "FIFO18E1": 1, "FIFO36E1": 2,
    "RAMB18E2": 1, "RAMB36E2": 2, "FIFO18E2": 1, "FIFO36E2": 2,
}  # fmt: skip
_XILINX_DSP = {"DSP48E1", "DSP48E2", "DSP48A1"}
_XILINX_URAM = {"URAM288", "URAM288_BASE"}
_XILINX_CARRY = {"CARRY4", "CARRY8"}
_XILINX_MUX = {"MUXF7", "MUXF8", "MUXF9"}


def classify(cells: dict[str, int], family: str) -> dict[str, float]:
    """Resource totals from per-cell-type counts (see the module docstring for the rules)."""
    r = dict.fromkeys(
        ("lut_logic", "lutram", "ffs", "latches", "bram", "dsp", "uram", "carry", "muxes"), 0
    )
    if family in ("xc7", "xcu", "xcup"):
        for c, n in cells.items():
            if c in _XILINX_LUT:
                r["lut_logic"] += n
            elif c in _XILINX_LUTRAM:
                r["lutram"] += n * _XILINX_LUTRAM[c]
            elif c in _XILINX_FF:
                r["ffs"] += n
            elif c in _XILINX_LATCH:
                r["latches"] += n
            elif c in _XILINX_BRAM18:
                r["bram"] += n * _XILINX_BRAM18[c]
            elif c in _XILINX_DSP:
                r["dsp"] += n
            elif c in _XILINX_URAM:
                r["uram"] += n
            elif c in _XILINX_CARRY:
                r["carry"] += n
            elif c in _XILINX_MUX:
                r["muxes"] += n
    elif family == "ecp5":
        for c, n in cells.items():
            if c == "LUT4":
                r["lut_logic"] += n
            elif c == "CCU2C":
                r["lut_logic"] += 2 * n
                r["carry"] += n
            elif c in ("TRELLIS_DPR16X4", "DPR16X4C", "SPR16X4C"):
                r["lutram"] += 4 * n
            elif c in ("TRELLIS_FF",) or re.fullmatch(r"FD1[PS]3[A-Z]{2}", c):
                r["ffs"] += n
            elif c in ("DP16KD", "PDPW16KD"):
                r["bram"] += n
            elif c in ("MULT18X18D", "MULT9X9D"):
                r["dsp"] += n
            elif c in ("PFUMX", "L6MUX21"):
                r["muxes"] += n
    elif family == "ice40":
        for c, n in cells.items():
            if c == "SB_LUT4":
                r["lut_logic"] += n
            elif c.startswith("SB_DFF"):
                r["ffs"] += n
            elif c.startswith("SB_RAM40_4K"):
                r["bram"] += n
            elif c == "SB_MAC16":
                r["dsp"] += n
            elif c == "SB_SPRAM256KA":
                r["uram"] += n
            elif c == "SB_CARRY":
                r["carry"] += n
    else:
        raise ValueError(f"unknown family {family!r}")
    r["luts"] = r["lut_logic"] + r["lutram"]
    return r


# ---------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------


@dataclass
class SynthResult:
    """Cell counts of one synthesized module for one device.

    luts: LUTs as logic + LUTs as memory (Vivado's "Slice LUTs"); lut_logic / lutram split it.
    bram: in the device's block unit (BRAM18 for Xilinx, a RAMB36 counts 2; EBR for Lattice).
    seconds: Yosys wall time of the run that produced the result (also when `cached`).
    """

    top: str
    device: str
    family: str
    cells: dict[str, int]
    luts: int
    lut_logic: int
    lutram: int
    ffs: int
    latches: int
    bram: int
    dsp: int
    uram: int
    carry: int
    muxes: int
    warnings: int
    seconds: float
    key: str
    cached: bool = False
    log: Path | None = None
    stat_json: Path | None = None
    netlist: Path | None = None
    params: dict[str, str] = field(default_factory=dict)

    def resources(self) -> dict[str, int]:
        return {
            "LUT": self.luts,
            "LUTRAM": self.lutram,
            "FF": self.ffs,
            "BRAM": self.bram,
            "DSP": self.dsp,
            "URAM": self.uram,
        }

    def utilization(self, device: Device | str | None = None) -> dict[str, float]:
        """Fraction of the device used, per resource (absent resources omitted)."""
        dev = get_device(device or self.device)
        cap = dev.capacity()
        used = self.resources()
        return {k: used[k] / cap[k] for k in cap if cap[k] > 0}

    def fits(self, device: Device | str | None = None, margin: float = 1.0) -> bool:
        return all(v <= margin for v in self.utilization(device).values())

    def summary(self) -> str:
        dev = get_device(self.device)
        parts = [f"{self.luts} LUT"]
        if self.lutram:
            parts[-1] += f" ({self.lutram} as memory)"
        parts += [f"{self.ffs} FF", f"{self.bram} {dev.bram_name}", f"{self.dsp} DSP"]
        if self.uram:
            parts.append(f"{self.uram} {dev.uram_name}")
        src = "cached" if self.cached else f"{self.seconds:.1f} s"
        return f"{self.top} on {self.device}: {', '.join(parts)} [{src}]"

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("log", "stat_json", "netlist"):
            d[k] = str(d[k]) if d[k] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SynthResult:
        d = dict(d)
        for k in ("log", "stat_json", "netlist"):
            d[k] = Path(d[k]) if d.get(k) else None
        return cls(**d)


def parse_stat(stat: dict, top: str) -> dict[str, int]:
    """Per-cell-type counts of `top` from ``stat -json`` output (flattened designs)."""
    mods = stat.get("modules", {})
    entry = mods.get(f"\\{top}") or mods.get(top)
    if entry is None:
        entry = stat.get("design")
    if entry is None:
        raise SynthError(f"stat output has no module {top!r}")
    cells = entry.get("num_cells_by_type", {})
    return {str(k).lstrip("\\"): int(v) for k, v in cells.items()}


# ---------------------------------------------------------------------------------------------
# staging inputs
# ---------------------------------------------------------------------------------------------


@dataclass
class _Staged:
    sources: list[str]  # names relative to the work directory
    files: dict[str, bytes]  # every staged file: name -> content
    params: dict[str, int | str]  # memory-file parameters rewritten to bare names
    paths: dict[str, Path]  # staged name -> original path


def _stage_inputs(
    sources: Sequence[Path | str],
    params: dict[str, ParamValue],
    memory_files: MemoryFiles,
) -> _Staged:
    files: dict[str, bytes] = {}
    origin: dict[str, Path] = {}

    def add(path: Path, what: str, name: str | None = None) -> str:
        path = Path(path)
        if not path.is_file():
            raise QloomError(f"{what} {path} does not exist")
        name = path.name if name is None else name
        parts = name.split("/")
        if not all(re.fullmatch(r"[A-Za-z0-9_.+\-]+", n) and n not in (".", "..") for n in parts):
            raise QloomError(
                f"{what} {path}: staged as {name!r}, but a file name must be [A-Za-z0-9_.+-] "
                "only (a memory file's relative directories too, no '.' or '..')"
            )
        data = path.read_bytes()
        if name in files and files[name] != data:
            raise QloomError(
                f"two different files named {name!r} ({origin[name]} and {path}): "
                "synthesis stages all files in one directory, rename one"
            )
        files[name] = data
        origin[name] = path
        return name

    srcs = []
    for s in sources:
        n = add(Path(s), "Verilog source")
        if n not in srcs:
            srcs.append(n)
    mem_names = {}
    if isinstance(memory_files, Mapping):
        for n, m in memory_files.items():
            mem_names[str(Path(m))] = add(Path(m), "memory file", str(n))
    else:
        for m in memory_files:
            mem_names[str(Path(m))] = add(Path(m), "memory file")
    out_params: dict[str, int | str] = {}
    for k, v in (params or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", str(k)):
            raise QloomError(f"bad parameter name {k!r}")
        if isinstance(v, bool):
            out_params[k] = int(v)
        elif isinstance(v, int):
            out_params[k] = v
        elif isinstance(v, Path) or (isinstance(v, str) and os.path.isabs(v) and Path(v).is_file()):
            out_params[k] = add(Path(v), f"memory file (parameter {k})")
        elif isinstance(v, str):
            if '"' in v or "\n" in v or "\\" in v:
                raise QloomError(f"parameter {k}: string must not contain quotes or newlines")
            out_params[k] = mem_names.get(v, v)
        else:
            raise QloomError(f"parameter {k}: unsupported value {v!r} (use int, str or Path)")
    return _Staged(srcs, files, out_params, origin)


def _param_literal(v: int | str) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    return str(int(v))


def _read_commands(staged: _Staged, frontend: str, top: str) -> list[str]:
    if frontend == "verilog":
        cmds = [f"read_verilog -sv {s}" for s in staged.sources]
        if staged.params:
            sets = " ".join(f"-set {k} {_param_literal(v)}" for k, v in staged.params.items())
            cmds.append(f"chparam {sets} {top}")
    elif frontend == "slang":
        gs = " ".join(f"-G {k}={_param_literal(v)}" for k, v in staged.params.items())
        cmds = [f"read_slang -j 1 --top {top} {gs} {' '.join(staged.sources)}".replace("  ", " ")]
    else:
        raise QloomError(f"unknown frontend {frontend!r} (use 'verilog' or 'slang')")
    cmds.append(f"hierarchy -check -top {top}")
    return cmds


def _synth_command(device: Device, top: str, extra: Sequence[str]) -> str:
    cmd = f"{device.synth_command} -top {top}"
    if device.is_xilinx:
        cmd += " -flatten -noiopad -noclkbuf"  # out of context: no I/O or clock buffers
    return " ".join([cmd, *extra])


# memory files at least this large (bytes, all together) have their block RAMs' INIT dropped
# after memory_libmap (module docstring): below it the script is plain synth_xilinx
BRAM_INIT_STRIP_BYTES = 1 << 16


@functools.cache
def _map_memory_commands(cmd: tuple[str, ...], synth: str) -> tuple[str, ...] | None:
    """The commands `synth`'s ``map_memory`` step runs (``memory_libmap ...``, then its
    techmaps), as Yosys echoes them for a one-register module; None if they do not look like
    that (the caller then keeps `synth` whole)."""
    with tempfile.TemporaryDirectory(prefix="qloom-mapmem-") as tmp:
        wd = Path(tmp)
        (wd / "probe.v").write_text(
            "module qloom_probe(input clk, input d, output reg q);\n"
            "  always @(posedge clk) q <= d;\nendmodule\n"
        )
        log = wd / "probe.log"
        try:
            Tool("yosys", cmd, "").run(
                ["-p", f"read_verilog probe.v; echo on; {synth} -run map_memory:map_ffram"],
                cwd=wd, log=log, timeout=300, what="Yosys (map_memory commands)",
            )  # fmt: skip
        except ToolError:
            return None
        echoed = [ln[len("yosys> "):].strip() for ln in log.read_text(errors="replace")
                  .splitlines() if ln.startswith("yosys> ")]  # fmt: skip
    steps = [c for c in echoed if not c.startswith(("read_verilog", "echo", "synth_"))]
    if (
        not steps
        or not steps[0].startswith("memory_libmap ")
        or not all(c.startswith("techmap -map ") for c in steps[1:])
    ):
        return None
    return tuple(steps)


def _xilinx_synth_script(yosys, dev: Device, top: str, extra: Sequence[str]) -> list[str]:
    """``synth_xilinx`` split around ``map_memory``: the block RAM cells' INIT dropped before
    their techmap (see the module docstring); the whole command where the split is unknown."""
    whole = _synth_command(dev, top, extra)
    if any("-run" in a.split() for a in extra):
        return [whole]
    steps = _map_memory_commands(tuple(yosys.cmd), _synth_command(dev, "qloom_probe", extra))
    if steps is None:
        return [whole]
    return [
        f"{whole} -run :map_memory",
        steps[0],
        "# contents do not change the counts; every initialised block would be its own template",
        "setparam -unset INIT t:$__XILINX_BLOCKRAM_*",
        *steps[1:],
        f"{whole} -run map_ffram:",
    ]


def _write_files(staged: _Staged, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    for name, data in staged.files.items():
        p = workdir / name
        if not (p.is_file() and p.read_bytes() == data):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# synthesis
# ---------------------------------------------------------------------------------------------


def synthesize(
    sources: Sequence[Path | str],
    top: str,
    params: dict[str, ParamValue] | None = None,
    device: Device | str = "xc7z020",
    workdir: Path | str | None = None,
    memory_files: MemoryFiles = (),
    timeout: float = DEFAULT_TIMEOUT,
    *,
    netlist: bool = False,
    extra_synth_args: Sequence[str] = (),
    frontend: str = "verilog",
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
    quiet: bool | None = None,
) -> SynthResult:
    """Synthesize `top` out of context for `device`; return cell counts (cached by content).

    sources: Verilog files (copied by name into `workdir`; names must be unique).
    params: top-level parameter overrides (int / bool / str; Path or absolute-path strings
        are memory files, copied and rewritten to bare names).
    memory_files: further files read by ``$readmemh`` (copied by name into `workdir`; a
        mapping ``{"mem/w0.hex": path}`` copies each to that relative path instead).
    workdir: where Yosys runs and where ``synth.ys``, ``yosys.log``, ``stat.json`` (and
        ``netlist.json``) are left; a cache hit copies them there. None: results only in
        the cache.
    netlist: also write the synthesized netlist as JSON (for nextpnr).
    extra_synth_args: appended to the synth command (e.g. ``-nodsp``, ``-nobram``).
    frontend: "verilog" (``read_verilog -sv``) or "slang" (``read_slang``, full SV).
    Raises SynthError (a QloomError) with the log tail on failure or timeout.
    """
    dev = get_device(device)
    staged = _stage_inputs(sources, params or {}, memory_files)
    if not staged.sources:
        raise QloomError("synthesize: no Verilog sources given")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise QloomError(f"bad top module name {top!r}")
    script = _read_commands(staged, frontend, top)
    if dev.family == "ice40":
        # iCE40 has no distributed RAM: memory_libmap rejects ram_style/rom_style =
        # "distributed" ("no valid mapping found"); build those memories from logic instead.
        script += [
            'setattr -set ram_style "logic" a:ram_style=distributed',
            'setattr -set rom_style "logic" a:rom_style=distributed',
        ]
    yosys = find_tool("yosys")
    mem_bytes = sum(len(d) for n, d in staged.files.items() if n not in staged.sources)
    if dev.is_xilinx and not netlist and mem_bytes >= BRAM_INIT_STRIP_BYTES:
        script += _xilinx_synth_script(yosys, dev, top, extra_synth_args)
    else:
        script.append(_synth_command(dev, top, extra_synth_args))
    script.append("tee -q -o stat.json stat -json")
    if netlist:
        script.append("write_json netlist.json")
    script_text = "\n".join(script) + "\n"

    key = (
        Hasher()
        .feed(SYNTH_VERSION, yosys.version, dev.name, dev.family, top, script_text)
        .feed(sorted((n, Hasher().feed(d).hexdigest(32)) for n, d in staged.files.items()))
        .hexdigest()
    )
    key = f"{top}-{dev.name}-{key}"
    cache = Path(cache_dir) if cache_dir else default_cache_dir("synth")
    wd = Path(workdir).resolve() if workdir is not None else None
    outputs = ["yosys.log", "stat.json", "synth.ys"] + (["netlist.json"] if netlist else [])

    def run(run_dir: Path) -> SynthResult:
        result = _run(yosys, staged, script_text, dev, top, key, run_dir, timeout, quiet)
        result.netlist = (run_dir / "netlist.json") if netlist else None
        return result

    return cached_tool_run(
        cache, key, wd, outputs, SYNTH_VERSION, SynthResult.from_dict, _repoint, run, use_cache
    )


def _run(yosys, staged, script_text, dev, top, key, run_dir, timeout, quiet) -> SynthResult:
    _write_files(staged, run_dir)
    (run_dir / "synth.ys").write_text(script_text)
    for stale in ("stat.json", "netlist.json", "yosys.log"):
        (run_dir / stale).unlink(missing_ok=True)
    log = run_dir / "yosys.log"
    with status(f"synthesizing {top} for {dev.name}...", quiet):
        try:
            seconds = yosys.run(
                ["-q", "-s", "synth.ys"],
                cwd=run_dir,
                log=log,
                timeout=timeout,
                what=f"Yosys synthesis of {top} for {dev.name}",
            )
        except ToolError as e:
            raise SynthError(str(e)) from None
    try:
        stat = json.loads((run_dir / "stat.json").read_text())
    except (OSError, ValueError) as e:
        raise SynthError(f"Yosys wrote no readable stat.json for {top} ({e}); log: {log}") from None
    cells = parse_stat(stat, top)
    counts = classify(cells, dev.family)
    log_text = log.read_text(errors="replace")
    warnings = sum(1 for line in log_text.splitlines() if line.startswith("Warning:"))
    return SynthResult(
        top=top,
        device=dev.name,
        family=dev.family,
        cells=dict(sorted(cells.items())),
        luts=int(counts["luts"]),
        lut_logic=int(counts["lut_logic"]),
        lutram=int(counts["lutram"]),
        ffs=int(counts["ffs"]),
        latches=int(counts["latches"]),
        bram=int(counts["bram"]),
        dsp=int(counts["dsp"]),
        uram=int(counts["uram"]),
        carry=int(counts["carry"]),
        muxes=int(counts["muxes"]),
        warnings=warnings,
        seconds=round(seconds, 3),
        key=key,
        cached=False,
        log=log,
        stat_json=run_dir / "stat.json",
        params={k: str(v) for k, v in staged.params.items()},
    )


def _repoint(result: SynthResult, where: Path) -> None:
    result.log = where / "yosys.log"
    result.stat_json = where / "stat.json"
    if result.netlist is not None:
        result.netlist = where / "netlist.json"


# ---------------------------------------------------------------------------------------------
# ports and batches
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input" | "output" | "inout"
    width: int


def module_ports(
    sources: Sequence[Path | str],
    top: str,
    params: dict[str, ParamValue] | None = None,
    workdir: Path | str | None = None,
    memory_files: MemoryFiles = (),
    frontend: str = "verilog",
    timeout: float = 600.0,
) -> list[Port]:
    """The ports of `top` with `params` applied, as Yosys elaborates them (~0.3 s)."""
    staged = _stage_inputs(sources, params or {}, memory_files)
    script = _read_commands(staged, frontend, top)
    script.append(f"tee -q -o ports.txt portlist {top}")
    yosys = find_tool("yosys")
    tmp = None
    if workdir is None:
        tmp = Path(tempfile.mkdtemp(prefix="qloom-ports-"))
    wd = Path(workdir).resolve() if workdir is not None else tmp
    try:
        _write_files(staged, wd)
        (wd / "ports.ys").write_text("\n".join(script) + "\n")
        log = wd / "ports.log"
        log.unlink(missing_ok=True)
        try:
            yosys.run(["-q", "-s", "ports.ys"], cwd=wd, log=log, timeout=timeout,
                      what=f"Yosys elaboration of {top}")  # fmt: skip
        except ToolError as e:
            raise SynthError(str(e)) from None
        return parse_portlist((wd / "ports.txt").read_text())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def parse_portlist(text: str) -> list[Port]:
    ports = []
    for line in text.splitlines():
        m = re.match(r"\s*(input|output|inout)\s+\[(-?\d+):(-?\d+)\]\s+(\S+)", line)
        if m:
            width = abs(int(m.group(2)) - int(m.group(3))) + 1
            ports.append(Port(m.group(4).lstrip("\\"), m.group(1), width))
    return ports


def synthesize_many(jobs: Sequence[dict], workers: int | None = None) -> list[SynthResult]:
    """Run several `synthesize` calls (each a dict of its keyword arguments) in parallel
    threads (default: 2, or the CPU count if smaller); results in the order given.

    Typical use: one job per dataflow stage, each out of context, so a large network is a
    set of small cached syntheses instead of one slow flat run.
    """
    workers = workers or max(1, min(2, os.cpu_count() or 1))
    jobs = [dict(j, quiet=True) for j in jobs]
    with status(f"synthesizing {len(jobs)} modules ({workers} in parallel)..."):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(synthesize, **j) for j in jobs]
            return [f.result() for f in futures]
