"""FINN folding files as FINN writes them (qloom.fold.finn_config): node names, Defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tfc_data import tfc_path

from qloom.cli import main
from qloom.dataflow import to_dataflow
from qloom.errors import FoldingError
from qloom.flow import compile_model
from qloom.fold import check_fits, load_folding, read_folding
from qloom.frontend.domain import RAW_PIXELS
from qloom.report.model import BuildReport

# finn-examples build/bnn-pynq/folding_config/tfc-w1a1_folding_config.json (FINN's own folding of
# TFC-w1a1 for the PYNQ-Z1/Z2; TFC is 784-64-64-64-10, the shared model's shape)
FINN_TFC_W1A1 = {
    "Defaults": {},
    "Thresholding_hls_0": {"PE": 49, "ram_style": "distributed"},
    "MVAU_hls_0": {"PE": 16, "SIMD": 49, "ram_style": "block"},
    "MVAU_hls_1": {"PE": 8, "SIMD": 8, "ram_style": "auto"},
    "MVAU_hls_2": {"PE": 8, "SIMD": 8, "ram_style": "auto"},
    "MVAU_hls_3": {"PE": 10, "SIMD": 8, "ram_style": "distributed"},
    "LabelSelect_hls_0": {"PE": 1},
}


@pytest.fixture(scope="module")
def tfc_raw():
    """TFC_1W1A on raw pixels: the hardware thresholds the input, as FINN's TFC does."""
    return compile_model(tfc_path("TFC_1W1A"), RAW_PIXELS).integer


