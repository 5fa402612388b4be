"""The model's input domain: which integers the hardware receives, and how the host makes them.

A user feeds the model what they would feed qonnx or onnxruntime: floats in the model's own
input domain. The hardware sees integers only. `derive_input_domain` finds the boundary from the
model itself, in this order:

1. the graph input's datatype annotation (qonnx `finn_datatype`: UINT8, INT8, BIPOLAR, ...): the
   input values *are* those integers, the host only checks them;
2. else the first quantizer the input reaches through shape ops and constant Mul/Div/Add/Sub
   (Quant/IntQuant, BipolarQuant, MultiThreshold): the host runs those nodes and the quantizer
   and sends the quantizer's integers;
3. else a clear error, unless the user states the domain (`InputSpec`, `--input-type` and
   `--input-scale`): the input is then `scale * q` for integers q of that type.

Nothing is assumed about images. `InputDomain.quantize` (host, before the hardware) and the
integer graph's FloatTail (host, after it) are the pair of host-side functions a driver needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from qloom.datatype import DataType
from qloom.errors import QloomError, UnsupportedModelError
from qloom.ir import Graph, Node

QUANTIZERS = ("Quant", "IntQuant", "BipolarQuant", "MultiThreshold")
#: ops that only move elements: they commute with elementwise steps, and run on the host
SHAPE_OPS = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity")
_CONST_OPS = ("Mul", "Div", "Add", "Sub")


class InputDataError(QloomError):
    """Input data that does not fit the model's input domain (shape, range, grid)."""


@dataclass(frozen=True)
class InputSpec:
    """A domain stated by the user: the model input is `q * scale` (exactly, in float32) for
    integers q of `dtype`. `scale` is a Fraction so that 1/255 is applied as a division by 255,
    which is how image pipelines (torchvision ToTensor) compute it."""

    dtype: DataType
    scale: Fraction = Fraction(1)

    def __post_init__(self) -> None:
        if self.dtype.is_float:
            raise QloomError("the input type must be an integer type (e.g. UINT8, INT8, BIPOLAR)")
        if self.scale <= 0:
            raise QloomError(f"the input scale must be positive, got {self.scale}")

    def steps(self) -> tuple[tuple[str, object], ...]:
        s = self.scale
        if s == 1:
            return ()
        if s.numerator == 1:
            return (("div", np.float32(s.denominator)),)
        return (("mul", np.float32(float(s))),)

    def describe(self) -> str:
        return f"{self.dtype} x {self.scale}"


RAW_PIXELS = InputSpec(DataType("UINT8"), Fraction(1, 255))
"""8-bit pixels scaled to [0, 1] (torchvision ToTensor): the hardware receives raw pixels."""


def parse_scale(text: str) -> Fraction:
    """'1/255', '0.0078125' or '2**-7' -> a positive Fraction (float text is taken exactly)."""
    t = text.strip().replace(" ", "")
    try:
        if t.startswith("2**"):
            value = Fraction(2) ** int(t[3:])
        elif "/" in t:
            num, den = t.split("/", 1)
            value = Fraction(Fraction(num), Fraction(den))
        else:
            value = Fraction(float(t))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise QloomError(
            f"--input-scale {text!r} is not a number; give e.g. 1/255, 0.0078125 or 2**-7"
        ) from None
    if not value > 0:
        raise QloomError(f"--input-scale must be positive, got {text!r}")
    return value


def parse_dtype(text: str) -> DataType:
    try:
        dt = DataType(text.upper())
    except ValueError as e:
        raise QloomError(f"--input-type: {e}") from None
    if dt.is_float:
        raise QloomError("--input-type must be an integer type (UINT8, INT8, BIPOLAR, ...)")
    return dt


