"""Find and load datasets from the places they are usually installed.

Search order, first hit wins (for a dataset NAME):
  1. the explicit ``data_dir`` argument, then ``data_dir/NAME``;
  2. ``$QLOOM_DATA``, then ``$QLOOM_DATA/NAME``;
  3. system packages: ``/usr/share/datasets/fashion-mnist`` (Debian ``dataset-fashion-mnist``);
  4. ``shared/data/NAME`` in any ancestor of this package or of the working directory (the
     project's shared folder, which holds the MNIST test split).
A miss raises DatasetNotFoundError listing every place and why it did not match.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qloom.data.idx import read_idx
from qloom.errors import DatasetError, DatasetNotFoundError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset before seeing it."""

    name: str
    channels: int
    size: int
    num_classes: int
    classes: tuple[str, ...]
    how_to_get: str


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        1,
        28,
        10,
        tuple(str(i) for i in range(10)),
        "put the IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in $QLOOM_DATA/mnist or pass "
        "--data-dir; the project's shared/data/mnist holds only the test split",
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        1,
        28,
        10,
        (
            "t-shirt/top",
            "trouser",
            "pullover",
            "dress",
            "coat",
            "sandal",
            "shirt",
            "sneaker",
            "bag",
            "ankle boot",
        ),
        "install Debian's package (as root: apt-get update && apt-get install -y "
        "dataset-fashion-mnist, or run scripts/install_datasets.sh), or put the IDX files "
        "(train-/t10k-images-idx3-ubyte.gz, ...) in $QLOOM_DATA/fashion-mnist",
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        3,
        32,
        10,
        (
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ),
        "extract cifar-10-python.tar.gz so that $QLOOM_DATA/cifar10/cifar-10-batches-py "
        "(data_batch_1..5, test_batch) exists, or pass --data-dir",
    ),
    "digits": DatasetInfo(
        "digits",
        1,
        8,
        10,
        tuple(str(i) for i in range(10)),
        "bundled in the scikit-learn wheel (pip install scikit-learn)",
    ),
}

# digits: scikit-learn's 1,797 8x8 images of 0..16 as uint8 pixels (v * 255 / 16, rounded),
# split once by a seeded permutation into 1,347 training and 450 test images (25 %).
DIGITS_TEST = 450

_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}

# Where operating-system packages install datasets (checked after the user's own places).
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (Path("/usr/share/datasets/mnist"),),
}