def _write(tmp_path: Path, folding: dict, name: str = "folding.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(folding))
    return p


def _qloom_names(graph) -> list[str]:
    return [s.name for s in to_dataflow(graph).stages if s.fold_params]


def test_finn_example_folding_builds_the_same_design_as_qloom_names(tfc_raw, tmp_path):
    thr, m0, m1, m2, m3 = _qloom_names(tfc_raw)
    qloom_file = {
        thr: {"PE": 49, "ram_style": "distributed"},
        m0: {"PE": 16, "SIMD": 49, "ram_style": "block"},
        m1: {"PE": 8, "SIMD": 8, "ram_style": "auto"},
        m2: {"PE": 8, "SIMD": 8, "ram_style": "auto"},
        m3: {"PE": 10, "SIMD": 8, "ram_style": "distributed"},
    }
    finn = load_folding(_write(tmp_path, FINN_TFC_W1A1, "finn.json"), tfc_raw)
    ours = read_folding(_write(tmp_path, qloom_file), tfc_raw)
    a, b = to_dataflow(tfc_raw, finn.folding), to_dataflow(tfc_raw, ours)
    assert a.folding_json() == b.folding_json()
    assert [s.describe() for s in a.stages] == [s.describe() for s in b.stages]
    assert a.cycles_per_frame() == 64  # FINN's folding: the first MVAU at 64 cycles
    assert finn.mapped == {
        "Thresholding_hls_0": thr,
        "MVAU_hls_0": m0,
        "MVAU_hls_1": m1,
        "MVAU_hls_2": m2,
        "MVAU_hls_3": m3,
    }
    # the model has no TopK, so no LabelSelect: FINN's entry is ignored, and the note says so
    assert "ignored 1 LabelSelect entry (the design has no such stage)" in finn.note()


def test_legacy_finn_names_and_defaults(tfc_raw, tmp_path):
    thr, m0, m1, m2, m3 = _qloom_names(tfc_raw)
    folding = {
        "Defaults": {"ram_style": ["block", ["MatrixVectorActivation"]], "PE": [2, "all"]},
        "StreamingFCLayer_Batch_0": {"PE": 16, "SIMD": 49},
        "MatrixVectorActivation_3": {"PE": 10, "ram_style": "auto"},
        "StreamingFIFO_rtl_0": {"depth": 32},
        "StreamingDataWidthConverter_Batch_0": {},
    }
    tr = load_folding(_write(tmp_path, folding), tfc_raw)
    assert tr.folding[m0] == {"PE": 16, "SIMD": 49, "ram_style": "block"}
    assert tr.folding[m3] == {"PE": 10, "ram_style": "auto"}  # its own entry wins
    assert tr.folding[m1] == {"PE": 2, "ram_style": "block"}  # the defaults only
    assert tr.folding[thr] == {"PE": 2}  # "all": every stage that has the parameter
    assert "ignored 1 StreamingFIFO entry (qloom sizes its glue FIFOs by simulation)" in tr.note()
    design = to_dataflow(tfc_raw, tr.folding)
    assert design.stage(m1).pe == 2 and design.stage(m1).ram_style == "block"


@pytest.mark.parametrize(
    ("folding", "message"),
    [
        (
            {"MVAU_hls_4": {"PE": 1}},
            "'MVAU_hls_4' is MVAU node 4 in FINN's order, but the design has 4 MVAU stage(s)",
        ),
        (
            {"MVAU_hls_0": {"PE": 1}, "MVAU_rtl_0": {"PE": 1}},
            "'MVAU_rtl_0' mixes MVAU nodes of two FINN backends (hls and rtl)",
        ),
        (
            {"Defaults": {"PE": 4}},
            "\"Defaults\" entry 'PE' is 4; FINN writes value / op-type pairs",
        ),
        (
            {"Defaults": {"SIMD": [2, ["Thresholding_rtl"]]}},
            '"Defaults" sets SIMD on Thresholding',
        ),
        (
            {"MVAU_hls_1": {"PE": 3}},
            "PE",  # lowering checks the legal values of the stage it mapped to
        ),
    ],
)
def test_bad_finn_folding_is_named(tfc_raw, tmp_path, folding, message):
    with pytest.raises(FoldingError) as e:
        to_dataflow(tfc_raw, read_folding(_write(tmp_path, folding), tfc_raw))
    assert message in str(e.value)


def test_folding_that_does_not_fit_is_an_error(tfc_raw):
    design = to_dataflow(tfc_raw, read_folding("parallel", tfc_raw))
    with pytest.raises(FoldingError, match="does not fit the part iCE40UP5K"):
        check_fits(design, "iCE40UP5K", 0.8, "the folding 'parallel'")
    est = check_fits(to_dataflow(tfc_raw), "xc7z020", 0.8, "PE = SIMD = 1")
    assert est["total"].lut > 0


def test_cli_build_with_finn_folding(tmp_path):
    """`qloom build --folding` on FINN's own file: RTL equals the integer model."""
    folding = _write(tmp_path, FINN_TFC_W1A1, "finn.json")
    argv = ["--quiet", "build", str(tfc_path("TFC_1W1A")), "--input-type", "UINT8",
            "--input-scale", str(1 / 255), "--folding", str(folding), "--sim-frames", "20",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 0
    report = BuildReport.read(tmp_path / "out" / "TFC_1W1A")
    assert report.sim.verdict == "yes" and report.sim.frames == 20
    assert report.totals.cycles_per_frame == 64
    assert "MVAU_hls_0 -> " in report.folding


def test_cli_refuses_folding_with_target(tmp_path, capsys):
    folding = _write(tmp_path, FINN_TFC_W1A1, "finn.json")
    argv = ["build", str(tfc_path("TFC_1W1A")), "--folding", str(folding), "--target-fps", "1e5",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    assert "--folding" in capsys.readouterr().err and not (tmp_path / "out" / "TFC_1W1A").exists()


def test_cli_refuses_a_folding_too_large_for_the_part(tmp_path, capsys):
    argv = ["build", str(tfc_path("TFC_1W1A")), "--folding", "parallel", "--part", "iCE40UP5K",
            "--sim-frames", "0", "--out", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the fully parallel folding does not fit the part iCE40UP5K" in err, err
