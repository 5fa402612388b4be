"""The central streamlining pass: imported graph (floats + quantizers) -> integer graph.

Requires: an imported Graph (qloom.frontend.load) and its InputDomain (qloom.frontend.domain):
the integers the hardware receives and the float32 steps from them to an imported tensor (the
graph input, or the first quantizer's output; the nodes before it run on the host).
Guarantees: every op of the result is an integer op of qloom.execute.integer; each quantizer
became a MultiThreshold whose integer thresholds absorb everything between the previous linear
op and it (scales, biases, batch norm, ReLU/clip, negative scales via per-channel `negate`);
conv/pool tensors are channels-last; the float tail after the last linear op stays exact as a
FloatTail; its outputs carry the imported output names and layouts. An Add of two quantized
streams of different scales becomes an integer Add with multipliers of their exact common unit,
or smaller ones proven to give the quantizer after it the same levels (addscale.py). A Mul of
two quantized streams (zero points 0; one shape, or a per-channel operand broadcast over the
pixels of the other) becomes an integer Mul of the exact product, its scale sx*sy a step.

How: abstract interpretation. Each imported tensor is a `Value`: an integer tensor plus the
float32 steps the imported graph applies to it. A quantizer meeting a Value is resolved by a
vectorized binary search over the (bounded) integer accumulator range, evaluating those very
float32 steps and qonnx's own quantizer, so thresholds reproduce the reference bit for bit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from qloom.datatype import BIPOLAR, DataType
from qloom.errors import UnsupportedModelError
from qloom.execute.integer import apply_steps
from qloom.execute.kernels import onnx_pads
from qloom.execute.reference import REFERENCE_OPS
from qloom.frontend.domain import SHAPE_OPS, InputDomain, derive_input_domain
from qloom.frontend.validate import quantizer_levels
from qloom.ir import Graph, Node, TensorInfo
from qloom.streamline.addscale import (
    MAX_ADD_BITS,
    MAX_MULTIPLIER,
    MAX_PAIRS,
    LevelOrder,
    bits_for_range,
    candidate_multipliers,
    closest_thresholds,
    exact_multipliers,
    sum_bits,
    table_thresholds,
)
from qloom.streamline.values import AFFINE, PendingAdd, Pool, Product, Value, canonical_idx

#: ops that may follow the float output of the network: they run on the host
HOST_OPS = ("Softmax", "LogSoftmax", "TopK", "ArgMax") + SHAPE_OPS


@dataclass(frozen=True)
class QConst:
    """A quantized constant (weights): real = scale * (q - zero)."""

    q: np.ndarray
    scale: np.ndarray
    zero: np.ndarray


def to_integer_graph(graph: Graph, domain: InputDomain | None = None) -> Graph:
    """Lower `graph`; its hardware input is `domain` (derived from the model when None)."""
    return _Lowering(graph, domain or derive_input_domain(graph)).run()


class _Lowering:
    def __init__(self, graph: Graph, domain: InputDomain):
        self.g = graph
        self.domain = domain
        self.nodes: list[Node] = []
        self.tensors: dict[str, TensorInfo] = {}
        self.env: dict[str, Value | np.ndarray] = dict(graph.constants)
        self.qconst: dict[str, QConst] = {}
        self.host_constants: dict[str, np.ndarray] = {}  # inputs of ops after the float tail
        # emitted Adds: (pending tensor, a_mul, b_mul) -> (tensor, lo, hi, dtype)
        self.adds: dict[tuple[str, int, int], tuple[str, np.ndarray, np.ndarray, DataType]] = {}
        self.reserved: set[str] = set()  # tensor names of sums not emitted yet
        # emitted pending max pools: (tensor, kernel, stride, pads) -> pooled tensor, so that
        # a pooled stream read by several nodes (a residual fork) is pooled once
        self.pools: dict[tuple, str] = {}

    # -- driver -----------------------------------------------------------------------------
    def run(self) -> Graph:
        inp = self.domain.tensor
        self.env[inp] = self._input_value(inp)
        host = {id(n) for n in self.domain.host_nodes}
        for node in self.g.nodes:
            if id(node) in host:
                continue
            try:
                self._lower(node)
            except UnsupportedModelError:
                raise
            except ValueError as e:
                raise UnsupportedModelError(
                    f"node '{node.name}' ({node.op}): {e}", node.name, node.op
                ) from None
            except (IndexError, KeyError, TypeError) as e:  # a malformed node
                raise UnsupportedModelError(
                    f"node '{node.name}' ({node.op}) cannot be lowered ({type(e).__name__}: "
                    f"{e}); its inputs or attributes do not form a valid {node.op}",
                    node.name,
                    node.op,
                ) from None
        outputs = []
        for out in self.g.outputs:
            v = self.env[out]
            if isinstance(v, Value):
                self._float_tail(v, out)
            elif not isinstance(v, str):
                raise UnsupportedModelError(f"graph output '{out}' does not depend on the input")
            outputs.append(out)
        return Graph(
            nodes=tuple(self.nodes),
            inputs=(inp,),
            outputs=tuple(outputs),
            tensors=self.tensors,
            constants=self.host_constants,
            name=self.g.name,
            kind="integer",
        )

    def _input_value(self, name: str) -> Value:
        """The hardware input: the domain's integers and the steps to the imported value."""
        shape = self.g.tensors[name].shape
        if len(shape) == 3:
            c, h, w = shape
            int_shape, idx, layout = (h, w, c), canonical_idx(shape), "NHWC"
        elif len(shape) == 2:  # a 1-D signal (C, L): channels-last as an L x 1 image
            c, n = shape
            int_shape, idx, layout = (n, 1, c), _img_idx(c, n, 1, True), "NHWC"
        else:
            int_shape = (int(np.prod(shape)),)
            idx, layout = np.arange(int_shape[0]).reshape(shape), "NC"
        d = self.domain
        dt = d.dtype
        self.tensors[name] = TensorInfo(int_shape, dt, layout)
        c = int_shape[-1]
        v = Value(name, int_shape, idx, np.full(c, dt.min), np.full(c, dt.max), dt, d.steps)
        if d.scale is None:
            return v
        z = self._per_channel(d.host_nodes[-1], v, d.zero)
        s = self._per_channel(d.host_nodes[-1], v, d.scale)
        if np.any(np.asarray(z) != 0):
            v = v.with_step("sub", z)
        if np.any(np.asarray(s) != 1):
            v = v.with_step("mul", s)
        return v

    def _emit(self, op: str, name: str, inputs, output: str, shape, dtype, **attrs) -> str:
        self.nodes.append(Node(op, name, tuple(inputs), (output,), attrs))
        layout = "NHWC" if len(shape) == 3 else "NC"
        self.tensors[output] = TensorInfo(tuple(int(s) for s in shape), dtype, layout)
        return output

    def _int_name(self, base: str) -> str:
        name = base if base not in self.g.outputs else f"{base}_int"
        while name in self.tensors or name in self.reserved:
            name += "_"
        return name

    def _lower(self, node: Node) -> None:
        args = [self.env.get(t) if t else None for t in node.inputs]
        if any(isinstance(a, str) for a in args):
            self._host_op(node, args)
            return
        if all(a is None or isinstance(a, np.ndarray) for a in args):
            self._fold_constant(node, args)
            return
        if node.op in _WINDOW_OPS and isinstance(args[0], Value) and _is_1d(args[0]):
            node = _as_2d(node)
        handler = getattr(self, f"_op_{node.op}", None)
        if handler is None:
            raise UnsupportedModelError(
                f"node '{node.name}': op {node.op} cannot be lowered to integers here",
                node.name,
                node.op,
            )
        handler(node, args)

    def _fold_constant(self, node: Node, args) -> None:
        results = REFERENCE_OPS[node.op](node, args)
        for name, r in zip(node.outputs, results, strict=False):
            self.env[name] = r
        src = self.qconst.get(node.inputs[0])
        if node.op in ("Quant", "IntQuant", "BipolarQuant"):
            scale = np.asarray(args[1], np.float64)
            zero = np.asarray(args[2], np.float64) if node.op != "BipolarQuant" else np.zeros(1)
            q = np.rint(results[0] / scale + zero).astype(np.int64)
            self.qconst[node.outputs[0]] = QConst(q, np.broadcast_to(scale, q.shape), zero)
        elif src is not None and node.op in SHAPE_OPS:
            fn = REFERENCE_OPS[node.op]
            q = fn(node, [src.q[None]] + args[1:])[0][0] if node.op != "Transpose" else None
            if node.op == "Transpose":
                q = np.transpose(src.q, node.attrs.get("perm"))
                s = np.transpose(src.scale, node.attrs.get("perm"))
            else:
                s = np.broadcast_to(src.scale, src.q.shape).reshape(q.shape)
            self.qconst[node.outputs[0]] = QConst(q, s, src.zero)

    # -- helpers ------------------------------------------------------------------------------
    def _value(self, node: Node, x) -> Value:
        if not isinstance(x, Value):
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op}): expected a tensor computed from the input",
                node.name,
                node.op,
            )
        return x

    def _append(self, node: Node, v: Value, kind: str, param=None) -> None:
        if v.pool is not None and kind in ("mul", "div") and np.any(np.asarray(param) < 0):
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op}): a negative scale after max pooling is not "
                "supported (max pooling commutes only with nondecreasing functions)",
                node.name,
                node.op,
            )
        self.env[node.outputs[0]] = v.with_step(kind, param)

    def _materialize_pool(self, v: Value, name: str) -> Value:
        v = self._realize(v, f"'{name}'")
        if v.pool is None:
            return v
        p = v.pool
        signs = _step_signs(v.steps[: p.at], v.channels)
        if np.any(signs < 0):
            raise UnsupportedModelError(
                f"max pool before '{name}' acts on a decreasing function of the accumulator and "
                "no quantizer follows it; add an activation quantizer after the pool"
            )
        key = (v.tensor, tuple(p.kernel), tuple(p.stride), tuple(p.pads))
        out = self.pools.get(key)
        if out is None:
            out = self.pools[key] = self._int_name(f"{v.tensor}_pool")
            self._emit(
                "MaxPool",
                f"{name}_maxpool",
                [v.tensor],
                out,
                p.out_shape,
                v.dtype,
                kernel=p.kernel,
                stride=p.stride,
                pads=p.pads,
            )
        return dataclasses.replace(v, tensor=out, shape=p.out_shape, pool=None)

    def _quantized(self, node: Node, x) -> tuple[Value, float, np.ndarray]:
        """Input of a linear op: an integer tensor with real = a * (q - z), a > 0 uniform."""
        v = self._value(node, x)
        hint = "insert an activation quantizer (e.g. Brevitas QuantIdentity/QuantReLU) before it"
        if not v.is_affine:
            kinds = [k for k, _ in v.steps if k not in AFFINE]
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op}): its input is not quantized (it passes through "
                f"{', '.join(kinds)} after the last quantizer); {hint}",
                node.name,
                node.op,
            )
        a, b = v.affine()
        if not np.allclose(a, a[0], rtol=1e-6) or a[0] <= 0:
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op}): its input has per-channel or negative scales "
                f"({a[:4]}...); qloom needs one positive scale per tensor feeding {node.op}",
                node.name,
                node.op,
            )
        z = -b / a
        if not np.allclose(z, np.rint(z), atol=1e-4):
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op}): its input is not on an integer grid "
                f"(zero point {z[:4]}...); {hint}",
                node.name,
                node.op,
            )
        v = self._materialize_pool(self._realize(v, f"node '{node.name}' ({node.op})"), node.name)
        return v, float(a[0]), np.rint(z).astype(np.int64)

    def _weights(self, node: Node, name: str) -> QConst:
        if name in self.qconst:
            w = self.qconst[name]
            if np.any(w.zero != 0):
                raise UnsupportedModelError(
                    f"node '{node.name}' ({node.op}): weights '{name}' have a nonzero zero point;"
                    " use symmetric weight quantization",
                    node.name,
                    node.op,
                )
            return w
        w = self.env.get(name)
        if isinstance(w, np.ndarray) and np.all(w == np.rint(w)):
            q = np.rint(w).astype(np.int64)
            return QConst(q, np.ones(q.shape), np.zeros(1))
        raise UnsupportedModelError(
            f"node '{node.name}' ({node.op}): weights '{name}' are floating point; quantize them "
            "(e.g. Brevitas QuantLinear/QuantConv2d with a weight quantizer) or give integer "
            "weights",
            node.name,
            node.op,
        )

    @staticmethod
    def _acc_range(w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
        """w: (K, M) integer weights; lo/hi: (K,) input ranges -> per-output acc range."""
        a, b = w * lo[:, None], w * hi[:, None]
        return np.minimum(a, b).sum(0), np.maximum(a, b).sum(0)

    def _acc_value(self, tensor, shape, idx, lo, hi, steps) -> Value:
        dt = DataType.for_range(int(lo.min()), int(hi.max()))
        self.tensors[tensor] = dataclasses.replace(self.tensors[tensor], dtype=dt)
        return Value(tensor, shape, idx, lo, hi, dt, tuple(steps))

    # -- linear ops -----------------------------------------------------------------------------
    def _linear_steps(self, zcorr, scale, extra=()) -> list:
        steps = []
        if np.any(zcorr != 0):
            steps.append(("sub", zcorr.astype(np.float32)))
        if np.any(scale != 1):
            steps.append(("mul", scale.astype(np.float32)))
        return steps + list(extra)

    def _matmul(self, node: Node, x, w: QConst, extra_steps=()) -> None:
        v, a, z = self._quantized(node, x)
        if v.idx.ndim != 1:
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op}): input of rank {v.idx.ndim + 1}; flatten it first",
                node.name,
                node.op,
            )
        k, m = w.q.shape
        s_full = np.broadcast_to(w.scale, w.q.shape)
        if not np.allclose(s_full, s_full[:1]):
            raise UnsupportedModelError(
                f"node '{node.name}': weight scale varies along the input axis", node.name, node.op
            )
        k_int = int(np.prod(v.shape))
        wq = np.zeros((k_int, m), np.int64)
        wq[v.idx] = w.q
        ch = np.arange(k_int) % v.channels
        lo, hi = self._acc_range(wq, v.lo[ch], v.hi[ch])
        zcorr = (wq * z[ch][:, None]).sum(0)
        out = self._int_name(node.outputs[0])
        self._emit("MatMul", node.name, [v.tensor], out, (m,), DataType("INT32"), weights=wq)
        steps = self._linear_steps(zcorr, a * s_full[0], extra_steps)
        self.env[node.outputs[0]] = self._acc_value(out, (m,), np.arange(m), lo, hi, steps)

    def _op_MatMul(self, node, args):
        self._matmul(node, args[0], self._weights(node, node.inputs[1]))

    def _op_XnorPopcountMatMul(self, node, args):
        """FINN-ONNX: popcount(xnor(x, w)) of binary {0,1} x and w = x . (2w - 1) + #zeros(w)."""
        v, a, z = self._quantized(node, args[0])
        if a != 1 or np.any(z != 0) or v.lo.min() < 0 or v.hi.max() > 1:
            raise UnsupportedModelError(
                f"node '{node.name}' (XnorPopcountMatMul): input must be binary {{0,1}}",
                node.name,
                node.op,
            )
        w = self._weights(node, node.inputs[1])
        if not np.all((w.q == 0) | (w.q == 1)):
            raise UnsupportedModelError(
                f"node '{node.name}' (XnorPopcountMatMul): weights must be binary {{0,1}}",
                node.name,
                node.op,
            )
        zeros = (w.q.shape[0] - w.q.sum(0)).astype(np.float32)
        self._matmul(node, args[0], QConst(2 * w.q - 1, np.ones(1), np.zeros(1)), [("add", zeros)])

    def _op_Gemm(self, node, args):
        at = node.attrs
        if at.get("transA", 0):
            raise UnsupportedModelError(
                f"node '{node.name}' (Gemm): transA is not supported", node.name, node.op
            )
        w = self._weights(node, node.inputs[1])
        if at.get("transB", 0):
            w = QConst(w.q.T, np.broadcast_to(w.scale, w.q.shape).T, w.zero)
        extra = []
        if at.get("alpha", 1.0) != 1.0:
            extra.append(("mul", np.float32(at["alpha"])))
        if len(args) > 2 and args[2] is not None:
            extra.append(("add", (np.float32(at.get("beta", 1.0)) * args[2]).astype(np.float32)))
        self._matmul(node, args[0], w, extra)

    def _require_2d(self, node: Node, v: Value) -> None:
        """Conv and pooling need (C, H, W) tensors; a 1-D signal (C, L) gets a clear refusal."""
        if len(v.out_shape) == 3 and (v.idx.ndim == 3 or _is_1d(v)):
            return
        shape = "x".join(map(str, v.idx.shape))
        raise UnsupportedModelError(
            f"node '{node.name}' ({node.op}): input of shape {shape}; qloom lowers {node.op} "
            "on (C, H, W) images and (C, L) signals only; reshape the input to one of those",
            node.name,
            node.op,
        )

    def _op_Conv(self, node, args):
        v, a, z = self._quantized(node, args[0])
        self._require_2d(node, v)
        at = node.attrs
        c, h, wd = v.out_shape[2], v.out_shape[0], v.out_shape[1]
        one_d = _is_1d(v)
        if not np.array_equal(v.idx, _img_idx(c, h, wd, one_d)):
            raise UnsupportedModelError(
                f"node '{node.name}' (Conv): input layout was permuted "
                "(Transpose/Reshape before Conv)",
                node.name,
                node.op,
            )
        if any(d != 1 for d in at.get("dilations", (1, 1))):
            raise UnsupportedModelError(
                f"node '{node.name}' (Conv): dilation is not supported", node.name, node.op
            )
        w = self._weights(node, node.inputs[1])
        if w.q.ndim == 3:  # a 1-D kernel (O, C, K) is a K x 1 one
            scale = np.asarray(w.scale)
            w = QConst(w.q[..., None], scale[..., None] if scale.ndim == 3 else scale, w.zero)
        o, cin_g, kh, kw = w.q.shape
        s_full = np.broadcast_to(w.scale, w.q.shape)
        s_o = s_full[:, 0, 0, 0]
        if not np.allclose(s_full, s_o[:, None, None, None]):
            raise UnsupportedModelError(
                f"node '{node.name}': weight scale varies inside a filter", node.name, node.op
            )
        groups = at.get("group", 1)
        if groups < 1 or c % groups or o % groups or cin_g * groups != c:
            raise UnsupportedModelError(
                f"node '{node.name}' (Conv): group={groups} does not split the {c} input and "
                f"{o} output channels into groups of {cin_g} input channels",
                node.name,
                node.op,
            )
        dense_of = 1  # > 1: a grouped conv computed as a dense one (block-diagonal weights)
        if groups != 1 and not (groups == c and o == c):
            w, dense_of, groups = self._block_diagonal(node, w, groups, s_o), groups, 1
        stride = tuple(at.get("strides", (1, 1)))
        pads = onnx_pads(at, (kh, kw))
        if any(pads) and not np.all(z == z[0]):
            raise UnsupportedModelError(
                f"node '{node.name}': padding needs one zero point", node.name, node.op
            )
        wq = np.transpose(w.q, (2, 3, 1, 0))  # KH, KW, Cin/g, O
        oh = (h + pads[0] + pads[2] - kh) // stride[0] + 1
        ow = (wd + pads[1] + pads[3] - kw) // stride[1] + 1
        # per output channel range and zero-point correction (padding uses q = z: real zero)
        if groups == 1:
            flat = wq.reshape(-1, o)
            ch = np.arange(flat.shape[0]) % c
            lo, hi = self._acc_range(flat, v.lo[ch], v.hi[ch])
            zcorr = (flat * z[ch][:, None]).sum(0)
        else:
            flat = wq.reshape(-1, o)  # (KH*KW, O), input channel o for output o
            lo = np.minimum(flat * v.lo, flat * v.hi).sum(0)
            hi = np.maximum(flat * v.lo, flat * v.hi).sum(0)
            zcorr = flat.sum(0) * z
        out = self._int_name(node.outputs[0])
        extra = []
        if len(args) > 2 and args[2] is not None:
            extra.append(("add", np.asarray(args[2], np.float32)))
        self._emit(
            "Conv",
            node.name,
            [v.tensor],
            out,
            (oh, ow, o),
            DataType("INT32"),
            weights=wq,
            stride=stride,
            pads=pads,
            groups=groups,
            pad_value=int(z[0]),
            **({"dense_of_groups": dense_of} if dense_of > 1 else {}),
        )
        steps = self._linear_steps(zcorr, a * s_o, extra)
        self.env[node.outputs[0]] = self._acc_value(
            out, (oh, ow, o), _img_idx(o, oh, ow, one_d), lo, hi, steps
        )

    def _block_diagonal(self, node: Node, w: QConst, groups: int, s_o: np.ndarray) -> QConst:
        """The weights (O, C/G, KH, KW) of a grouped Conv as the equivalent dense ones
        (O, C, KH, KW): output channel o of group o // (O/G) keeps its filter on input channels
        of its group and gets weight 0 on every other one. The integer graph then holds an
        ordinary Conv (SWU + MVAU): exact, since a 0 weight adds nothing to the accumulator,
        its range or the zero-point correction, but the MVAU computes G times the MACs (and
        stores G times the weights) of the grouped conv. A depthwise conv (G = C = O) keeps its
        own stage (VVAU). Weights must have a 0: 1-bit bipolar (+-1) weights are refused."""
        o, cin_g, kh, kw = w.q.shape
        if self._bipolar_weights(node.inputs[1]):
            raise UnsupportedModelError(
                f"node '{node.name}' (Conv): grouped convolution (group={groups}) with 1-bit "
                "bipolar (+-1) weights: qloom computes a grouped conv as a dense one whose "
                "weights are 0 outside each group, and bipolar weights have no 0; use a multi-bit "
                "weight quantizer (e.g. 2-bit narrow range), group=1, or a depthwise conv "
                "(group = in = out channels)",
                node.name,
                node.op,
            )
        og = o // groups
        dense = np.zeros((o, cin_g * groups, kh, kw), np.int64)
        for g in range(groups):
            dense[g * og : (g + 1) * og, g * cin_g : (g + 1) * cin_g] = w.q[g * og : (g + 1) * og]
        return QConst(dense, np.broadcast_to(s_o[:, None, None, None], dense.shape), w.zero)

    def _bipolar_weights(self, name: str) -> bool:
        """Whether the constant `name` comes from a BipolarQuant (through shape ops)."""
        n = self.g.producer(name)
        while n is not None and n.op in SHAPE_OPS and n.inputs:
            n = self.g.producer(n.inputs[0])
        return n is not None and n.op == "BipolarQuant"

    def _pool_geometry(self, node: Node, v: Value, kernel) -> tuple:
        at = node.attrs
        if at.get("ceil_mode", 0):
            raise UnsupportedModelError(
                f"node '{node.name}': ceil_mode pooling is not supported", node.name, node.op
            )
        self._require_2d(node, v)
        h, w, c = v.out_shape
        if not np.array_equal(v.idx, _img_idx(c, h, w, _is_1d(v))):
            raise UnsupportedModelError(
                f"node '{node.name}': input layout was permuted", node.name, node.op
            )
        stride = tuple(at.get("strides", kernel))
        pads = onnx_pads(at, kernel)
        oh = (h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1
        ow = (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1
        return stride, pads, (oh, ow, c)

    def _op_MaxPool(self, node, args):
        v = self._value(node, args[0])
        if v.pool is not None:
            v = self._materialize_pool(v, node.name)
        kernel = tuple(node.attrs["kernel_shape"])
        stride, pads, out_shape = self._pool_geometry(node, v, kernel)
        pool = Pool(len(v.steps), kernel, stride, pads, out_shape)
        c = out_shape[2]
        self.env[node.outputs[0]] = dataclasses.replace(
            v, pool=pool, idx=_img_idx(c, out_shape[0], out_shape[1], _is_1d(v))
        )

    def _sum_pool(self, node, args, kernel) -> None:
        v, a, z = self._quantized(node, args[0])
        stride, pads, out_shape = self._pool_geometry(node, v, kernel)
        if any(pads) and not node.attrs.get("count_include_pad", 0):
            raise UnsupportedModelError(
                f"node '{node.name}': padded average pooling with count_include_pad=0 (the "
                "divisor shrinks at the border) is not supported; count_include_pad=1 "
                "(PyTorch's default) is",
                node.name,
                node.op,
            )
        if any(pads) and np.any(z != 0):
            raise UnsupportedModelError(
                f"node '{node.name}': padded average pooling of an input with a nonzero zero "
                "point is not supported (the padding would have to be the zero point)",
                node.name,
                node.op,
            )
        kk = kernel[0] * kernel[1]
        out = self._int_name(node.outputs[0])
        self._emit(
            "SumPool",
            node.name,
            [v.tensor],
            out,
            out_shape,
            DataType("INT32"),
            kernel=kernel,
            stride=stride,
            pads=pads,
        )
        steps = self._linear_steps(z * kk, np.full(v.channels, a), [("div", np.float32(kk))])
        c = out_shape[2]
        self.env[node.outputs[0]] = self._acc_value(
            out,
            out_shape,
            _img_idx(c, out_shape[0], out_shape[1], _is_1d(v)),
            v.lo * kk,
            v.hi * kk,
            steps,
        )

    def _op_AveragePool(self, node, args):
        self._sum_pool(node, args, tuple(node.attrs["kernel_shape"]))

    def _op_GlobalAveragePool(self, node, args):
        v = self._value(node, args[0])
        self._require_2d(node, v)
        self._sum_pool(node, args, tuple(v.out_shape[:2]))

    # -- elementwise ------------------------------------------------------------------------
    def _const_value_pair(self, node, args) -> tuple[Value, np.ndarray, bool]:
        a, b = args
        if isinstance(a, Value) and isinstance(b, np.ndarray):
            return a, b, False
        if isinstance(b, Value) and isinstance(a, np.ndarray):
            return b, a, True
        raise AssertionError

    def _per_channel(self, node: Node, v: Value, const) -> np.ndarray | np.float32:
        try:
            return v.per_channel(const, f"the constant of {node.op}")
        except ValueError as e:
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op}): {e}", node.name, node.op
            ) from None

    def _op_Add(self, node, args):
        if isinstance(args[0], Value) and isinstance(args[1], Value):
            self._add_values(node, args[0], args[1])
            return
        v, c, _ = self._const_value_pair(node, args)
        self._append(node, v, "add", self._per_channel(node, v, c))

    def _op_Sub(self, node, args):
        v, c, swapped = self._const_value_pair(node, args)
        p = self._per_channel(node, v, c)
        if swapped:  # c - v
            v = v.with_step("mul", np.float32(-1))
            self._append(node, v, "add", p)
        else:
            self._append(node, v, "sub", p)

    def _op_Mul(self, node, args):
        if isinstance(args[0], Value) and isinstance(args[1], Value):
            self._mul_values(node, args[0], args[1])
            return
        v, c, _ = self._const_value_pair(node, args)
        self._append(node, v, "mul", self._per_channel(node, v, c))

    def _mul_values(self, node: Node, x: Value, y: Value) -> None:
        """A Mul of two quantized streams: with scales sx and sy (zero points 0) the product
        is sx*sy * (qx*qy) exactly, so an integer Mul of the two tensors carries it, its
        scale a step of the Value (the quantizer after it becomes thresholds, found on the
        operand pairs with qonnx's float32 arithmetic: `_mul_thresholds`). Operands of one
        shape and layout multiply element by element; an operand with one value per channel
        of the other (shape (1, C, 1, 1): a squeeze-and-excitation gate) is broadcast over its
        pixels and becomes the Mul's second input."""
        what = f"node '{node.name}' (Mul)"
        hint = (
            "qloom multiplies two streamed tensors of one shape and layout, or a tensor by a "
            "per-channel one of shape (1, C, 1, 1) (squeeze-and-excitation)"
        )
        vx, ax, zx = self._quantized(node, x)
        vy, ay, zy = self._quantized(node, y)
        if np.any(zx != 0) or np.any(zy != 0):
            raise UnsupportedModelError(
                f"{what}: an operand has a nonzero zero point ({int(np.ravel(zx)[0])} and "
                f"{int(np.ravel(zy)[0])}); qloom multiplies quantized tensors with zero point "
                "0 only: quantize both operands symmetrically or unsigned without offset (e.g. "
                "Brevitas QuantReLU / QuantIdentity / QuantHardTanh)",
                node.name,
                node.op,
            )
        xs, ys = vx.idx.shape, vy.idx.shape
        if xs == ys:
            if vx.shape != vy.shape or not np.array_equal(vx.idx, vy.idx):
                raise UnsupportedModelError(
                    f"{what}: the operands have the same shape {xs} but different layouts "
                    f"(a Transpose/Reshape on one of them); {hint}",
                    node.name,
                    node.op,
                )
            big, small = vx, vy
        else:
            try:
                out = np.broadcast_shapes(xs, ys)
            except ValueError:
                out = None
            big, small = (vx, vy) if out == xs else (vy, vx) if out == ys else (None, None)
            ok = big is not None and int(np.prod(small.shape)) == big.channels
            if ok:
                sidx = small.idx.reshape((1,) * (len(out) - small.idx.ndim) + small.idx.shape)
                ok = np.array_equal(np.broadcast_to(sidx, out), big.channel_of())
            if not ok:
                raise UnsupportedModelError(
                    f"{what}: operands of shapes {xs} and {ys} (per sample); {hint}",
                    node.name,
                    node.op,
                )
        c = big.channels
        ych = np.arange(c) % small.channels
        corners = [big.lo * small.lo[ych], big.lo * small.hi[ych]]
        corners += [big.hi * small.lo[ych], big.hi * small.hi[ych]]
        lo = np.min(corners, axis=0).astype(np.int64)
        hi = np.max(corners, axis=0).astype(np.int64)
        bits = bits_for_range(int(lo.min()), int(hi.max()))
        if bits > MAX_ADD_BITS:
            raise UnsupportedModelError(
                f"{what}: the product of a {big.dtype} and a {small.dtype} tensor needs "
                f"{bits} bits (qloom's elementwise Mul produces at most {MAX_ADD_BITS}); "
                "quantize the operands to fewer bits",
                node.name,
                node.op,
            )
        dt = DataType.for_range(int(lo.min()), int(hi.max()))
        out_t = self._int_name(node.outputs[0])
        self._emit("Mul", node.name, [big.tensor, small.tensor], out_t, big.shape, dt)
        steps = self._linear_steps(np.zeros(c), np.full(c, ax * ay))
        prod = Product(node.name, big, small, ych, len(steps))
        self.env[node.outputs[0]] = Value(
            out_t, big.shape, big.idx, lo, hi, dt, tuple(steps), prod=prod
        )

    def _mul_thresholds(self, v: Value, to_level, bipolar: bool):
        """Thresholds on the integer product qx*qy of a quantizer after an elementwise Mul
        that give every operand pair (qx, qy) the streams can carry the level qonnx computes
        (each operand's float32 value, their float32 product, the steps after it, the
        quantizer); where qonnx's rounding makes that level non-monotone in the exact
        product, the thresholds that misplace the fewest pairs. None when there are too many
        pairs to enumerate (the steps of the Value then decide)."""
        p = v.prod
        if p is None:
            return None
        c = v.channels
        xl, xh, yl, yh = p.x.lo, p.x.hi, p.y.lo[p.y_channel], p.y.hi[p.y_channel]
        nx, ny = _pair_sizes(xl, xh, yl, yh)
        if c * nx * ny > MAX_PAIRS:
            return None
        qx, qy = _pair_grid(xl, xh, yl, yh, nx, ny)
        chan = np.arange(c)[:, None]
        real = apply_steps(qx, p.x.steps, chan) * apply_steps(qy, p.y.steps, p.y_channel[chan])
        level = to_level(apply_steps(real.astype(np.float32), v.steps[p.at :], chan))
        acc = qx * qy
        found = table_thresholds(acc, level, v.lo, v.hi, bipolar)
        if found is None:
            found, _ = closest_thresholds(acc, level, v.lo, v.hi, bipolar)
        return v.tensor, found

    def _op_Div(self, node, args):
        v, c, swapped = self._const_value_pair(node, args)
        if swapped:
            raise UnsupportedModelError(
                f"node '{node.name}' (Div): division by a tensor", node.name, node.op
            )
        self._append(node, v, "div", self._per_channel(node, v, c))

    def _op_Relu(self, node, args):
        self._append(node, self._value(node, args[0]), "relu")

    def _op_Clip(self, node, args):
        lo = args[1] if len(args) > 1 and args[1] is not None else node.attrs.get("min", -np.inf)
        hi = args[2] if len(args) > 2 and args[2] is not None else node.attrs.get("max", np.inf)
        self._append(node, self._value(node, args[0]), "clip", (np.float32(lo), np.float32(hi)))

    def _op_HardTanh(self, node, args):
        self._append(node, self._value(node, args[0]), "clip", (np.float32(-1), np.float32(1)))

    def _op_BatchNormalization(self, node, args):
        v = self._value(node, args[0])
        gamma, beta, mean, var = (np.asarray(a, np.float32) for a in args[1:5])
        eps = np.float32(node.attrs.get("epsilon", 1e-5))
        shape = (-1,) + (1,) * (v.idx.ndim - 1)
        pc = lambda t: self._per_channel(node, v, t.reshape(shape))  # noqa: E731
        v = v.with_step("sub", pc(mean)).with_step("sqrtdiv", pc(np.sqrt(var + eps)))
        v = v.with_step("mul", pc(gamma))
        self._append(node, v, "add", pc(beta))

    def _add_values(self, node: Node, x: Value, y: Value) -> None:
        """An Add of two quantized streams: with scales sx and sy, the sum is
        u * (mx*x + my*y) exactly for their common unit u (addscale.exact_multipliers). The
        integer Add is emitted by the sum's first consumer: `_threshold` looks for smaller
        multipliers that give its quantizer the same level on every operand pair, anything
        else takes the exact ones (`_realize`, which refuses sums too wide)."""
        vx, ax, zx = self._quantized(node, x)
        vy, ay, zy = self._quantized(node, y)
        if vx.shape != vy.shape or not np.array_equal(vx.idx, vy.idx):
            raise UnsupportedModelError(
                f"node '{node.name}' (Add): operands have different shapes or layouts",
                node.name,
                node.op,
            )
        c = vx.channels
        zx, zy = np.broadcast_to(zx, (c,)), np.broadcast_to(zy, (c,))
        mx, my, unit = exact_multipliers(ax, ay)
        zcorr = np.array([mx * int(a) + my * int(b) for a, b in zip(zx, zy, strict=True)], float)
        steps = self._linear_steps(zcorr, np.full(c, float(unit)))
        lo = [mx * int(a) + my * int(b) for a, b in zip(vx.lo, vy.lo, strict=True)]
        hi = [mx * int(a) + my * int(b) for a, b in zip(vx.hi, vy.hi, strict=True)]
        bits = bits_for_range(min(lo), max(hi))
        if bits > 62:  # cannot be realized (`_realize` refuses); keep int64 placeholders
            lo, hi = [0] * c, [0] * c
        out = self._int_name(node.outputs[0])
        self.reserved.add(out)
        pending = PendingAdd(node.name, vx, vy, ax, ay, len(steps))
        lo_a, hi_a = np.array(lo, np.int64), np.array(hi, np.int64)
        dt = DataType.for_range(int(lo_a.min()), int(hi_a.max()))
        self.env[node.outputs[0]] = Value(
            out, vx.shape, vx.idx, lo_a, hi_a, dt, tuple(steps), add=pending
        )

    def _emit_add(
        self, p: PendingAdd, tensor: str, m1: int, m2: int
    ) -> tuple[str, np.ndarray, np.ndarray, DataType]:
        """Emit (once) the integer Add m1*x + m2*y of a pending sum; the first emission takes
        the sum's own tensor name, another one (other multipliers, for another consumer) a
        suffixed name. Returns (tensor, per-channel lo, hi, dtype)."""
        key = (tensor, m1, m2)
        if key in self.adds:
            return self.adds[key]
        first = not any(k[0] == tensor for k in self.adds)
        name = tensor if first else self._int_name(f"{tensor}_{m1}x{m2}")
        lo, hi = m1 * p.x.lo + m2 * p.y.lo, m1 * p.x.hi + m2 * p.y.hi
        dt = DataType.for_range(int(lo.min()), int(hi.max()))
        node_name = p.node if first else f"{p.node}_{m1}x{m2}"
        self._emit(
            "Add", node_name, [p.x.tensor, p.y.tensor], name, p.x.shape, dt, a_mul=m1, b_mul=m2
        )
        self.adds[key] = (name, lo, hi, dt)
        return self.adds[key]

    def _add_width_error(self, p: PendingAdd, feeds: str, why: str) -> UnsupportedModelError:
        """The refusal of a sum too wide for the Add stage: the node, the scales, their
        exact multipliers, the bits needed, what the sum feeds and what would work."""
        mx, my, unit = exact_multipliers(p.sx, p.sy)
        bits = sum_bits(mx, my, p.x.dtype, p.y.dtype)
        if why:
            feeds, hint = f"{feeds}, and {why}", ""
        else:
            feeds += ", which needs the exact sum"
            hint = (
                ", or quantize the sum right after the Add (e.g. a Brevitas QuantReLU), which "
                "lets qloom look for smaller multipliers"
            )
        return UnsupportedModelError(
            f"node '{p.node}' (Add): the operands' scales {p.sx:.9g} and {p.sy:.9g} are {mx} "
            f"and {my} times their exact common unit {float(unit):.9g}, so their exact integer "
            f"sum needs a {bits}-bit accumulator (qloom's Add takes at most {MAX_ADD_BITS} "
            f"bits, and multipliers below 2**31); it feeds {feeds}; quantize both branches "
            "with one shared quantizer or with scales whose ratio is a small fraction (e.g. "
            f"0.75 and 0.5: multipliers 3 and 2){hint}",
            p.node,
            "Add",
        )

    def _realize(self, v: Value, consumer: str, why: str = "") -> Value:
        """The exact integer sum of a pending Add, emitted once; refused (naming the Add,
        the scales and the bits it needs) when it does not fit the Add stage. `why`: why the
        quantizer `consumer` found no smaller multipliers."""
        p = v.add
        if p is None:
            return v
        mx, my, _ = exact_multipliers(p.sx, p.sy)
        if not _add_fits(p, mx, my):
            raise self._add_width_error(p, consumer, why)
        tensor, lo, hi, dt = self._emit_add(p, v.tensor, mx, my)
        return dataclasses.replace(v, tensor=tensor, lo=lo, hi=hi, dtype=dt, add=None)

    def _add_thresholds(self, v: Value, to_level, bipolar: bool):
        """Thresholds of the quantizer after a pending Add with the smallest
        multipliers that reproduce, for every operand pair the streams can carry, the level
        qonnx computes (each operand's float32 value, their float32 sum, the steps after it,
        the quantizer). Where none do (not even the exact ones: qonnx's rounding makes its
        levels non-monotone in the exact sum), the exact multipliers with the thresholds
        that misplace the fewest pairs. Returns ((tensor of the emitted Add,
        _search_thresholds' result), "") or (None, why not): no pending Add, too many pairs
        to enumerate, or an exact sum too wide and no smaller multipliers that fit."""
        p = v.add
        if p is None:
            return None, ""
        c = v.channels
        nx, ny = _pair_sizes(p.x.lo, p.x.hi, p.y.lo, p.y.hi)
        if c * nx * ny > MAX_PAIRS:
            return None, (
                f"its {c} x {nx} x {ny} operand pairs are too many to look for smaller "
                f"multipliers (at most {MAX_PAIRS})"
            )
        qx, qy = _pair_grid(p.x.lo, p.x.hi, p.y.lo, p.y.hi, nx, ny)
        chan = np.arange(c)[:, None]
        total = apply_steps(qx, p.x.steps, chan) + apply_steps(qy, p.y.steps, chan)
        level = to_level(apply_steps(total.astype(np.float32), v.steps[p.at :], chan))
        order = LevelOrder(qx, qy, level)
        for m1, m2 in candidate_multipliers(p.sx, p.sy):
            if not _add_fits(p, m1, m2) or not order.separates(m1, m2):
                continue
            lo, hi = m1 * p.x.lo + m2 * p.y.lo, m1 * p.x.hi + m2 * p.y.hi
            found = table_thresholds(m1 * qx + m2 * qy, level, lo, hi, bipolar)
            if found is not None:
                return (self._emit_add(p, v.tensor, m1, m2)[0], found), ""
        mx, my, _ = exact_multipliers(p.sx, p.sy)
        if _add_fits(p, mx, my):
            # qonnx's levels are not a monotone function of the exact sum (its float32
            # rounding of the operands decides some pairs near a quantizer step): the exact
            # sum with the thresholds that give the fewest pairs another level
            lo, hi = mx * p.x.lo + my * p.y.lo, mx * p.x.hi + my * p.y.hi
            found, _ = closest_thresholds(mx * qx + my * qy, level, lo, hi, bipolar)
            return (self._emit_add(p, v.tensor, mx, my)[0], found), ""
        return None, (
            f"no multipliers for a sum of at most {MAX_ADD_BITS} bits give that quantizer the "
            "level the model computes on every operand pair"
        )

    def _op_Concat(self, node, args):
        """Concat of quantized tensors along the channel axis, with one shared scale: the
        integer tensors are concatenated (channels-last) and keep their zero points. More than
        two inputs become a chain of two-input Concats ("<name>_1", ... then "<name>")."""
        what = f"node '{node.name}' (Concat)"
        if len(args) < 2 or not all(isinstance(a, Value) for a in args):
            raise UnsupportedModelError(
                f"{what}: qloom concatenates streamed tensors (got {len(args)} inputs, "
                f"{sum(isinstance(a, Value) for a in args)} of them streamed)",
                node.name,
                node.op,
            )
        quantized = [self._quantized(node, a) for a in args]
        (v0, a0, _) = quantized[0]
        rank = v0.idx.ndim + 1
        if node.attrs.get("axis", 1) % rank != 1:
            raise UnsupportedModelError(
                f"{what}: axis {node.attrs.get('axis')} is not the channel axis (1)",
                node.name,
                node.op,
            )
        for _, a, _ in quantized[1:]:
            if np.float32(a0) != np.float32(a):
                raise UnsupportedModelError(
                    f"{what}: the inputs' scales {a0:g} and {a:g} differ; quantize all branches "
                    "with one shared quantizer (e.g. the same Brevitas QuantReLU/QuantIdentity)",
                    node.name,
                    node.op,
                )
        vs = [v for v, _, _ in quantized]
        channels = sum(v.channels for v in vs)
        if len(v0.shape) == 3:
            one_d = _is_1d(v0)
            h, w = v0.shape[:2]
            ok = all(
                v.shape[:2] == (h, w) and np.array_equal(v.idx, _img_idx(v.channels, h, w, one_d))
                for v in vs
            )

            def layout(c):
                return (h, w, c), _img_idx(c, h, w, one_d)
        else:
            ok = all(len(v.shape) == 1 and np.array_equal(v.idx, np.arange(v.channels)) for v in vs)

            def layout(c):
                return (c,), np.arange(c)

        if not ok:
            raise UnsupportedModelError(
                f"{what}: the inputs have different spatial shapes or permuted layouts",
                node.name,
                node.op,
            )
        z = np.concatenate([np.broadcast_to(zq, (v.channels,)) for v, _, zq in quantized])
        lo, hi = np.concatenate([v.lo for v in vs]), np.concatenate([v.hi for v in vs])
        cur, c = vs[0].tensor, vs[0].channels
        for i, v in enumerate(vs[1:], start=1):
            last = i == len(vs) - 1
            c += v.channels
            name = node.name if last else f"{node.name}_{i}"
            out = self._int_name(node.outputs[0] if last else f"{node.outputs[0]}_{i}")
            dt = DataType.for_range(int(lo[:c].min()), int(hi[:c].max()))
            self._emit("Concat", name, [cur, v.tensor], out, layout(c)[0], dt)
            cur = out
        shape, idx = layout(channels)
        steps = self._linear_steps(z, np.full(channels, a0))
        self.env[node.outputs[0]] = self._acc_value(cur, shape, idx, lo, hi, steps)

    # -- shape ops ------------------------------------------------------------------------------
    def _reshape_idx(self, node: Node, v: Value, fn) -> None:
        self.env[node.outputs[0]] = dataclasses.replace(v, idx=fn(v.idx))

    def _op_Reshape(self, node, args):
        shape = [int(s) for s in args[1]]
        self._reshape_idx(node, self._value(node, args[0]), lambda i: i.reshape(shape[1:]))

    def _op_Flatten(self, node, args):
        if node.attrs.get("axis", 1) != 1:
            raise UnsupportedModelError(f"node '{node.name}': Flatten axis must be 1", node.name)
        self._reshape_idx(node, self._value(node, args[0]), lambda i: i.reshape(-1))

    def _op_Transpose(self, node, args):
        perm = node.attrs.get("perm")
        if perm is None or perm[0] != 0:
            raise UnsupportedModelError(
                f"node '{node.name}': Transpose must keep the batch axis first", node.name, node.op
            )
        self._reshape_idx(
            node, self._value(node, args[0]), lambda i: np.transpose(i, [p - 1 for p in perm[1:]])
        )

    def _op_Squeeze(self, node, args):
        axes = [int(a) - 1 for a in (args[1] if len(args) > 1 else node.attrs["axes"])]
        self._reshape_idx(node, self._value(node, args[0]), lambda i: np.squeeze(i, tuple(axes)))

    def _op_Unsqueeze(self, node, args):
        axes = [int(a) - 1 for a in (args[1] if len(args) > 1 else node.attrs["axes"])]
        self._reshape_idx(
            node, self._value(node, args[0]), lambda i: np.expand_dims(i, tuple(axes))
        )

    def _op_Identity(self, node, args):
        self.env[node.outputs[0]] = args[0]

    # -- outputs ----------------------------------------------------------------------------
    def _float_tail(self, v: Value, name: str) -> str:
        v = self._materialize_pool(self._realize(v, f"the float output '{name}'"), name)
        self.nodes.append(
            Node(
                "FloatTail",
                f"{name}_tail",
                (v.tensor,),
                (name,),
                {"idx": v.idx, "channel_of": v.channel_of(), "steps": v.steps},
            )
        )
        self.tensors[name] = TensorInfo(tuple(v.idx.shape) or (1,))
        return name

    def _label_op(self, node, args):
        v = self._value(node, args[0])
        tail = self._float_tail(v, self._int_name(f"{node.inputs[0]}_float"))
        attrs = dict(node.attrs)
        if node.op == "TopK":
            attrs["k"] = int(np.asarray(args[1]).ravel()[0])
        self.nodes.append(Node(node.op, node.name, (tail,), node.outputs, attrs))
        for o in node.outputs:
            self.tensors[o] = TensorInfo((1,))
            self.env[o] = o

    _op_TopK = _label_op
    _op_ArgMax = _label_op

    def _op_Softmax(self, node, args):
        """Softmax / LogSoftmax run on the host, on the float tail (top-1 is unchanged)."""
        v = self._value(node, args[0])
        tail = self._float_tail(v, self._int_name(f"{node.inputs[0]}_float"))
        self._host_op(node, [tail] + list(args[1:]))

    _op_LogSoftmax = _op_Softmax

    def _host_op(self, node: Node, args) -> None:
        """A node after the float tail: it runs on the host with its reference semantics."""
        if node.op not in HOST_OPS:
            raise UnsupportedModelError(
                f"node '{node.name}' ({node.op}) follows the float output of the network; only "
                f"{', '.join(HOST_OPS)} can run on the host there",
                node.name,
                node.op,
            )
        inputs = tuple(
            a if isinstance(a, str) else t for a, t in zip(args, node.inputs, strict=True)
        )
        self.host_constants.update(
            {t: a for t, a in zip(node.inputs, args, strict=True) if isinstance(a, np.ndarray)}
        )
        for t, a in zip(node.inputs, args, strict=True):
            if isinstance(a, Value):
                raise UnsupportedModelError(
                    f"node '{node.name}' ({node.op}) mixes the float output with '{t}'",
                    node.name,
                    node.op,
                )
        self.nodes.append(Node(node.op, node.name, inputs, node.outputs, dict(node.attrs)))
        for o in node.outputs:
            info = self.g.tensors.get(o)
            self.tensors[o] = TensorInfo(info.shape if info else (1,))
            self.env[o] = o

    # -- quantizers -> thresholds -------------------------------------------------------------
    def _quantizer(self, node: Node, v: Value):
        """(real(y) for y of shape (C, n), scale s, zero z, bipolar) of a quantizer node."""
        consts = [self.env[t] if t else None for t in node.inputs[1:]]
        c = v.channels
        if node.op == "MultiThreshold":
            t = np.asarray(consts[0], np.float32)
            ch_imp = np.arange(t.shape[0]).reshape((-1,) + (1,) * (v.idx.ndim - 1))
            cmap = np.rint(self._per_channel(node, v, ch_imp)).astype(np.int64)
            t_int = t[np.broadcast_to(cmap, (c,))] if t.shape[0] > 1 else np.repeat(t, c, 0)
            out_scale = float(node.attrs.get("out_scale", 1.0))
            out_bias = float(node.attrs.get("out_bias", 0.0))
            bipolar = out_scale == 2 and out_bias == -1 and t.shape[1] == 1

            def real(y):
                cnt = (y[:, :, None] >= t_int[:, None, :]).sum(-1).astype(np.float32)
                return cnt * np.float32(out_scale) + np.float32(out_bias)

            if bipolar:
                return real, np.float32(1), np.float32(0), True
            return real, np.float32(out_scale), np.float32(-out_bias / out_scale), False
        params = []
        for k in consts:
            p = self._per_channel(node, v, k) if isinstance(k, np.ndarray) and k.size > 1 else k
            params.append(p[:, None] if np.ndim(p) == 1 else p)

        def real(y):
            return REFERENCE_OPS[node.op](node, [y] + params)[0]

        if node.op in ("Quant", "IntQuant", "BipolarQuant"):
            lv = quantizer_levels(self.g, node)  # real = (level - zero) * scale
            s = self._per_channel(node, v, lv.scale)
            z = self._per_channel(node, v, lv.zero)
            return real, s, z, lv.dtype.is_bipolar
        scale, zero = consts[0], consts[1]
        if node.op == "Trunc":
            if len(consts) >= 5:  # v2: output scale given
                out_scale = consts[3]
                trunc = 2.0 ** np.round(np.log2(np.asarray(out_scale) / np.asarray(scale)))
                scale, zero = out_scale, np.asarray(zero) / trunc
        s = self._per_channel(node, v, np.asarray(scale))
        z = self._per_channel(node, v, np.asarray(zero))
        return real, s, z, False

    def _threshold(self, node: Node, v: Value) -> None:
        real, s, z, bipolar = self._quantizer(node, v)
        c = v.channels
        chan = np.arange(c)[:, None]
        s_c = np.broadcast_to(np.asarray(s, np.float64), (c,))[:, None]
        z_c = np.broadcast_to(np.asarray(z, np.float64), (c,))[:, None]

        def to_level(y: np.ndarray) -> np.ndarray:  # (C, n) float32 before the quantizer
            y = real(y)
            if bipolar:  # y = (+-1 - z) * s
                return np.where(y / s_c + z_c > 0, 1, -1).astype(np.int64)
            return np.rint(y / s_c + z_c).astype(np.int64)

        found, why = self._add_thresholds(v, to_level, bipolar)
        if found is None and v.prod is not None:
            found = self._mul_thresholds(v, to_level, bipolar)
        if found is not None:
            tensor, (thresholds, negate, lv_lo, lv_hi) = found
        else:
            v = self._realize(v, f"the quantizer '{node.name}'", why)
            steps = v.steps

            def level(acc: np.ndarray) -> np.ndarray:  # acc (C, n) int -> (C, n) int level
                return to_level(apply_steps(acc, steps, chan))

            thresholds, negate, lv_lo, lv_hi = _search_thresholds(level, v.lo, v.hi, bipolar)
            tensor = v.tensor
        dtype = BIPOLAR if bipolar else DataType.for_range(int(lv_lo.min()), int(lv_hi.max()))
        out = self._int_name(node.outputs[0])
        self._emit(
            "MultiThreshold",
            node.name,
            [tensor],
            out,
            v.shape,
            dtype,
            thresholds=thresholds,
            negate=negate if negate.any() else None,
            out_base=int(lv_lo.min()) if not bipolar else -1,
            out_dtype=dtype,
        )
        if v.pool is not None:
            p = v.pool
            pooled = self._int_name(f"{out}_pool")
            self._emit(
                "MaxPool",
                f"{node.name}_maxpool",
                [out],
                pooled,
                p.out_shape,
                dtype,
                kernel=p.kernel,
                stride=p.stride,
                pads=p.pads,
            )
            out = pooled
        new_steps: list = []
        if np.any(np.asarray(z) != 0):
            new_steps.append(("sub", z))
        if np.any(np.asarray(s) != 1):
            new_steps.append(("mul", s))
        self.env[node.outputs[0]] = Value(
            out, v.out_shape, v.idx, lv_lo, lv_hi, dtype, tuple(new_steps)
        )

    def _op_quantizer(self, node, args):
        self._threshold(node, self._value(node, args[0]))

    _op_Quant = _op_IntQuant = _op_BipolarQuant = _op_MultiThreshold = _op_Trunc = _op_quantizer


