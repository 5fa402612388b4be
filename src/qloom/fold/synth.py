"""Out-of-context Yosys synthesis of one dataflow stage (its library module, its parameters and
its memory files), used to calibrate and check the resource estimates (qloom.fold.estimate).

Results are cached by content by `qloom.synth.synthesize`, so a repeated call costs nothing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from qloom.dataflow.stage import Stage
from qloom.rtl.library import library_files
from qloom.synth import SynthResult, synthesize


def _literal(v):
    """Yosys chparam cannot parse a negative decimal: pass a negative int as its 32-bit two's
    complement pattern (the modules only use the low bits of OUT_BASE / A_MUL / ...)."""
    if isinstance(v, int) and not isinstance(v, bool) and v < 0:
        return v & 0xFFFFFFFF
    return v


def stage_params(stage: Stage, memdir: Path) -> dict:
    params = dict(stage.rtl_params())
    if hasattr(stage, "write_memories"):
        params.update(stage.write_memories(memdir))
    return {k: _literal(v) for k, v in params.items()}


def synth_stage(
    stage: Stage,
    device: str = "xc7z020",
    workdir: str | Path | None = None,
    timeout: float = 1800.0,
) -> SynthResult:
    """Synthesize `stage`'s RTL module out of context for `device` (cached by content); a
    TruthTable of more than a LUT's address bits in neuron groups (qloom.synth.truthtable:
    Yosys expands the stage's indexed table reads too slowly for 12-15-bit tables)."""
    if stage.kind == "TruthTable":
        from qloom.synth.truthtable import WHOLE_STAGE_BITS, synth_truth_table

        if stage.address_bits > WHOLE_STAGE_BITS:
            return synth_truth_table(stage, device, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="qloom-fold-") as tmp:
        # synthesize copies the memory files into its work directory; the cache key hashes
        # their contents
        params = stage_params(stage, Path(tmp))
        srcs = library_files(stage.rtl_module)  # the module and its submodules
        return synthesize(srcs, stage.rtl_module, params, device, workdir, timeout=timeout)


def synth_stages(
    jobs: Sequence[tuple[Stage, str]],
    *,
    ray_address: str | None = None,
    workers: int | None = None,
    timeout: float = 1800.0,
    quiet: bool = True,
) -> list[SynthResult]:
    """`synth_stage` for each (stage, device) of `jobs`, in parallel, results in job order.

    ray_address None: threads on this machine (`workers`, default the core count; yowasp's
    Yosys runs outside the GIL). "local": an embedded Ray instance; an address: Ray tasks on
    that cluster, so that a large design's stages spread over every core of every node (each
    node caches what it synthesized; the results come back here)."""
    if not jobs:
        return []
    from qloom.raytasks import parallel_map

    calls = [(s, d, None, timeout) for s, d in jobs]  # synth_stage(stage, device, workdir, ...)
    return parallel_map(synth_stage, calls, ray_address=ray_address, workers=workers,
                        quiet=quiet)  # fmt: skip
