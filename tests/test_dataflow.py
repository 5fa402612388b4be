"""The dataflow layer: folded stage models are bit-exact against the integer graph (TFC on
MNIST, hand-made and Brevitas CNNs) at several foldings; folding errors, cycle formulas, memory
files and stream packing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tfc_data import TFC_MODELS, tfc_path

from qloom.dataflow import (
    DWC,
    MVAU,
    SWU,
    Add,
    LabelSelect,
    MaxPool,
    StreamSpec,
    Thresholding,
    pack_beats,
    read_hex,
    to_dataflow,
    unpack_beats,
)
from qloom.dataflow.stage import unpack_words
from qloom.datatype import BIPOLAR, DataType
from qloom.errors import FoldingError, UnsupportedModelError
from qloom.execute import execute
from qloom.flow import compile_model, integer_input, predictions, run_integer
from qloom.frontend.domain import RAW_PIXELS
from qloom.ir import Graph, Node, TensorInfo

N_IMAGES = 500


# -- helpers -------------------------------------------------------------------------------------
def check_design(design, graph: Graph, images: np.ndarray) -> dict:
    """Design outputs == integer graph outputs; every stream named after an integer-graph tensor
    carries exactly that tensor."""
    got = design.execute(images, keep_streams=True)
    want = execute(graph, integer_input(graph, images), keep_all=True)
    for name in graph.outputs:
        assert got[name].shape == want[name].shape, name
        assert np.array_equal(got[name], want[name]), name
    for stream, spec in design.streams.items():  # every stream fits its declared type/shape
        beats = got[f"stream:{stream}"]
        assert beats.shape == (len(images), spec.beats, spec.elems), stream
        assert spec.dtype.allowed(beats), f"stream {stream} leaves {spec.dtype}"
        words = pack_beats(beats[0], spec.dtype)
        assert max(words) < 1 << spec.width
        assert np.array_equal(unpack_beats(words, spec.dtype, spec.elems), beats[0])
    compared = 0
    for key, beats in got.items():
        if key.startswith("stream:") and key[7:] in graph.tensors and key[7:] in want:
            t = key[7:]
            ref = want[t].reshape(len(images), -1)
            assert np.array_equal(beats.reshape(len(images), -1), ref), f"stream {t}"
            compared += 1
    assert compared >= 2
    return got


def mvau_names(design) -> list[str]:
    return [s.name for s in design.stages if s.kind == "MVAU"]


@pytest.fixture(scope="module")
def mnist500(mnist_test):
    images, labels = mnist_test
    return images[:N_IMAGES], labels[:N_IMAGES]


# -- TFC on MNIST --------------------------------------------------------------------------------
def tfc_folding(graph: Graph, which: str) -> dict:
    base = to_dataflow(graph)
    thr = next(s.name for s in base.stages if s.kind == "Thresholding")
    m = mvau_names(base)
    if which == "serial":
        return {}
    if which == "middle":  # mixed widths: DWCs split, gather and go through lcm(8, 49)
        fold = {thr: {"PE": 8}}
        for name, (pe, simd) in zip(m, [(16, 49), (4, 8), (2, 32), (5, 4)], strict=True):
            fold[name] = {"PE": pe, "SIMD": simd, "ram_style": "distributed"}
        return fold
    fold = {thr: {"PE": 784}}
    for s in base.stages:
        if s.kind == "MVAU":
            fold[s.name] = {"PE": s.mh, "SIMD": s.mw}
    return fold


@pytest.mark.parametrize("model", TFC_MODELS)
@pytest.mark.parametrize("which", ["serial", "middle", "parallel"])
def test_tfc_dataflow_matches_integer_graph(model, which, mnist500):
    images, _ = mnist500
    graph = compile_model(tfc_path(model), RAW_PIXELS).integer
    design = to_dataflow(graph, tfc_folding(graph, which))
    got = check_design(design, graph, images)
    ref = run_integer(graph, images)
    out = graph.outputs[0]
    assert np.array_equal(predictions(graph, got), predictions(graph, ref))
    # the accelerator's output is the last layer's integer accumulator, identical
    (acc_tensor,) = design.output_streams
    assert got[acc_tensor].dtype == np.int64
    assert np.array_equal(got[out], ref[out])
    kinds = [s.kind for s in design.stages]
    assert kinds.count("MVAU") == 4 and kinds.count("Thresholding") == 1
    if which == "serial":
        assert design.cycles_per_frame() == 784 * 64
        assert "DWC" not in kinds
    elif which == "middle":
        assert kinds.count("DWC") == 5  # 8->392->49, 16->8, 4->32, 2->4
        # MVAU 2 (64x64, PE 4, SIMD 8) is the bottleneck; thresholding 784/8, MVAU 1 4*16
        assert design.cycles_per_frame() == (64 // 4) * (64 // 8)
        assert design.bottleneck().name == mvau_names(design)[1]
    else:
        assert design.cycles_per_frame() == 1 and "DWC" not in kinds
    if model == "TFC_1W1A":
        assert all(s.binary for s in design.stages if s.kind == "MVAU")
        assert design.stage(mvau_names(design)[0]).in_streams()[0].dtype == BIPOLAR


def with_topk(graph: Graph, k: int) -> Graph:
    node = Node("TopK", "topk", (graph.outputs[0],), ("top_values", "top_labels"), {"k": k})
    infos = {"top_values": TensorInfo((1,)), "top_labels": TensorInfo((1,))}
    return graph.replace(
        nodes=graph.nodes + (node,), outputs=("top_labels",), tensors={**graph.tensors, **infos}
    )


@pytest.mark.parametrize("model", ["TFC_1W1A", "TFC_2W2A"])
def test_tfc_topk_becomes_labelselect(model, mnist500):
    """The float tail is one increasing affine map for all classes: TopK runs as LabelSelect on
    the integer accumulators, with ONNX TopK's order (ties: lower index first)."""
    images, _ = mnist500
    base = compile_model(tfc_path(model), RAW_PIXELS).integer
    graph = with_topk(base, 3)
    last = mvau_names(to_dataflow(base))[-1]
    design = to_dataflow(graph, {last: {"PE": 5, "SIMD": 16}, "topk": {"PE": 2}})
    assert design.host is None and design.stages[-1].kind == "LabelSelect"
    got = design.execute(images)
    ref = run_integer(graph, images)
    assert got["top_labels"].shape == ref["top_labels"].shape == (N_IMAGES, 3)
    assert np.array_equal(got["top_labels"], ref["top_labels"])
    assert np.array_equal(got["top_labels"][:, 0], predictions(base, run_integer(base, images)))
    assert design.stage("topk").cycles_per_frame() == 5  # 10 / PE 2 > K 3


