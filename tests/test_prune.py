"""Quantization-aware pruning (qloom.train.prune) and BOPs.

Masks reach the requested sparsity (global, per layer, whole blocks in the MVAU's row order),
the schedules ramp as documented, the exported QONNX's Quant nodes hold exact zeros where the
masks pruned, a pruned model compiles and its integer model equals qonnx, BOPs match a hand
count, and bad options end in exit code 2 with a message. Training runs on a small synthetic
MNIST-format dataset in a temporary folder (a few seconds each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("brevitas")

from train_data import train_cli, write_synthetic_mnist  # noqa: E402

from qloom import cli as main_cli  # noqa: E402
from qloom.errors import QloomError  # noqa: E402
from qloom.train import prune as P  # noqa: E402
from qloom.train.zoo import build_model  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256-train / 100-test dataset in IDX format under <dir>/mnist."""
    return write_synthetic_mnist(tmp_path_factory.mktemp("data"), 256)


def _pruner(model_name: str = "tfc-w2a2", steps_per_epoch: int = 10, **kw) -> P.Pruner:
    torch.manual_seed(0)
    model = build_model(model_name)
    cfg = P.PruneConfig(**{"sparsity": 0.75, **kw})
    return P.Pruner(model, cfg, P.parse_schedule(cfg.schedule, cfg.sparsity, 5, steps_per_epoch))


# -- schedules ---------------------------------------------------------------------------------


def test_default_window() -> None:
    assert [P.default_window(e) for e in (1, 2, 3, 4, 5, 10)] == [
        (1, 1), (1, 1), (2, 2), (2, 3), (2, 4), (2, 8),
    ]  # fmt: skip


def test_schedules_ramp() -> None:
    g = P.parse_schedule("gradual:2-3", 0.8, 5, 100)
    assert (g.start_step, g.end_step) == (100, 300)
    assert g.target(0) == g.target(100) == 0.0
    assert g.target(300) == g.target(10_000) == 0.8
    ramp = [g.target(s) for s in range(100, 301)]
    assert all(b >= a for a, b in zip(ramp, ramp[1:], strict=False))  # monotone
    assert g.target(200) == pytest.approx(0.8 * (1 - 0.5**3))  # halfway: 7/8 of the target
    assert len(set(ramp)) == 2 * P.UPDATES_PER_EPOCH + 1  # 20 mask updates per epoch

    it = P.parse_schedule("iterative:3:1-3", 0.875, 4, 10)  # one step per epoch end
    assert [it.target(s) for s in (0, 9, 10, 19, 20, 29, 30)] == pytest.approx(
        [0, 0, 0.5, 0.5, 0.75, 0.75, 0.875]
    )  # each step halves the remaining weights: 1 - (1 - s)^(k/K)
    after = P.parse_schedule("after", 0.5, 4, 10)
    assert (after.target(39), after.target(40)) == (0.0, 0.5)
    assert P.parse_schedule("gradual", 0.5, 5, 10).describe() == "gradual (cubic) over epochs 2-4"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("cubic", "use gradual"),
        ("gradual:0-2", "within the 5 training epochs"),
        ("gradual:3-2", "within"),
        ("gradual:2-6", "within"),
        ("gradual:3", "window only"),
        ("after:1-2", "no arguments"),
        ("iterative:0", "K must be"),
        ("iterative:51:5-5", "K must be 1..10"),
    ],
)
def test_schedule_errors(text: str, match: str) -> None:
    with pytest.raises(QloomError, match=match):
        P.parse_schedule(text, 0.5, 5, 10)


# -- masks -------------------------------------------------------------------------------------


