"""The sweep specification: reading, checking and expanding it into points.

A spec is a JSON (or YAML) mapping. Lists are sweep axes; their cartesian product gives the
points, in the order models x widths x precisions x sparsity. Every point is trained once and
then folded to every FPS target on every part (those two axes are rows of a point, so that no
two tasks ever train the same model).

Every error is a QloomError (exit 2) naming the key, what was found and what works.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from qloom.errors import QloomError

#: precision names: w<weight bits>a<activation bits>[-i<input bits>], 1..8 bits each
PRECISION_RE = re.compile(r"^w([1-8])a([1-8])(?:-i([1-8]))?$")
#: bump when the meaning of a stored point changes (a rerun then redoes every point)
POINT_VERSION = 1

_NUM = "a number"
_INT = "an integer"
_STR = "a string"
_BOOL = "true or false"


@dataclass(frozen=True)
class _Key:
    kind: str  # "list" or "scalar"
    item: str  # _NUM, _INT, _STR, _BOOL
    required: bool = False
    example: str = ""
    help: str = ""


KEYS: dict[str, _Key] = {
    "models": _Key("list", _STR, True, '["tfc", "sfc"]', "zoo topologies"),
    "precisions": _Key("list", _STR, True, '["w1a1", "w2a2"]', "w<X>a<Y>[-i<Z>], 1..8 bits"),
    "dataset": _Key("scalar", _STR, True, '"fashion-mnist"', "mnist, fashion-mnist, cifar10"),
    "epochs": _Key("scalar", _INT, True, "3", "training epochs, at least 1"),
    "targets_fps": _Key("list", _NUM, True, "[1e4, 1e5]", "frames/s, each > 0"),
    "part": _Key("scalar", _STR, False, '"xc7z020"', "FPGA part or board (qloom devices)"),
    "parts": _Key("list", _STR, False, '["xc7z020", "xczu7ev"]', "several parts (instead of part)"),
    "widths": _Key("list", _INT, False, "[32, 64]", "hidden neurons per layer (FC models)"),
    "sparsity": _Key("list", _NUM, False, "[0, 0.5]", "pruned fraction in [0, 1); default [0]"),
    "seed": _Key("scalar", _INT, False, "0", "training seed"),
    "batch_size": _Key("scalar", _INT, False, "100", "training batch size"),
    "lr": _Key("scalar", _NUM, False, "0.02", "learning rate"),
    "limit": _Key("scalar", _INT, False, "20000", "train on N seeded random images"),
    "test_limit": _Key("scalar", _INT, False, "1000", "evaluate on the first N test images"),
    "data_dir": _Key("scalar", _STR, False, '"data"', "dataset folder (relative: to the spec)"),
    "cache_dir": _Key("scalar", _STR, False, '"build/sweep-models"', "trained-model cache"),
    "clock_mhz": _Key("scalar", _NUM, False, "100", "clock for the FPS targets"),
    "max_utilization": _Key("scalar", _NUM, False, "0.8", "share of the part a design may use"),
    "synth": _Key("scalar", _BOOL, False, "false", "Yosys synthesis of every design that fits"),
    "threads": _Key("scalar", _INT, False, "1", "torch threads per task"),
    "max_retries": _Key("scalar", _INT, False, "3", "Ray retries of a point whose worker died"),
    "name": _Key("scalar", _STR, False, '"fashion sweep"', "title of the report"),
}


def _keys_text() -> str:
    return ", ".join(KEYS)


def _err(key: str, what: str) -> QloomError:
    k = KEYS[key]
    return QloomError(f"sweep spec: '{key}' {what}; give {k.help}, e.g. {key}: {k.example}")


def _check_value(key: str, item: str, v: Any, where: str) -> Any:
    """V as the type ITEM asks for (numbers may be written as strings like '1e4', which YAML
    1.1 reads as text); QloomError naming KEY otherwise."""
    if item == _BOOL:
        if isinstance(v, bool):
            return v
    elif item == _STR:
        if isinstance(v, str) and v.strip():
            return v.strip()
    elif item == _INT:
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
    elif item == _NUM:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                pass
    raise _err(key, f"{where}must be {item}, got {v!r} ({type(v).__name__})")


@dataclass(frozen=True)
class Point:
    """One trained model: topology x width x precision x sparsity."""

    model: str  # topology, e.g. "tfc"
    precision: str  # e.g. "w2a2"
    width: int | None = None
    sparsity: float = 0.0

    @property
    def topology(self) -> str:
        """The zoo topology name (a width makes its own: tfc-h32)."""
        return self.model if self.width is None else f"{self.model}-h{self.width}"

    @property
    def zoo_name(self) -> str:
        return f"{self.topology}-{self.precision}"

    @property
    def key(self) -> str:
        """A file-name-safe identity, e.g. tfc-w2a2, tfc-h32-w2a2-sp50."""
        sp = f"-sp{self.sparsity * 100:g}" if self.sparsity else ""
        return f"{self.zoo_name}{sp}"

    @property
    def bits(self) -> tuple[int, int, int | None]:
        m = PRECISION_RE.match(self.precision)
        assert m is not None
        return int(m[1]), int(m[2]), int(m[3]) if m[3] else None


@dataclass(frozen=True)
class SweepSpec:
    models: tuple[str, ...]
    precisions: tuple[str, ...]
    dataset: str
    epochs: int
    targets_fps: tuple[float, ...]
    parts: tuple[str, ...]
    widths: tuple[int | None, ...] = (None,)
    sparsity: tuple[float, ...] = (0.0,)
    seed: int = 0
    batch_size: int = 100
    lr: float = 0.02
    limit: int | None = None
    test_limit: int | None = None
    data_dir: str | None = None  # absolute
    cache_dir: str | None = None  # absolute; None: <out>/models
    clock_mhz: float = 100.0
    max_utilization: float = 0.8
    synth: bool = False
    threads: int = 1
    max_retries: int = 3
    name: str = "qloom sweep"
    source: str = field(default="", compare=False)

    def points(self) -> list[Point]:
        return [
            Point(m, p, w, s)
            for m, w, p, s in product(self.models, self.widths, self.precisions, self.sparsity)
        ]

    def training(self) -> dict[str, Any]:
        """What a trained model depends on besides its point (the training cache key)."""
        return {
            "dataset": self.dataset,
            "epochs": self.epochs,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "limit": self.limit,
            "data_dir": self.data_dir,
        }

    def hardware(self) -> dict[str, Any]:
        return {
            "targets_fps": list(self.targets_fps),
            "parts": list(self.parts),
            "clock_mhz": self.clock_mhz,
            "max_utilization": self.max_utilization,
            "synth": self.synth,
            "test_limit": self.test_limit,
        }

    def train_key(self, p: Point) -> str:
        """The training cache folder name: readable, plus a hash of every training setting."""
        t = self.training()
        return f"{p.key}-{t['dataset']}-e{t['epochs']}-s{t['seed']}-{_digest([p.key, t])[:8]}"

    def point_hash(self, p: Point) -> str:
        """Changes whenever anything the point's stored result depends on changes."""
        return _digest([POINT_VERSION, asdict(p), self.training(), self.hardware()])[:16]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        return d


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The spec file's mapping: JSON by default, YAML for .yaml / .yml (PyYAML)."""
    p = Path(path)
    if not p.exists():
        raise QloomError(f"sweep spec {p}: no such file (give a JSON or YAML sweep spec)")
    if not p.is_file():
        raise QloomError(f"sweep spec {p}: not a file (give a JSON or YAML sweep spec)")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise QloomError(f"sweep spec {p}: cannot read it ({e})") from e
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as e:  # PyYAML comes with Ray; without it only JSON works
            raise QloomError(
                f"sweep spec {p}: YAML needs PyYAML (pip install pyyaml); or write it as JSON"
            ) from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise QloomError(f"sweep spec {p}: not valid YAML: {e}") from e
    else:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise QloomError(
                f"sweep spec {p}: not valid JSON: {e} (YAML files need a .yaml or .yml name)"
            ) from e
    if not isinstance(data, dict):
        raise QloomError(
            f"sweep spec {p}: the file must hold a mapping of keys ({_keys_text()}), "
            f"not {type(data).__name__}"
        )
    return data


