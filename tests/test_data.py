"""Datasets: IDX parsing, search order, the error for a missing dataset, shared MNIST test set."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest

from qloom.data import (
    load_dataset,
    parse_dataset_spec,
    read_idx,
    write_idx,
)
from qloom.data import loaders as loaders_mod
from qloom.errors import DatasetNotFoundError, QloomError


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $QLOOM_DATA, no system packages, no shared folder: only what the test creates."""
    monkeypatch.delenv("QLOOM_DATA", raising=False)
    monkeypatch.setattr(loaders_mod, "SYSTEM_DIRS", {})
    monkeypatch.setattr(loaders_mod, "shared_data_roots", lambda: [])
    return tmp_path


def _handmade_idx(path: Path, gz: bool) -> None:
    # 2 images of 2x3, uint8 (type 0x08), written byte by byte (not with write_idx).
    header = bytes([0, 0, 0x08, 3]) + (2).to_bytes(4, "big") + (2).to_bytes(4, "big")
    header += (3).to_bytes(4, "big")
    payload = header + bytes(range(12))
    path.write_bytes(gzip.compress(payload) if gz else payload)


@pytest.mark.parametrize("gz", [False, True])
def test_read_handmade_idx(tmp_path: Path, gz: bool) -> None:
    p = tmp_path / ("x.idx3-ubyte" + (".gz" if gz else ""))
    _handmade_idx(p, gz)
    a = read_idx(p)
    assert a.dtype == np.uint8 and a.shape == (2, 2, 3)
    assert a[1, 1, 2] == 11 and a[0, 0, 0] == 0


def test_read_idx_big_endian_int32(tmp_path: Path) -> None:
    payload = bytes([0, 0, 0x0C, 1]) + (2).to_bytes(4, "big") + (258).to_bytes(4, "big")
    payload += (-1).to_bytes(4, "big", signed=True)
    (tmp_path / "i.idx").write_bytes(payload)
    assert read_idx(tmp_path / "i.idx").tolist() == [258, -1]


def test_read_idx_rejects_truncated_and_garbage(tmp_path: Path) -> None:
    p = tmp_path / "t.idx"
    _handmade_idx(p, gz=False)
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(p)
    p.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        read_idx(p)


def test_write_idx_roundtrip(tmp_path: Path) -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a.gz", a)), a)
    b = np.array([1, -2, 3], dtype=np.int32)
    assert np.array_equal(read_idx(write_idx(tmp_path / "b", b)), b)


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("mnist-test", ("mnist", "test")),
        ("fashion-mnist-test", ("fashion-mnist", "test")),
        ("fashion-mnist", ("fashion-mnist", "test")),
        ("Fashion_MNIST-train", ("fashion-mnist", "train")),
        ("cifar10", ("cifar10", "test")),
        ("cifar-10-train", ("cifar10", "train")),
    ],
)
def test_parse_dataset_spec(spec: str, expected: tuple[str, str]) -> None:
    assert parse_dataset_spec(spec) == expected


def test_unknown_dataset_name() -> None:
    with pytest.raises(DatasetNotFoundError, match="known datasets"):
        parse_dataset_spec("imagenet")


def _fake_mnist(d: Path, n_train: int = 6, n_test: int = 4, gz: bool = True) -> None:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            d / f"{prefix}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 28, 28), np.uint8)
        )
        write_idx(d / f"{prefix}-labels-idx1-ubyte{sfx}", (np.arange(n) % 10).astype(np.uint8))


def test_load_from_data_dir_and_env(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_mnist(isolated / "explicit" / "mnist", gz=False)
    x, y = load_dataset("mnist", "train", data_dir=isolated / "explicit")
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2, 3, 4, 5]
    _fake_mnist(isolated / "env" / "fashion-mnist", n_test=3)
    monkeypatch.setenv("QLOOM_DATA", str(isolated / "env"))
    x, y = load_dataset("fashion-mnist-test")
    assert x.shape == (3, 1, 28, 28)