def _zero_fraction(p: P.Pruner, name: str | None = None) -> float:
    ws = [m.weight for n, m in p.layers if name in (None, n)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def test_global_and_layer_sparsity() -> None:
    p = _pruner(scope="global")
    total = sum(m.weight.numel() for _, m in p.layers)
    before = {n: m.weight.detach().abs().clone() for n, m in p.layers}
    p.update(0.5)
    first = {n: v.clone() for n, v in p.masks.items()}
    # global ranking: every kept weight is at least as large as every pruned one, all layers
    kept = torch.cat([before[n][v] for n, v in first.items()])
    gone = torch.cat([before[n][~v] for n, v in first.items()])
    assert float(gone.max()) <= float(kept.min())
    assert len({round(float((~v).float().mean()), 2) for v in first.values()}) > 1  # per layer
    p.update(0.75)
    assert p.mask_sparsity() == round(0.75 * total) / total
    assert _zero_fraction(p) == p.mask_sparsity()
    assert all(bool((first[n] | ~v).all()) for n, v in p.masks.items())  # masks only grow

    q = _pruner(scope="layer")
    q.update(0.75)
    for n, m in q.layers:
        assert _zero_fraction(q, n) == round(0.75 * m.weight.numel()) / m.weight.numel(), n


def test_block_structure_conv_order() -> None:
    """Blocks are 4 consecutive input channels at one kernel position of one output channel
    (the MVAU's row order: kernel position major, input channel innermost)."""
    torch.manual_seed(0)
    model = build_model("cnv-small-pad-w2a2", in_channels=4, in_size=28)
    cfg = P.PruneConfig(0.5, scope="layer", structure="block", block=4)
    p = P.Pruner(model, cfg, P.parse_schedule("gradual", 0.5, 5, 10))
    p.update(0.5)
    for n, m in p.layers:
        w = m.weight.detach()
        rows = w.permute(0, 2, 3, 1).reshape(w.shape[0], -1) if w.dim() == 4 else w
        blocks = rows.reshape(rows.shape[0], -1, 4)
        zero = (blocks == 0).all(-1)
        assert bool(((blocks == 0).any(-1) == zero).all()), n  # a block is all zero or none
        assert float(zero.float().mean()) == pytest.approx(0.5, abs=1 / zero.numel()), n


def test_mask_errors() -> None:
    with pytest.raises(QloomError, match="bipolar"):
        _pruner("tfc-w1a1")
    torch.manual_seed(0)
    model = build_model("cnv-small-pad-w2a2", in_channels=1, in_size=28)  # first rows: 9
    cfg = P.PruneConfig(0.5, structure="block", block=8)
    with pytest.raises(QloomError, match=r"conv_features\.1 \(9\); .*every layer's rows: 1$"):
        P.Pruner(model, cfg, P.parse_schedule("gradual", 0.5, 5, 10))
    for bad, match in (
        ({"sparsity": 1.0}, r"\[0, 1\)"),
        ({"sparsity": -0.1}, r"\[0, 1\)"),
        ({"sparsity": float("nan")}, r"\[0, 1\)"),
        ({"block": 0}, "at least 1"),
        ({"scope": "net"}, "global, layer"),
        ({"finetune_epochs": -1}, "at least 0"),
    ):
        with pytest.raises(QloomError, match=match):
            P.check_config(P.PruneConfig(**{"sparsity": 0.5, **bad}))


# -- training, export, compile ---------------------------------------------------------------


@pytest.fixture(scope="module")
def qap_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("qap") / "qap.onnx"
    rec = train_cli(data_dir, out, "--epochs", "3", "--sparsity", "0.75")
    return out, rec


def test_qap_export_has_exact_zeros(qap_model: tuple[Path, dict]) -> None:
    out, rec = qap_model
    p = rec["pruning"]
    assert p["schedule_kind"] == "gradual" and p["window_epochs"] == [2, 2]
    ramp = [h["sparsity"] for h in rec["history"]]  # dense epoch 1, ramp in 2, final in 3
    assert ramp[0] == 0.0 and 0.5 < ramp[1] < 0.75 and ramp[2] == pytest.approx(0.75, abs=1e-4)
    # The Quant nodes' outputs (qonnx's semantics), not the float weights.
    q = P.quantized_weights(out)
    assert sorted(q) == [f"features.{i}.weight" for i in (1, 10, 4, 7)]
    n = sum(w.size for w in q.values())
    zeros = sum(int((w == 0).sum()) for w in q.values())
    assert zeros >= round(0.75 * n)
    z = p["qonnx_quant_zeros"]
    assert z["pruned"] == round(0.75 * n) and z["pruned_nonzero"] == 0 and z["zero"] == zeros
    # The checkpoint's latent weights are exact zeros where its masks pruned.
    state = torch.load(out.with_suffix(".pt"), weights_only=False)
    for name, mask in state["prune"]["masks"].items():
        assert bool((state["model"][f"{name}.weight"][~mask] == 0).all())
    assert rec["bops"]["bops"] == sum(
        lb["macs"] // lb["weights"] * lb["nonzero"] * lb["weight_bits"] * lb["act_bits"]
        for lb in rec["bops"]["layers"]
    )
    assert rec["bops"]["bops"] <= 0.25 * rec["bops"]["bops_dense"]


def test_pruned_model_compiles_and_equals_qonnx(qap_model: tuple[Path, dict]) -> None:
    from qloom.flow import compile_model
    from qloom.frontend.reference import qonnx_outputs

    out, _ = qap_model
    c = compile_model(out)
    x = np.random.default_rng(1).random((300, 1, 28, 28), dtype=np.float32)
    ours = np.asarray(c.run(x)[c.integer.outputs[0]], np.float64).reshape(len(x), -1)
    ref = np.asarray(qonnx_outputs(out, x, batch=100), np.float64).reshape(len(x), -1)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))
    assert np.array_equal(ours.argmax(1), ref.argmax(1))
    # and the integer graph holds the zeros: the MVAUs' weights are as sparse as the export
    w = [np.asarray(n.attrs["weights"]) for n in c.integer.nodes if "weights" in n.attrs]
    q = P.quantized_weights(out)
    assert sum(int((a == 0).sum()) for a in w) == sum(int((a == 0).sum()) for a in q.values())


