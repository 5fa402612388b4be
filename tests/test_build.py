"""`qloom build` end to end: a TFC model to a verified, synthesized, placed-and-routed ECP5
bitstream with a complete build directory; failures leave only a .partial directory."""

from __future__ import annotations

import json

import onnx
import pytest
from tfc_data import tfc_path

from qloom.cli import main
from qloom.report.model import BuildReport


@pytest.fixture(scope="module")
def ecp5_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("builds")
    argv = [
        "--quiet",
        "build",
        str(tfc_path("TFC_1W1A")),
        "--out",
        str(out),
        "--name",
        "tfc",
        "--target-fps",
        "1e5",
        "--sim-frames",
        "100",
        "--synth",
        "--pnr",
        "LFE5U-85F",
    ]
    assert main(argv) == 0
    return out / "tfc"


def test_build_directory_is_complete(ecp5_build):
    d = ecp5_build
    assert not d.with_name("tfc.partial").exists()
    for name in ("model.onnx", "folding.json", "design.json", "report.json", "report.html"):
        assert (d / name).is_file(), name
    for g in ("1_imported", "2_integer", "3_dataflow"):
        onnx.checker.check_model(onnx.load(d / "graphs" / f"{g}.onnx"))
    report = BuildReport.read(d)
    assert any(f.endswith(".v") for f in report.rtl.files)
    # one RTL: what was simulated, synthesized and placed is rtl/ (no second, flat copy)
    assert not (d / "sim" / "run").exists() and not (d / "synth" / "pnr_rtl").exists()
    top, vivado = f"{report.rtl.top}.v", d / "synth" / "vivado"
    assert (vivado / top).read_bytes() == (d / "rtl" / top).read_bytes()
    for m in (d / "rtl" / "mem").iterdir():  # at the path the top names them: mem/x.hex
        assert (vivado / "mem" / m.name).read_bytes() == m.read_bytes()
        assert f"[file join $here mem/{m.name}]" in (vivado / "vivado_synth.tcl").read_text()
    folding = json.loads((d / "folding.json").read_text())
    assert any("PE" in v for v in folding.values() if isinstance(v, dict))


def test_build_meets_target_and_is_bit_exact(ecp5_build):
    report = BuildReport.read(ecp5_build)
    sim = report.sim
    assert sim.verdict == "yes" and sim.mismatches == 0 and sim.frames == 100
    cpf = report.totals.cycles_per_frame
    assert 100e6 / cpf >= 1e5
    assert abs(sim.cycles_per_frame - cpf) <= 0.05 * cpf
    assert json.loads((ecp5_build / "sim" / "result.json").read_text()) == sim.to_json()


def test_build_synthesizes_and_places(ecp5_build):
    report = BuildReport.read(ecp5_build)
    assert report.totals.synth.lut > 0
    for st in report.stages:
        assert st.synth.lut >= 0 and st.est.lut >= 0
    pnr = report.pnr
    assert pnr.fmax_mhz > 0 and report.totals.fmax_mhz == pnr.fmax_mhz
    bit = ecp5_build / pnr.bitstream
    assert bit.is_file() and bit.stat().st_size > 100_000  # an LFE5U-85F bitstream
    html = (ecp5_build / "report.html").read_text()
    assert "<svg" in html and report.stages[0].name in html


def test_report_reads_back_as_written(ecp5_build):
    """BuildReport.from_json(report.json).to_json() is report.json, byte for byte, and
    renders the same report.html."""
    from qloom.report.html import render

    text = (ecp5_build / "report.json").read_text()
    report = BuildReport.read(ecp5_build)
    assert report.dumps() == text and report.dir == ecp5_build
    assert render(report) == (ecp5_build / "report.html").read_text()
    reached = ("model", "input", "part", "clock_mhz", "target_fps", "input_domain", "folding")
    partial = {k: v for k, v in json.loads(text).items() if k in reached}
    assert BuildReport.from_json(partial).to_json() == partial  # a failed build's report


def test_infeasible_target_fails_cleanly(tmp_path, capsys):
    argv = [
        "--quiet",
        "build",
        str(tfc_path("TFC_1W1A")),
        "--out",
        str(tmp_path),
        "--name",
        "x",
        "--target-fps",
        "1e12",
        "--sim-frames",
        "0",
    ]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not reachable" in err and "best achievable" in err
    assert not (tmp_path / "x").exists()
    assert (tmp_path / "x.partial" / "FAILED.txt").is_file()


