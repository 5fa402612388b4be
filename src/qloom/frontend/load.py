"""Load an ONNX file (QONNX as Brevitas exports it, old `onnx.brevitas` domain, FINN-ONNX),
run qonnx's cleanup on it, check every op is one qloom supports, and import it into a Graph.

qonnx stays at this frontier: after `load` nothing in qloom touches ModelWrapper.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from qloom.datatype import FLOAT32, DataType
from qloom.errors import ModelLoadError, UnsupportedModelError
from qloom.frontend.validate import validate_model
from qloom.ir import Graph, Node, TensorInfo

# op -> one-line description shown when something else is found
SUPPORTED_OPS: dict[str, str] = {
    "Quant": "QONNX integer quantizer (IntQuant)",
    "IntQuant": "QONNX integer quantizer",
    "BipolarQuant": "1-bit {-s,+s} quantizer",
    "Trunc": "QONNX truncation (after average pooling)",
    "MultiThreshold": "FINN-ONNX thresholding",
    "XnorPopcountMatMul": "FINN-ONNX binary matrix multiply",
    "Gemm": "fully connected layer",
    "MatMul": "fully connected layer",
    "Conv": "2-D convolution (any group count; grouped ones as dense)",
    "BatchNormalization": "batch norm (folded into thresholds)",
    "Relu": "ReLU",
    "Clip": "clip / HardTanh",
    "HardTanh": "clip to [-1, 1]",
    "MaxPool": "2-D max pooling",
    "AveragePool": "2-D average pooling",
    "GlobalAveragePool": "global average pooling",
    "Add": "add a constant, or two quantized tensors (skip connection)",
    "Concat": "join two quantized tensors with one scale along the channels",
    "Sub": "subtract a constant",
    "Mul": "multiply by a constant, or two quantized tensors (same shape, or a per-channel gate)",
    "Div": "divide by a constant",
    "Reshape": "reshape",
    "Flatten": "flatten",
    "Transpose": "transpose",
    "Squeeze": "squeeze",
    "Unsqueeze": "unsqueeze",
    "Identity": "identity",
    "TopK": "top-k labels",
    "Softmax": "softmax at the end of the graph (runs on the host)",
    "LogSoftmax": "log-softmax at the end of the graph (runs on the host)",
    "ArgMax": "arg-max label",
}

_FINN_DOMAINS = ("finn.custom_op.general", "qonnx.custom_op.general", "onnx.brevitas", "finn")


def _supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_OPS))


def _read(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # protobuf raises several types for truncated/garbled files
        raise ModelLoadError(
            f"{path}: not a readable ONNX file ({type(e).__name__}: {e}); "
            "is it truncated or not an .onnx model?"
        ) from None
    if not model.graph.node:
        raise ModelLoadError(f"{path}: the ONNX graph has no nodes (empty or truncated file?)")
    return model


#: most elements per sample of the input that qloom compiles (a streaming accelerator keeps
#: its layers on chip; larger inputs would only exhaust memory while being cleaned up)
MAX_INPUT_ELEMENTS = 1 << 24
_KNOWN_DOMAINS = ("", "ai.onnx", *_FINN_DOMAINS)


def _check_structure(path: Path, model: onnx.ModelProto) -> None:
    """Every edge has a source and the graph has no cycle (then its nodes are put in
    topological order), outputs exist, opset and op domains are known: qonnx's cleanup would
    otherwise fail with a message about something else, or run out of memory."""
    g = model.graph
    if not g.output:
        raise ModelLoadError(f"{path}: the graph has no outputs")
    newest = onnx.defs.onnx_opset_version()
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version > newest:
            raise ModelLoadError(
                f"{path}: ONNX opset {o.version} is newer than the {newest} this onnx library "
                f"({onnx.__version__}) knows; export with opset <= {newest}"
            )
    for node in g.node:
        if node.domain not in _KNOWN_DOMAINS:
            raise UnsupportedModelError(
                f"{path}: node '{node.name or node.output[0]}' is op {node.op_type} of domain "
                f"'{node.domain}', which qloom does not know (it reads the standard ONNX ops "
                f"and QONNX/FINN ops of {', '.join(_FINN_DOMAINS)})",
                node=node.name,
                op=node.op_type,
            )
    for inp in g.input:
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim if d.HasField("dim_value")]
        size = int(np.prod(dims[1:], dtype=np.int64)) if len(dims) > 1 else 1
        if size > MAX_INPUT_ELEMENTS:
            raise UnsupportedModelError(
                f"{path}: graph input '{inp.name}' has {size:,} elements per sample "
                f"(shape {dims}); qloom compiles inputs of at most {MAX_INPUT_ELEMENTS:,}",
                node=inp.name,
            )
    known = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    producer: dict[str, onnx.NodeProto] = {}
    for node in g.node:
        if not node.output:
            raise ModelLoadError(f"{path}: node '{node.name}' ({node.op_type}) has no outputs")
        for t in node.output:
            producer[t] = node
    for node in g.node:
        for t in node.input:
            if t not in known and t not in producer:
                raise UnsupportedModelError(
                    f"{path}: node '{node.name or node.output[0]}' ({node.op_type}) reads "
                    f"'{t}', which no node, initializer or graph input provides (a dangling "
                    "edge: the file is incomplete or was edited by hand)",
                    node=node.name,
                    op=node.op_type,
                )
    for out in g.output:
        if out.name not in known and out.name not in producer:
            raise UnsupportedModelError(
                f"{path}: graph output '{out.name}' is produced by no node", node=out.name
            )
    order: list[onnx.NodeProto] = []
    done = set(known)
    pending = list(g.node)
    while pending:
        ready = [n for n in pending if all(t in done for t in n.input)]
        if not ready:
            names = ", ".join(f"'{n.name or n.output[0]}'" for n in pending[:4])
            raise UnsupportedModelError(
                f"{path}: the graph has a cycle through node(s) {names}; an ONNX model must be "
                "acyclic",
                node=pending[0].name,
                op=pending[0].op_type,
            )
        for n in ready:
            done.update(n.output)
        order += ready
        placed = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in placed]
    if any(a is not b for a, b in zip(order, g.node, strict=True)):
        nodes = [onnx.NodeProto() for _ in order]
        for dst, src in zip(nodes, order, strict=True):
            dst.CopyFrom(src)
        del g.node[:]
        g.node.extend(nodes)


def _check_static_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fix a symbolic batch dimension to 1; any other symbolic dimension is an error."""
    init_names = {i.name for i in model.graph.initializer}
    for inp in model.graph.input:
        if inp.name in init_names:
            continue
        dims = inp.type.tensor_type.shape.dim
        for axis, d in enumerate(dims):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            if axis == 0:
                d.Clear()
                d.dim_value = 1
                continue
            label = d.dim_param or "?"
            raise UnsupportedModelError(
                f"graph input '{inp.name}' has a dynamic dimension '{label}' at axis {axis}: "
                "qloom compiles fixed-size hardware; export the model with a fixed input shape "
                "(e.g. torch.onnx.export with a concrete example input and no dynamic_axes)",
                node=inp.name,
            )
    return model