def _canonical(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        known = ", ".join(sorted(DATASETS))
        raise DatasetNotFoundError(f"unknown dataset {name!r}; known datasets: {known}")
    return key


def parse_dataset_spec(spec: str, default_split: str = "test") -> tuple[str, str]:
    """Split 'mnist-test' / 'fashion-mnist-train' / 'cifar10' into (name, split).

    Why: the CLI and reports name a dataset and split in one word.
    """
    key = spec.strip().lower()
    split = default_split
    for s in SPLITS:
        for sep in ("-", "_", ":"):
            if key.endswith(sep + s):
                key, split = key[: -len(s) - 1], s
                break
        else:
            continue
        break
    return _canonical(key), split


def dataset_info(name: str) -> DatasetInfo:
    """Shape and class names of a dataset ('mnist-test' style names accepted)."""
    return DATASETS[parse_dataset_spec(name)[0]]


def _ancestors(start: Path) -> Iterable[Path]:
    start = start.resolve()
    yield start
    yield from start.parents


def shared_data_roots() -> list[Path]:
    """Every existing ``shared/data`` folder above this package or the working directory."""
    roots: list[Path] = []
    for start in (Path(__file__).parent, Path.cwd()):
        for anc in _ancestors(start):
            cand = anc / "shared" / "data"
            if cand.is_dir() and cand not in roots:
                roots.append(cand)
    return roots


def candidate_dirs(name: str, data_dir: str | Path | None = None) -> list[tuple[Path, str]]:
    """The directories searched for dataset NAME, in order, each with where it came from."""
    name = _canonical(name)
    out: list[tuple[Path, str]] = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        out += [(d, "data_dir"), (d / name, "data_dir")]
    env = os.environ.get("QLOOM_DATA")
    if env:
        e = Path(env).expanduser()
        out += [(e, "$QLOOM_DATA"), (e / name, "$QLOOM_DATA")]
    out += [(p, "system package") for p in SYSTEM_DIRS.get(name, ())]
    out += [(root / name, "shared folder") for root in shared_data_roots()]
    seen: set[Path] = set()
    unique = []
    for p, why in out:
        if p not in seen:
            seen.add(p)
            unique.append((p, why))
    return unique


def _idx_file(d: Path, prefix: str, kind: str, ndim: int) -> Path | None:
    for stem in (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"):
        for suffix in (".gz", ""):
            p = d / (stem + suffix)
            if p.is_file():
                return p
    return None


def _find_idx(d: Path, split: str) -> tuple[tuple[Path, Path] | None, str]:
    prefix = "train" if split == "train" else "t10k"
    if not d.is_dir():
        return None, "does not exist"
    images = _idx_file(d, prefix, "images", 3)
    labels = _idx_file(d, prefix, "labels", 1)
    if images is None or labels is None:
        missing = [
            f"{prefix}-{k}-idx{n}-ubyte[.gz]"
            for k, n, f in (("images", 3, images), ("labels", 1, labels))
            if f is None
        ]
        return None, "exists, but has no " + " / ".join(missing)
    return (images, labels), ""


def _load_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        x = read_idx(images)
        y = read_idx(labels)
    except (ValueError, OSError, EOFError) as e:  # gzip raises OSError / EOFError
        raise DatasetError(f"{e}") from None
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise DatasetError(
            f"{images}, {labels}: inconsistent shapes {x.shape} / {y.shape}; expected images "
            "(N, H, W) and labels (N,)"
        )
    if x.dtype != np.uint8:
        raise DatasetError(
            f"{images}: pixels of type {x.dtype}, not uint8; image datasets hold raw 8-bit "
            "pixels. Give other data as --data FILE.npy in the model's own input domain"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{labels}: labels of type {y.dtype}, not integers")
    return x[:, None, :, :], y.astype(np.int64)


def _find_cifar(d: Path, split: str) -> tuple[list[Path] | None, str]:
    if not d.is_dir():
        return None, "does not exist"
    for base in (d / "cifar-10-batches-py", d):
        names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
        files = [base / n for n in names]
        if all(f.is_file() for f in files):
            return files, ""
    want = "test_batch" if split == "test" else "data_batch_1..5"
    return None, f"exists, but has no cifar-10-batches-py/{want}"


def _load_cifar(files: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for f in files:
        try:
            with open(f, "rb") as fh:
                # The CIFAR-10 python release is a pickle; only load files you trust.
                batch = pickle.load(fh, encoding="bytes")
            data = np.asarray(batch[b"data"])
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as e:  # unpickling garbage raises almost anything
            raise DatasetError(
                f"{f}: not a CIFAR-10 python batch ({type(e).__name__}: {e})"
            ) from None
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DatasetError(
                f"{f}: 'data' is {data.dtype} {data.shape}; a CIFAR-10 batch holds uint8 rows "
                "of 3072 pixels"
            )
        if len(labels) != len(data):
            raise DatasetError(f"{f}: {len(labels)} labels for {len(data)} images")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as images: a small real image set that needs no file."""
    try:
        import sklearn.datasets
    except ImportError as e:
        raise DatasetNotFoundError(f"dataset 'digits': {DATASETS['digits'].how_to_get}") from e
    d = sklearn.datasets.load_digits()
    images = np.rint(d.images * (255 / 16)).astype(np.uint8)[:, None]
    order = np.random.default_rng(0).permutation(len(images))
    idx = np.sort(order[DIGITS_TEST:] if split == "train" else order[:DIGITS_TEST])
    return images[idx], d.target[idx].astype(np.int64)


def load_dataset(
    name: str, split: str = "test", data_dir: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load (images uint8 (N,C,H,W), labels int64 (N,)) of a dataset split.

    NAME may carry the split ('mnist-test'); such a suffix wins over SPLIT.
    """
    key, name_split = parse_dataset_spec(name, default_split=split)
    split = name_split
    if split not in SPLITS:
        raise DatasetNotFoundError(f"unknown split {split!r} for {key}; use one of {SPLITS}")
    if key == "digits":
        return _load_digits(split)
    tried: list[str] = []
    dirs = candidate_dirs(key, data_dir)
    if data_dir is not None:  # the user named the place: look nowhere else
        dirs = [(d, why) for d, why in dirs if why == "data_dir"]
    for d, why in dirs:
        if key == "cifar10":
            files, reason = _find_cifar(d, split)
            if files is not None:
                return _load_cifar(files)
        else:
            pair, reason = _find_idx(d, split)
            if pair is not None:
                return _load_idx_pair(*pair)
        tried.append(f"  - {d} ({why}): {reason}")
    if data_dir is None and not any("shared folder" in t for t in tried):
        tried.append(
            f"  - shared/data/{key} (shared folder): no shared/data above "
            f"{Path(__file__).parent} or {Path.cwd()}"
        )
    if data_dir is None and not os.environ.get("QLOOM_DATA"):
        tried.append("  - $QLOOM_DATA: not set")
    if data_dir is not None:
        tried.append(
            "  (only the data directory given was searched; without it qloom also looks in "
            "$QLOOM_DATA, the system package and shared/data)"
        )
    raise DatasetNotFoundError(
        f"dataset {key!r} (split {split!r}) not found. Looked in:\n"
        + "\n".join(tried)
        + f"\nHow to get it: {DATASETS[key].how_to_get}. qloom never downloads datasets."
    )