@dataclass(frozen=True, eq=False)
class InputDomain:
    """Where the host hands over to the hardware.

    `tensor` is the imported tensor whose value the hardware integers stand for (the graph
    input, or the output of the first quantizer); `steps` are the float32 steps from those
    integers to that value (what the imported graph computes there); `host_nodes` are the
    imported nodes the host runs on the user's input to get it (empty: the input itself).
    """

    dtype: DataType
    tensor: str
    steps: tuple[tuple[str, object], ...]
    host_nodes: tuple[Node, ...]
    source: str
    input_name: str
    input_shape: tuple[int, ...]
    scale: np.ndarray | None = None  # quantizer case: y = (level - zero) * scale
    zero: np.ndarray | None = None
    bipolar: bool = False

    def describe(self) -> str:
        return f"{self.dtype} integers, {self.source}"

    def to_json(self) -> dict:
        steps = [
            [
                k,
                np.asarray(p).tolist()
                if np.ndim(p) and np.size(p) <= 16
                else float(np.ravel(p)[0]),
            ]
            for k, p in self.steps
        ]
        return {
            "hardware_type": str(self.dtype),
            "source": self.source,
            "input": self.input_name,
            "input_shape": list(self.input_shape),
            "hardware_tensor": self.tensor,
            "host_nodes": [n.name for n in self.host_nodes],
            "steps": steps,
        }

    # -- the host side ------------------------------------------------------------------------
    def quantize(self, graph: Graph, x: np.ndarray) -> np.ndarray:
        """Model inputs (N, *input_shape) in the model's float domain -> the hardware integers
        (N, *shape of `tensor`), int64. Exact: the host runs the model's own nodes."""
        x = check_inputs(x, self.input_shape, self.input_name)
        if not self.host_nodes:
            return self._on_grid(x)
        from qloom.execute import execute

        prefix = self._host_graph(graph, self.host_nodes)
        y = execute(prefix, x)[self.tensor].astype(np.float64)
        s = np.asarray(self.scale, np.float64)
        z = np.asarray(self.zero, np.float64)
        if self.bipolar:
            return np.where(y / s + z > 0, 1, -1).astype(np.int64)
        return np.rint(y / s + z).astype(np.int64)

    def _host_graph(self, graph: Graph, nodes: tuple[Node, ...]) -> Graph:
        """The imported nodes `nodes` (a prefix of host_nodes) as a graph from the input to
        the last one's output (the input itself when empty)."""
        last = nodes[-1].outputs[0] if nodes else self.input_name
        return Graph(nodes=nodes, inputs=(self.input_name,), outputs=(last,),
                     tensors=graph.tensors, constants=graph.constants, name="host")  # fmt: skip

    def _on_grid(self, x: np.ndarray) -> np.ndarray:
        """Inputs that are `steps(q)` for integers q of dtype -> q; anything else is an error."""
        from qloom.execute.integer import apply_steps

        q = np.rint(_invert_steps(x.astype(np.float64), self.steps)).astype(np.int64)
        q = np.clip(q, self.dtype.min, self.dtype.max)
        if self.dtype.is_bipolar:
            q = np.where(q > 0, 1, -1)
        back = apply_steps(q, self.steps) if self.steps else q.astype(np.float32)
        bad = np.asarray(back, np.float32) != x.astype(np.float32)
        if bad.any():
            i = np.argwhere(bad)[0]
            raise InputDataError(
                f"input '{self.input_name}': value {float(x[tuple(i)])!r} at index "
                f"{tuple(int(v) for v in i)} is not a {self.describe()}; "
                f"{int(bad.sum())} of {bad.size} values are off the grid. Give inputs in the "
                "model's own domain (e.g. raw integers for an annotated input), or state the "
                "domain with --input-type / --input-scale"
            )
        return q

    def random_inputs(self, graph: Graph, n: int, seed: int = 0) -> np.ndarray:
        """`n` random model inputs that cover the hardware input range (float32)."""
        rng = np.random.default_rng(seed)
        shape = (n,) + self.input_shape
        if not self.host_nodes:
            from qloom.execute.integer import apply_steps

            lo, hi = self.dtype.min, self.dtype.max
            q = rng.integers(lo, hi + 1, size=shape)
            if self.dtype.is_bipolar:
                q = np.where(q > 0, 1, -1)
            return np.asarray(apply_steps(q, self.steps) if self.steps else q, np.float32)
        lo, hi = self._float_range(graph)
        return rng.uniform(lo, hi, size=shape).astype(np.float32)

    def _float_range(self, graph: Graph) -> tuple[float, float]:
        """An input interval whose image under the host nodes spans the quantizer's levels
        (with 10 % margin to exercise clipping); the host nodes are affine per element."""
        from qloom.execute import execute

        prefix = self._host_graph(graph, self.host_nodes[:-1])  # up to the quantizer's input
        out = prefix.outputs[0]
        one = np.ones((1,) + self.input_shape, np.float32)
        b = execute(prefix, 0 * one)[out].astype(np.float64)
        a = execute(prefix, one)[out].astype(np.float64) - b
        s = np.asarray(self.scale, np.float64)
        z = np.asarray(self.zero, np.float64)
        lv = (-1.0, 1.0) if self.bipolar else (float(self.dtype.min), float(self.dtype.max))
        ends = [(lv_i - z) * s for lv_i in lv]
        with np.errstate(divide="ignore", invalid="ignore"):
            xs = np.concatenate([np.ravel((e - b) / np.where(a == 0, np.nan, a)) for e in ends])
        xs = xs[np.isfinite(xs)]
        if xs.size == 0:
            return -1.0, 1.0
        lo, hi = float(xs.min()), float(xs.max())
        pad = 0.1 * (hi - lo) or 1.0
        return lo - pad, hi + pad


