"""Folding solver: PE / SIMD (and ram_style) per stage for a throughput target or for the
highest throughput that fits a part.

The idea is FINN's SetFolding: a streaming pipeline runs at the pace of its slowest stage, so
every stage gets just enough parallelism to meet the cycle budget `clock / target_fps` and no
more (a balanced pipeline). Per stage, the solver enumerates the legal foldings (divisors only:
PE | MH, SIMD | MW, ...), keeps those that meet the budget and are *minimal* (lowering PE or SIMD
to the next smaller legal value would miss the budget), and of those takes the cheapest by the
resource model (qloom.fold.estimate: LUTs, with BRAM/DSP weighted by their scarcity on the
part), choosing the MVAU / Thresholding memory style ("block" or "auto") at the same time.

Block RAM that a design leaves idle is worth (almost) nothing, so the solver first prices a
BRAM18 at 3 % of its LUT equivalent (weights go to block RAM wherever that saves LUTs) and
raises the price along BRAM_PRICES only while the result does not fit the utilization caps.

Limits: no stream may be wider than MAX_STREAM_BITS (8192) bits (SIMD x input bits of an MVAU,
PE x output bits of any stage); a folding that would need a wider stream is not considered.

Errors (qloom.errors.FoldingError):
  * a target no folding reaches names the bottleneck stage, the cycles it needs at most
    parallelism and the best achievable FPS;
  * a design that does not fit the part names the part and the estimated totals vs what the
    part offers (at the utilization cap).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from math import floor
from pathlib import Path

from qloom.dataflow import to_dataflow
from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.stage import Stage
from qloom.errors import FoldingError, QloomError
from qloom.fold.estimate import MAX_STREAM_BITS, Resources, estimate_design, estimate_stage
from qloom.fold.finn_config import Translation, translate_folding
from qloom.ir import Graph
from qloom.synth.devices import Device, get_device

RESOURCE_KINDS = ("LUT", "FF", "BRAM", "DSP")
#: the share of the part a design may use: one number for every resource, or per resource
#: ({"LUT": 0.2, "BRAM": 0.9}; resources not named may use the whole part)
Utilization = float | Mapping[str, float]
#: block-RAM prices the solver tries in turn (fractions of a BRAM18's LUT equivalent, see
#: Resources.cost), keeping the first whose design fits: idle BRAM first, 1.0 (the plain sum of
#: utilizations) when the BRAM is needed
BRAM_PRICES = (0.03, 0.1, 0.3, 1.0)


def _caps(cap: Utilization) -> dict[str, float]:
    if isinstance(cap, int | float):
        return dict.fromkeys(RESOURCE_KINDS, float(cap))
    caps = {k.upper(): float(v) for k, v in cap.items()}
    unknown = sorted(set(caps) - set(RESOURCE_KINDS))
    if unknown:
        raise ValueError(f"max_utilization: unknown resources {unknown}; use {RESOURCE_KINDS}")
    return {k: caps.get(k, 1.0) for k in RESOURCE_KINDS}


@dataclass(frozen=True)
class Candidate:
    folding: dict  # FINN folding.json entry of the stage
    cycles: int
    resources: Resources
    cost: float
    parallelism: tuple[int, ...]  # the values of the stage's fold_params, in order
    other_kind: bool = False  # one of the stage's `alternatives()`: nothing of it to fold


@dataclass(frozen=True)
class FoldResult:
    folding: dict  # FINN folding.json form
    design: DataflowDesign
    estimate: dict[str, Resources]  # per stage + "total"
    budget_cycles: int
    clock_mhz: float

    @property
    def fps(self) -> float:
        return self.design.fps(self.clock_mhz)


# ------------------------------------------------------------------------------------------
# candidates per stage
# ------------------------------------------------------------------------------------------


def _prev(values: list[int], v: int) -> int | None:
    smaller = [d for d in values if d < v]
    return max(smaller) if smaller else None


def parallel_folding(design: DataflowDesign) -> dict:
    """The fully unrolled folding: every parameter at its largest legal value (PE = MH and
    SIMD = MW for an MVAU, one threshold lane per element, ...), so that each stage takes
    the fewest cycles its shape allows (one per frame for an MLP). No resource or stream-width
    check: this is the "as fast as possible" end of the design space, for comparison."""
    return {
        s.name: {p: max(s.legal_values()[p]) for p in s.fold_params}
        for s in design.stages
        if s.fold_params
    }


def read_folding(spec: str | Path, graph: Graph) -> dict:
    """The folding a user names, in qloom's stage names: "parallel" (`parallel_folding`) or a
    folding.json path in qloom's or FINN's form (FINN node names and "Defaults", see
    qloom.fold.finn_config). An unreadable or malformed file raises QloomError naming it."""
    return load_folding(spec, graph).folding


def load_folding(spec: str | Path, graph: Graph) -> Translation:
    """`read_folding`, with a note of what FINN names in the file were taken to mean."""
    if str(spec) == "parallel":
        return Translation(parallel_folding(to_dataflow(graph)))
    try:
        folding = json.loads(Path(spec).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise QloomError(f"folding file {spec}: not a readable JSON file ({e})") from None
    if not isinstance(folding, dict):
        raise QloomError(f"folding file {spec}: expected a JSON object {{stage: {{PE: ...}}}}")
    for name, entry in folding.items():
        if not isinstance(entry, dict) and name != "Defaults":
            raise QloomError(
                f"folding file {spec}: the entry of '{name}' is {json.dumps(entry)}; each stage "
                'maps to an object such as {"PE": 4, "SIMD": 8}'
            )
    base = Path(spec).resolve().parent
    for entry in folding.values():  # files a folding file names lie next to it
        named = entry.get("dont_care") if isinstance(entry, dict) else None
        if isinstance(named, str) and named and not Path(named).is_absolute():
            entry["dont_care"] = str(base / named)
    return translate_folding(folding, to_dataflow(graph), f"folding file {spec}")


def _widths_ok(stage: Stage) -> bool:
    return all(s.width <= MAX_STREAM_BITS for s in stage.in_streams() + stage.out_streams())


def candidates(stage: Stage, device: Device) -> list[Candidate]:
    """Every legal folding of `stage` within the stream-width limit, with cycles and cost."""
    params = stage.fold_params
    legal = stage.legal_values()
    combos: list[dict] = [{}]
    for p in params:
        combos = [dict(c, **{p: v}) for c in combos for v in legal[p]]
    out = []
    for values in combos:  # every memory style: which is cheaper depends on the BRAM price
        for style in stage.memory_styles_on(device):
            st = stage.refold(values, style)
            if not _widths_ok(st):
                break
            r = estimate_stage(st, device)
            cand = Candidate(
                {**values, **({"ram_style": style} if style else {})},
                st.cycles_per_frame(),
                r,
                r.cost(device),
                tuple(values[p] for p in params),
            )
            out.append(cand)
    for alt in stage.alternatives():  # other kinds for the same layer (LogicNets tables)
        if _widths_ok(alt):
            r = estimate_stage(alt, device)
            cycles = alt.cycles_per_frame()
            out.append(Candidate(alt.folding(), cycles, r, r.cost(device), (), other_kind=True))
    return out


def _minimal(c: Candidate, stage: Stage, by_par: dict, budget: int) -> bool:
    """Lowering any one parameter to its next smaller legal value misses the budget."""
    if c.other_kind:
        return True
    legal = stage.legal_values()
    for i, p in enumerate(stage.fold_params):
        v = _prev(legal[p], c.parallelism[i])
        if v is None:
            continue
        par = c.parallelism[:i] + (v,) + c.parallelism[i + 1 :]
        other = by_par.get(par)
        if other is None:  # excluded by the width limit: it would be narrower, so it exists
            continue
        if other.cycles <= budget:
            return False
    return True


def minimal_within(stage: Stage, cands: list[Candidate], budget: int) -> list[Candidate]:
    """The candidates meeting the budget that no smaller parallelism also meets."""
    by_par = {c.parallelism: c for c in cands}
    return [c for c in cands if c.cycles <= budget and _minimal(c, stage, by_par, budget)]


def choose(
    stage: Stage, cands: list[Candidate], budget: int, cost=lambda c: c.cost
) -> Candidate | None:
    """The cheapest minimal candidate meeting the budget (None: the stage cannot meet it)."""
    ok = minimal_within(stage, cands, budget)
    if not ok:
        return None
    return min(ok, key=lambda c: (cost(c), c.cycles, c.parallelism))


# ------------------------------------------------------------------------------------------
# the solver
# ------------------------------------------------------------------------------------------


class _Problem:
    def __init__(self, graph_or_design: Graph | DataflowDesign, device: Device | str):
        if isinstance(graph_or_design, DataflowDesign):
            self.graph = graph_or_design.source
        else:
            self.graph = graph_or_design
        self.device = get_device(device)
        # a design's run-time weight stages stay so: their memories may take other styles
        modes = {}
        if isinstance(graph_or_design, DataflowDesign):
            modes = {
                s.name: {"weights": "runtime"} for s in graph_or_design.runtime_weight_stages()
            }
        self.base = to_dataflow(self.graph, modes)
        self.stages = [s for s in self.base.stages if s.fold_params]
        self.cands = {s.name: candidates(s, self.device) for s in self.stages}

    def min_cycles(self) -> dict[str, int]:
        return {n: min(c.cycles for c in cs) for n, cs in self.cands.items()}

    def solve(self, budget: int, bram_price: float = 1.0) -> dict[str, Candidate] | None:
        chosen = {}
        for s in self.stages:
            c = choose(
                s, self.cands[s.name], budget, lambda c: c.resources.cost(self.device, bram_price)
            )
            if c is None:
                return None
            chosen[s.name] = c
        return chosen

    def shorten_latency(
        self, chosen: dict[str, Candidate], budget: int, slack: float, bram_price: float
    ) -> dict[str, Candidate]:
        """Local search on the design's latency estimate (then cost), the summed cost within
        (1 + slack) of the cheapest folding's: moves change one stage's folding, or the shapes
        (minimal PE x SIMD within the budget) of two neighbours at once, since a layer that
        streams its outputs over many folds makes the next one wait for its whole input and
        only a pair of changes turns that into an overlap; repeated until no move helps."""

        def cost(c: Candidate) -> float:
            return c.resources.cost(self.device, bram_price)

        def latency(ch: dict[str, Candidate]) -> int:
            return self.base.refold({n: dict(c.folding) for n, c in ch.items()}).latency_estimate()

        def shapes(s: Stage) -> list[Candidate]:
            cheapest: dict[tuple, Candidate] = {}
            for c in sorted(minimal_within(s, self.cands[s.name], budget), key=cost):
                cheapest.setdefault(c.parallelism, c)
            return list(cheapest.values())

        limit = (1 + slack) * sum(cost(c) for c in chosen.values())
        moves = [[(s, c)] for s in self.stages for c in self.cands[s.name] if c.cycles <= budget]
        for a, b in zip(self.stages, self.stages[1:], strict=False):
            moves += [[(a, ca), (b, cb)] for ca in shapes(a) for cb in shapes(b)]
        best = (latency(chosen), sum(cost(c) for c in chosen.values()))
        while True:  # steepest descent: the move that shortens the latency most, then cheapest
            step = None
            for move in moves:
                trial = {**chosen, **{s.name: c for s, c in move}}
                total = sum(cost(c) for c in trial.values())
                if trial == chosen or total > limit:
                    continue
                if (key := (latency(trial), total)) < best:
                    best, step = key, trial
            if step is None:
                return chosen
            chosen = step

    def fold(
        self,
        budget: int,
        clock_mhz: float,
        cap: Utilization,
        prices=BRAM_PRICES,
        latency_slack: float = 0.0,
    ) -> FoldResult | None:
        """The design for `budget` at the lowest BRAM price whose estimate fits `cap` (else the
        one at the last price, which the caller reports as too large); None: a stage cannot
        meet the budget at all. With `latency_slack`, the latency is shortened at up to that
        fraction more cost (`shorten_latency`) where the result still fits."""
        result = None
        for price in prices:
            chosen = self.solve(budget, price)
            if chosen is None:
                return None
            if latency_slack > 0:
                fast = self.build(
                    self.shorten_latency(chosen, budget, latency_slack, price), budget, clock_mhz
                )
                if self.fits(fast.estimate["total"], cap):
                    return fast
            result = self.build(chosen, budget, clock_mhz)
            if self.fits(result.estimate["total"], cap):
                break
        return result

    def build(self, chosen: dict[str, Candidate], budget: int, clock_mhz: float) -> FoldResult:
        design = self.base.refold({n: dict(c.folding) for n, c in chosen.items()})
        est = estimate_design(design, self.device)
        return FoldResult(design.folding_json(), design, est, budget, clock_mhz)

    def fits(self, total: Resources, cap: Utilization) -> bool:
        return fits(total, self.device, cap)

    def too_large(self, result: FoldResult, cap: Utilization, what: str) -> FoldingError:
        return too_large(result.estimate, self.device, cap, what)


def fits(total: Resources, device: Device, cap: Utilization) -> bool:
    """True if `total` stays within `cap` of every resource of `device`."""
    d, caps = device.capacity(), _caps(cap)
    used = total.as_dict()
    # UltraRAM (run-time weights only) under the block RAM's cap: both are on-chip memory
    uram = used.get("URAM", 0)
    uram_ok = not uram or uram <= caps["BRAM"] * d["URAM"]
    return uram_ok and all(used[k] <= caps[k] * d[k] for k in RESOURCE_KINDS if used[k])


def too_large(
    estimate: dict[str, Resources], device: Device, cap: Utilization, what: str
) -> FoldingError:
    """The error for a design (`estimate`: per stage + "total") that does not fit `device`."""
    dev = device
    total = estimate["total"].as_dict()
    capd, caps = dev.capacity(), _caps(cap)
    parts = []
    for k in RESOURCE_KINDS:
        if total[k] or k == "LUT":
            avail = int(caps[k] * capd[k])
            mark = " (over)" if total[k] > avail else ""
            parts.append(f"{k} {total[k]} / {avail}{mark}")
    if len(set(caps.values())) == 1:
        at = f"{caps['LUT']:.0%} utilization"
    else:
        at = "utilization " + ", ".join(f"{k} {v:.0%}" for k, v in caps.items())
    biggest = max((n for n in estimate if n != "total"), key=lambda n: estimate[n].cost(dev))
    return FoldingError(
        f"{what} does not fit the part {dev.name} ({dev.part}) at {at}: "
        f"estimated {', '.join(parts)} (used / available); largest stage '{biggest}' "
        f"({estimate[biggest]}). Use a larger part, a lower target or a smaller "
        "network."
    )


def check_fits(
    design: DataflowDesign, device: Device | str, cap: Utilization, what: str
) -> dict[str, Resources]:
    """The design's estimate (per stage + "total"); FoldingError if it does not fit."""
    dev = get_device(device)
    est = estimate_design(design, dev)
    if not fits(est["total"], dev, cap):
        raise too_large(est, dev, cap, what)
    return est