def test_tfc_folding_json_round_trip(tmp_path):
    graph = compile_model(tfc_path("TFC_1W1A"), RAW_PIXELS).integer
    fold = tfc_folding(graph, "middle")
    design = to_dataflow(graph, fold)
    fj = design.folding_json()
    assert fj["Defaults"] == {}
    for name, f in fold.items():
        for k, v in f.items():
            assert fj[name][k] == v
    path = design.write_folding(tmp_path / "folding.json")
    again = to_dataflow(graph, json.loads(path.read_text()))
    assert again.folding_json() == fj
    doc = design.to_json()
    json.dumps(doc)
    assert doc["cycles_per_frame"] == design.cycles_per_frame()
    assert doc["host_ops"] == ["FloatTail"]
    first = doc["stages"][0]
    assert first["kind"] == "Thresholding" and first["in_streams"][0]["width"] == 64
    assert first["out_streams"][0]["width"] == 8  # 8 BIPOLAR bits per beat
    # stages overlap within a frame: more than the slowest stage, less than them all in a row
    lat = design.latency_estimate()
    assert design.cycles_per_frame() < lat < sum(s.latency_cycles() for s in design.stages)
    weight_bits = (784 * 64 + 2 * 64 * 64 + 64 * 10) * 1  # binary weights
    mvaus = [s for s in design.stages if s.kind == "MVAU"]
    assert [m.nt for m in mvaus] == [1, 1, 1, 0]
    threshold_bits = sum(64 * m.t_dtype.bits for m in mvaus[:3])
    assert all(m.t_dtype.signed for m in mvaus[:3])  # thresholds: two's complement
    thr = design.stage("BipolarQuant_11")
    assert sum(s.memory_bits() for s in design.stages if s.kind == "MVAU") == (
        weight_bits + threshold_bits
    )
    assert thr.memory_bits() == 8 * thr.t_dtype.bits  # replicated over lcm(1, PE=8) channels
    assert "MVAU" in design.summary()
    g = design.to_graph()
    assert [n.op for n in g.nodes] == [s.kind for s in design.stages] and g.kind == "dataflow"


# -- folding errors ------------------------------------------------------------------------------
def test_illegal_folding_messages():
    graph = compile_model(tfc_path("TFC_1W1A"), RAW_PIXELS).integer
    with pytest.raises(FoldingError) as e:
        to_dataflow(graph, {"MatMul_24": {"PE": 3}})
    assert str(e.value) == (
        "MVAU 'MatMul_24': PE=3 does not divide MH=64; legal PE: 1, 2, 4, 8, 16, 32, 64"
    )
    with pytest.raises(FoldingError) as e:
        to_dataflow(graph, {"MatMul_16": {"SIMD": 5}})
    assert str(e.value) == (
        "MVAU 'MatMul_16': SIMD=5 does not divide MW=784; "
        "legal SIMD: 1, 2, 4, 7, 8, 14, 16, 28, 49, 56, 98, 112, 196, 392, 784"
    )
    with pytest.raises(
        FoldingError, match="MatMul_40': PE=4 does not divide MH=10; legal PE: 1, 2, 5, 10"
    ):
        to_dataflow(graph, {"MatMul_40": {"PE": 4}})
    with pytest.raises(FoldingError, match="unknown stage.*Nope"):
        to_dataflow(graph, {"Nope": {"PE": 2}})
    with pytest.raises(FoldingError, match="'BipolarQuant_19' is fused into MVAU 'MatMul_16'"):
        to_dataflow(graph, {"BipolarQuant_19": {"PE": 2}})
    with pytest.raises(FoldingError, match="Thresholding 'BipolarQuant_11': SIMD is not"):
        to_dataflow(graph, {"BipolarQuant_11": {"SIMD": 2}})
    with pytest.raises(FoldingError, match="ram_style='huge'"):
        to_dataflow(graph, {"MatMul_16": {"ram_style": "huge"}})
    with pytest.raises(FoldingError, match="legal PE: 1, 2, 4, 8, 16, 32, 64"):
        MVAU("m", 8, 64, np.ones((64, 8), np.int64), DataType("INT2"), pe=0)
    with pytest.raises(FoldingError) as e:
        to_dataflow(graph, {"BipolarQuant_11": {"PE": 3}})
    assert str(e.value) == (
        "Thresholding 'BipolarQuant_11': PE=3 does not divide N=784; "
        "legal PE: 1, 2, 4, 7, 8, 14, 16, 28, 49, 56, 98, 112, 196, 392, 784"
    )
    with pytest.raises(FoldingError, match="Thresholding 'thr_add': PE=3 does not divide CH=4"):
        to_dataflow(tiny_cnn("none"), {"thr_add": {"PE": 3}})
    with pytest.raises(
        FoldingError, match=r"SWU 'conv1_swu': SIMD=8 is not one of \[1, 2, 4, 12, 36\]"
    ):
        to_dataflow(tiny_cnn("none"), {"conv1_swu": {"SIMD": 8}})
    # FINN keys qloom does not use are accepted
    to_dataflow(graph, {"MatMul_16": {"PE": 2, "mem_mode": "internal_decoupled"}})


