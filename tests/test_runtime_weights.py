"""Run-time weights: MVAUs whose weights are streamed in after reset (folding "weights":
"runtime") instead of initialised by $readmemh. The folding key and its errors, the host word
format, and in Verilator: a small CNN with a multi-bit conv and two binary (XNOR) layers loaded
over the top's weight stream under random stalls is bit-exact against the integer executor at
the constant design's cycles per frame, and the same build loaded with other weights computes
what a design with those weights as constants computes."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from test_dataflow import CNN_FOLDINGS, tiny_cnn

from qloom.dataflow import to_dataflow
from qloom.dataflow.mvau import MVAU
from qloom.dataflow.stage import host_words
from qloom.datatype import DataType
from qloom.errors import FoldingError
from qloom.flow import run_integer

RUNTIME = ("conv0", "xconv", "fc")  # multi-bit with thresholds, XNOR + thresholds, XNOR raw


def middle() -> dict:
    """The tiny CNN's middle folding, without its TopK (the network ends in the logits)."""
    return {k: dict(v) for k, v in CNN_FOLDINGS["middle"].items() if k != "topk"}


def runtime_folding(names=RUNTIME) -> dict:
    fold = middle()
    for n in names:
        fold[n]["weights"] = "runtime"
    return fold


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(11).integers(0, 256, size=(12, 3, 10, 10), dtype=np.uint8)


# -- the folding key ------------------------------------------------------------------------------
def test_bad_weights_value_names_layer_value_and_choices():
    with pytest.raises(FoldingError) as e:
        to_dataflow(tiny_cnn("none"), {"conv0": {"weights": "flash"}})
    assert str(e.value) == "MVAU 'conv0': weights='flash' is not one of constant, runtime"


def test_finn_runtime_writeable_weights_means_runtime():
    fold = middle()
    fold["fc"]["runtime_writeable_weights"] = 1
    fold["xconv"]["runtime_writeable_weights"] = 0
    design = to_dataflow(tiny_cnn("none"), fold)
    assert [s.name for s in design.runtime_weight_stages()] == ["fc"]


def test_constant_is_the_default_and_unchanged(tmp_path):
    from qloom.rtl.top import generate_top

    graph = tiny_cnn("none")
    plain = to_dataflow(graph, middle())
    fold = {k: dict(v, weights="constant") if k in RUNTIME else v
            for k, v in middle().items()}  # fmt: skip
    explicit = to_dataflow(graph, fold)
    for st in plain.of_kind("MVAU"):
        assert set(st.folding()) == {"PE", "SIMD", "ram_style"}
        assert "WLOAD" not in st.rtl_params() and "WEIGHT_FILE" in st.write_memories(tmp_path)
    a = generate_top(plain, tmp_path / "a").top_file.read_text()
    b = generate_top(explicit, tmp_path / "b").top_file.read_text()
    assert a == b and "s_axis_weights" not in a
    assert len(plain.weight_words()) == 0


