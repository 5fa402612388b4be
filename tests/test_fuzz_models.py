"""Fuzzing the frontend with mutated models: every mutation of a valid model (NaN / Inf / zero
in an initializer, a wrong-sized initializer, a deleted or retyped node, a rewired input that
dangles or makes a cycle, a changed attribute or input type) must end in one of two ways:
exit 2 with a message (never an internal error, never a traceback), or a compiled model whose
integer executor agrees with qonnx's execute_onnx on the mutated model. Runs >= 500 models."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_corpus import CORPUS
from onnx import TensorProto, numpy_helper

from qloom.cli import main
from qloom.errors import QloomError
from qloom.flow import compile_model
from qloom.frontend.reference import qonnx_outputs

EXAMPLES_PER_MODEL = 75  # x 7 base models = 525 mutated models
OPS = ["Relu", "MatMul", "Add", "Mul", "Quant", "BipolarQuant", "Softmax", "Shape", "Conv",
       "Sigmoid", "Identity", "Transpose", "MultiThreshold", "Gemm"]  # fmt: skip
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -1.0, 1e30, -1e-30, 2.5]


@st.composite
def mutation(draw, model: onnx.ModelProto):
    """A list of (kind, args) edits to apply to a copy of `model`."""
    g = model.graph
    inits = [i.name for i in g.initializer if i.data_type == TensorProto.FLOAT]
    tensors = [t for n in g.node for t in list(n.input) + list(n.output)] + ["nowhere"]
    kinds = ["value", "resize", "drop_node", "rewire", "attr", "op", "input_type", "input_dim"]
    edits = []
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(kinds))
        if kind in ("value", "resize"):
            edits.append((kind, draw(st.sampled_from(inits)), draw(st.sampled_from(SPECIAL)),
                          draw(st.integers(0, 10**6))))  # fmt: skip
        elif kind in ("drop_node", "op", "attr"):
            edits.append((kind, draw(st.integers(0, len(g.node) - 1)), draw(st.sampled_from(OPS)),
                          draw(st.integers(-3, 40))))  # fmt: skip
        elif kind == "rewire":
            edits.append((kind, draw(st.integers(0, len(g.node) - 1)),
                          draw(st.sampled_from(tensors)), draw(st.integers(0, 3))))  # fmt: skip
        elif kind == "input_type":
            edits.append((kind, draw(st.sampled_from([TensorProto.INT64, TensorProto.DOUBLE,
                          TensorProto.UINT8, TensorProto.FLOAT16])), 0, 0))  # fmt: skip
        else:
            edits.append((kind, draw(st.sampled_from([0, 1, 3, 10**5])), 0, 0))
    return edits


def apply(model: onnx.ModelProto, edits) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for kind, a, b, c in edits:
        if kind == "value":
            init = next(i for i in g.initializer if i.name == a)
            arr = numpy_helper.to_array(init).astype(np.float32).copy()
            if arr.size:
                arr.flat[c % arr.size] = b
            init.CopyFrom(numpy_helper.from_array(arr, a))
        elif kind == "resize":
            init = next(i for i in g.initializer if i.name == a)
            arr = numpy_helper.to_array(init).astype(np.float32).ravel()
            n = c % (arr.size + 3)
            init.CopyFrom(numpy_helper.from_array(np.resize(arr, n).astype(np.float32), a))
        elif kind == "drop_node" and len(g.node) > 1:
            del g.node[a % len(g.node)]
        elif kind == "op" and g.node:
            g.node[a % len(g.node)].op_type = b
        elif kind == "attr" and g.node:
            node = g.node[a % len(g.node)]
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.INT:
                    attr.i = c
                    break
        elif kind == "rewire" and g.node:
            node = g.node[a % len(g.node)]
            if node.input:
                node.input[c % len(node.input)] = b
        elif kind == "input_type":
            g.input[0].type.tensor_type.elem_type = a
        elif kind == "input_dim":
            dims = g.input[0].type.tensor_type.shape.dim
            dims[len(dims) - 1].dim_value = a
    return m


FUZZ = settings(
    max_examples=EXAMPLES_PER_MODEL,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.parametrize("base", CORPUS, ids=[m.name for m in CORPUS])
def test_mutated_models_fail_clearly_or_agree_with_qonnx(base, tmp_path_factory):
    d = tmp_path_factory.mktemp(base.name)
    model = onnx.load(base.write(d / "base.onnx"))
    counts = {"refused": 0, "agreed": 0, "qonnx failed": 0}

    @FUZZ
    @given(edits=mutation(model))
    def check(edits):
        path = d / "m.onnx"
        onnx.save(apply(model, edits), path)
        code = main(["--quiet", "run", str(path), "--data", "random", "--limit", "8"])
        assert code in (0, 2), f"{edits}: exit {code} (an internal error)"
        if code == 2:
            counts["refused"] += 1
            return
        try:
            c = compile_model(path)
        except QloomError as e:  # pragma: no cover - the CLI accepted it a moment ago
            raise AssertionError(f"{edits}: compiled by the CLI, refused by the API: {e}") from e
        x = c.random_inputs(8, seed=3)
        ours = c.run(x)[c.integer.outputs[0]]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = qonnx_outputs(path, x)
        except Exception:  # qonnx cannot run the mutated model either: nothing to compare
            counts["qonnx failed"] += 1
            return
        a = np.asarray(ours, np.float64).reshape(len(x), -1)
        b = np.asarray(ref, np.float64).reshape(len(x), -1)
        assert a.shape == b.shape, f"{edits}: output shape {a.shape} vs qonnx {b.shape}"
        finite = np.isfinite(b).all(axis=1)
        scale = max(1.0, float(np.abs(b[finite]).max())) if finite.any() else 1.0
        ok = np.isclose(a, b, rtol=1e-4, atol=1e-4 * scale) | (np.isnan(a) & np.isnan(b))
        assert ok.all(), f"{edits}: qloom's output differs from qonnx's (silently wrong)"
        counts["agreed"] += 1

    check()
    print(base.name, counts)
    assert sum(counts.values()) >= EXAMPLES_PER_MODEL * 0.9, counts
    assert counts["refused"] > 0, counts