def test_folding_file_is_used_as_given(tmp_path):
    folding = {"Defaults": {}, "MatMul_16": {"PE": 4, "SIMD": 16}}
    path = tmp_path / "folding.json"
    path.write_text(json.dumps(folding))
    argv = [
        "--quiet",
        "build",
        str(tfc_path("TFC_1W1A")),
        "--out",
        str(tmp_path),
        "--name",
        "f",
        "--folding",
        str(path),
        "--sim-frames",
        "20",
        "--sim-shards",
        "3",
    ]
    assert main(argv) == 0
    built = json.loads((tmp_path / "f" / "folding.json").read_text())
    assert built["MatMul_16"]["PE"] == 4 and built["MatMul_16"]["SIMD"] == 16
    sim = json.loads((tmp_path / "f" / "sim" / "result.json").read_text())  # 3 shards, merged
    assert sim["frames"] == 20 and sim["mismatches"] == 0 and sim["verdict"] == "yes"


def test_report_counts_glue_fifos_and_part_share(ecp5_build):
    """The totals hold the glue FIFOs of rtl/ (not in the stage rows) and the accelerator's
    share of the part; the page says whether timing was met and links the bitstream."""
    from qloom.synth import get_device

    report = BuildReport.read(ecp5_build)
    t = report.totals
    glue = [s for s, depth in report.sim.fifo_depths.items() if depth > 0]
    assert t.fifo_count == len(glue) > 0 and t.fifos.lut > 0 and t.fifos.ff > 0
    assert t.accelerator.lut == t.synth.lut + t.fifos.lut
    dev = get_device(report.part)
    assert t.utilization["LUT"] == round(100 * t.accelerator.lut / dev.luts, 2)
    assert t.utilization["BRAM"] == round(100 * t.accelerator.bram / dev.bram, 2)
    assert all(s.latency is not None and s.latency > 0 for s in report.stages)
    html = (ecp5_build / "report.html").read_text()
    timing = "met</span> on LFE5U-85F" if report.pnr.timing_met else "NOT MET</span>"
    assert timing in html and f"glue FIFOs ({t.fifo_count}, estimate)" in html
    assert f"href='{report.pnr.bitstream}'" in html and "pipeline balance" in html


def test_report_page_shortens_long_names_and_draws_the_target():
    from qloom.report.html import bar_chart, short_name

    name = "/features/features.12/block/QuantConv2d_with_a_very_long_brevitas_name/Conv"
    cell = short_name(name)
    assert f"title='{name}'" in cell and "…" in cell and len(cell) < 2 * len(name) + 40
    assert short_name("fc1") == "<span class='nm' title='fc1'>fc1</span>"
    svg = bar_chart("balance", [("a", 10), (name, 30)], line=("target 20", 20))
    assert "<line" in svg and "target 20" in svg and f"<title>{name}</title>" in svg


def test_pnr_seeds_stop_at_the_first_met_clock_and_keep_the_fastest(tmp_path, monkeypatch):
    """--pnr-seeds N: nextpnr with seeds 1..N until the target is met (the fastest result is
    recorded, each seed in its own folder). The place-and-route results here stand in for
    nextpnr's: the selection is what is tested (real runs: test_build_synthesizes_and_places)."""
    from types import SimpleNamespace

    import qloom.synth as synth
    from qloom import build as B
    from qloom.errors import QloomError
    from qloom.report.model import BuildReport, Resources, Totals

    fmax = {1: 99.9, 2: 98.0, 3: 100.4, 4: 101.0}
    calls = []

    def fake_pnr(sources, top, params, dev, workdir, memory_files, freq_mhz, *, seed, quiet):
        calls.append((seed, workdir.name))
        return SimpleNamespace(fmax_mhz=fmax[seed], timing_met=fmax[seed] >= freq_mhz,
                               utilization={}, bitstream=None)  # fmt: skip

    monkeypatch.setattr(synth, "place_and_route", fake_pnr)
    rtl = SimpleNamespace(sources=[], top="t", memories={}, run_dir=tmp_path)
    report = BuildReport("m", "m.onnx", "xc7z020", 100.0, None)
    report.totals = Totals(10, "s", 1e7, 10, Resources(0, 0, 0, 0))
    for seeds, want_calls, want_fmax in ((4, 3, 100.4), (2, 2, 99.9), (1, 1, 99.9)):
        calls.clear()
        opts = B.BuildOptions(model=tmp_path / "m.onnx", pnr_part="LFE5U-85F", pnr_seeds=seeds)
        B._place_and_route(rtl, opts, tmp_path, report, lambda msg: None)
        assert [c[0] for c in calls] == list(range(1, want_calls + 1))
        assert calls[0][1] == "pnr" and all(c[1] == f"pnr-seed{c[0]}" for c in calls[1:])
        assert report.pnr.fmax_mhz == want_fmax and report.pnr.timing_met == (want_fmax >= 100)
    with pytest.raises(QloomError, match=r"--pnr-seeds must be in 1\.\.32"):
        B.check_options(B.BuildOptions(model=tmp_path / "m.onnx", pnr_seeds=0))