def test_runtime_stage_folding_params_and_words():
    design = to_dataflow(tiny_cnn("none"), runtime_folding())
    assert [s.name for s in design.runtime_weight_stages()] == list(RUNTIME)
    conv0 = design.stage("conv0")
    assert conv0.folding()["weights"] == "runtime"
    assert conv0.rtl_params()["WLOAD"] == 1
    # a refold keeps the mode; the folding json round-trips it
    assert design.refold({"conv0": {"PE": 4}}).stage("conv0").runtime_weights
    again = to_dataflow(tiny_cnn("none"), design.folding_json())
    assert [s.name for s in again.runtime_weight_stages()] == list(RUNTIME)
    assert "WLOAD" not in design.stage("conv0").refold({"weights": "constant"}).rtl_params()
    # no weight file: the weights come over the stream; the thresholds stay constant
    assert not conv0.ones_complement
    # 72-bit memory words (PE 2 x SIMD 9 x INT4): three host words each, low bits first
    width = conv0.pe * conv0.simd * conv0.w_dtype.bits
    assert width == 72
    words = conv0.weight_words()
    hw = conv0.weight_stream_words()
    assert hw.dtype == np.uint32 and len(hw) == 3 * len(words) == 3 * conv0.nf * conv0.sf
    joined = [sum(int(hw[3 * i + j]) << (32 * j) for j in range(3)) for i in range(len(words))]
    assert joined == words
    assert conv0.weights_from_words(words).tolist() == conv0.weights.tolist()
    # the design's stream: each runtime stage's words in stage order
    parts = [design.stage(n).weight_stream_words() for n in RUNTIME]
    assert design.weight_words().tolist() == np.concatenate(parts).tolist()
    assert host_words([0x1_2345_6789], 33).tolist() == [0x2345_6789, 1]
    # the accumulator is sized for any weights of the type: the same hardware for others
    const = to_dataflow(tiny_cnn("none"), middle()).stage("conv0")
    assert conv0.acc_dtype.bits >= const.acc_dtype.bits
    # a constant stage refolded to runtime is the runtime stage (thresholds as the layer's)
    again = const.refold({"weights": "runtime"})
    assert np.array_equal(again.thresholds, conv0.thresholds)
    assert again.rtl_params() == conv0.rtl_params()
    with pytest.raises(ValueError, match="do not fit its weight type"):
        conv0.with_weights(np.full((conv0.mh, conv0.mw), 100))
    with pytest.raises(FoldingError, match="constant"):
        const.with_weights(const.weights)


def other_weights(design, seed: int = 5):
    """The design with other random weights of each runtime stage's weight type."""
    rng = np.random.default_rng(seed)
    stages = []
    for st in design.stages:
        if st.runtime_weights:
            t = st.w_dtype
            if t.is_bipolar:
                w = rng.choice([-1, 1], size=(st.mh, st.mw))
            else:
                w = rng.integers(t.min, t.max + 1, size=(st.mh, st.mw))
            st = st.with_weights(w)
        stages.append(st)
    return dataclasses.replace(design, stages=tuple(stages))


def assert_same(got: dict, want: dict, names) -> None:
    for n in names:
        assert np.array_equal(got[n], want[n]), n


def test_runtime_weights_in_rtl(images, tmp_path):
    from qloom.sim import VerilatorError, find_verilator

    try:
        find_verilator()
    except VerilatorError as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Verilator: {e}")
    from qloom.rtl.top import generate_top
    from qloom.sim.design import simulate
    from qloom.sim.rtlcheck import lint_top

    graph = tiny_cnn("none")
    design = to_dataflow(graph, runtime_folding())
    rtl = generate_top(design, tmp_path / "rt")
    assert rtl.weight_port == "s_axis_weights"
    assert lint_top(rtl) == (0, "")
    text = rtl.top_file.read_text()
    assert text.count(".WLOAD(1)") == 3 and text.count(".w_axis_tdata(") == 3
    assert "weights_loaded" in text
    assert not any("WEIGHT_FILE" in f for f in rtl.memories.get("conv0", {}))

    # random stalls on the frames, the weights and the output
    want = run_integer(graph, images)
    res = simulate(design, images, in_valid_prob=0.7, out_ready_prob=0.7, seed=3, rtl=rtl,
                   quiet=True).check()  # fmt: skip
    assert_same(res.outputs, want, graph.outputs)

    # cycles per frame: as the constant design's, at full rate
    full = simulate(design, images, rtl=rtl, quiet=True).check()
    const = simulate(to_dataflow(graph, middle()), images, quiet=True).check()
    assert full.cycles_per_frame == const.cycles_per_frame
    # frames wait at the input port until the weights are in, so the latency from the first
    # input beat taken is the constant design's
    assert "_tready & weights_loaded;" in text and "_tvalid & weights_loaded;" in text
    assert full.latency == const.latency
    assert full.cycles_per_frame <= design.cycles_per_frame() * 1.05
    assert_same(full.outputs, want, graph.outputs)

    # the same build, other weights: what a design with those weights as constants computes
    other = other_weights(design)
    as_constants = dataclasses.replace(
        other,
        stages=tuple(dataclasses.replace(s, weight_mode="constant") if s.runtime_weights else s
                     for s in other.stages),
    )  # fmt: skip
    want2 = as_constants.execute(images)
    assert not np.array_equal(want2["logits"], want["logits"])
    assert_same(other.execute(images), want2, graph.outputs)
    res2 = simulate(design, images, in_valid_prob=0.7, out_ready_prob=0.7, seed=4, rtl=rtl,
                    weights=other.weight_words(), quiet=True).check()  # fmt: skip
    assert_same(res2.outputs, want2, graph.outputs)


