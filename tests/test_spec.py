"""The IR invariants (qloom.spec) hold after every pass, on the shared TFC models, the corpus of
foreign models and a 1-D CNN; and each check catches the breakage it is for, by name."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from model_corpus import CORPUS
from tfc_data import tfc_path

from qloom.dataflow import to_dataflow
from qloom.datatype import FLOAT32
from qloom.frontend import load
from qloom.frontend.domain import RAW_PIXELS, derive_input_domain
from qloom.spec import SpecError, check_dataflow, check_imported, check_integer
from qloom.streamline import PIPELINE, to_integer_graph


def _models(tmp_path_factory):
    d = tmp_path_factory.mktemp("spec")
    out = [(m.name, m.write(d / f"{m.name}.onnx"), None) for m in CORPUS]
    for name in ("TFC_1W1A", "TFC_2W2A"):
        out += [(name, tfc_path(name), None), (f"{name}-pixels", tfc_path(name), RAW_PIXELS)]
    return out


def test_invariants_hold_after_every_pass(tmp_path_factory):
    for name, path, spec in _models(tmp_path_factory):
        g = load(path)
        check_imported(g)
        ig = to_integer_graph(g, derive_input_domain(g, spec))
        check_integer(ig)
        for p in PIPELINE:
            ig = p(ig)
            try:
                check_integer(ig)
            except SpecError as e:  # pragma: no cover - the message says which pass broke it
                raise AssertionError(f"{name}: after pass {p.name}: {e}") from e
        check_dataflow(to_dataflow(ig))


def test_checks_catch_what_they_are_for():
    g = load(tfc_path("TFC_2W2A"))
    ig = to_integer_graph(g, derive_input_domain(g))
    t = ig.nodes[0].outputs[0]
    broken = ig.with_tensors({t: dataclasses.replace(ig.tensors[t], dtype=FLOAT32)})
    with pytest.raises(SpecError, match=f"output '{t}' of node '{ig.nodes[0].name}'.*FLOAT32"):
        check_integer(broken)
    mt = next(n for n in ig.nodes if n.op == "MultiThreshold")
    bad = mt.with_attrs(thresholds=np.asarray(mt.attrs["thresholds"])[:, ::-1])
    with pytest.raises(SpecError, match=f"'{mt.name}': thresholds are not ascending"):
        check_integer(ig.replace_nodes([mt], [bad]))
    design = to_dataflow(ig)
    s = design.stages[1]
    spec = design.streams[s.inputs[0]]
    streams = {**design.streams, s.inputs[0]: dataclasses.replace(spec, elems=spec.elems * 2)}
    want = f"of stage '.*' \\(.*\\) declares .*, but stream '{s.inputs[0]}' carries"
    with pytest.raises(SpecError, match=want):
        check_dataflow(dataclasses.replace(design, streams=streams))