def load_spec(path: str | Path, check_data: bool = True) -> SweepSpec:
    """Read and check a sweep spec (QloomError naming the key otherwise); CHECK_DATA also
    looks for the dataset's files, so that a missing dataset fails before any point runs."""
    p = Path(path)
    spec = parse_spec(read_spec_file(p), base=p.resolve().parent, source=str(p))
    if check_data:
        from qloom.data import load_dataset

        try:
            load_dataset(spec.dataset, "test", spec.data_dir)
        except QloomError as e:
            raise QloomError(f"sweep spec: 'dataset' {spec.dataset!r}: {e}") from e
    return spec


def parse_spec(data: dict[str, Any], base: Path | None = None, source: str = "") -> SweepSpec:
    """Check the mapping DATA and build the spec; relative folders are taken from BASE."""
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        k = unknown[0]
        import difflib

        close = difflib.get_close_matches(str(k), list(KEYS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise QloomError(f"sweep spec: unknown key '{k}'{hint}; known keys: {_keys_text()}")
    for k, meta in KEYS.items():
        if meta.required and k not in data:
            raise _err(k, "is missing")
    if "part" not in data and "parts" not in data:
        raise _err("part", "is missing (or give 'parts', a list)")
    if "part" in data and "parts" in data:
        raise _err("parts", "and 'part' are both given; give one of them")

    vals: dict[str, Any] = {}
    for k, v in data.items():
        meta = KEYS[k]
        if meta.kind == "list":
            if not isinstance(v, list):
                raise _err(k, f"must be a list, got {v!r} ({type(v).__name__})")
            if not v:
                raise _err(k, "is an empty list")
            items = [_check_value(k, meta.item, x, f"item {i + 1} ") for i, x in enumerate(v)]
            vals[k] = tuple(dict.fromkeys(items))  # duplicates once, in order
        elif v is None and not meta.required:
            continue
        else:
            vals[k] = _check_value(k, meta.item, v, "")

    models = tuple(m.lower() for m in vals["models"])
    from qloom.train.zoo import TOPOLOGIES

    image = [t for t, topo in TOPOLOGIES.items() if topo.kind in ("fc", "cnv")]
    for m in models:
        if m not in image:
            raise _err("models", f"has unknown model {m!r}; known models: {', '.join(image)}")
    precisions = tuple(p.lower() for p in vals["precisions"])
    for prec in precisions:
        if not PRECISION_RE.match(prec):
            raise _err(
                "precisions",
                f"has {prec!r}, which is no bit width qloom trains: use w<X>a<Y>[-i<Z>] with "
                "X, Y, Z in 1..8 bits for weights, activations and input",
            )
    from qloom.data import parse_dataset_spec

    try:
        dataset = parse_dataset_spec(vals["dataset"])[0]
    except QloomError as e:
        raise _err("dataset", f"{vals['dataset']!r}: {e}") from e
    if vals["epochs"] < 1:
        raise _err("epochs", f"must be at least 1, got {vals['epochs']}")
    for f in vals["targets_fps"]:
        if not f > 0:
            raise _err("targets_fps", f"has {f:g}; every target must be > 0 frames/s")
    from qloom.synth.devices import get_device

    parts = vals["parts"] if "parts" in vals else (vals["part"],)
    key = "parts" if "parts" in vals else "part"
    for part in parts:
        try:
            get_device(part)
        except QloomError as e:
            raise _err(key, f"{part!r}: {e}") from e
    widths: tuple[int | None, ...] = (None,)
    if "widths" in vals:
        widths = vals["widths"]
        for w in widths:
            if not 1 <= w <= 4096:
                raise _err("widths", f"has {w}; a width is 1..4096 neurons")
        not_fc = [m for m in models if TOPOLOGIES[m].kind != "fc"]
        if not_fc:
            raise _err("widths", f"applies to FC models only, not {', '.join(not_fc)}")
    for s in vals.get("sparsity", ()):
        if not 0.0 <= s < 1.0:
            raise _err("sparsity", f"has {s:g}; a sparsity is in [0, 1)")
    for k, low in (("seed", 0), ("batch_size", 1), ("limit", 1), ("test_limit", 1),
                   ("threads", 1), ("max_retries", 0)):  # fmt: skip
        if k in vals and vals[k] < low:
            raise _err(k, f"must be at least {low}, got {vals[k]}")
    for k in ("lr", "clock_mhz"):
        if k in vals and not vals[k] > 0:
            raise _err(k, f"must be > 0, got {vals[k]:g}")
    if "max_utilization" in vals and not 0 < vals["max_utilization"] <= 1:
        raise _err("max_utilization", f"must be in (0, 1], got {vals['max_utilization']:g}")

    base = base or Path.cwd()
    folders = {k: str((base / vals[k]).resolve()) for k in ("data_dir", "cache_dir") if k in vals}
    rest = {
        k: vals[k]
        for k in ("seed", "batch_size", "lr", "limit", "test_limit", "clock_mhz",
                  "max_utilization", "synth", "threads", "max_retries", "name")
        if k in vals
    }  # fmt: skip
    return SweepSpec(
        models=models,
        precisions=precisions,
        dataset=dataset,
        epochs=vals["epochs"],
        targets_fps=vals["targets_fps"],
        parts=tuple(parts),
        widths=widths,
        sparsity=vals.get("sparsity", (0.0,)),
        source=source,
        **folders,
        **rest,
    )