#: (min, max) inputs of the QONNX / FINN ops (standard ops: their ONNX schema)
_CUSTOM_ARITY = {
    "Quant": (4, 4),
    "IntQuant": (4, 4),
    "BipolarQuant": (2, 2),
    "Trunc": (4, 6),
    "MultiThreshold": (2, 2),
    "XnorPopcountMatMul": (2, 2),
}


def _arity(model: onnx.ModelProto, node: onnx.NodeProto) -> tuple[int, int] | None:
    if node.op_type in _CUSTOM_ARITY:
        return _CUSTOM_ARITY[node.op_type]
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13)
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except Exception:  # unknown op or version: _check_ops names it
        return None
    return schema.min_input, schema.max_input


def _check_arity(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        limits = _arity(model, node)
        n = len(node.input)
        if limits is not None and not limits[0] <= n <= limits[1]:
            want = str(limits[0]) if limits[0] == limits[1] else f"{limits[0]} to {limits[1]}"
            raise UnsupportedModelError(
                f"node '{node.name or node.output[0]}' ({node.op_type}) has {n} inputs; "
                f"{node.op_type} takes {want}",
                node=node.name,
                op=node.op_type,
            )


def _check_ops(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        if node.op_type not in SUPPORTED_OPS:
            where = f" (domain {node.domain})" if node.domain else ""
            raise UnsupportedModelError(
                f"node '{node.name or node.output[0]}': op {node.op_type}{where} is not supported. "
                f"Supported ops: {_supported_list()}",
                node=node.name,
                op=node.op_type,
            )


def _qonnx_cleanup(model: onnx.ModelProto) -> onnx.ModelProto:
    """qonnx's cleanup (shape inference, constant folding, weight transposes into quantizers)
    without its renaming of nodes: errors must name nodes as the user's exporter named them."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (
        GiveUniqueParameterTensors,
        RemoveStaticGraphInputs,
        RemoveUnusedTensors,
    )
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    for node in model.graph.node:
        if node.op_type in ("Quant", "IntQuant", "Trunc", "BipolarQuant"):
            node.domain = "qonnx.custom_op.general"  # old exports say onnx.brevitas
    steps = [
        InferShapes(),
        GiveUniqueParameterTensors(),
        FoldConstants(exclude_op_types=["Quant", "IntQuant", "BipolarQuant"]),
        FoldTransposeIntoQuantInit(),
        RemoveUnusedTensors(),
        RemoveStaticGraphInputs(),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wrapped = ModelWrapper(model)
            for step in steps:
                wrapped = wrapped.transform(step)
        except Exception as e:
            raise ModelLoadError(
                f"qonnx could not clean up the model ({type(e).__name__}: {e}); "
                "is it a valid QONNX/FINN-ONNX export?"
            ) from None
    seen: set[str] = set()
    for i, node in enumerate(wrapped.model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.name or node.op_type}_{i}"
        seen.add(node.name)
    return wrapped.model


def _attr_value(a: onnx.AttributeProto):
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list):
        return tuple(x.decode() if isinstance(x, bytes) else x for x in v)
    return v


def _shape_of(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    dims = vi.type.tensor_type.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


def _annotations(model: onnx.ModelProto) -> dict[str, DataType]:
    """qonnx datatype annotations (`finn_datatype`) of the graph's tensors."""
    out: dict[str, DataType] = {}
    for ann in model.graph.quantization_annotation:
        for kv in ann.quant_parameter_tensor_names:
            if kv.key != "finn_datatype":
                continue
            text = kv.value.upper()
            try:
                out[ann.tensor_name] = DataType(text)
            except ValueError:
                raise UnsupportedModelError(
                    f"tensor '{ann.tensor_name}' is annotated with datatype {kv.value!r}, which "
                    "qloom does not know; use BIPOLAR, BINARY, UINTn, INTn or FLOAT32",
                    node=ann.tensor_name,
                ) from None
    return out


def import_model(model: onnx.ModelProto, name: str = "model") -> Graph:
    """Import a cleaned-up ONNX model into a Graph (reference float + quantizer semantics)."""
    constants = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    annotated = _annotations(model)
    tensors: dict[str, TensorInfo] = {}
    value_infos = list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output)
    for vi in value_infos:
        shape = _shape_of(vi)
        if vi.name in constants or shape is None or len(shape) == 0:
            continue
        dtype = annotated.get(vi.name, FLOAT32)
        tensors[vi.name] = TensorInfo(shape=tuple(shape[1:]) or (1,), dtype=dtype)
    inputs = tuple(i.name for i in model.graph.input if i.name not in constants)
    if len(inputs) != 1:
        raise UnsupportedModelError(
            f"the model has {len(inputs)} graph inputs ({', '.join(inputs)}); qloom compiles "
            "single-input networks"
        )
    nodes = []
    for i, n in enumerate(model.graph.node):
        attrs = {a.name: _attr_value(a) for a in n.attribute}
        nodes.append(
            Node(
                op=n.op_type,
                name=n.name or f"{n.op_type}_{i}",
                inputs=tuple(n.input),
                outputs=tuple(n.output),
                attrs=attrs,
            )
        )
    outputs = tuple(o.name for o in model.graph.output)
    return Graph(
        nodes=tuple(nodes),
        inputs=inputs,
        outputs=outputs,
        tensors=tensors,
        constants=constants,
        name=name,
    )


def load(path: str | Path) -> Graph:
    """Read, validate and import an ONNX file. Raises QloomError subclasses with clear messages."""
    path = Path(path)
    model = _read(path)
    _check_structure(path, model)
    model = _check_static_shapes(model)
    try:
        model = _qonnx_cleanup(model)
    except ModelLoadError as e:
        try:
            _check_ops(model)
        except UnsupportedModelError as u:  # keep qonnx's reason, and name the op too
            raise ModelLoadError(f"{path}: {e}; besides, {u}") from None
        raise ModelLoadError(f"{path}: {e}") from None
    _check_ops(model)  # after cleanup: shape computations and constant math are folded away
    _check_arity(model)
    graph = import_model(model, name=path.stem)
    for t in graph.inputs:
        if t not in graph.tensors:
            raise UnsupportedModelError(f"graph input '{t}' has no static shape after cleanup")
    validate_model(graph)
    return graph


def cleaned_model(path: str | Path) -> onnx.ModelProto:
    """The cleaned-up ONNX model, for callers that need qonnx's reference executor."""
    model = _read(Path(path))
    _check_structure(Path(path), model)
    return _qonnx_cleanup(_check_static_shapes(model))
