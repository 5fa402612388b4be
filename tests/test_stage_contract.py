"""The stage protocol, held for every stage kind: legal folding values for each declared
parameter, refold to any of them, a resource estimate, and RTL parameters that the kind's
Verilog module declares. A new stage kind that misses a piece fails here, by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import qloom.dataflow as dataflow
from qloom.dataflow.stage import STAGE_KINDS, Stage
from qloom.fold.calibrate import CONFIGS
from qloom.fold.estimate import estimate_stage

LIB = Path(dataflow.__file__).resolve().parents[1] / "rtl" / "lib"


def _kinds() -> list[type[Stage]]:
    return sorted(STAGE_KINDS.values(), key=lambda k: k.kind)


def _samples(kind: type[Stage]) -> list[Stage]:
    """The kind's own example and its calibration configurations."""
    return [kind.example()] + [f() for f in CONFIGS.values() if type(f()) is kind]


def test_every_stage_module_registers_its_kind():
    """Each stage file of qloom.dataflow defines a kind that the registry holds, and the
    public exports name every kind."""
    exported = {getattr(dataflow, n) for n in dataflow.__all__}
    assert set(STAGE_KINDS.values()) <= exported, set(STAGE_KINDS.values()) - exported
    assert len(STAGE_KINDS) >= 12


def _declared_parameters(module: str) -> set[str]:
    text = (LIB / f"{module}.v").read_text()
    return set(re.findall(r"parameter\s+(?:integer\s+|\[[^\]]*\]\s*)?(\w+)\s*=", text))


@pytest.mark.parametrize("kind", _kinds(), ids=lambda k: k.__name__)
def test_every_stage_kind_keeps_the_protocol(kind):
    samples = _samples(kind)
    assert type(samples[0]) is kind, f"{kind.__name__}.example() is a {type(samples[0])}"
    assert kind.kind and kind.rtl_module, kind
    assert (LIB / f"{kind.rtl_module}.v").is_file(), f"{kind.rtl_module}.v missing"
    declared = _declared_parameters(kind.rtl_module)
    for s in samples:
        legal = s.legal_values()
        assert set(legal) == set(s.fold_params), (s.name, legal, s.fold_params)
        for p in s.fold_params:
            assert s.folding()[p] in legal[p], (s.name, p)  # (FINN's folding.json entry)
            for v in (min(legal[p]), max(legal[p])):
                st = s.refold({p: v})
                assert st.folding()[p] == v and type(st) is kind
                assert st.cycles_per_frame() >= 1
        for style in s.memory_styles:
            if style is not None:
                assert s.refold({}, style).ram_style == style
        r = estimate_stage(s, "xc7z020")
        assert r.lut >= 0 and r.ff >= 0 and r.bram >= 0 and r.dsp >= 0, (s.name, r)
        unknown = set(s.rtl_params()) - declared
        assert not unknown, f"{s.name}: {unknown} are not parameters of {kind.rtl_module}.v"
        words = s.memory_words()
        assert isinstance(words, list)


def test_parallel_folding_reaches_the_fewest_cycles():
    """Max legal values give the fewest cycles of each folding parameter (the solver relies
    on cycles decreasing as parallelism grows)."""
    for f in CONFIGS.values():
        s = f()
        for p in s.fold_params:
            cycles = [s.refold({p: v}).cycles_per_frame() for v in sorted(s.legal_values()[p])]
            assert cycles == sorted(cycles, reverse=True), (s.name, p, cycles)