# -- a hand-made CNN: padding, negation, pool, residual add, mid thresholds, XNOR conv, top-k --
def rng_thresholds(rng, c, nt, lo, hi):
    return np.sort(rng.integers(lo, hi, size=(c, nt)), axis=1)


def tiny_cnn(label: str = "topk") -> Graph:
    """10x10x3 UINT8 -> thr INT2 -> conv3x3 pad1 (4) + thr UINT2 (negated ch 1) -> pool2 ->
    [residual: 1x1 conv + thr, add] -> thr UINT2 -> conv3x3 (6) + thr BIPOLAR -> XnorConv 2x2
    (8) + thr BIPOLAR -> pool2 -> XnorMatMul (5) -> FloatTail -> TopK(2)."""
    rng = np.random.default_rng(7)
    i8 = DataType("INT32")
    nodes = []
    tensors = {"img": TensorInfo((10, 10, 3), DataType("UINT8"), "NHWC")}

    def add(op, name, ins, out, shape, dtype, **attrs):
        nodes.append(Node(op, name, tuple(ins), (out,), attrs))
        tensors[out] = TensorInfo(shape, dtype, "NHWC" if len(shape) == 3 else "NC")

    def mt(name, x, out, shape, t, base, dtype, negate=None):
        add(
            "MultiThreshold",
            name,
            [x],
            out,
            shape,
            dtype,
            thresholds=t,
            negate=negate,
            out_base=base,
            out_dtype=dtype,
        )

    int2, uint2 = DataType("INT2"), DataType("UINT2")
    mt("thr_in", "img", "t0", (10, 10, 3), rng_thresholds(rng, 3, 3, 0, 256), -2, int2)
    w0 = rng.integers(-4, 4, size=(3, 3, 3, 4))
    add(
        "Conv",
        "conv0",
        ["t0"],
        "c0",
        (10, 10, 4),
        i8,
        weights=w0,
        stride=(1, 1),
        pads=(1, 1, 1, 1),
        groups=1,
        pad_value=0,
    )
    neg = np.array([False, True, False, False])
    mt("thr0", "c0", "a0", (10, 10, 4), rng_thresholds(rng, 4, 3, -25, 25), 0, uint2, neg)
    add(
        "MaxPool",
        "pool0",
        ["a0"],
        "p0",
        (5, 5, 4),
        uint2,
        kernel=(2, 2),
        stride=(2, 2),
        pads=(0, 0, 0, 0),
    )
    w1 = rng.integers(-2, 2, size=(1, 1, 4, 4))
    add(
        "Conv",
        "conv_res",
        ["p0"],
        "cr",
        (5, 5, 4),
        i8,
        weights=w1,
        stride=(1, 1),
        pads=(0, 0, 0, 0),
        groups=1,
        pad_value=0,
    )
    mt("thr_res", "cr", "ar", (5, 5, 4), rng_thresholds(rng, 4, 3, -6, 6), 0, uint2)
    add("Add", "add0", ["p0", "ar"], "s0", (5, 5, 4), DataType("UINT4"), a_mul=1, b_mul=2)
    mt("thr_add", "s0", "q0", (5, 5, 4), rng_thresholds(rng, 4, 3, 0, 10), 0, uint2)
    w2 = rng.integers(-3, 3, size=(3, 3, 4, 6))
    add(
        "Conv",
        "conv1",
        ["q0"],
        "c1",
        (3, 3, 6),
        i8,
        weights=w2,
        stride=(1, 1),
        pads=(0, 0, 0, 0),
        groups=1,
        pad_value=0,
    )
    mt("thr1", "c1", "b1", (3, 3, 6), rng_thresholds(rng, 6, 1, -10, 10), -1, BIPOLAR)
    w3 = rng.choice([-1, 1], size=(2, 2, 6, 8))
    add(
        "XnorConv",
        "xconv",
        ["b1"],
        "c2",
        (2, 2, 8),
        DataType("UINT5"),
        weights=w3,
        stride=(1, 1),
        pads=(0, 0, 0, 0),
        groups=1,
        pad_value=0,
    )
    mt("thr2", "c2", "b2", (2, 2, 8), rng_thresholds(rng, 8, 1, 8, 17), -1, BIPOLAR)
    add(
        "MaxPool",
        "pool1",
        ["b2"],
        "p1",
        (1, 1, 8),
        BIPOLAR,
        kernel=(2, 2),
        stride=(2, 2),
        pads=(0, 0, 0, 0),
    )
    w4 = rng.choice([-1, 1], size=(8, 5))
    add("XnorMatMul", "fc", ["p1"], "acc", (5,), DataType("UINT4"), weights=w4)
    steps = (("mul", np.float32(2)), ("sub", np.float32(8)), ("mul", np.float32(0.25)))
    idx = np.arange(5).reshape(1, 5)
    add(
        "FloatTail",
        "tail",
        ["acc"],
        "logits",
        (1, 5),
        DataType("FLOAT32"),
        idx=idx,
        channel_of=idx,
        steps=steps,
    )
    outputs = ("logits",)
    if label == "topk":
        nodes.append(Node("TopK", "topk", ("logits",), ("vals", "labels"), {"k": 2, "axis": -1}))
        tensors["vals"] = tensors["labels"] = TensorInfo((1,))
        outputs = ("labels",)
    elif label == "both":
        nodes.append(Node("ArgMax", "argmax", ("logits",), ("label",), {"axis": 1}))
        tensors["label"] = TensorInfo((1,))
        outputs = ("logits", "label")
    return Graph(tuple(nodes), ("img",), outputs, tensors, name="tiny", kind="integer")


