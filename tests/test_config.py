"""Build config files in FINN's DataflowBuildConfig names (qloom.config) and option types."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from tfc_data import tfc_path

from qloom.build import BuildOptions, build
from qloom.cli import main
from qloom.config import config_json, options_from_config
from qloom.errors import QloomError
from qloom.frontend.domain import RAW_PIXELS
from qloom.report.model import BuildReport


def test_finn_config_file_builds(tmp_path, capsys):
    cfg = {
        "output_dir": str(tmp_path / "out" / "tfc"),
        "target_fps": 100000,
        "synth_clk_period_ns": 10.0,
        "board": "Pynq-Z2",
        "auto_fifo_depths": True,
        "generate_outputs": ["estimate_reports", "bitfile"],  # FINN's, ignored with a note
        "sim_frames": 10,
    }
    path = tmp_path / "build.json"
    path.write_text(json.dumps(cfg))
    assert main(["build", str(tfc_path("TFC_1W1A")), "--config", str(path)]) == 0
    out = capsys.readouterr()
    said = " ".join((out.out + out.err).split())  # rich wraps long lines
    assert "FINN keys without a meaning in qloom's flow: generate_outputs" in said
    report = BuildReport.read(tmp_path / "out" / "tfc")
    assert report.part == "xc7z020" and report.clock_mhz == 100.0
    assert report.target_fps == 100000 and report.totals.cycles_per_frame <= 1000
    assert report.sim.frames == 10 and report.sim.verdict == "yes"


def test_command_line_wins_over_the_config(tmp_path):
    path = tmp_path / "build.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path / "a"), "sim_frames": 0,
                                "clock_mhz": 150}))  # fmt: skip
    argv = ["--quiet", "build", str(tfc_path("TFC_1W1A")), "--config", str(path),
            "--clock-mhz", "125", "--name", "b"]  # fmt: skip
    assert main(argv) == 0
    assert BuildReport.read(tmp_path / "b").clock_mhz == 125.0


def test_config_round_trips():
    opts = BuildOptions(
        model=Path("m.onnx"), out_dir=Path("builds"), name="net", part="xczu7ev",
        clock_mhz=250.0, target_fps=1e6, max_utilization=0.5, sim_frames=7, synth=True,
        folding=Path("f.json"), input_spec=RAW_PIXELS, latency_slack=0.1,
    )  # fmt: skip
    cfg = config_json(opts)
    assert cfg["output_dir"] == "builds/net" and cfg["synth_clk_period_ns"] == 4.0
    assert cfg["input_scale"] == "1/255"
    again, notes = options_from_config(json.loads(json.dumps(cfg)), "m.onnx")
    assert again == opts and notes == []
    assert again.input_spec.scale == Fraction(1, 255)


def test_config_round_trips_scale_out_and_board_options():
    """--devices / --link and --board / --baud / --pnr (the board's own part) survive the
    build's build_config.json (FINN's own "board" key names a part, hence "board_top")."""
    for opts in (
        BuildOptions(model=Path("m.onnx"), name="m", devices="4xxczu7ev", links="aurora-10g"),
        BuildOptions(model=Path("m.onnx"), name="m", board="ulx3s", baud=3_000_000, pnr_part=""),
    ):
        cfg = json.loads(json.dumps(config_json(opts)))
        again, notes = options_from_config(cfg, "m.onnx")
        assert again == opts and notes == []
    assert config_json(opts)["board_top"] == "ulx3s"


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"target_fps": "1e4"}, 'config: target_fps must be an integer or a number, got "1e4"'),
        ({"target_fsp": 1000}, "unknown key 'target_fsp' (did you mean 'target_fps'?)"),
        ({"board": "Pynq-Z2", "fpga_part": "xczu7ev"}, "the part and the board disagree"),
        ({"synth_clk_period_ns": 0}, "synth_clk_period_ns must be > 0"),
        ({"sim_frames": 1.5}, "sim_frames must be an integer, got 1.5"),
        ({"synth": "yes"}, 'synth must be true or false, got "yes"'),
        ({"board": "Pynq-Z9"}, "unknown FPGA part or board 'Pynq-Z9'"),
        ({"input_scale": "1/255"}, "input_scale needs input_type"),
    ],
)
def test_bad_config_is_named(cfg, message):
    with pytest.raises(QloomError) as e:
        options_from_config(cfg, "m.onnx")
    assert message in str(e.value)


def test_bad_config_file_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "build.json"
    path.write_text("{not json")
    assert main(["build", str(tfc_path("TFC_1W1A")), "--config", str(path)]) == 2
    assert f"config file {path}: not a readable JSON file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target_fps": "1e4"}, "--target-fps must be a number, got '1e4' (str)"),
        ({"sim_frames": 2.0}, "--sim-frames must be an integer, got 2.0 (float)"),
        ({"synth": "no"}, "--synth must be True or False, got 'no'"),
    ],
)
def test_api_option_types_are_checked(tmp_path, change, message):
    opts = BuildOptions(model=tfc_path("TFC_1W1A"), out_dir=tmp_path, **change)
    with pytest.raises(QloomError) as e:
        build(opts)
    assert message in str(e.value)
    assert not list(tmp_path.iterdir())  # nothing written


def test_sim_of_a_build_directory_uses_its_folding_domain_and_fifos(tmp_path, capsys):
    """`qloom sim BUILD_DIR` re-simulates the design that was built, with its sized FIFOs."""
    argv = ["--quiet", "build", str(tfc_path("TFC_1W1A")), "--input-type", "UINT8",
            "--input-scale", "1/255", "--target-fps", "1e6", "--sim-frames", "8",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    build_dir = tmp_path / "TFC_1W1A"
    report = BuildReport.read(build_dir)
    cfg = json.loads((build_dir / "build_config.json").read_text())
    assert cfg["input_type"] == "UINT8" and cfg["input_scale"] == "1/255"
    capsys.readouterr()
    assert main(["sim", str(build_dir), "--data", "mnist-test", "--limit", "30"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "mismatches vs integer model │ 0" in out
    assert "UINT8" in out  # the build's raw-pixel domain, not the model's BIPOLAR default
    cpf = report.totals.cycles_per_frame
    assert f"cycles/frame formula │ {cpf:,}" in out and "warning" not in out
    for stream, depth in report.sim.fifo_depths.items():
        assert f"{stream} │ {depth} │" in out or depth == 2


def test_sim_of_a_directory_that_is_not_a_build(tmp_path, capsys):
    assert main(["sim", str(tmp_path)]) == 2
    assert "is a directory but not a qloom build" in capsys.readouterr().err
