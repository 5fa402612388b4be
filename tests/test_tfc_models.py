"""The acceptance test of streamlining on real networks: for every shared TFC model, the
integer graph predicts exactly what qonnx's executor predicts on all 10,000 MNIST test images."""

from __future__ import annotations

import numpy as np
import pytest
from tfc_data import TFC_ACCURACY, TFC_MODELS, qonnx_reference, tfc_path

from qloom.flow import compile_model, predictions, run_imported, run_integer
from qloom.frontend.domain import RAW_PIXELS
from qloom.frontend.reference import qonnx_outputs


@pytest.fixture(scope="module", params=TFC_MODELS)
def tfc(request):
    return request.param, compile_model(tfc_path(request.param), RAW_PIXELS)


def test_integer_graph_matches_qonnx_on_all_mnist(tfc, mnist_test):
    name, compiled = tfc
    images, labels = mnist_test
    reference = qonnx_reference(tfc_path(name), images)
    out = run_integer(compiled.integer, images)[compiled.integer.outputs[0]]
    assert np.array_equal(out.argmax(1), reference.argmax(1))
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
    assert np.mean(
        predictions(compiled.integer, {compiled.integer.outputs[0]: out}) == labels
    ) == pytest.approx(TFC_ACCURACY[name], abs=1e-4)


def test_batched_reference_equals_one_image_per_call(tfc, mnist_test):
    """The 10,000-image reference runs qonnx on 500 images per call (qonnx's ChangeBatchSize);
    it must be exactly what qonnx computes on the unmodified batch-1 model."""
    name, _ = tfc
    x = mnist_test[0][:100].astype(np.float32) / np.float32(255)
    one_by_one = qonnx_outputs(tfc_path(name), x)
    batched = qonnx_outputs(tfc_path(name), x, batch=50)
    assert np.array_equal(one_by_one, batched)


def test_imported_graph_matches_integer_graph(tfc, mnist_test):
    _, compiled = tfc
    images, _ = mnist_test
    ref = run_imported(compiled.imported, images.astype(np.float32) / np.float32(255))[
        compiled.imported.outputs[0]
    ]
    out = run_integer(compiled.integer, images)[compiled.integer.outputs[0]]
    assert np.array_equal(ref.argmax(1), out.argmax(1))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_integer_graph_is_integer(tfc):
    """Every tensor between input and float tail holds integers of its declared type."""
    _, compiled = tfc
    g = compiled.integer
    assert [n.op for n in g.nodes].count("FloatTail") == 1
    for node in g.nodes:
        for key in ("weights", "thresholds"):
            if key in node.attrs:
                assert node.attrs[key].dtype == np.int64


def test_binary_layers_become_xnor_popcount():
    g = compile_model(tfc_path("TFC_1W1A"), RAW_PIXELS).integer
    assert [n.op for n in g.nodes if "MatMul" in n.op] == ["XnorMatMul"] * 4
    g = compile_model(tfc_path("TFC_2W2A"), RAW_PIXELS).integer
    assert not any(n.op.startswith("Xnor") for n in g.nodes)