@pytest.mark.parametrize("fold", [(2, 3, "block"), (8, 12, "auto")], ids=["16x12b", "1x192b"])
def test_mvau_waits_for_its_weights_and_passes_the_rest_on(fold, tmp_path):
    """One runtime MVAU in Verilator, its weight stream much slower than its input: no input
    beat is taken before the last weight word, the outputs are exact, and the host words
    after its own leave on wo_axis unchanged (the next loader's)."""
    from qloom.sim import Port, VerilatorError, build, find_verilator

    try:
        find_verilator()
    except VerilatorError as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Verilator: {e}")
    from qloom.dataflow.stage import pack_beats, unpack_beats
    from qloom.rtl.library import library_files

    pe, simd, style = fold  # 16 words of 12 bits; one word of 192 bits (6 host words)
    st = dataclasses.replace(
        MVAU.example(), weight_mode="runtime", ram_style=style, pe=pe, simd=simd
    )
    params = st.rtl_params() | {k: str(v) for k, v in st.write_memories(tmp_path).items()}
    assert "WEIGHT_FILE" not in params
    spec_in, spec_out = st.in_streams()[0], st.out_streams()[0]
    frames = 5
    rng = np.random.default_rng(2)
    x = rng.integers(
        spec_in.dtype.min, spec_in.dtype.max + 1, size=(frames, spec_in.beats, spec_in.elems)
    )
    own = [int(w) for w in st.weight_stream_words()]
    extra = [0xDEADBEEF, 0, 0xFFFFFFFF, 12345]
    model = build(st.rtl_module, library_files(st.rtl_module), params,
                  inputs=[Port("s_axis", spec_in.width), Port("w_axis", 32)],
                  outputs=[Port("m_axis", spec_out.width), Port("wo_axis", 32)])  # fmt: skip
    res = model.run(
        [pack_beats(x.reshape(-1, spec_in.elems), spec_in.dtype), own + extra],
        n_out=[frames * spec_out.beats, len(extra)],
        in_valid_prob=[0.9, 0.1],
        out_ready_prob=0.6,
        seed=7,
    ).check()
    assert res.in_cycles[0][0] > res.in_cycles[1][len(own) - 1]
    got = unpack_beats(res.outputs[0], spec_out.dtype, spec_out.elems)
    assert np.array_equal(got.reshape(frames, spec_out.beats, -1), st.execute(x))
    assert res.outputs[1] == extra


# -- estimates: UltraRAM for run-time weights -----------------------------------------------------
def big_mvau(**kw) -> MVAU:
    """512 x 256 INT4 weights, PE 4 x SIMD 8: 4096 words of 128 bits (2 URAM288 columns)."""
    w = np.random.default_rng(0).integers(-8, 8, size=(256, 512))
    return MVAU("big", 512, 256, w, DataType.int(4, False), pe=4, simd=8, **kw)