def _budget(target_fps: float, clock_mhz: float) -> int:
    """Cycles per frame allowed: floor(clock / target), forgiving float round-off (a target
    of clock / n FPS gives n)."""
    return int(floor(clock_mhz * 1e6 / target_fps * (1 + 1e-12))) if target_fps > 0 else 0


def fold_design(
    graph_or_design: Graph | DataflowDesign,
    target_fps: float,
    clock_mhz: float = 100.0,
    device: Device | str = "xc7z020",
    max_utilization: Utilization = 0.8,
    bram_prices: tuple[float, ...] = BRAM_PRICES,
    latency_slack: float = 0.0,
) -> FoldResult:
    """fold_for_target, returning the folded design and its estimates as well. bram_prices:
    the block-RAM prices to try (see BRAM_PRICES); (1.0,) prices BRAM by its share of the
    part, as a design split over several parts needs. latency_slack: the fraction of extra
    estimated cost accepted for a shorter latency (0: the cheapest folding)."""
    if not target_fps > 0:
        raise FoldingError(f"target FPS must be positive, got {target_fps!r}")
    prob = _Problem(graph_or_design, device)
    budget = _budget(target_fps, clock_mhz)
    if not latency_slack >= 0:
        raise FoldingError(f"latency slack must be a fraction >= 0, got {latency_slack!r}")
    result = (
        prob.fold(budget, clock_mhz, max_utilization, bram_prices, latency_slack)
        if budget >= 1
        else None
    )
    if result is None:
        mins = prob.min_cycles()
        name = max(mins, key=mins.get) if mins else "-"
        need = mins.get(name, 1)
        best = clock_mhz * 1e6 / max(need, 1)
        raise FoldingError(
            f"target {target_fps:.3g} FPS is not reachable at {clock_mhz:g} MHz "
            f"(a budget of {clock_mhz * 1e6 / target_fps:.3g} cycles/frame): stage '{name}' "
            f"needs at least {need} cycle{'s' if need != 1 else ''}/frame at its highest legal "
            f"parallelism; best achievable: {best:.1e} FPS"
        )
    cyc = result.design.cycles_per_frame()
    if cyc > budget:  # an unfoldable stage (DWC, FIFO, ...) is slower than the budget
        b = result.design.bottleneck()
        raise FoldingError(
            f"target {target_fps:.3g} FPS is not reachable at {clock_mhz:g} MHz: stage "
            f"'{b.name}' ({b.kind}) needs {cyc} cycles/frame > budget {budget}; best "
            f"achievable: {clock_mhz * 1e6 / cyc:.1e} FPS"
        )
    if not prob.fits(result.estimate["total"], max_utilization):
        raise prob.too_large(result, max_utilization, f"the design folded for {target_fps:.3g} FPS")
    return result