def test_after_training_with_finetune_and_blocks(data_dir: Path, tmp_path: Path) -> None:
    rec = train_cli(
        data_dir,
        tmp_path / "after.onnx",
        *("--epochs", "1", "--sparsity", "0.5", "--prune-schedule", "after"),
        *("--finetune-epochs", "1", "--prune-structure", "block", "--prune-scope", "layer"),
    )
    assert rec["epochs"] == 1 and rec["finetune_epochs"] == 1 and len(rec["history"]) == 2
    assert [h["sparsity"] for h in rec["history"]] == [0.0, 0.5]
    assert (
        rec["pruning"]["block"] == 8 and rec["pruning"]["qonnx_quant_zeros"]["pruned_nonzero"] == 0
    )
    for name, w in P.quantized_weights(tmp_path / "after.onnx").items():
        blocks = w.reshape(w.shape[0], -1, 8)
        dead = (blocks == 0).all(-1)
        assert float(dead.mean()) >= 0.5, name  # half the blocks of each layer, whole


# -- BOPs --------------------------------------------------------------------------------------


def test_bops_formula() -> None:
    lb = P.LayerBops("conv", macs=9 * 36, weight_bits=4, act_bits=3, weights=36, nonzero=12)
    assert lb.density == pytest.approx(1 / 3)
    assert lb.bops == 9 * 12 * 4 * 3  # MACs x b_w x b_a x density = 1,296