def test_runtime_weights_in_ultraram_are_counted_as_uram288():
    from qloom.dataflow.resources import uram_blocks
    from qloom.fold.estimate import estimate_stage, utilization

    assert uram_blocks(4096, 72) == 1 and uram_blocks(4097, 73) == 4 and uram_blocks(1, 1) == 1
    rt = big_mvau(weight_mode="runtime", ram_style="ultra")
    assert rt.rtl_params()["RAM_STYLE"] == "ultra"
    assert rt.rtl_params()["TRAM_STYLE"] == "block"  # the thresholds stay constant
    e = estimate_stage(rt, "xczu7ev")
    assert e.uram == 2 and e.bram == 0 and e.as_dict()["URAM"] == 2
    assert utilization(e, "xczu7ev")["URAM"] == 2 / 96
    blk = estimate_stage(big_mvau(weight_mode="runtime", ram_style="block"), "xczu7ev")
    assert blk.uram == 0 and blk.bram >= 28  # 4096 x 128 bits in BRAM18 (at least 512 kbit)
    assert "URAM" not in blk.as_dict()
    # constant weights never go to UltraRAM (no initial contents): "ultra" means block RAM
    const = big_mvau(ram_style="ultra")
    assert const.rtl_params()["RAM_STYLE"] == "block"
    ce = estimate_stage(const, "xczu7ev")
    assert ce.uram == 0 and ce.bram == blk.bram


def test_ultra_on_a_part_without_uram_is_an_error():
    from qloom.fold.estimate import estimate_stage

    rt = big_mvau(weight_mode="runtime", ram_style="ultra")
    for part in ("xc7z020", "xczu3eg", "iCE40UP5K"):
        with pytest.raises(FoldingError) as e:
            estimate_stage(rt, part)
        assert str(e.value).startswith(
            f"MVAU 'big': ram_style='ultra' needs UltraRAM, which {part} does not have"
        )


# -- qloom build --runtime-weights ----------------------------------------------------------------
def test_build_with_runtime_weights_writes_weights_bin(tmp_path):
    import json

    from tfc_data import tfc_path

    from qloom.cli import main
    from qloom.flow import compile_model

    argv = ["--quiet", "build", str(tfc_path("TFC_1W1A")), "--out", str(tmp_path), "--name",
            "rt", "--target-fps", "1e5", "--runtime-weights", "--sim-frames", "20",
            "--sim-shards", "2"]  # fmt: skip
    assert main(argv) == 0
    d = tmp_path / "rt"
    folding = json.loads((d / "folding.json").read_text())
    mvaus = [k for k, v in folding.items() if k != "Defaults" and "SIMD" in v]
    assert mvaus and all(folding[k]["weights"] == "runtime" for k in mvaus)
    sim = json.loads((d / "sim" / "result.json").read_text())
    assert sim["mismatches"] == 0 and sim["verdict"] == "yes"
    # weights.bin: the design's weight stream, uint32 little-endian
    design = to_dataflow(compile_model(tfc_path("TFC_1W1A")).integer, folding)
    words = np.frombuffer((d / "weights.bin").read_bytes(), dtype="<u4")
    assert words.tolist() == design.weight_words().tolist() and len(words) > 0
    # the report says the top needs its weight stream
    report = json.loads((d / "report.json").read_text())
    assert report["rtl"]["weight_words"] == len(words)
    assert f"{len(words):,} words into s_axis_weights" in (d / "report.html").read_text()
    top = next((d / "rtl").glob("qloom_top_*.v")).read_text()
    assert "s_axis_weights_tdata" in top and "WEIGHT_FILE" not in top
    assert not list((d / "rtl" / "mem").glob("*_weights.hex"))
    # `qloom sim BUILD_DIR` re-simulates it as built, weights streamed in, under stalls
    assert main(["--quiet", "sim", str(d), "--limit", "10", "--stall", "0.3"]) == 0


def test_stage_check_streams_the_weights_in(images):
    """The per-stage RTL check (`check_against_rtl`) runs a runtime MVAU alone, its weight
    stream fed."""
    from qloom.sim import VerilatorError, find_verilator

    try:
        find_verilator()
    except VerilatorError as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Verilator: {e}")
    from qloom.flow import integer_input
    from qloom.sim.rtlcheck import check_stage

    graph = tiny_cnn("none")
    design = to_dataflow(graph, runtime_folding())
    env = design.run_streams(integer_input(graph, images[:3]))
    for r in [check_stage(design.stage(n), design, env) for n in RUNTIME]:
        assert r.ok, f"{r.kind} '{r.stage}': {r.detail}"
        assert abs(r.measured_cycles - r.estimated_cycles) <= 0.05 * r.estimated_cycles, r