def fold_for_target(
    graph_or_design: Graph | DataflowDesign,
    target_fps: float,
    clock_mhz: float = 100.0,
    device: Device | str = "xc7z020",
    max_utilization: Utilization = 0.8,
    latency_slack: float = 0.0,
) -> dict:
    """Folding (FINN folding.json form) meeting `target_fps` at `clock_mhz` with the fewest
    estimated resources (or, with `latency_slack`, the shortest latency within that fraction
    more); raises FoldingError when the target is unreachable or the design does not fit
    `device` within `max_utilization`."""
    return fold_design(
        graph_or_design, target_fps, clock_mhz, device, max_utilization, latency_slack=latency_slack
    ).folding


def fold_max_fps_design(
    graph_or_design: Graph | DataflowDesign,
    clock_mhz: float = 100.0,
    device: Device | str = "xc7z020",
    max_utilization: Utilization = 0.8,
) -> FoldResult:
    """The fastest folding whose estimate fits `device` within `max_utilization`."""
    prob = _Problem(graph_or_design, device)
    floor = max(prob.min_cycles().values(), default=1)
    budgets = sorted({c.cycles for cs in prob.cands.values() for c in cs if c.cycles >= floor})
    budgets = budgets or [floor]

    def attempt(b: int) -> FoldResult | None:
        r = prob.fold(b, clock_mhz, max_utilization)
        if r is None:
            return None
        ok = r.design.cycles_per_frame() <= b and prob.fits(r.estimate["total"], max_utilization)
        return r if ok else None

    # resources fall as the budget grows: binary search for the smallest budget that fits
    lo, hi = 0, len(budgets) - 1
    best = attempt(budgets[hi])
    if best is None:
        chosen = prob.solve(budgets[hi])
        result = prob.build(chosen, budgets[hi], clock_mhz)
        raise prob.too_large(result, max_utilization, "even the most folded design")
    while lo < hi:
        mid = (lo + hi) // 2
        r = attempt(budgets[mid])
        if r is not None:
            best, hi = r, mid
        else:
            lo = mid + 1
    return best