def test_missing_dataset_lists_every_place(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = isolated / "env"
    env.mkdir()
    monkeypatch.setenv("QLOOM_DATA", str(env))
    shared = isolated / "shared" / "data"
    (shared / "mnist").mkdir(parents=True)
    monkeypatch.setattr(loaders_mod, "shared_data_roots", lambda: [shared])
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", "train")
    msg = str(info.value)
    for place in (env, env / "mnist"):
        assert f"{place} (" in msg
    assert f"{shared / 'mnist'} (shared folder): exists, but has no train-images" in msg
    assert "does not exist" in msg and "How to get it" in msg and "never downloads" in msg
    assert isinstance(info.value, QloomError)
    # a data directory the user names is the only place searched: no silent fallback
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", "train", data_dir=isolated / "nowhere")
    msg = str(info.value)
    for place in (isolated / "nowhere", isolated / "nowhere" / "mnist"):
        assert f"{place} (" in msg
    assert f"{env} (" not in msg and "shared folder" not in msg
    assert "only the data directory given was searched" in msg


def test_malformed_dataset_files_are_named(isolated: Path) -> None:
    """Float pixels, a truncated IDX, a garbage CIFAR batch: one message naming the file."""
    from qloom.data import write_idx
    from qloom.errors import DatasetError

    d = isolated / "floaty"
    d.mkdir()
    write_idx(d / "t10k-images-idx3-ubyte", np.random.rand(4, 28, 28).astype(np.float32))
    write_idx(d / "t10k-labels-idx1-ubyte", np.arange(4, dtype=np.uint8))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte: pixels of type float32"):
        load_dataset("mnist", "test", data_dir=d)
    t = isolated / "trunc"
    t.mkdir()
    write_idx(t / "t10k-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    write_idx(t / "t10k-labels-idx1-ubyte", np.arange(4, dtype=np.uint8))
    raw = (t / "t10k-images-idx3-ubyte").read_bytes()
    (t / "t10k-images-idx3-ubyte").write_bytes(raw[:100])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", "test", data_dir=t)
    c = isolated / "cifar" / "cifar-10-batches-py"
    c.mkdir(parents=True)
    (c / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DatasetError, match="test_batch: not a CIFAR-10 python batch"):
        load_dataset("cifar10", "test", data_dir=isolated / "cifar")


def test_missing_fashion_mnist_says_how_to_install(isolated: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="apt-get install -y dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_cifar10_pickle_batches(isolated: Path) -> None:
    d = isolated / "cifar10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]
    for n in names:
        batch = {b"data": rng.integers(0, 256, (2, 3072), np.uint8), b"labels": [3, 7]}
        (d / n).write_bytes(pickle.dumps(batch))
    x, y = load_dataset("cifar10", "train", data_dir=isolated)
    assert x.shape == (10, 3, 32, 32) and y.tolist() == [3, 7] * 5
    x, _ = load_dataset("cifar10-test", data_dir=isolated)
    assert x.shape == (2, 3, 32, 32)


def test_shared_mnist_test_set() -> None:
    """The real MNIST test set from the project's shared folder (skipped where absent)."""
    try:
        x, y = load_dataset("mnist-test")
    except DatasetNotFoundError as e:
        pytest.skip(f"MNIST test set not installed: {str(e).splitlines()[0]}")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    assert y[:8].tolist() == [7, 2, 1, 0, 4, 1, 4, 9]
    assert np.bincount(y).tolist()[:2] == [980, 1135]


def test_digits_from_the_scikit_learn_wheel() -> None:
    """The bundled 8x8 digits as images: 0..16 scaled to 0..255, a fixed disjoint split."""
    x_tr, y_tr = load_dataset("digits", "train")
    x_te, y_te = load_dataset("digits-test")
    assert x_tr.shape == (1347, 1, 8, 8) and x_te.shape == (450, 1, 8, 8)
    assert x_tr.dtype == np.uint8 and x_tr.max() == 255 and x_tr.min() == 0
    assert set(np.unique(y_te)) == set(range(10)) and loaders_mod.dataset_info("digits").size == 8
    train_rows = {r.tobytes() for r in x_tr.reshape(len(x_tr), -1)}
    assert sum(r.tobytes() in train_rows for r in x_te.reshape(len(x_te), -1)) < 10  # duplicates
    assert np.array_equal(load_dataset("digits-test")[0], x_te)  # the same split every time