def test_build_refuses_runtime_weights_where_nothing_streams_them(tmp_path, capsys):
    from tfc_data import tfc_path

    from qloom.cli import main

    argv = ["build", str(tfc_path("TFC_1W1A")), "--out", str(tmp_path), "--runtime-weights",
            "--devices", "2xxc7a35t", "--target-fps", "1e4", "--sim-frames", "0"]  # fmt: skip
    assert main(argv) != 0
    assert "run-time weights with --devices" in capsys.readouterr().err


def test_solver_puts_deep_runtime_weights_in_ultraram_where_cheaper():
    from qloom.fold.solver import candidates
    from qloom.synth.devices import get_device

    u250, z020 = get_device("u250"), get_device("xc7z020")
    rt = big_mvau(weight_mode="runtime")
    assert "ultra" not in big_mvau().memory_styles_on(u250)  # constant weights: never
    assert "ultra" not in rt.memory_styles_on(z020)  # no URAM on the part
    cands = [c for c in candidates(rt, u250) if (c.folding["PE"], c.folding["SIMD"]) == (4, 8)]
    by_style = {c.folding["ram_style"]: c for c in cands}
    assert set(by_style) == {"auto", "block", "ultra"}
    # 4096 x 128 bits: 2 URAM288 (of 1,280) cost less than ~29 BRAM18 (of 5,376)
    assert by_style["ultra"].resources.uram == 2
    assert by_style["ultra"].cost < min(by_style["auto"].cost, by_style["block"].cost)


def big_fc_graph():
    """One 512 -> 256 MatMul on UINT4 inputs, INT4 weights, the accumulators out."""
    from qloom.ir import Graph, Node, TensorInfo

    w = np.random.default_rng(0).integers(-8, 8, size=(512, 256))
    tensors = {"x": TensorInfo((512,), DataType("UINT4"), "NC"),
               "acc": TensorInfo((256,), DataType("INT32"), "NC")}  # fmt: skip
    node = Node("MatMul", "fc", ("x",), ("acc",), {"weights": w})
    return Graph((node,), ("x",), ("acc",), tensors, name="bigfc", kind="integer")


def test_folding_for_a_target_takes_ultraram_when_block_ram_is_short():
    """The solver folds a design's run-time weight stages as such: on an Alveo U250 with its
    BRAM capped below the layer's ~29 BRAM18, the weights go to 2 URAM288 instead."""
    from qloom.fold.solver import fold_design

    rt = to_dataflow(big_fc_graph(), {"fc": {"weights": "runtime"}})
    idle = fold_design(rt, 1e4, 100.0, "u250")  # idle block RAM is cheaper: it stays there
    assert idle.folding["fc"]["ram_style"] != "ultra" and idle.estimate["total"].bram > 16
    short = fold_design(rt, 1e4, 100.0, "u250", max_utilization={"BRAM": 0.005})
    fc = short.folding["fc"]
    assert fc["weights"] == "runtime" and fc["ram_style"] == "ultra"
    assert short.estimate["total"].uram == 2 and short.estimate["total"].bram == 0
    with pytest.raises(FoldingError):  # constant weights cannot go there: it does not fit
        fold_design(to_dataflow(big_fc_graph()), 1e4, 100.0, "u250", {"BRAM": 0.005})