def test_bops_tiny_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 9-4-3 MLP (2-bit input, weights and activations) with chosen ternary weights:
    layer 1 has 36 MACs and 20 nonzero weights, layer 2 12 MACs and 5 nonzero, so
    BOPs = 20 x 2 x 2 + 5 x 2 x 2 = 100 (dense: 48 x 4 = 192)."""
    from qloom.flow import compile_model
    from qloom.train import zoo
    from qloom.train.export import export_qonnx

    monkeypatch.setitem(zoo.TOPOLOGIES, "tiny", zoo.Topology("fc", "9-4-3", hidden=(4,)))
    torch.manual_seed(0)
    model = build_model("tiny-w2a2", 1, 3, 3)
    w1 = torch.zeros(4, 9)
    w1.view(-1)[torch.arange(0, 36, 36 / 20).long()] = 1.0  # 20 nonzero, some negative:
    w1[1] *= -1
    w2 = torch.tensor([[1.0, 0, 0, -1], [0, 1, 0, 0], [1, 0, -1, 0]])
    lin = [m for m in model.modules() if isinstance(m, zoo.QuantLinear)]
    with torch.no_grad():
        lin[0].weight.copy_(w1)
        lin[1].weight.copy_(w2)
    model.eval()
    export_qonnx(model, tmp_path / "tiny.onnx", (1, 1, 3, 3))
    layers = P.layer_bops(compile_model(tmp_path / "tiny.onnx").integer)
    assert [(lb.macs, lb.nonzero, lb.weight_bits, lb.act_bits) for lb in layers] == [
        (36, 20, 2, 2),
        (12, 5, 2, 2),
    ]
    rec = P.bops_record(layers)
    assert (rec["bops"], rec["bops_dense"]) == (100, 192)


# -- command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--sparsity", "1"], r"must be in \[0, 1\)"),
        (["--sparsity", "-0.5"], r"must be in \[0, 1\)"),
        (["--sparsity", "0.5", "--prune-block", "0"], "at least 1"),
        (["--sparsity", "0.5", "--prune-structure", "block", "--prune-block", "5"], "divide"),
        (["--sparsity", "0.5", "--prune-schedule", "gradual:2-9"], "within the 2 training"),
        (["--sparsity", "0.5", "--prune-schedule", "sometimes"], "use gradual"),
        (["--prune-structure", "block"], "without --sparsity"),
        (["--sparsity", "0.5", "--model", "tfc-w1a1"], "bipolar"),
    ],
)
def test_cli_errors(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list, match: str
) -> None:
    import re

    argv = ["train", "--model", "tfc-w2a2", "--dataset", "mnist", "--epochs", "2"]
    argv += ["--out", str(tmp_path / "x.onnx"), "--data-dir", str(data_dir), "--limit", "64"]
    assert main_cli.main(argv + extra) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert re.search(match, err), err
    assert not (tmp_path / "x.onnx").exists()


def test_cli_bad_choice_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main_cli.main(["train", "--model", "tfc-w2a2", "--out", "x.onnx", "--prune-scope", "x"])
    assert e.value.code == 2 and "--prune-scope" in capsys.readouterr().err


def test_qap_resume_equals_straight_run(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A QAP run stopped after epoch 2 and resumed ends with the straight run's weights and
    masks (the masks travel in the checkpoint)."""
    from qloom.train import trainer as trainer_mod

    monkeypatch.setattr(trainer_mod, "_integer_predictor", lambda: None)
    cfg = P.PruneConfig(0.6, schedule="iterative:2:1-2")
    kw = dict(epochs=3, batch_size=64, quiet=True, data_dir=data_dir, threads=1, prune=cfg)
    trainer_mod.train("tfc-w2a2", "mnist", out=tmp_path / "a.onnx", **kw)

    real_evaluate, calls = trainer_mod.evaluate, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # end of epoch 3, before its checkpoint
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer_mod.train("tfc-w2a2", "mnist", out=tmp_path / "b.onnx", **kw)
    monkeypatch.setattr(trainer_mod, "evaluate", real_evaluate)
    mid = torch.load(tmp_path / "b.pt", weights_only=False)
    assert mid["epoch"] == 1 and 0 < mid["prune"]["sparsity"] < 0.6
    trainer_mod.train("tfc-w2a2", "mnist", out=tmp_path / "b.onnx", resume=tmp_path / "b.pt", **kw)
    a = torch.load(tmp_path / "a.pt", weights_only=False)
    b = torch.load(tmp_path / "b.pt", weights_only=False)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    for k, v in a["prune"]["masks"].items():
        assert torch.equal(v, b["prune"]["masks"][k]), k
    assert a["prune"]["sparsity"] == b["prune"]["sparsity"] == pytest.approx(0.6)
