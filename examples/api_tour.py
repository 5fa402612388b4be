"""qloom's Python API in one script: load a model, predict, fold, simulate the RTL, build.

    .venv/bin/python examples/api_tour.py [MODEL.onnx] [--frames N] [--out DIR]

Uses only the documented API (README, "Python API"). The default model is the shared
TFC_2W2A; inputs are MNIST test images / 255 when the data set is installed, else random
inputs from the model's domain.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import qloom

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "models" / "mnist-tfc"

p = argparse.ArgumentParser()
p.add_argument("model", nargs="?", default=str(SHARED / "TFC_2W2A.onnx"))
p.add_argument("--frames", type=int, default=200)
p.add_argument("--out", default="build/api-tour")
args = p.parse_args()

# 1. load: the input domain comes from the model (here: the first quantizer, INT2)
model = qloom.load(args.model)
print("hardware input:", model.domain.describe())

# 2. inputs in the model's own float domain, as one would give qonnx
try:
    from qloom.data import load_dataset

    images, labels = load_dataset("mnist-test")
    x, labels = images[: args.frames].astype(np.float32) / 255.0, labels[: args.frames]
except qloom.QloomError:
    x, labels = model.compiled.random_inputs(args.frames), None

# 3. predict: the bit-exact integer model, with the host's float tail
y = model.predict(x)
if labels is not None:
    print(f"accuracy on {len(x)} images: {np.mean(y.argmax(-1).ravel() == labels):.2%}")

# 4. simulate: the RTL of a design folded for 100k FPS, in Verilator, with random stalls
sim = model.simulate(x, target_fps=1e5, stall=0.2)
print(f"RTL == integer model on {len(x) - sim.mismatches} / {len(x)} frames, "
      f"{sim.cycles_per_frame} cycles/frame measured under stalls "
      f"(formula {sim.formula_cycles_per_frame} at full rate)")  # fmt: skip
assert sim.mismatches == 0
assert np.array_equal(sim.outputs[model.outputs[0]], y)

# 5. build: a FINN-style config; the report says what was built
report = model.build({"output_dir": args.out, "target_fps": 1e5, "board": "Pynq-Z2",
                      "sim_frames": 20})  # fmt: skip
print("build directory:", report.dir, f"({report.totals.cycles_per_frame} cycles/frame)")
