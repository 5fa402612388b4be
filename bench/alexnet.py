"""AlexNet (224 x 224, 1000 classes; untrained) streamed across several FPGAs: compiled, folded
for one Alveo U250, cut across the fewest of a list of parts and proved bit-exact in a chained
Verilator simulation through link models (issue 17; the streaming AlexNet of Baskin et al.).

    .venv/bin/python bench/alexnet.py [--models alexnet-w1a2,alexnet-w2a2] [--in-size N]
        [--classes N] [--u250-fps 100] [--target-fps 100] [--clock-mhz 100]
        [--devices 4xxczu9eg] [--fallback-devices 4xxcu250] [--link aurora-10g]
        [--max-utilization 0.9] [--frames 2] [--compare 2] [--seed 0]
        [--synth] [--synth-timeout 300] [--synth-budget 1800] [--synth-workers 1]
        [--out-dir DIR] [--results FILE] [--quiet] [--runtime-weights] [--single]
        [--skip qonnx,chain]

The network is the zoo's `alexnet` (qloom.train.zoo: conv 11x11/4 96 -> 3x3/2 max pool ->
conv 5x5 256 -> pool -> conv 3x3 384, 384, 256 -> pool -> FC 4096, 4096, 1000, each conv and
hidden FC followed by BN and the quantized activation; `alexnet-small` is the same at quarter
width). Its fully connected weights dominate: fc6 alone holds 9216 x 4096 weights (2,000+
BRAM18 at 1 bit), more than a ZCU102's xczu9eg offers at 90 %, so `--devices` fails with the
partitioner's message naming that stage and the build goes on across `--fallback-devices`.

The steps, the table and the exit status are those of bench/resnet18.py (this script runs its
`main` with other defaults); results in bench/results/alexnet.json, builds under
build/bench-alexnet/. `--in-size 64` (the smallest AlexNet input is 63) gives a network whose
chained simulation takes seconds, not minutes.

With run-time weights the weights may live in UltraRAM (an xcu250 has 1,280 URAM288, 360 Mbit)
and AlexNet w2a2 fits one U250 (results in bench/results/alexnet_runtime.json):

    .venv/bin/python bench/alexnet.py --models alexnet-w2a2 --runtime-weights --single \
        --skip qonnx,chain --frames 4 --results bench/results/alexnet_runtime.json
"""

from __future__ import annotations

from resnet18 import ROOT, main

DEFAULTS = {
    "models": "alexnet-w1a2,alexnet-w2a2",
    "devices": "4xxczu9eg",
    "fallback_devices": "4xxcu250",
    "compare": 2,
    "out_dir": str(ROOT / "build" / "bench-alexnet"),
    "results": str(ROOT / "bench" / "results" / "alexnet.json"),
}

if __name__ == "__main__":
    raise SystemExit(main(script="alexnet.py", doc=__doc__, defaults=DEFAULTS))