# -- the build report: URAM where the design has any -----------------------------------------------
def test_build_report_shows_uram(tmp_path, capsys):
    """Run-time weights folded to UltraRAM on a ZCU104's xczu7ev: report.json (totals, stage
    rows, utilization), report.html and the CLI summary count the URAM288 blocks; a report
    without them keeps the four keys and an old report.json (no "uram") still loads."""
    import json

    from tfc_data import tfc_path

    from qloom.cli import main
    from qloom.flow import compile_model
    from qloom.report.html import render
    from qloom.report.model import BuildReport, Resources

    model = tfc_path("TFC_1W1A")
    names = [s.name for s in to_dataflow(compile_model(model).integer).of_kind("MVAU")]
    folding = tmp_path / "ultra.json"
    folding.write_text(json.dumps({n: {"weights": "runtime", "ram_style": "ultra"} for n in names}))
    argv = ["build", str(model), "--out", str(tmp_path), "--name", "u", "--part", "xczu7ev",
            "--folding", str(folding), "--sim-frames", "0"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "LUT / FF / BRAM18 / DSP / URAM" in out  # the summary's label (rich may wrap it)

    d = tmp_path / "u"
    data = json.loads((d / "report.json").read_text())
    per_stage = {s["name"]: s["est"].get("uram", 0) for s in data["stages"]}
    assert all(per_stage[n] >= 1 for n in names)
    total = data["totals"]["est"]["uram"]
    assert total == sum(per_stage.values())
    assert data["totals"]["utilization_percent"]["URAM"] == round(100 * total / 96, 2)
    assert {"lut", "ff", "bram", "dsp"} <= set(data["totals"]["est"])  # the old keys stay
    report = BuildReport.read(d)
    assert report.totals.est.uram == total and report.totals.accelerator.uram == total
    page = (d / "report.html").read_text()
    assert "URAM288" in page and "URAM est" in page
    assert render(report) == render(data)
    assert f" / {total:,}" in out  # the summary's estimate row ends in the URAM count

    # a design without UltraRAM: no "uram" key; an old report's resources load with 0
    assert Resources(1, 2, 3, 4).to_json() == {"lut": 1, "ff": 2, "bram": 3, "dsp": 4}
    old = {"lut": 1, "ff": 2, "bram": 3, "dsp": 4}
    assert Resources.from_json(old).uram == 0
    assert "URAM288" not in render(_without_uram(data))


def _without_uram(report: dict) -> dict:
    """report.json as a build before URAM was reported wrote it (no "uram" keys)."""
    data = copy.deepcopy(report)
    for row in data["stages"]:
        row["est"].pop("uram", None)
    data["totals"]["est"].pop("uram", None)
    data["totals"].get("utilization_percent", {}).pop("URAM", None)
    return data


def test_partition_load_counts_uram_under_the_block_ram_cap():
    """A segment's load (what the partitioner balances and reports) counts UltraRAM as its
    fit check does: under the block RAM's cap."""
    from qloom.dataflow.resources import Resources as Estimate
    from qloom.fold.partition import _load
    from qloom.fold.solver import _caps
    from qloom.synth.devices import get_device

    zcu104 = get_device("xczu7ev")  # 96 URAM288
    assert _load(Estimate(lut=1, uram=48), zcu104, _caps({"BRAM": 0.5})) == 1.0
    assert _load(Estimate(lut=1, uram=48), zcu104, _caps(1.0)) == 0.5
    assert _load(Estimate(lut=1, uram=1), get_device("xc7z020"), _caps(1.0)) == float("inf")


def test_fifo_sizing_twin_has_constant_weights_and_the_same_schedule():
    """The build sizes glue FIFOs on the constant-weight twin (no weight load to simulate
    first): same stages, glue streams, beats and cycles, no weight port."""
    from qloom.build import _timing_twin
    from qloom.rtl.top import glue_streams

    design = to_dataflow(tiny_cnn("none"), runtime_folding())
    twin = _timing_twin(design)
    assert design.runtime_weight_stages() and not twin.runtime_weight_stages()
    assert [s.name for s in twin.stages] == [s.name for s in design.stages]
    assert glue_streams(twin) == glue_streams(design)
    assert {k: v.beats for k, v in twin.streams.items()} == {
        k: v.beats for k, v in design.streams.items()
    }
    assert [s.cycles_per_frame() for s in twin.stages] == [
        s.cycles_per_frame() for s in design.stages
    ]
    assert [s.latency_cycles() for s in twin.stages] == [s.latency_cycles() for s in design.stages]
