"""FINN folding files as FINN writes them: node names and "Defaults" -> qloom stage names.

FINN names its hardware nodes `<op type>_<index>` (qonnx GiveUniqueNodeNames), e.g. `MVAU_hls_0`,
`Thresholding_rtl_1`, `ConvolutionInputGenerator_rtl_0`, or in older releases
`StreamingFCLayer_Batch_0`, `MatrixVectorActivation_2`. The index counts the nodes of that op
type in graph order, so `MVAU_hls_i` is the i-th MVAU stage of qloom's design (both are in
topological order). Entries for node kinds qloom does not have as stages of their own (FIFOs,
width converters, padding: qloom sizes glue FIFOs by simulation and pads inside the SWU) are
ignored and listed in the note.

"Defaults" follows FINN's ApplyConfig: `{"ram_style": ["block", ["MVAU_hls", "Thresholding_rtl"]],
"PE": [2, "all"]}`, value / op-type-list pairs; a stage's own entry wins over a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.stage import Stage
from qloom.errors import FoldingError

#: FINN op type (without the _hls / _rtl backend suffix) -> qloom's `Stage.finn_op` family
FINN_FAMILIES = {
    "MVAU": "MVAU",
    "MatrixVectorActivation": "MVAU",
    "StreamingFCLayer_Batch": "MVAU",
    "VVAU": "VVAU",
    "VectorVectorActivation": "VVAU",
    "Vector_Vector_Activate_Batch": "VVAU",
    "Thresholding": "Thresholding",
    "Thresholding_Batch": "Thresholding",
    "ConvolutionInputGenerator": "ConvolutionInputGenerator",
    "ConvolutionInputGenerator1D": "ConvolutionInputGenerator",
    "StreamingMaxPool": "StreamingMaxPool",
    "StreamingMaxPool_Batch": "StreamingMaxPool",
    "Pool": "Pool",
    "Pool_Batch": "Pool",
    "LabelSelect": "LabelSelect",
    "LabelSelect_Batch": "LabelSelect",
    "AddStreams": "AddStreams",
    "AddStreams_Batch": "AddStreams",
    "StreamingConcat": "StreamingConcat",
    "ElementwiseMul": "ElementwiseMul",
    "DuplicateStreams": "DuplicateStreams",
    "DuplicateStreams_Batch": "DuplicateStreams",
}
#: FINN node kinds that have no stage of their own in qloom: their entries are ignored
NOT_STAGES = {
    "StreamingFIFO": "qloom sizes its glue FIFOs by simulation",
    "StreamingDataWidthConverter": "qloom inserts width converters where the folding needs them",
    "StreamingDataWidthConverter_Batch": "qloom inserts width converters where needed",
    "FMPadding": "qloom pads inside the sliding-window unit",
    "FMPadding_Batch": "qloom pads inside the sliding-window unit",
    "TLastMarker": "not a compute stage",
    "IODMA": "not a compute stage",
}
#: FINN parameter names that differ from qloom's for a family
RENAMED = {"StreamingConcat": {"SIMD": "PE"}}
_NAME = re.compile(r"^(?P<op>[A-Za-z][A-Za-z0-9_]*?)(?:_(?P<backend>hls|rtl))?_(?P<i>\d+)$")


@dataclass
class Translation:
    """A folding in qloom's stage names, and what the FINN names in the file meant."""

    folding: dict
    mapped: dict[str, str] = field(default_factory=dict)  # FINN name -> qloom stage
    ignored: dict[str, int] = field(default_factory=dict)  # FINN op type -> entries ignored

    def note(self) -> str:
        parts = []
        if self.mapped:
            parts.append("FINN names: " + ", ".join(f"{f} -> {q}" for f, q in self.mapped.items()))
        for op, n in self.ignored.items():
            why = NOT_STAGES.get(op, "the design has no such stage")
            parts.append(f"ignored {n} {op} entr{'y' if n == 1 else 'ies'} ({why})")
        return "; ".join(parts)


def _finn_family_members(design: DataflowDesign) -> dict[str, list[Stage]]:
    """qloom's stages of each FINN family, in design order, as FINN would number them."""
    out: dict[str, list[Stage]] = {}
    for s in design.stages:
        if s.finn_op and not getattr(s, "widen", False):  # widen: qloom's own helper stage
            out.setdefault(s.finn_op, []).append(s)
    return out