CNN_FOLDINGS = {
    "serial": {},
    "middle": {
        "thr_in": {"PE": 3},
        "conv0": {"PE": 2, "SIMD": 9},  # SWU SIMD gcd(9, 3) = 3, DWC 3 -> 9
        "pool0": {"PE": 2},
        "conv_res": {"PE": 4, "SIMD": 2},
        "add0": {"PE": 4},
        "thr_add": {"PE": 2},
        "conv1": {"PE": 3, "SIMD": 12},
        "conv1_swu": {"SIMD": 2},
        "xconv": {"PE": 4, "SIMD": 6},
        "pool1": {"PE": 8},
        "fc": {"PE": 5, "SIMD": 4},
        "topk": {"PE": 5},
    },
    "parallel": {
        "thr_in": {"PE": 3},
        "conv0": {"PE": 4, "SIMD": 27},
        "pool0": {"PE": 4},
        "conv_res": {"PE": 4, "SIMD": 4},
        "add0": {"PE": 100},
        "thr_add": {"PE": 4},
        "conv1": {"PE": 6, "SIMD": 36},
        "xconv": {"PE": 8, "SIMD": 24},
        "pool1": {"PE": 8},
        "fc": {"PE": 5, "SIMD": 8},
        "topk": {"PE": 5},
    },
}


@pytest.fixture(scope="module")
def cnn_images():
    return np.random.default_rng(3).integers(0, 256, size=(64, 3, 10, 10), dtype=np.uint8)


@pytest.mark.parametrize("which", list(CNN_FOLDINGS))
def test_cnn_dataflow_matches_integer_graph(which, cnn_images):
    graph = tiny_cnn("topk")
    design = to_dataflow(graph, CNN_FOLDINGS[which])
    got = check_design(design, graph, cnn_images)
    kinds = [s.kind for s in design.stages]
    # the 1x1 residual conv reads the pixels directly: no SWU
    assert kinds.count("SWU") == 3 and kinds.count("MVAU") == 5
    assert kinds.count("MaxPool") == 2 and kinds.count("LabelSelect") == 1
    assert kinds.count("Add") == 1 and kinds.count("Duplicate") == 1
    assert kinds.count("FIFO") == 1
    assert design.host is None  # the float tail became LabelSelect on the accumulators
    assert got["labels"].shape == (64, 1, 2)
    assert design.stage("xconv").binary and design.stage("fc").binary
    assert design.stage("conv0").in_dtype == DataType("INT2")
    if which == "middle":
        assert design.stage("conv0_swu").simd == 3
        assert design.stage("conv1_swu").simd == 2


@pytest.mark.parametrize("label", ["none", "both"])
def test_cnn_float_tail_stays_on_host(label, cnn_images):
    graph = tiny_cnn(label)
    fold = {k: v for k, v in CNN_FOLDINGS["middle"].items() if k != "topk"}
    design = to_dataflow(graph, fold)
    got = check_design(design, graph, cnn_images)
    assert set(design.output_streams) == {"acc"}
    assert np.array_equal(got["acc"], run_integer(graph, cnn_images)["logits"][:, 0] * 2 + 4)
    assert design.host is not None and "LabelSelect" not in [s.kind for s in design.stages]


