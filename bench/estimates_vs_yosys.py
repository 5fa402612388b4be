"""Resource estimates (qloom.fold.estimate) next to Yosys synth_xilinx results, per stage and in
total, for TFC_2W2A at three foldings chosen by the folding solver (qloom.fold).

Each stage is synthesized out of context with its real weight / threshold memories (cached by
content, so a second run is fast). Usage:

    .venv/bin/python bench/estimates_vs_yosys.py [--model PATH] [--device xc7z020]
        [--fps 1e4,1e5,1e6] [--clock 100] [-j 2]

Acceptance target: total LUTs within 25 %, BRAM within 1 block per stage, and (issue 15) the
LUTs of every stage above 500 Yosys LUTs within 25 %.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT.parent / "shared" / "models" / "mnist-tfc" / "TFC_2W2A.onnx"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--device", default="xc7z020")
    ap.add_argument("--fps", default="1e4,1e5,1e6")
    ap.add_argument("--clock", type=float, default=100.0)
    ap.add_argument("-j", type=int, default=2)
    a = ap.parse_args(argv)

    from qloom.flow import compile_model
    from qloom.fold import estimate_design, fold_design
    from qloom.fold.synth import synth_stage
    from qloom.frontend.domain import RAW_PIXELS

    if not Path(a.model).exists():
        print(f"model {a.model} not found", file=sys.stderr)
        return 1
    graph = compile_model(a.model, RAW_PIXELS).integer
    ok = True
    big, big_off = 0, []  # stages above 500 Yosys LUTs; those whose estimate is off > 25 %
    for fps in [float(x) for x in a.fps.split(",")]:
        res = fold_design(graph, fps, a.clock, a.device)
        design = res.design
        est = estimate_design(design, a.device)
        t0 = time.time()
        with ThreadPoolExecutor(a.j) as pool:
            synth = list(pool.map(lambda s: synth_stage(s, a.device), design.stages))
        dt = time.time() - t0
        print(
            f"\n{Path(a.model).stem} folded for {fps:.0e} FPS at {a.clock:g} MHz on {a.device}: "
            f"{design.cycles_per_frame()} cycles/frame ({design.fps(a.clock):.3g} FPS); "
            f"synthesis {dt:.0f} s"
        )
        head = (
            f"{'stage':<12} {'folding':<34} {'LUT est':>8} {'LUT ys':>7} {'err':>6} "
            f"{'FF est':>7} {'FF ys':>6} {'BRAM e':>6} {'BRAM y':>6} {'DSP e':>5} {'DSP y':>5}"
        )
        print(head)
        print("-" * len(head))
        tot = {"le": 0, "ly": 0, "fe": 0, "fy": 0, "be": 0, "by": 0, "de": 0, "dy": 0}
        for s, r in zip(design.stages, synth, strict=True):
            e = est[s.name].as_dict()
            y = r.resources()
            fold = " ".join(f"{k}={v}" for k, v in s.folding().items())
            err = (e["LUT"] - y["LUT"]) / max(1, y["LUT"])
            print(
                f"{s.name:<12} {fold:<34} {e['LUT']:>8} {y['LUT']:>7} {err:>+6.0%} "
                f"{e['FF']:>7} {y['FF']:>6} {e['BRAM']:>6} {y['BRAM']:>6} {e['DSP']:>5} "
                f"{y['DSP']:>5}"
            )
            for k, ke, ky in (("LUT", "le", "ly"), ("FF", "fe", "fy"), ("BRAM", "be", "by"),
                              ("DSP", "de", "dy")):  # fmt: skip
                tot[ke] += e[k]
                tot[ky] += y[k]
            if abs(e["BRAM"] - y["BRAM"]) > 1:
                ok = False
            if y["LUT"] > 500:
                big += 1
                if abs(err) > 0.25:
                    big_off.append(
                        f"{s.name} at {fps:.0e} FPS: {e['LUT']} vs {y['LUT']} ({err:+.0%})"
                    )
        err = (tot["le"] - tot["ly"]) / max(1, tot["ly"])
        print(
            f"{'total':<12} {'':<34} {tot['le']:>8} {tot['ly']:>7} {err:>+6.0%} "
            f"{tot['fe']:>7} {tot['fy']:>6} {tot['be']:>6} {tot['by']:>6} {tot['de']:>5} "
            f"{tot['dy']:>5}"
        )
        if abs(err) > 0.25:
            ok = False
    verdict = "met" if ok else "MISSED"
    print(f"\nacceptance (total LUT within 25 %, BRAM within 1 per stage): {verdict}")
    print(
        f"stages above 500 Yosys LUTs: {big}, of which {len(big_off)} with the estimate off by "
        f"more than 25 %" + "".join(f"\n  {x}" for x in big_off)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
