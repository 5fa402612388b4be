"""The documented Python API, in the habits of hls4ml and FINN: load, predict, fold, simulate,
build. Every input is in the model's own float domain (what qonnx or onnxruntime take); the
integers the hardware receives come from the model's input domain (`Model.domain`).

    import qloom
    m = qloom.load("model.onnx")                 # or input_type="UINT8", input_scale="1/255"
    y = m.predict(x)                             # the bit-exact integer model, float outputs
    sim = m.simulate(x[:100], target_fps=1e5)    # the RTL in Verilator; sim.outputs == y[:100]
    report = m.build({"output_dir": "build/net", "target_fps": 1e5, "board": "Pynq-Z2"})
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from qloom.errors import QloomError
from qloom.flow import Compiled, compile_model, run_integer
from qloom.frontend.domain import InputDomain, InputSpec, parse_dtype, parse_scale


@dataclass(frozen=True)
class Simulation:
    """One RTL simulation: the model's outputs (after the host tail), and what was measured."""

    outputs: dict[str, np.ndarray]  # the model's output names -> (N, ...)
    mismatches: int  # frames whose RTL outputs differ from the integer model's
    cycles_per_frame: float | None  # measured, steady state
    formula_cycles_per_frame: int  # the design's initiation interval
    latency_cycles: int | None
    folding: dict  # FINN folding.json form


class Model:
    """A compiled model: its input domain, the integer model, and the ways to hardware."""

    def __init__(self, path: str | Path, compiled: Compiled, spec: InputSpec | None = None):
        self.path = Path(path)
        self.compiled = compiled
        self.spec = spec  # the user's statement of the input domain (None: from the model)

    @property
    def domain(self) -> InputDomain:
        """Which integers the hardware receives, and why (`.describe()`)."""
        return self.compiled.domain

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.compiled.integer.outputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's first output on `x` (the model's float domain), from the integer model:
        what the hardware plus the host tail compute."""
        return self.predict_all(x)[self.outputs[0]]

    def predict_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return self.compiled.run(np.asarray(x))

    def reference(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The imported float model (qonnx semantics) on `x`, for comparison."""
        return self.compiled.reference(np.asarray(x))

    def fold(
        self,
        *,
        folding: dict | str | Path | None = None,
        target_fps: float | None = None,
        clock_mhz: float = 100.0,
        part: str = "xc7z020",
        max_utilization: float = 0.8,
    ):
        """The folded DataflowDesign: a folding (a dict, a folding.json in qloom's or FINN's
        names, or "parallel"), or the cheapest folding that meets `target_fps` on `part`, or
        PE = SIMD = 1."""
        from qloom.dataflow import to_dataflow
        from qloom.fold import fold_design, read_folding, translate_folding

        g = self.compiled.integer
        if folding is not None and target_fps is not None:
            raise QloomError("give a folding or a target_fps, not both")
        if target_fps is not None:
            return fold_design(g, target_fps, clock_mhz, part, max_utilization).design
        if isinstance(folding, dict):
            return to_dataflow(g, translate_folding(folding, to_dataflow(g)).folding)
        return to_dataflow(g, read_folding(folding, g) if folding is not None else None)

    def simulate(self, x: np.ndarray, *, stall: float = 0.0, seed: int = 0, **fold) -> Simulation:
        """Run `x` through the generated RTL in Verilator (FIFOs sized from a full-rate run;
        `stall`: the probability of a withheld input / refused output beat per cycle) and
        compare every frame with the integer model. `fold`: as for `fold()`."""
        from qloom.build import _compare
        from qloom.sim.design import simulate, size_fifos

        if not 0.0 <= stall < 1.0:
            raise QloomError(f"stall must be in [0, 1), got {stall}")
        design = self.fold(**fold)
        q = self.compiled.hardware_input(np.asarray(x))
        depths = size_fifos(design, q[:8], seed=seed)
        p = 1.0 - stall
        res = simulate(design, q, in_valid_prob=p, out_ready_prob=p, seed=seed,
                       fifo_depths=depths)  # fmt: skip
        reference = run_integer(self.compiled.integer, q)
        if design.departs_from_graph:
            reference = design.execute(q)  # don't-care tables: the hardware's own function
        mismatches = _compare(res.outputs, reference, len(q)) if res.ok else len(q)
        if not res.ok:
            res.check()
        return Simulation(
            outputs={t: res.outputs[t] for t in self.outputs if t in res.outputs},
            mismatches=mismatches,
            cycles_per_frame=res.cycles_per_frame,
            formula_cycles_per_frame=design.cycles_per_frame(),
            latency_cycles=res.latency,
            folding=design.folding_json(),
        )

    def build(self, config: dict | str | Path | None = None, **options):
        """`qloom build` on this model: `config` is a dict or JSON file in FINN's
        DataflowBuildConfig names (qloom.config), `options` are BuildOptions fields that win
        over it. Returns the build's report."""
        from qloom.build import BuildOptions, build
        from qloom.config import options_from_config, read_config

        if config is None:
            opts = BuildOptions(model=self.path)
        else:
            cfg = config if isinstance(config, dict) else read_config(config)
            opts = options_from_config(cfg, self.path, "config")[0]
        if opts.input_spec is None and self.spec is not None:
            opts = replace(opts, input_spec=self.spec)
        return build(replace(opts, **options))


def load(
    path: str | Path, input_type: str | None = None, input_scale: str | float | None = None
) -> Model:
    """Load and compile a QONNX / FINN-ONNX model. The input domain comes from the model
    unless `input_type` (and `input_scale`: model input = scale x integer) states it."""
    spec = None
    if input_type is not None:
        scale = parse_scale(str(input_scale)) if input_scale is not None else parse_scale("1")
        spec = InputSpec(parse_dtype(input_type), scale)
    elif input_scale is not None:
        raise QloomError("input_scale needs input_type (e.g. input_type='UINT8')")
    return Model(path, compile_model(path, spec), spec)
