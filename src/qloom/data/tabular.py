"""Tabular data sets of the ultra-low-latency papers, from the files their users have:

* jet substructure (hls4ml / LogicNets JSC: 16 high-level features, 5 classes g, q, t, w, z):
  OpenML's `hls4ml_lhc_jets_hlf` as ARFF (numeric attributes and a nominal `class`), or the
  same table as CSV with a header row and a `class` column;
* UNSW-NB15 (network intrusion, LogicNets NID): LogicNets' `unsw_nb15_binarized.npz` (arrays
  `train` and `test`, each row 593 binary features then the label), or the standard
  `UNSW_NB15_training-set.csv` / `UNSW_NB15_testing-set.csv` (the numeric columns as features;
  `id`, `attack_cat` and the categorical `proto`, `service`, `state` are left out; `label`);
* the small real sets inside the scikit-learn wheel (digits, breast cancer, wine), which need
  no file at all.

Each loader returns `Table(x float32 (N, F), y int64 (N,), classes)`; a malformed file raises
DatasetError naming the file and what was wrong. Nothing is downloaded.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qloom.errors import DatasetError

JET_CLASSES = ("g", "q", "t", "w", "z")
UNSW_DROPPED = ("id", "proto", "service", "state", "attack_cat", "label")


@dataclass(frozen=True)
class Table:
    x: np.ndarray  # (N, F) float32
    y: np.ndarray  # (N,) int64 class index
    classes: tuple[str, ...]
    source: str


def _labels(values, classes: tuple[str, ...], path: Path) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    try:
        return np.array([index[str(v).strip().strip("'\"")] for v in values], dtype=np.int64)
    except KeyError as e:
        raise DatasetError(
            f"{path}: unknown class {e.args[0]!r}; expected one of {classes}"
        ) from None


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read the CSV file ({e})") from None
    if len(rows) < 2:
        raise DatasetError(f"{path}: expected a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise DatasetError(f"{path}: line {i} has {len(r)} fields, the header {len(header)}")
    return header, body


def _floats(rows: list[list[str]], cols: list[int], path: Path) -> np.ndarray:
    try:
        return np.array([[float(r[c]) for c in cols] for r in rows], dtype=np.float32)
    except ValueError as e:
        raise DatasetError(f"{path}: a feature value is not a number ({e})") from None


def load_jets(path: str | Path) -> Table:
    """Jet substructure features from OpenML's ARFF or a CSV with a `class` column."""
    p = Path(path)
    if p.suffix.lower() == ".arff":
        from scipy.io import arff

        try:
            data, meta = arff.loadarff(p)
        except (OSError, ValueError, arff.ArffError) as e:
            raise DatasetError(f"{p}: not a readable ARFF file ({e})") from None
        names = list(meta.names())
        if "class" not in names:
            raise DatasetError(f"{p}: no 'class' attribute (attributes: {', '.join(names)})")
        feats = [n for n in names if n != "class" and meta[n][0] == "numeric"]
        x = np.stack([data[n].astype(np.float32) for n in feats], axis=1)
        y = _labels([v.decode() if isinstance(v, bytes) else v for v in data["class"]],
                    JET_CLASSES, p)  # fmt: skip
    else:
        header, rows = _read_csv(p)
        if "class" not in header:
            raise DatasetError(f"{p}: no 'class' column (columns: {', '.join(header)})")
        ci = header.index("class")
        x = _floats(rows, [i for i in range(len(header)) if i != ci], p)
        y = _labels([r[ci] for r in rows], JET_CLASSES, p)
    if x.shape[1] != 16:
        raise DatasetError(f"{p}: {x.shape[1]} features; the jet data set has 16")
    return Table(x, y, JET_CLASSES, str(p))


def load_unsw_nb15(path: str | Path, split: str = "test") -> Table:
    """UNSW-NB15 from LogicNets' binarized .npz (`split`: train / test) or a standard CSV."""
    p = Path(path)
    if p.suffix.lower() == ".npz":
        try:
            with np.load(p) as z:
                if split not in z.files:
                    raise DatasetError(f"{p}: no array {split!r} (arrays: {', '.join(z.files)})")
                a = z[split]
        except (OSError, ValueError) as e:
            raise DatasetError(f"{p}: not a readable .npz file ({e})") from None
        if a.ndim != 2 or a.shape[1] != 594:
            raise DatasetError(f"{p}: {split} has shape {a.shape}; LogicNets' file has 593 "
                               "binary features and the label per row (594 columns)")  # fmt: skip
        x, y = a[:, :-1], a[:, -1]
        if not (np.isin(x, (0, 1)).all() and np.isin(y, (0, 1)).all()):
            raise DatasetError(f"{p}: {split} holds values other than 0 and 1")
        return Table(x.astype(np.float32), y.astype(np.int64), ("normal", "attack"), str(p))
    header, rows = _read_csv(p)
    if "label" not in header:
        raise DatasetError(f"{p}: no 'label' column; expected UNSW_NB15_training/testing-set.csv")
    cols = [i for i, h in enumerate(header) if h not in UNSW_DROPPED]
    x = _floats(rows, cols, p)
    y = np.array([int(r[header.index("label")]) for r in rows], dtype=np.int64)
    if not np.isin(y, (0, 1)).all():
        raise DatasetError(f"{p}: label must be 0 (normal) or 1 (attack)")
    return Table(x, y, ("normal", "attack"), str(p))


SKLEARN_SETS = {"digits": "load_digits", "breast-cancer": "load_breast_cancer", "wine": "load_wine"}


def load_sklearn(name: str) -> Table:
    """A small real data set bundled in the scikit-learn wheel (no file, no download)."""
    if name not in SKLEARN_SETS:
        raise DatasetError(f"unknown bundled data set {name!r}; use {', '.join(SKLEARN_SETS)}")
    import sklearn.datasets

    d = getattr(sklearn.datasets, SKLEARN_SETS[name])()
    classes = tuple(str(c) for c in getattr(d, "target_names", sorted(set(d.target))))
    return Table(d.data.astype(np.float32), d.target.astype(np.int64), classes, f"sklearn:{name}")