def fold_max_fps(
    graph_or_design: Graph | DataflowDesign,
    clock_mhz: float = 100.0,
    device: Device | str = "xc7z020",
    max_utilization: Utilization = 0.8,
) -> dict:
    """Folding (FINN folding.json form) of the highest-throughput design that fits."""
    return fold_max_fps_design(graph_or_design, clock_mhz, device, max_utilization).folding


def minimality_violations(
    graph_or_design: Graph | DataflowDesign, folding: dict, budget_cycles: int
) -> list[str]:
    """Stages (with the parameter) whose parallelism can be lowered to its next smaller legal
    value without missing `budget_cycles` (empty: the folding is minimal). Also reports a
    folding that misses the budget."""
    graph = (
        graph_or_design.source if isinstance(graph_or_design, DataflowDesign) else graph_or_design
    )
    design = to_dataflow(graph, folding)
    out = []
    if design.cycles_per_frame() > budget_cycles:
        out.append(f"design needs {design.cycles_per_frame()} cycles > {budget_cycles}")
    for s in design.stages:
        if not s.fold_params:
            continue
        legal = s.legal_values()
        cur = {p: getattr(s, p.lower()) for p in s.fold_params}
        if s.kind == "Thresholding" and s.name in folding:
            cur["PE"] = folding[s.name].get("PE", s.pe)
        for p in s.fold_params:
            v = _prev(legal[p], cur[p])
            if v is None:
                continue
            st = s.refold({**cur, p: v})
            if st.cycles_per_frame() <= budget_cycles:
                out.append(f"{s.name}: {p}={cur[p]} -> {v} still meets {budget_cycles} cycles")
    return out


__all__ = [
    "FoldResult",
    "check_fits",
    "load_folding",
    "candidates",
    "fold_design",
    "fold_for_target",
    "fold_max_fps",
    "fold_max_fps_design",
    "minimality_violations",
]
