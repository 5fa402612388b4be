"""Frame-sharded RTL simulation (qloom.sim.shard, issue 17 part 5): the frames split over
worker threads or Ray tasks give the same outputs as one run and as the integer model, under
random stalls too, with the steady-state cycles/frame of one run."""

from __future__ import annotations

import numpy as np
import pytest
from test_stage_latency import FOLDED, tiny_tfc

from qloom.dataflow import to_dataflow
from qloom.flow import run_integer
from qloom.sim import VerilatorError, find_verilator
from qloom.sim.design import simulate
from qloom.sim.shard import simulate_sharded

try:
    find_verilator()
except VerilatorError as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"no Verilator: {e}", allow_module_level=True)


@pytest.fixture(scope="module")
def case():
    graph = tiny_tfc()
    images = np.random.default_rng(7).integers(0, 256, size=(40, 1, 4, 4), dtype=np.uint8)
    return graph, to_dataflow(graph, FOLDED), images, run_integer(graph, images)["out"]


@pytest.mark.parametrize("stall", [0.0, 0.3])
def test_shards_on_threads_equal_one_run(case, stall):
    graph, design, images, want = case
    p = 1.0 - stall
    one = simulate(design, images, in_valid_prob=p, out_ready_prob=p, quiet=True).check()
    res = simulate_sharded(design, images, 3, in_valid_prob=p, out_ready_prob=p).check()
    assert res.frames == 40 and res.outputs["out"].shape == one.outputs["out"].shape
    assert np.array_equal(res.outputs["out"].reshape(want.shape), want)
    assert np.array_equal(res.outputs["out"], one.outputs["out"])
    if stall == 0.0:  # at full rate every shard settles at the design's interval
        assert res.cycles_per_frame == one.cycles_per_frame == design.cycles_per_frame()
        assert res.latency == one.latency


def test_shards_as_ray_tasks(case):
    """An embedded Ray: each task generates the same top and finds the cached model."""
    graph, design, images, want = case
    res = simulate_sharded(design, images, 2, ray_address="local").check()
    assert np.array_equal(res.outputs["out"].reshape(want.shape), want)
    assert res.cycles_per_frame == design.cycles_per_frame()
