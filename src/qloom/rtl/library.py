"""The RTL library's files (`lib/qloom_*.v`) and which files a module needs.

A library module may instantiate other library modules (qloom_mvau and qloom_thresholding
use qloom_threshold_lanes, ...). `library_files(["qloom_mvau"])` returns every file to compile for
it: its own, then its submodules', transitively, each once. The dependencies are read from the
Verilog itself (the `qloom_*` modules a file instantiates that have a file in `lib/`), so a new
submodule needs no list to be kept up to date here. Every tool that is handed library sources
(Verilator builds and lint, Yosys synthesis, nextpnr, the Vivado script, the generated top's
`hdl/` copies) takes them from here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from qloom.errors import QloomError

LIB = Path(__file__).resolve().parent / "lib"

# `qloom_x #(` or `qloom_x u_name (`: an instantiation (a declaration starts with `module`)
_INSTANCE = re.compile(r"(?<![\w$`])(qloom_\w+)\s*(?:#\s*\(|[A-Za-z_][\w$]*\s*\()")
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def library_module(name: str) -> Path:
    """The file of library module `name`; QloomError if there is none."""
    path = LIB / f"{name}.v"
    if not re.fullmatch(r"qloom_\w+", name) or not path.is_file():
        raise QloomError(f"no RTL library module {name!r} (no file {path.name} in {LIB})")
    return path


def submodules(name: str) -> list[str]:
    """The library modules that `name`'s file instantiates directly (in order of appearance).

    The deliberate error instances of an illegal parameter set (`qloom_<mod>_error_...`, no
    file) are not dependencies; any other `qloom_*` instance without a file is an error."""
    text = _COMMENTS.sub(" ", library_module(name).read_text())
    found = []
    for m in dict.fromkeys(_INSTANCE.findall(text)):
        if m == name or "_error" in m:  # its own declaration `module qloom_x #(`
            continue
        if not (LIB / f"{m}.v").is_file():
            raise QloomError(f"{name}.v instantiates {m}, which has no file in {LIB}")
        found.append(m)
    return found


def library_files(modules: str | Iterable[str]) -> list[Path]:
    """Every library file that `modules` need: each module's own file, then its submodules'
    (transitively), each file once, in a stable order."""
    names = [modules] if isinstance(modules, str) else list(modules)
    seen: dict[str, Path] = {}

    def visit(name: str) -> None:
        if name in seen:
            return
        seen[name] = library_module(name)
        for sub in submodules(name):
            visit(sub)

    for n in names:
        visit(n)
    return list(seen.values())
