"""The build directory is qloom's own: a user's files are never replaced, names stay inside
--out, concurrent builds do not mix, and options that cannot describe a build are refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from model_corpus import finn_onnx

from qloom.build import MARKER
from qloom.cli import main
from qloom.report.model import BuildReport


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return finn_onnx(tmp_path_factory.mktemp("m") / "m.onnx")


def _build(model, out, *extra):
    return main(["--quiet", "build", str(model), "--out", str(out), "--sim-frames", "0", *extra])


def _refused(capsys, argv_result, *needles):
    err = capsys.readouterr().err.replace("\n", " ")
    assert argv_result == 2, err
    for n in needles:
        assert n in err, (n, err)


def test_rebuild_replaces_only_its_own_directory(model, tmp_path, capsys):
    out = tmp_path / "out"
    assert _build(model, out) == 0
    assert (out / "m" / MARKER).is_file()
    first = BuildReport.read(out / "m")
    assert _build(model, out) == 0  # its own build: replaced
    assert BuildReport.read(out / "m").stages == first.stages
    user = out / "mine"
    user.mkdir()
    (user / "keep.txt").write_text("precious")
    _refused(capsys, _build(model, out, "--name", "mine"), "not a qloom build directory", "mine")
    assert (user / "keep.txt").read_text() == "precious"
    assert not (out / "mine.partial").exists()


@pytest.mark.parametrize("name", ["..", ".", "a/b/c", "", "x.partial"])
def test_name_is_one_plain_component(model, tmp_path, capsys, name):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "keep.txt").write_text("precious")
    _refused(capsys, _build(model, out, "--name", name), "--name", "plain directory name")
    assert (tmp_path / "keep.txt").read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == []


@pytest.mark.parametrize(
    "option, value, needle",
    [
        ("--clock-mhz", "nan", "--clock-mhz"),
        ("--clock-mhz", "inf", "--clock-mhz"),
        ("--clock-mhz", "0", "--clock-mhz"),
        ("--target-fps", "0", "--target-fps"),
        ("--target-fps", "-5", "--target-fps"),
        ("--max-utilization", "5", "(0, 1]"),
        ("--max-utilization", "nan", "(0, 1]"),
        ("--sim-frames", "-1", "--sim-frames"),
        ("--latency-slack", "-0.1", "--latency-slack must be a fraction >= 0"),
        ("--latency-slack", "nan", "--latency-slack must be a fraction >= 0"),
        ("--sim-shards", "0", "--sim-shards must be in 1..4096"),
    ],
)
def test_bad_options_are_refused(model, tmp_path, capsys, option, value, needle):
    _refused(capsys, _build(model, tmp_path / "out", option, value), needle)
    assert not (tmp_path / "out" / "m").exists()


def test_out_that_is_a_file(model, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    _refused(capsys, _build(model, f), "--out")
    assert f.read_text() == "x"


def test_concurrent_builds_never_leave_an_incomplete_directory(model, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "qloom.cli", "--quiet", "build", str(model), "--out", str(out)]
    cmd += ["--sim-frames", "0"]
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert any(code == 0 for code, _ in results), results
    for code, err in results:
        assert code == 0 or (code == 2 and "another qloom build" in err), (code, err)
        assert "Traceback" not in err
    for name in ("model.onnx", "folding.json", "design.json", "report.json", MARKER):
        assert (out / "m" / name).is_file(), name
    assert (out / "m" / "graphs" / "2_integer.onnx").is_file()


def test_garbage_quantizers_are_refused_by_node(tmp_path, capsys):
    """NaN / zero scales, fractional or zero bit widths, an empty narrow range: qonnx runs such
    models, qloom names the node instead of building hardware for them."""
    import onnx
    from model_corpus import float_int8
    from onnx import numpy_helper

    base = onnx.load(float_int8(tmp_path / "base.onnx"))
    quant = next(n for n in base.graph.node if n.op_type == "Quant")
    scale_name, bits_name = quant.input[1], quant.input[3]

    def variant(tag, *, scale=None, bits=None, narrow=None, signed=None):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        for init in m.graph.initializer:
            if init.name == scale_name and scale is not None:
                init.CopyFrom(numpy_helper.from_array(np.float32(scale), scale_name))
            if init.name == bits_name and bits is not None:
                init.CopyFrom(numpy_helper.from_array(np.float32(bits), bits_name))
        q = next(n for n in m.graph.node if n.name == quant.name)
        for a in q.attribute:
            if a.name == "narrow" and narrow is not None:
                a.i = narrow
            if a.name == "signed" and signed is not None:
                a.i = signed
        path = tmp_path / f"{tag}.onnx"
        onnx.save(m, path)
        return path

    cases = {
        "nan": (dict(scale=np.nan), "NaN"),
        "zero": (dict(scale=0.0), "positive"),
        "negative": (dict(scale=-0.5), "positive"),
        "frac": (dict(bits=2.5), "bit width"),
        "zerobits": (dict(bits=0), "bit width 0"),
        "narrow1": (dict(bits=1, narrow=1, signed=0), "single value"),
    }
    for tag, (kw, needle) in cases.items():
        code = main(["run", str(variant(tag, **kw))])
        err = capsys.readouterr().err.replace("\n", " ")
        assert code == 2, (tag, err)
        assert quant.name in err and needle in err, (tag, err)


def test_a_build_from_before_the_marker_is_still_replaced(model, tmp_path, capsys):
    out = tmp_path / "out"
    old = out / "m"
    old.mkdir(parents=True)
    (old / "report.json").write_text(json.dumps({"model": "m", "part": "x", "totals": {},
                                                 "stages": []}))  # fmt: skip
    assert _build(model, out) == 0 and (out / "m" / MARKER).is_file()
    other = out / "n"
    other.mkdir()
    (other / "report.json").write_text(json.dumps({"my": "own file"}))
    _refused(capsys, _build(model, out, "--name", "n"), "not a qloom build directory")
    assert json.loads((other / "report.json").read_text()) == {"my": "own file"}


def test_rebuilding_gives_identical_files(model, tmp_path):
    """Every file of a build but the two that hold times is byte-identical on a rebuild."""
    out = tmp_path / "out"
    argv = ["--data", "random", "--sim-frames", "20"]
    assert main(["--quiet", "build", str(model), "--out", str(out), *argv]) == 0

    def files(d):
        skip = {"time_per_step.json", "build.log"}
        return {
            str(p.relative_to(d)): p.read_bytes()
            for p in sorted(d.rglob("*"))
            if p.is_file() and p.name not in skip
        }

    first = files(out / "m")
    assert main(["--quiet", "build", str(model), "--out", str(out), *argv]) == 0
    second = files(out / "m")
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    steps = json.loads((out / "m" / "time_per_step.json").read_text())
    assert steps["outcome"] == "done" and len(steps["steps"]) >= 4
    assert all(s["seconds"] >= 0 for s in steps["steps"])
    assert "simulating" in (out / "m" / "build.log").read_text()