def check_inputs(x: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """(N, *shape) float inputs; a flat (N, prod(shape)) array is reshaped; else an error."""
    x = np.asarray(x)
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.bool_)
    ):
        raise InputDataError(f"input '{name}': data of type {x.dtype} is not numeric")
    size = int(np.prod(shape))
    if x.ndim >= 1 and x.shape[1:] == tuple(shape):
        pass
    elif x.ndim >= 1 and int(np.prod(x.shape[1:])) == size:
        x = x.reshape((x.shape[0],) + tuple(shape))
    elif x.shape == tuple(shape) or x.size == size:
        x = x.reshape((1,) + tuple(shape))
    else:
        raise InputDataError(
            f"input '{name}': data of shape {x.shape} does not fit the model's input shape "
            f"{tuple(shape)}; give an array of shape (N, {', '.join(map(str, shape))})"
        )
    if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
        raise InputDataError(f"input '{name}': data contains NaN or infinite values")
    return x.astype(np.float32)


def _invert_steps(x: np.ndarray, steps) -> np.ndarray:
    for kind, p in reversed(steps):
        p = np.asarray(p, np.float64)
        x = {"mul": x / p, "div": x * p, "add": x - p, "sub": x + p}[kind]
    return x


# -- derivation -------------------------------------------------------------------------------
def derive_input_domain(graph: Graph, override: InputSpec | None = None) -> InputDomain:
    """The input domain of an imported graph (see the module docstring)."""
    (name,) = graph.inputs
    info = graph.tensors[name]
    shape = info.shape
    if override is not None:
        return InputDomain(
            override.dtype,
            name,
            override.steps(),
            (),
            f"stated by the user: input = q x {override.scale} "
            f"(--input-type {override.dtype} --input-scale {override.scale})",
            name,
            shape,
        )
    if not info.dtype.is_float:
        return InputDomain(
            info.dtype, name, (), (), f"the input's datatype annotation ({info.dtype})", name, shape
        )
    path = _path_to_quantizer(graph, name)
    quant = path[-1]
    return _quantizer_domain(graph, quant, tuple(path), name, shape)


def _path_to_quantizer(graph: Graph, name: str) -> list[Node]:
    hint = (
        "qloom cannot tell which integers the hardware should receive. Quantize the input "
        "(e.g. Brevitas QuantIdentity as the first layer), annotate the input's datatype "
        "(qonnx ModelWrapper.set_tensor_datatype), or state it with --input-type and "
        "--input-scale (e.g. --input-type UINT8 --input-scale 1/255 for raw 8-bit pixels)"
    )
    path: list[Node] = []
    tensor = name
    while True:
        users = graph.consumers(tensor)
        if tensor in graph.outputs or len(users) != 1:
            what = "is a graph output" if tensor in graph.outputs else f"feeds {len(users)} nodes"
            raise UnsupportedModelError(
                f"graph input '{name}' is a float input and '{tensor}' {what} before any "
                f"quantizer: {hint}",
                node=name,
            )
        node = users[0]
        data_inputs = [t for t in node.inputs if t and not graph.is_constant(t)]
        if node.op in QUANTIZERS and node.inputs[0] == tensor:
            path.append(node)
            return path
        if node.op in SHAPE_OPS or (node.op in _CONST_OPS and len(data_inputs) == 1):
            if node.op == "Div" and node.inputs[0] != tensor:
                break
            path.append(node)
            tensor = node.outputs[0]
            continue
        break
    raise UnsupportedModelError(
        f"graph input '{name}' is a float input that reaches node '{node.name}' ({node.op}) "
        f"without a quantizer: {hint}",
        node=node.name,
        op=node.op,
    )


def _quantizer_domain(
    graph: Graph, q: Node, path: tuple[Node, ...], name: str, shape
) -> InputDomain:
    from qloom.frontend.validate import quantizer_levels

    levels = quantizer_levels(graph, q)
    bits = f"{levels.dtype}"
    how = f"the first quantizer '{q.name}' ({q.op}, {bits}"
    if levels.scale.size == 1:
        how += f", scale {float(levels.scale.ravel()[0]):.6g}"
    else:
        how += ", per-channel scale"
    if np.any(levels.zero != 0):
        how += f", zero point {float(np.ravel(levels.zero)[0]):g}"
    how += "): the host runs " + (
        " -> ".join(n.name for n in path) if len(path) > 1 else f"'{q.name}'"
    )
    return InputDomain(
        levels.dtype,
        q.outputs[0],
        (),  # the lowering maps scale and zero onto integer channels
        path,
        how,
        name,
        shape,
        scale=levels.scale,
        zero=levels.zero,
        bipolar=levels.dtype.is_bipolar,
    )