def _params_of(stage: Stage) -> set[str]:
    has_memory = any(m is not None for m in stage.memory_styles)
    return set(stage.fold_params) | ({"ram_style"} if has_memory else set())


def _rename(family: str, entry: dict, where: str) -> dict:
    names = RENAMED.get(family, {})
    out = {names.get(k, k): v for k, v in entry.items()}
    if family == "VVAU" and "SIMD" in out:  # FINN's VVAU folds the kernel too; qloom's does not
        if out.pop("SIMD") != 1:
            raise FoldingError(
                f"{where}: SIMD={entry['SIMD']} folds the kernel of a depthwise convolution, "
                "which qloom's VVAU does not (it has PE only); use SIMD 1"
            )
    return out


def translate_folding(
    folding: dict, design: DataflowDesign, source: str = "folding"
) -> Translation:
    """`folding` with FINN node names replaced by qloom stage names and "Defaults" applied
    (see the module docstring). Names that are qloom stage names stay as they are; FINN names
    that match no stage raise FoldingError naming the stages of that kind."""
    qloom_names = {s.name for s in design.stages}
    families = _finn_family_members(design)
    out: dict = {}
    tr = Translation(out)
    backends: dict[str, set[str]] = {}
    for key, entry in folding.items():
        if key == "Defaults":
            continue
        m = _NAME.match(key)
        if key in qloom_names or m is None:
            out[key] = dict(entry)
            continue
        op = m["op"]
        if op in NOT_STAGES:
            tr.ignored[op] = tr.ignored.get(op, 0) + 1
            continue
        family = FINN_FAMILIES.get(op)
        if family is None:
            out[key] = dict(entry)  # not a FINN name qloom knows: lowering names the problem
            continue
        backends.setdefault(family, set()).add(m["backend"] or "")
        if len(backends[family]) > 1:
            raise FoldingError(
                f"{source}: '{key}' mixes {family} nodes of two FINN backends (hls and rtl), "
                "whose numbering does not give the order of the layers; name the stages as "
                f"qloom does (qloom build writes them to folding.json)"
            )
        members = families.get(family, [])
        if not members:  # e.g. FINN's input Thresholding where qloom's host sends BIPOLAR
            tr.ignored[op] = tr.ignored.get(op, 0) + 1
            continue
        i = int(m["i"])
        if i >= len(members):
            listed = ", ".join(s.name for s in members) or "none"
            raise FoldingError(
                f"{source}: '{key}' is {family} node {i} in FINN's order, but the design has "
                f"{len(members)} {family} stage(s) ({listed})"
            )
        stage = members[i]
        out[stage.name] = _rename(family, entry, f"{source}: '{key}' ({stage.name})")
        tr.mapped[key] = stage.name
    _apply_defaults(folding.get("Defaults") or {}, design, out, source)
    return tr


def _apply_defaults(defaults: dict, design: DataflowDesign, out: dict, source: str) -> None:
    if not isinstance(defaults, dict):
        raise FoldingError(f'{source}: "Defaults" must be an object, got {defaults!r}')
    for key, spec in defaults.items():
        if not isinstance(spec, list) or len(spec) % 2:
            raise FoldingError(
                f'{source}: "Defaults" entry {key!r} is {spec!r}; FINN writes value / op-type '
                f'pairs, e.g. "{key}": [value, ["MVAU_hls", "Thresholding_rtl"]] or [value, "all"]'
            )
        for value, ops in zip(spec[::2], spec[1::2], strict=True):
            wanted = None if ops == "all" else {_family(o) for o in ops}
            for s in design.stages:
                if wanted is not None and s.finn_op not in wanted and s.kind not in wanted:
                    continue
                key_q = RENAMED.get(s.finn_op, {}).get(key, key)
                if key_q not in _params_of(s):
                    if wanted is not None and key_q not in ("ram_style",):
                        raise FoldingError(
                            f"{source}: \"Defaults\" sets {key} on {s.kind} '{s.name}', which "
                            f"has no such folding parameter (it has: "
                            f"{', '.join(sorted(_params_of(s))) or 'nothing'})"
                        )
                    continue
                entry = out.setdefault(s.name, {})
                entry.setdefault(key_q, value)


def _family(op: str) -> str:
    """'MVAU_hls' / 'MatrixVectorActivation' / 'MVAU' -> 'MVAU'."""
    base = re.sub(r"_(hls|rtl)$", "", op)
    return FINN_FAMILIES.get(base, base)
