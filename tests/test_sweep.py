"""`qloom sweep`: spec errors, a sweep on embedded Ray (CSV / JSON / plots / report), resume,
a worker killed mid-point, and a sweep on a separately started Ray cluster (--ray-address).

Tiny models (TFC at 16 / 32 hidden neurons, 1 epoch) on a synthetic MNIST-format dataset;
every sweep shares one trained-model cache and the embedded Ray cluster is started once for
the module (Ray's start-up is the slow part).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("matplotlib")
torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from train_data import write_synthetic_mnist  # noqa: E402

from qloom.cli import main  # noqa: E402
from qloom.sweep.point import CRASH_ENV, run_point  # noqa: E402
from qloom.sweep.spec import load_spec, parse_spec  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_mnist(tmp_path_factory.mktemp("data"), 512, 100)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trained models, shared by every sweep of the module."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def ray_local():
    """The embedded cluster, started as `qloom sweep` starts it, once for the module."""
    from qloom.sweep.driver import ray_session

    with ray_session(None, quiet=True) as ray:
        yield ray


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QLOOM_QUIET", "1")  # main(--quiet) sets it; restored afterwards


def _spec(path: Path, data_dir: Path, cache: Path, **kw) -> Path:
    spec = {
        "models": ["tfc"],
        "widths": [16, 32],
        "precisions": ["w1a1", "w2a2"],
        "dataset": "mnist",
        "epochs": 1,
        "batch_size": 64,
        "targets_fps": [1e4, 1e9],
        "part": "xc7z020",
        "data_dir": str(data_dir),
        "cache_dir": str(cache),
    }
    spec.update(kw)
    path.write_text(json.dumps(spec))
    return path


def _sweep(spec: Path, out: Path, *extra: str) -> int:
    return main(["sweep", str(spec), "--out", str(out), "--quiet", *extra])


# ------------------------------------------------------------------------------------------
# spec errors: one message naming the key and what works, exit 2


BAD_SPECS = [
    ({"models": ["xfc"]}, ["'models'", "'xfc'", "tfc, sfc"]),
    ({"precisions": ["w2a2", "w9a2"]}, ["'precisions'", "'w9a2'", "1..8"]),
    ({"part": "xc9z999"}, ["'part'", "xc9z999", "xc7z020"]),
    ({"epoch": 1}, ["unknown key 'epoch'", "did you mean 'epochs'", "known keys"]),
    ({"epochs": "ten"}, ["'epochs' must be an integer", "'ten'"]),
    ({"models": "tfc"}, ["'models' must be a list", '["tfc", "sfc"]']),
    ({"targets_fps": [1e4, -5]}, ["'targets_fps'", "> 0"]),
    ({"sparsity": [0.5, 1.5]}, ["'sparsity'", "[0, 1)"]),
    ({"dataset": "imagenet"}, ["'dataset'", "imagenet", "fashion-mnist"]),
    ({"widths": [16], "models": ["cnv"]}, ["'widths'", "FC models only"]),
    ({"parts": ["xc7z020"]}, ["'part'", "both given"]),
]


@pytest.mark.parametrize("change,expect", BAD_SPECS, ids=[str(c) for c, _ in BAD_SPECS])
def test_bad_spec(tmp_path, data_dir, cache, capsys, change, expect) -> None:
    spec = _spec(tmp_path / "s.json", data_dir, cache, **change)
    assert _sweep(spec, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sweep spec"), err
    for text in expect:
        assert text in err, (text, err)
    assert not (tmp_path / "out").exists()  # nothing ran


def test_bad_spec_files(tmp_path, capsys) -> None:
    cases = [
        (tmp_path / "missing.json", "no such file"),
        (tmp_path, "not a file"),
        (tmp_path / "bad.json", "not valid JSON"),
        (tmp_path / "list.json", "must hold a mapping"),
        (tmp_path / "nodata.json", "'dataset' is missing"),
    ]
    (tmp_path / "bad.json").write_text("{models: [tfc]")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "nodata.json").write_text('{"models": ["tfc"], "precisions": ["w1a1"]}')
    for path, text in cases:
        assert _sweep(path, tmp_path / "out") == 2
        err = capsys.readouterr().err
        assert text in err and err.count("error:") == 1, err


def test_yaml_spec(tmp_path, data_dir) -> None:
    """YAML works (PyYAML comes with Ray); '1e4', which YAML reads as text, is a number."""
    p = tmp_path / "s.yaml"
    p.write_text(
        "models: [tfc, sfc]\nprecisions: [w1a1, w2a2]\ndataset: mnist\nepochs: 1\n"
        f"targets_fps: [1e4, 2.5e5]\nparts: [xc7z020, pynq-z2]\ndata_dir: {data_dir}\n"
        "sparsity: [0, 0.5]\n"
    )
    spec = load_spec(p)
    assert spec.targets_fps == (1e4, 2.5e5) and spec.parts == ("xc7z020", "pynq-z2")
    keys = [pt.key for pt in spec.points()]
    assert len(keys) == 8 and keys[:2] == ["tfc-w1a1", "tfc-w1a1-sp50"]


# ------------------------------------------------------------------------------------------
# one point in this process: row statuses, errors recorded


def test_point_statuses(tmp_path, data_dir, cache) -> None:
    """A met target on a design too large for the cap is 'does not fit' with its estimate; an
    unmet one 'unreachable'; a point that cannot train is an 'error' record, not a raise."""
    base = dict(models=["tfc"], widths=[16], precisions=["w2a2"], dataset="mnist", epochs=1,
                batch_size=64, targets_fps=[1e4, 1e9], part="xc7z020",
                data_dir=str(data_dir), max_utilization=1e-4)  # fmt: skip
    spec = parse_spec(base)
    rec = run_point(spec, spec.points()[0], str(cache))
    assert rec["status"] == "ok" and rec["key"] == "tfc-h16-w2a2", rec
    fit, fast = rec["rows"]
    assert fit["status"] == "does not fit" and fit["lut"] > 0 and fit["cycles_per_frame"] > 0
    assert fit["cycles_per_frame"] <= 100e6 / 1e4
    assert fast["status"] == "unreachable" and "not reachable" in fast["message"]
    assert 0 <= rec["accuracy"] <= 100 and rec["bops"] > 0

    broken = parse_spec({**base, "data_dir": str(tmp_path / "nowhere")})
    rec = run_point(broken, broken.points()[0], str(tmp_path / "m"))
    assert rec["status"] == "error" and "mnist" in rec["error"]


# ------------------------------------------------------------------------------------------
# sweeps on Ray


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.json"))}


def test_sweep_resume_and_files(tmp_path, data_dir, cache, ray_local) -> None:
    """A 2 x 2 sweep (widths x precisions, two FPS targets): every point in the CSV, JSON,
    plots and report; a rerun redoes nothing; a deleted point is redone alone."""
    spec = _spec(tmp_path / "s.json", data_dir, cache)
    out = tmp_path / "out"
    assert _sweep(spec, out) == 0
    keys = {"tfc-h16-w1a1", "tfc-h16-w2a2", "tfc-h32-w1a1", "tfc-h32-w2a2"}
    assert {p.stem for p in (out / "points").glob("*.json")} == keys
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 8 and {r["point"] for r in rows} == keys
    for r in rows:
        if r["target_fps"] == "10000":
            assert r["status"] == "ok" and int(r["lut"]) > 0 and int(r["cycles_per_frame"]) > 0
            assert float(r["accuracy"]) >= 0 and int(r["bops"]) > 0
        else:
            assert r["status"] == "unreachable" and r["lut"] == ""
    assert any(r["pareto_lut"] == "True" for r in rows)
    res = json.loads((out / "results.json").read_text())
    assert len(res["points"]) == 4 and len(res["rows"]) == 8
    for png in ("accuracy_vs_lut.png", "accuracy_vs_bops.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "tfc-h32-w2a2" in html

    before = _mtimes(out / "points")
    assert _sweep(spec, out) == 0  # all done: no task, not even Ray
    assert _mtimes(out / "points") == before

    (out / "points" / "tfc-h32-w1a1.json").unlink()
    assert _sweep(spec, out) == 0
    after = _mtimes(out / "points")
    assert set(after) == set(before)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {"tfc-h32-w1a1.json"}
    assert json.loads((out / "points" / "tfc-h32-w1a1.json").read_text())["trained_now"] is False


def test_worker_killed_mid_point(tmp_path, data_dir, cache, ray_local, monkeypatch) -> None:
    """The first point to finish training kills its worker (os._exit); Ray retries the task
    and the sweep completes with every point."""
    marker = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_ENV, str(marker))
    spec = _spec(tmp_path / "s.json", data_dir, cache, widths=[16], targets_fps=[1e4])
    out = tmp_path / "out"
    assert _sweep(spec, out) == 0
    assert marker.is_file()  # a worker did die
    dead = int(marker.read_text())
    recs = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    assert len(recs) == 2 and all(r["status"] == "ok" for r in recs)
    assert dead not in {r["pid"] for r in recs}  # the dead worker finished nothing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_address(tmp_path, data_dir, cache) -> None:
    """`ray start --head` as a separate cluster; the sweep joins it with --ray-address.

    The cluster is stopped through its own process group, not `ray stop`, which would stop
    every Ray cluster on the machine."""
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.is_file():
        pytest.skip("the ray command is not installed next to this Python")
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="qlray", dir="/tmp")  # short: Ray's socket paths
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("QLOOM_QUIET", None)
    log = Path(temp) / "head.log"
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
         "--include-dashboard=false", "--temp-dir", temp, "--disable-usage-stats",
         "--dashboard-agent-listen-port", str(_free_port())],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        spec = _spec(tmp_path / "s.json", data_dir, cache, widths=[16], precisions=["w2a2"])
        out = tmp_path / "out"
        run = subprocess.run(
            [sys.executable, "-m", "qloom.cli", "sweep", str(spec), "--out", str(out),
             "--ray-address", f"127.0.0.1:{port}"],
            env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Ray: 2 CPUs" in run.stdout and "1/1 tfc-h16-w2a2" in run.stdout, run.stdout
        assert "elapsed" in run.stdout
        rec = json.loads((out / "points" / "tfc-h16-w2a2.json").read_text())
        assert rec["status"] == "ok" and rec["pid"] != os.getpid()
    finally:
        try:
            os.killpg(head.pid, signal.SIGTERM)
            head.wait(10)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        head.wait(10)
        shutil.rmtree(temp, ignore_errors=True)