def _add_fits(p: PendingAdd, m1: int, m2: int) -> bool:
    """m1*x + m2*y of a pending sum fits qloom's Add stage (accumulator and multipliers)."""
    bits = sum_bits(m1, m2, p.x.dtype, p.y.dtype)
    return bits <= MAX_ADD_BITS and max(m1, m2) <= MAX_MULTIPLIER


def _step_signs(steps, channels: int) -> np.ndarray:
    sign = np.ones(channels)
    for kind, p in steps:
        if kind in ("mul", "div", "sqrtdiv"):
            sign = sign * np.sign(np.asarray(p, np.float64))
    return sign


def _pair_sizes(xl, xh, yl, yh) -> tuple[int, int]:
    """How many values the widest channel of each operand takes (per-channel ranges)."""
    return int((xh - xl).max()) + 1, int((yh - yl).max()) + 1


def _pair_grid(xl, xh, yl, yh, nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    """Every operand pair (qx, qy) two streams can carry, per channel: (C, nx*ny) arrays; a
    channel whose range is narrower repeats its last value (the Add and the Mul search their
    thresholds over these pairs)."""
    qx = np.minimum(xl[:, None] + np.arange(nx), xh[:, None])
    qy = np.minimum(yl[:, None] + np.arange(ny), yh[:, None])
    return np.repeat(qx, ny, axis=1), np.tile(qy, (1, nx))


def _search_thresholds(level, lo: np.ndarray, hi: np.ndarray, bipolar: bool):
    """Integer thresholds T (C, K) with level(acc) == base + #{k: sign*acc >= T[c,k]}.

    `level` is monotone per channel; decreasing channels get negate=True (acc -> -acc).
    """
    lo = np.asarray(lo, np.int64)
    hi = np.asarray(hi, np.int64)
    l_lo = level(lo[:, None])[:, 0]
    l_hi = level(hi[:, None])[:, 0]
    negate = l_lo > l_hi
    lo2 = np.where(negate, -hi, lo)
    hi2 = np.where(negate, -lo, hi)
    sgn = np.where(negate, -1, 1)[:, None]

    def level2(a):
        return level(sgn * a)

    v_lo, v_hi = np.minimum(l_lo, l_hi), np.maximum(l_lo, l_hi)
    base = -1 if bipolar else int(v_lo.min())
    targets = np.array([1]) if bipolar else np.arange(base + 1, int(v_hi.max()) + 1)
    k = targets.shape[0]
    if k == 0:  # a constant output: one threshold no accumulator reaches keeps NT >= 1
        return (hi2 + 1)[:, None], negate, v_lo, v_hi
    low = np.repeat(lo2[:, None], k, 1)
    high = np.repeat(hi2[:, None] + 1, k, 1)  # hi2 + 1 means "never reached"
    while np.any(low < high):
        mid = (low + high) // 2
        ok = level2(np.minimum(mid, hi2[:, None])) >= targets[None, :]
        active = low < high
        high = np.where(active & ok, mid, high)
        low = np.where(active & ~ok, mid + 1, low)
    thresholds = np.sort(low, axis=1)
    _verify(level2, thresholds, lo2, hi2, base, bipolar)
    return thresholds, negate, v_lo, v_hi


def _verify(level2, thresholds, lo2, hi2, base, bipolar, max_points: int = 1 << 22) -> None:
    """Check the thresholds on every accumulator value when that is cheap (else on a sample)."""
    c = lo2.shape[0]
    span = int((hi2 - lo2).max()) + 1
    n = min(span, max(2, max_points // max(c, 1)))
    offs = np.unique(np.linspace(0, span - 1, n).astype(np.int64))
    acc = np.minimum(lo2[:, None] + offs[None, :], hi2[:, None])
    want = level2(acc)
    cnt = np.stack([np.searchsorted(thresholds[ch], acc[ch], side="right") for ch in range(c)])
    got = 2 * cnt - 1 if bipolar else base + cnt
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)[0]
        raise UnsupportedModelError(
            f"internal error: thresholds do not reproduce the quantizer at channel {bad[0]} "
            "(the function between the linear layer and the quantizer is not monotone?)"
        )


_WINDOW_OPS = ("Conv", "MaxPool", "AveragePool")


def _is_1d(v: Value) -> bool:
    """A 1-D signal (C, L), held as an L x 1 image."""
    return v.idx.ndim == 2 and len(v.out_shape) == 3 and v.out_shape[1] == 1


def _img_idx(c: int, h: int, w: int, one_d: bool) -> np.ndarray:
    idx = canonical_idx((c, h, w))
    return idx.reshape(c, h * w) if one_d else idx


def _as_2d(node: Node) -> Node:
    """A 1-D Conv / pool node as the 2-D one with a K x 1 kernel on an L x 1 image."""
    at = dict(node.attrs)
    for key, extra in (("kernel_shape", 1), ("strides", 1), ("dilations", 1)):
        if key in at:
            at[key] = tuple(at[key]) + (extra,)
    if "pads" in at:
        begin, end = at["pads"]
        at["pads"] = (begin, 0, end, 0)
    return dataclasses.replace(node, attrs=at)
