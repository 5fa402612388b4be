"""Save any qloom graph (imported, integer, dataflow) as an ONNX file for viewing in Netron.

The files document a build; they are not meant to be executed by onnxruntime: integer and
dataflow ops live in the "qloom" domain, array attributes (weights, thresholds) become
initializers, scalar attributes become ONNX attributes, and each tensor's value_info carries
its shape and qloom DataType in the doc string.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from qloom.ir import Graph

QONNX_OPS = {"Quant", "IntQuant", "BipolarQuant", "Trunc", "MultiThreshold", "XnorPopcountMatMul"}


def _domain(graph: Graph, op: str) -> str:
    if graph.kind != "imported":
        return "qloom"
    return "qonnx.custom_op.general" if op in QONNX_OPS else ""


def _attr_items(node_name: str, attrs: dict):
    """(attributes, initializers) for ONNX from a node's attrs."""
    attributes, inits = {}, []
    for key, value in attrs.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for k, v in getattr(value, "rtl_params", lambda: {})().items():
                if isinstance(v, int | float | str):
                    attributes[k] = v
            attributes["describe"] = value.describe() if hasattr(value, "describe") else key
        elif isinstance(value, np.ndarray):
            inits.append(numpy_helper.from_array(value, f"{node_name}.{key}"))
        elif isinstance(value, bool | int | float | str):
            attributes[key] = int(value) if isinstance(value, bool) else value
        elif isinstance(value, tuple | list) and all(isinstance(v, int) for v in value):
            if value:  # ONNX cannot infer the type of an empty list: write it as text
                attributes[key] = list(value)
            else:
                attributes[key] = "[]"
        elif value is not None:
            attributes[key] = str(value)
    return attributes, inits


def graph_to_onnx(graph: Graph) -> onnx.ModelProto:
    nodes, inits = [], []
    for name, arr in graph.constants.items():
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
    for n in graph.nodes:
        attributes, node_inits = _attr_items(n.name, dict(n.attrs))
        inits.extend(node_inits)
        domain = _domain(graph, n.op)
        nodes.append(
            helper.make_node(
                n.op,
                list(n.inputs) + [i.name for i in node_inits],
                list(n.outputs),
                name=n.name,
                domain=domain,
                **attributes,
            )
        )

    def info(name: str) -> onnx.ValueInfoProto:
        t = graph.tensors.get(name)
        shape = ["N", *t.shape] if t else None
        vi = helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
        if t:
            vi.doc_string = f"{t.dtype} {t.layout}".strip()
        return vi

    produced = [o for n in graph.nodes for o in n.outputs]
    g = helper.make_graph(
        nodes,
        graph.name,
        [info(i) for i in graph.inputs],
        [info(o) for o in graph.outputs],
        initializer=inits,
        value_info=[info(t) for t in produced if t not in graph.outputs and t in graph.tensors],
    )
    g.doc_string = f"qloom {graph.kind} graph"
    opsets = [
        helper.make_opsetid("", 13),
        helper.make_opsetid("qloom", 1),
        helper.make_opsetid("qonnx.custom_op.general", 1),
    ]
    return helper.make_model(g, opset_imports=opsets, producer_name="qloom")


def save_graph(graph: Graph, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph_to_onnx(graph), str(path))
    return path
