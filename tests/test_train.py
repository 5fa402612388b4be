"""Trainer and `qloom train` CLI: train briefly, export, reload, resume, record.

The tests train on a small synthetic MNIST-format dataset written to a temporary folder, so they
run without any installed dataset and take seconds; one test uses real Fashion-MNIST when present.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from train_data import write_synthetic_mnist  # noqa: E402

from qloom.data import load_dataset  # noqa: E402
from qloom.errors import DatasetNotFoundError, QloomError  # noqa: E402
from qloom.train import cli as train_cli  # noqa: E402
from qloom.train import trainer as trainer_mod  # noqa: E402
from qloom.train.export import qonnx_logits  # noqa: E402
from qloom.train.trainer import train  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 512-train / 100-test dataset in IDX format under <dir>/mnist."""
    return write_synthetic_mnist(tmp_path_factory.mktemp("data"), 512)


@pytest.fixture(autouse=True)
def _no_integer_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The integer flow is the lead's; here it is absent unless a test supplies a fake."""
    monkeypatch.setattr(trainer_mod, "_integer_predictor", lambda: None)


def _run(data_dir: Path, out: Path, **kw) -> dict:
    args = {"epochs": 1, "batch_size": 64, "lr": 0.02, "quiet": True, "data_dir": data_dir}
    args.update(kw)
    return train("tfc-w1a1", "mnist", out=out, **args)


def test_train_export_reload(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    rec = _run(data_dir, out, epochs=2)
    assert out.is_file() and out.with_suffix(".pt").is_file()
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved == json.loads(json.dumps(rec))
    assert saved["dataset"] == "mnist" and saved["epochs"] == 2 and saved["seed"] == 0
    assert len(saved["epoch_accuracy"]) == 2 and saved["train_images"] == 512
    assert saved["test_accuracy"] > 30.0  # chance is 10 %; the bands are easy to learn
    assert saved["qonnx_check"]["agree_with_torch"] == saved["qonnx_check"]["images"]
    assert "integer_accuracy" not in saved
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["qloom.model"] == "tfc-w1a1" and meta["qloom.dataset"] == "mnist"

    # The exported graph reproduces the checkpointed torch model's predictions.
    from qloom.train.zoo import build_model

    model = build_model("tfc-w1a1")
    model.load_state_dict(torch.load(out.with_suffix(".pt"), weights_only=False)["model"])
    model.eval()
    x, _ = load_dataset("mnist", "test", data_dir)
    imgs = x[:4].astype(np.float32) / 255.0
    with torch.no_grad():
        ref = model(torch.from_numpy(imgs)).numpy()
    np.testing.assert_allclose(qonnx_logits(out, imgs), ref, rtol=1e-4, atol=1e-4)


def test_seeded_and_resumable(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same seed -> same weights; a run interrupted after epoch 1 and resumed == straight run."""
    a = _run(data_dir, tmp_path / "a.onnx", epochs=2)
    a2 = _run(data_dir, tmp_path / "a2.onnx", epochs=2)
    assert a["epoch_accuracy"] == a2["epoch_accuracy"]

    real_evaluate = trainer_mod.evaluate
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # end of epoch 2, before its checkpoint: Ctrl-C
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(data_dir, tmp_path / "b.onnx", epochs=2)
    monkeypatch.setattr(trainer_mod, "evaluate", real_evaluate)
    assert torch.load(tmp_path / "b.pt", weights_only=False)["epoch"] == 0
    assert not (tmp_path / "b.onnx").exists()

    c = _run(data_dir, tmp_path / "b.onnx", epochs=2, resume=tmp_path / "b.pt")
    assert c["epoch_accuracy"] == a["epoch_accuracy"]
    sa = torch.load(tmp_path / "a.pt", weights_only=False)
    sc = torch.load(tmp_path / "b.pt", weights_only=False)
    assert sc["epoch"] == 1
    for k, v in sa["model"].items():
        assert torch.equal(v, sc["model"][k]), k
    for k, v in sa["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg"], sc["optimizer"]["state"][k]["exp_avg"])

    # Another seed gives other weights.
    _run(data_dir, tmp_path / "d.onnx", epochs=2, seed=5)
    sd = torch.load(tmp_path / "d.pt", weights_only=False)
    assert not all(torch.equal(v, sd["model"][k]) for k, v in sa["model"].items())


def test_resume_refuses_other_model(data_dir: Path, tmp_path: Path) -> None:
    _run(data_dir, tmp_path / "a.onnx")
    with pytest.raises(QloomError, match="tfc-w1a1"):
        train(
            "tfc-w2a2",
            "mnist",
            epochs=1,
            out=tmp_path / "x.onnx",
            resume=tmp_path / "a.pt",
            quiet=True,
            data_dir=data_dir,
        )


def test_integer_accuracy_recorded(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_predict(path: str, images: np.ndarray) -> np.ndarray:
        calls.append((path, images.dtype, images.shape))
        return np.zeros(len(images), dtype=np.int64)

    monkeypatch.setattr(trainer_mod, "_integer_predictor", lambda: fake_predict)
    rec = _run(data_dir, tmp_path / "m.onnx", limit=128)
    assert calls == [(str(tmp_path / "m.onnx"), np.uint8, (100, 1, 28, 28))]
    assert rec["integer_accuracy"] == pytest.approx(10.0)  # labels cycle 0..9
    assert (
        json.loads((tmp_path / "m.json").read_text())["integer_accuracy"] == rec["integer_accuracy"]
    )
    assert rec["train_images"] == 128


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="qloom")
    train_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.onnx"
    args = _parse(
        ["train", "--model", "tfc-w1a1", "--dataset", "mnist", "--epochs", "1", "--out", str(out)]
        + ["--data-dir", str(data_dir), "--batch-size", "128", "--seed", "3", "--limit", "256"]
    )
    assert args.func is train_cli.run
    assert train_cli.run(args) == 0
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["seed"] == 3 and rec["batch_size"] == 128 and rec["train_images"] == 256
    text = capsys.readouterr().out
    assert "epoch   1/1" in text and "test accuracy" in text  # not a TTY: no bar, lines only

    with pytest.raises(QloomError, match="unknown model"):
        train_cli.run(_parse(["train", "--model", "nope", "--out", str(out)]))
    with pytest.raises(DatasetNotFoundError):
        train_cli.run(
            _parse(
                ["train", "--model", "tfc-w1a1", "--out", str(out), "--dataset", "cifar10"]
                + ["--data-dir", str(tmp_path / "empty")]
            )
        )


def test_cnv_on_28x28_needs_padding(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(QloomError, match="cnv-pad"):
        train("cnv-w1a1", "mnist", epochs=1, out=tmp_path / "c.onnx", data_dir=data_dir, quiet=True)


def test_fashion_mnist_quick(tmp_path: Path) -> None:
    """Real Fashion-MNIST: two epochs on 1024 images beat chance clearly (skipped if absent)."""
    try:
        load_dataset("fashion-mnist", "train")
    except DatasetNotFoundError as e:
        pytest.skip(f"Fashion-MNIST not installed (scripts/install_datasets.sh): {e}")
    rec = train(
        "tfc-w1a1-i8",
        "fashion-mnist",
        epochs=2,
        out=tmp_path / "f.onnx",
        batch_size=32,
        lr=0.02,
        quiet=True,
        limit=1024,
        test_limit=1000,
    )
    assert rec["test_accuracy"] > 60.0