def test_swu_window_order_and_conv_weight_columns():
    """SWU emits each window in (kh, kw, c) order; the MVAU column of conv weight
    (kh, kw, c, o) is (kh*KW + kw)*Cin + c; padding inserts pad_value."""
    h, w, c = 4, 5, 2
    img = np.arange(h * w * c).reshape(h, w, c)
    s = SWU(
        "s", h, w, c, 3, 2, DataType("UINT8"), stride=(1, 2), pads=(1, 0, 1, 1), pad_value=7, simd=2
    )
    out = s.execute(img.reshape(-1, 2))
    assert (s.oh, s.ow) == (4, 3) and out.shape == (4 * 3 * 3 * 2 * 2 // 2, 2)
    windows = out.reshape(s.oh, s.ow, 3 * 2 * c)
    padded = np.pad(img, ((1, 1), (0, 1), (0, 0)), constant_values=7)
    for oy in range(s.oh):
        for ox in range(s.ow):
            for kh in range(3):
                for kw in range(2):
                    for ch in range(c):
                        got = windows[oy, ox, (kh * 2 + kw) * c + ch]
                        assert got == padded[oy + kh, 2 * ox + kw, ch]
    g = tiny_cnn("none")
    d = to_dataflow(g)
    w0 = g.node("conv0").attrs["weights"]  # (3, 3, 3, 4)
    m = d.stage("conv0")
    for kh, kw, ch, o in [(0, 0, 0, 0), (2, 1, 2, 3), (1, 2, 0, 2)]:
        sign = -1 if o == 1 else 1  # channel 1's threshold is negated: its row is flipped
        assert m.weights[o, (kh * 3 + kw) * 3 + ch] == sign * w0[kh, kw, ch, o]
    assert d.stage("conv0_swu").pad_value == 0 and d.stage("conv0_swu").pads == (1, 1, 1, 1)


def test_labelselect_order():
    ls = LabelSelect("l", 6, DataType("INT4"), k=4, pe=3)
    vals = np.array([[3, -2, 5, 3, 5, 0], [0, 0, 0, 0, 0, 0]])
    out = ls.execute(vals.reshape(2, 2, 3))
    assert out.shape == (2, 4, 1)
    assert out[0, :, 0].tolist() == [2, 4, 0, 3] and out[1, :, 0].tolist() == [0, 1, 2, 3]
    assert ls.out_dtype == DataType("UINT3") and ls.out_streams()[0].width == 3


def bipolar_padded_cnn() -> Graph:
    """6x6x2 UINT8 -> thr BIPOLAR -> conv3x3 pad 1 (+-1 weights, zero padding: stays a
    multi-bit Conv) + thr UINT2 -> MatMul (3) -> FloatTail."""
    rng = np.random.default_rng(11)
    tensors = {"img": TensorInfo((6, 6, 2), DataType("UINT8"), "NHWC")}
    uint2 = DataType("UINT2")
    w = rng.choice([-1, 1], size=(3, 3, 2, 4))
    wf = rng.integers(-2, 2, size=(144, 3))
    idx = np.arange(3)
    nodes = (
        Node(
            "MultiThreshold",
            "bin",
            ("img",),
            ("b",),
            {
                "thresholds": np.array([[100], [150]]),
                "negate": None,
                "out_base": -1,
                "out_dtype": BIPOLAR,
            },
        ),
        Node(
            "Conv",
            "pconv",
            ("b",),
            ("c",),
            {"weights": w, "stride": (1, 1), "pads": (1, 1, 1, 1), "groups": 1, "pad_value": 0},
        ),
        Node(
            "MultiThreshold",
            "thr",
            ("c",),
            ("a",),
            {
                "thresholds": rng_thresholds(rng, 4, 3, -8, 8),
                "negate": None,
                "out_base": 0,
                "out_dtype": uint2,
            },
        ),
        Node("MatMul", "fc", ("a",), ("acc",), {"weights": wf}),
        Node(
            "FloatTail",
            "tail",
            ("acc",),
            ("out",),
            {"idx": idx, "channel_of": idx, "steps": (("mul", np.float32(0.5)),)},
        ),
    )
    tensors |= {
        "b": TensorInfo((6, 6, 2), BIPOLAR, "NHWC"),
        "c": TensorInfo((6, 6, 4), DataType("INT5"), "NHWC"),
        "a": TensorInfo((6, 6, 4), uint2, "NHWC"),
        "acc": TensorInfo((3,), DataType("INT10"), "NC"),
        "out": TensorInfo((3,)),
    }
    return Graph(nodes, ("img",), ("out",), tensors, name="bippad", kind="integer")


@pytest.mark.parametrize("fold", [{}, {"bin": {"PE": 2}, "pconv": {"PE": 2, "SIMD": 6}}])
def test_bipolar_zero_padding_widens_to_int2(fold):
    graph = bipolar_padded_cnn()
    images = np.random.default_rng(5).integers(0, 256, size=(40, 2, 6, 6), dtype=np.uint8)
    design = to_dataflow(graph, fold)
    check_design(design, graph, images)
    widen, swu, conv = (design.stage(f"pconv{s}") for s in ("_widen", "_swu", ""))
    order = [s.name for s in design.stages]
    assert order.index("pconv_widen") < order.index("pconv_swu") < order.index("pconv")
    assert widen.in_dtype == BIPOLAR and widen.out_dtype == DataType("INT2")
    assert widen.memory_thresholds.tolist() == [[1, 1]] * 2 and widen.rtl_params()["OUT_BASE"] == -1
    assert swu.dtype == DataType("INT2") and swu.rtl_params()["PAD_VALUE"] == 0
    assert conv.in_dtype == DataType("INT2") and not conv.binary and conv.w_dtype == BIPOLAR
    assert conv.rtl_params()["WBIPOLAR"] == 1 and conv.rtl_params()["WSIGNED"] == 0
    # ones' complement: the RTL adds ~x for a -1 weight, its thresholds are T - (# of -1s)
    assert conv.rtl_params()["ONES_COMP"] == 1
    shift = (conv.weights < 0).sum(1)
    assert shift.any() and np.array_equal(conv.threshold_shift, shift)
    rtl_t = conv.t_dtype.from_bits(
        unpack_words(conv.threshold_words(), conv.pe * conv.nt, conv.t_dtype.bits)
    ).reshape(conv.mh, conv.nt)
    assert np.array_equal(rtl_t, conv.thresholds - shift[:, None])
    assert np.array_equal(conv.thresholds_from_words(conv.threshold_words()), conv.thresholds)
    with pytest.raises(UnsupportedModelError, match="SWU 's': padding value 0 is not a BIPOLAR"):
        SWU("s", 4, 4, 2, 3, 3, BIPOLAR, pads=(1, 1, 1, 1))


def test_padded_xnor_conv_is_rejected():
    g = tiny_cnn("none")
    xc = g.node("xconv")
    bad = g.replace_nodes([xc], [xc.with_attrs(pads=(1, 1, 1, 1))])
    # later shapes no longer match, but lowering stops at the conv
    with pytest.raises(UnsupportedModelError, match="node 'xconv' \\(XnorConv\\): zero pad") as e:
        to_dataflow(bad)
    assert e.value.node == "xconv"


def test_unsupported_op_names_node():
    g = tiny_cnn("none")
    p = g.node("pool1")
    # SumPool and overlapping max pooling have stages now; an op without a rule is named
    bad = g.replace_nodes([p], [Node("LpPool", "pool1", p.inputs, p.outputs, p.attrs)])
    with pytest.raises(UnsupportedModelError, match="node 'pool1' \\(LpPool\\).*no hardware"):
        to_dataflow(bad)


def test_brevitas_cnn_dataflow(tmp_path):
    pytest.importorskip("brevitas.nn")
    from test_streamline_random import small_cnn_onnx

    graph = compile_model(small_cnn_onnx(tmp_path / "m.onnx"), RAW_PIXELS)
    graph = graph.integer
    images = np.random.default_rng(1).integers(0, 256, size=(48, 2, 10, 10), dtype=np.uint8)
    names = [n.name for n in graph.nodes if n.op == "Conv"]
    for fold in ({}, {names[0]: {"PE": 2, "SIMD": 18}, names[1]: {"PE": 4, "SIMD": 4}}):
        design = to_dataflow(graph, fold)
        check_design(design, graph, images)
        assert [s.kind for s in design.stages].count("SWU") == 2
    # node names such as "/1/Conv" become safe file names inside the directory
    files = design.write_memories(tmp_path)
    for f in files.values():
        for path in f.values():
            assert path.parent == tmp_path and "/" not in path.name


# -- cycle formulas ------------------------------------------------------------------------------
def test_cycle_formulas():
    w = np.ones((32, 72), np.int64)
    assert MVAU("m", 72, 32, w, DataType("INT2"), pe=4, simd=8, pixels=9).cycles_per_frame() == (
        8 * 9 * 9
    )
    assert MVAU("m", 72, 32, w, DataType("INT2")).cycles_per_frame() == 72 * 32
    t = Thresholding("t", 8, 10, np.zeros((8, 1), np.int64), DataType("INT4"), BIPOLAR, pe=2)
    assert t.cycles_per_frame() == 10 * 8 // 2
    s = SWU("s", 5, 5, 4, 3, 3, DataType("UINT2"), pads=(1, 1, 1, 1), simd=2)
    # output beats + the next frame's first window row (K_W pixels) that cannot be preloaded
    assert (s.oh, s.ow) == (5, 5) and s.cycles_per_frame() == 25 * 9 * 4 // 2 + 3 * 2
    s2 = SWU("s", 8, 8, 4, 2, 2, DataType("UINT2"), stride=(2, 2), simd=4)
    assert s2.cycles_per_frame() == 16 * 4 + 2  # 16 windows of 4 beats, 2 stall beats
    s3 = SWU("s", 5, 5, 4, 3, 3, DataType("UINT2"))  # no top padding: one row stalls too
    assert s3.cycles_per_frame() == 9 * 9 * 4 + 5 * 4 + 3 * 4
    s4 = SWU("s", 8, 8, 4, 1, 1, DataType("UINT2"), stride=(2, 2))  # input-bound
    assert s4.cycles_per_frame() == 8 * 8 * 4
    assert MaxPool("p", 6, 6, 8, 2, BIPOLAR, pe=4).cycles_per_frame() == 6 * 6 * 2
    assert LabelSelect("l", 10, DataType("INT8"), k=1, pe=5).cycles_per_frame() == 2
    assert LabelSelect("l", 10, DataType("INT8"), k=3, pe=5).cycles_per_frame() == 3
    a = Add("a", 100, DataType("UINT2"), DataType("UINT2"), b_mul=2, pe=4)
    assert a.cycles_per_frame() == 25 and a.out_dtype == DataType("UINT4")  # 0..3+2*3
    assert DWC("d", BIPOLAR, 64, 8, 2).cycles_per_frame() == 32
    assert DWC("d", BIPOLAR, 64, 2, 8).cycles_per_frame() == 32
    with pytest.raises(FoldingError, match="do not divide each other"):
        DWC("d", BIPOLAR, 64, 3, 2)
    with pytest.raises(FoldingError, match="SWU 's': SIMD=3 does not divide CH=4; legal SIMD"):
        SWU("s", 5, 5, 4, 3, 3, DataType("UINT2"), simd=3)


def test_stage_streams_and_single_frame_execute():
    rng = np.random.default_rng(0)
    w = rng.integers(-2, 2, size=(6, 12))
    m = MVAU("m", 12, 6, w, DataType("UINT2"), pe=3, simd=4, pixels=2)
    (i,), (o,) = m.in_streams(), m.out_streams()
    assert (i.elems, i.beats, i.width) == (4, 6, 8)
    assert (o.elems, o.beats) == (3, 4) and o.dtype == m.acc_dtype
    x = rng.integers(0, 4, size=(2, 12))
    y = m.execute(x.reshape(6, 4))  # one frame: (beats, elems)
    assert y.shape == (4, 3)
    assert np.array_equal(y.reshape(2, 6), x @ w.T)


# -- memories and stream packing ---------------------------------------------------------------
def test_mvau_memory_files_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    mh, mw, pe, simd = 8, 12, 2, 3
    w = rng.integers(-4, 4, size=(mh, mw))
    t = np.sort(rng.integers(-40, 40, size=(mh, 3)), axis=1)
    m = MVAU(
        "layer",
        mw,
        mh,
        w,
        DataType("INT3"),
        pe=pe,
        simd=simd,
        thresholds=t,
        out_base=-1,
        out_dtype=DataType("INT2"),
    )
    files = m.write_memories(tmp_path)
    assert set(files) == {"WEIGHT_FILE", "THRESH_FILE"}
    words = read_hex(files["WEIGHT_FILE"])
    sf, nf, wb = mw // simd, mh // pe, m.w_dtype.bits
    assert len(words) == nf * sf and wb == 3
    digits = (pe * simd * wb + 3) // 4
    assert all(len(line) == digits for line in files["WEIGHT_FILE"].read_text().split())
    for nf_i in range(nf):
        for sf_i in range(sf):
            word = words[nf_i * sf + sf_i]
            for p in range(pe):
                for s in range(simd):
                    field = (word >> ((p * simd + s) * wb)) & ((1 << wb) - 1)
                    value = field - (1 << wb) if field >> (wb - 1) else field
                    assert value == w[nf_i * pe + p, sf_i * simd + s]
    assert np.array_equal(m.weights_from_words(words), w)
    tw = read_hex(files["THRESH_FILE"])
    assert len(tw) == nf
    assert np.array_equal(m.thresholds_from_words(tw), m.thresholds)
    tb, nt = m.t_dtype.bits, 3
    field = (tw[1] >> ((1 * nt + 2) * tb)) & ((1 << tb) - 1)
    assert m.t_dtype.from_bits(np.array([field]))[0] == m.thresholds[1 * pe + 1, 2]
    # clamping keeps every comparison: thresholds beyond the accumulator range
    lo, hi = m.acc_dtype.min, m.acc_dtype.max
    assert m.thresholds.min() >= -41 and m.thresholds.max() <= 40 and lo <= hi


def test_binary_mvau_and_thresholding_memories(tmp_path):
    rng = np.random.default_rng(2)
    w = rng.choice([-1, 1], size=(4, 16))
    t = rng.integers(0, 17, size=(4, 1))
    m = MVAU(
        "xnor",
        16,
        4,
        w,
        BIPOLAR,
        pe=2,
        simd=8,
        binary=True,
        thresholds=t,
        out_base=-1,
        out_dtype=BIPOLAR,
    )
    words = read_hex(m.write_memories(tmp_path)["WEIGHT_FILE"])
    assert len(words) == 2 * 2
    assert words[0] & 1 == (w[0, 0] > 0) and (words[0] >> 8) & 1 == (w[1, 0] > 0)
    assert np.array_equal(m.weights_from_words(words), w)
    x = rng.choice([-1, 1], size=(5, 16))
    out = m.execute(x.reshape(5, 2, 8))
    pop = (x @ w.T + 16) // 2
    assert np.array_equal(out.reshape(5, 4), np.where(pop >= t[:, 0], 1, -1))
    th = Thresholding(
        "thr",
        6,
        4,
        np.sort(rng.integers(-9, 9, (6, 2)), axis=1),
        DataType("INT4"),
        DataType("UINT2"),
        pe=3,
    )
    tw = read_hex(th.write_memories(tmp_path)["THRESH_FILE"])
    assert len(tw) == 2 and np.array_equal(th.thresholds_from_words(tw), th.thresholds)
    # a BIPOLAR input is compared as its bit: the memory holds bit-domain thresholds
    tb = Thresholding("tb", 5, 1, np.array([[-3], [-1], [0], [1], [2]]), BIPOLAR, BIPOLAR)
    assert tb.memory_thresholds[:, 0].tolist() == [0, 0, 1, 1, 2]
    vals = np.array([[-1, -1, -1, -1, -1], [1, 1, 1, 1, 1]])
    bits = (vals > 0).astype(np.int64)
    assert np.array_equal(
        tb.execute(vals.reshape(2, 5, 1)).reshape(2, 5),
        np.where(bits >= tb.memory_thresholds[:, 0], 1, -1),
    )
    xs = rng.integers(-8, 8, size=(3, 4, 6))
    y = th.execute(xs.reshape(3, 8, 3)).reshape(3, 4, 6)
    want = (xs[..., None] >= th.thresholds[None, None]).sum(-1)
    assert np.array_equal(y, want)


def test_design_memories_and_beats_packing(tmp_path):
    graph = compile_model(tfc_path("TFC_2W2A"), RAW_PIXELS).integer
    design = to_dataflow(graph, tfc_folding(graph, "middle"))
    files = design.write_memories(tmp_path)
    assert len(files) == 5 and all(p.exists() for f in files.values() for p in f.values())
    for name, f in files.items():
        st = design.stage(name)
        got = st.thresholds_from_words(read_hex(f["THRESH_FILE"])) if "THRESH_FILE" in f else None
        if got is not None:
            assert np.array_equal(got, st.thresholds)
        if "WEIGHT_FILE" in f:
            assert np.array_equal(st.weights_from_words(read_hex(f["WEIGHT_FILE"])), st.weights)
    beats = np.array([[1, -1, -1, 1], [-1, -1, 1, 1]])
    assert pack_beats(beats, BIPOLAR) == [0b1001, 0b1100]
    assert np.array_equal(unpack_beats([0b1001, 0b1100], BIPOLAR, 4), beats)
    vals = np.array([[-2, 1, 0], [-1, -1, 1]])
    words = pack_beats(vals, DataType("INT2"))
    assert words[0] == 0b00_01_10 and words[1] == 0b01_11_11
    assert np.array_equal(unpack_beats(words, DataType("INT2"), 3), vals)
    assert StreamSpec(DataType("INT2"), 3, 5).width == 6


def test_zoo_padded_binary_cnv(tmp_path, mnist500):
    """A zoo CNV with padding and 1-bit activations (untrained weights): padded binary convs run
    as multi-bit MVAUs on INT2 windows; the folded design equals the integer graph."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("brevitas")
    from qloom.train.export import export_qonnx
    from qloom.train.zoo import build_model

    torch.manual_seed(0)
    path = export_qonnx(build_model("cnv-small-pad-w1a1").eval(), tmp_path / "cnv.onnx")
    graph = compile_model(path, RAW_PIXELS).integer
    base = to_dataflow(graph)
    fold = {}
    for s in base.stages:
        if s.kind == "MVAU":
            simd = 9 if s.mw == 9 else 16
            fold[s.name] = {"PE": 2 if s.mh == 10 else 4, "SIMD": simd}
    design = to_dataflow(graph, fold)
    check_design(design, graph, mnist500[0][:12])
    swus = [s for s in design.stages if s.kind == "SWU"]
    assert [s.out_streams()[0].dtype.name for s in swus] == ["INT8"] + ["INT2"] * 5
    assert len([s for s in design.stages if s.name.endswith("_widen")]) == 5
    assert design.cycles_per_frame() < base.cycles_per_frame() // 32


def test_pool_on_accumulators_and_permuted_float_tail():
    """Conv without activation (NT = 0 MVAU) -> MaxPool on accumulators -> a FloatTail that
    gathers NCHW order: the tail (and the ArgMax after it) stay on the host."""
    rng = np.random.default_rng(4)
    w = rng.integers(-3, 4, size=(1, 1, 2, 3))
    idx = np.arange(2 * 2 * 3).reshape(2, 2, 3).transpose(2, 0, 1)[None]  # (1, C, H, W)
    nodes = (
        Node(
            "Conv",
            "conv",
            ("img",),
            ("c",),
            {"weights": w, "stride": (1, 1), "pads": (0, 0, 0, 0), "groups": 1, "pad_value": 0},
        ),
        Node(
            "MaxPool",
            "pool",
            ("c",),
            ("p",),
            {"kernel": (2, 2), "stride": (2, 2), "pads": (0, 0, 0, 0)},
        ),
        Node(
            "FloatTail",
            "tail",
            ("p",),
            ("y",),
            {"idx": idx, "channel_of": idx % 3, "steps": (("mul", np.float32(-0.5)),)},
        ),
        Node("ArgMax", "am", ("y",), ("label",), {"axis": 1}),
    )
    tensors = {
        "img": TensorInfo((4, 4, 2), DataType("UINT8"), "NHWC"),
        "c": TensorInfo((4, 4, 3), DataType("INT13"), "NHWC"),
        "p": TensorInfo((2, 2, 3), DataType("INT13"), "NHWC"),
        "y": TensorInfo((1, 3, 2, 2)),
        "label": TensorInfo((1,)),
    }
    graph = Graph(nodes, ("img",), ("y", "label"), tensors, name="accpool", kind="integer")
    design = to_dataflow(graph, {"conv": {"PE": 3, "SIMD": 2}, "pool": {"PE": 3}})
    assert [s.kind for s in design.stages] == ["MVAU", "MaxPool"]  # 1x1: no SWU
    assert design.stage("conv").nt == 0 and [n.op for n in design.host.nodes] == [
        "FloatTail",
        "ArgMax",
    ]
    images = np.random.default_rng(6).integers(0, 256, size=(16, 2, 4, 4), dtype=np.uint8)
    check_design(design, graph, images)


@pytest.mark.slow
def test_stage_models_match_rtl_library():
    """Each stage's folded model against its Verilog module (Verilator, random valid/ready):
    identical output beats, and measured cycles per frame within 5% of the estimate."""
    from qloom.sim import VerilatorError, find_verilator

    try:
        find_verilator()
    except VerilatorError as e:
        pytest.skip(f"no Verilator: {e}")
    from qloom.rtl.library import LIB
    from qloom.sim.rtlcheck import check_against_rtl

    graph = bipolar_padded_cnn()
    design = to_dataflow(graph, {"bin": {"PE": 2}, "pconv": {"PE": 2, "SIMD": 6}})
    missing = {s.rtl_module for s in design.stages if not (LIB / f"{s.rtl_module}.v").exists()}
    if missing:
        pytest.skip(f"RTL modules not written yet: {sorted(missing)}")
    images = np.random.default_rng(3).integers(0, 256, size=(3, 2, 6, 6), dtype=np.uint8)
    results = check_against_rtl(design, integer_input(graph, images))
    assert {r.kind for r in results} == {"Thresholding", "SWU", "DWC", "MVAU"}
    for r in results:
        assert r.ok, f"{r.kind} '{r.stage}': {r.detail}"
        assert abs(r.measured_cycles - r.estimated_cycles) <= 0.05 * r.estimated_cycles, r


@pytest.mark.parametrize("ones", [False, True])
def test_mvau_refold_keeps_the_weight_analysis(ones):
    """MVAU.refold copies what __post_init__ derived from the weights instead of redoing it:
    the copy must be the stage a fresh construction gives, and bad folding still refused."""
    import dataclasses

    rng = np.random.default_rng(3)
    w = rng.choice([-1, 1], (8, 12)) if ones else rng.integers(-2, 2, (8, 12))
    t = np.sort(rng.integers(-9, 9, (8, 3)), axis=1)
    m = MVAU("m", 12, 8, w, DataType("INT3"), pe=2, simd=3, thresholds=t,
             out_dtype=DataType("UINT2"))  # fmt: skip
    got = m.refold({"PE": 4, "SIMD": 6}, "block")
    want = dataclasses.replace(m, pe=4, simd=6, ram_style="block")
    assert got.ones_complement == want.ones_complement == ones
    assert got.rtl_params() == want.rtl_params() and got.memory_words() == want.memory_words()
    for attr in ("acc_dtype", "t_dtype", "w_dtype", "out_dtype"):
        assert getattr(got, attr) == getattr(want, attr), attr
    assert (m.pe, m.simd, m.ram_style) == (2, 3, "auto")  # the original is unchanged
    x = rng.integers(-4, 4, (5, 12))
    beats = x.reshape(5, 2, 6)  # SIMD 6: two beats per vector
    assert np.array_equal(got.execute(beats)[0], want.execute(beats)[0])
    with pytest.raises(FoldingError, match="PE=3 does not divide MH=8; legal PE: 1, 2, 4, 8"):
        m.refold({"PE": 3})
    with pytest.raises((FoldingError, ValueError), match="ram_style"):
        m.refold({"PE": 2}, "distributed-ish")


def test_conv_with_a_one_pixel_output_from_a_larger_input():
    """A 3x3 stride-2 padded conv on 2x2 pixels has one output pixel (ResNet-18's last stage at
    32x32 inputs): one window from the SWU, not a MatMul of the whole input (it was refused:
    'weights expect 27 inputs')."""
    rng = np.random.default_rng(11)
    int2 = DataType("INT2")
    t = rng_thresholds(rng, 3, 3, 0, 256)
    nodes = (
        Node("MultiThreshold", "thr", ("img",), ("a",),
             {"thresholds": t, "negate": None, "out_base": -2, "out_dtype": int2}),
        Node("Conv", "conv", ("a",), ("y",),
             {"weights": rng.integers(-2, 2, (3, 3, 3, 4)), "stride": (2, 2),
              "pads": (1, 1, 1, 1), "groups": 1, "pad_value": 0}),
    )  # fmt: skip
    tensors = {
        "img": TensorInfo((2, 2, 3), DataType("UINT8"), "NHWC"),
        "a": TensorInfo((2, 2, 3), int2, "NHWC"),
        "y": TensorInfo((1, 1, 4), DataType("INT32"), "NHWC"),
    }
    g = Graph(nodes, ("img",), ("y",), tensors, name="one_pixel", kind="integer")
    images = rng.integers(0, 256, (20, 3, 2, 2), dtype=np.uint8)
    design = to_dataflow(g)
    assert [s.kind for s in design.stages] == ["Thresholding", "SWU", "MVAU"]
    assert np.array_equal(design.execute(images)["y"], run_integer(g, images)["y"])
