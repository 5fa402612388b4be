"""Scale-out: cut a folded pipeline into contiguous segments, one per FPGA, joined by links.

A streaming pipeline too large for one part can run on a chain of parts (Baskin et al.'s
streaming architecture, FINN's multi-FPGA dataflow): the stages keep their order along the
stream graph, each device gets a contiguous run of them, and the stream that crosses a cut
travels over a serial link to the next device. Throughput stays that of the slowest stage
*or link*, so a link is modelled like a stage: bits per frame over bits per cycle.

`partition(design, devices, links, cap, clock_mhz, budget_cycles)` chooses the cuts:

  1. fewest devices: the first k devices of the list (the chain, in board order) for the
     smallest k that holds every segment within the utilisation cap (the solver's `fits`,
     stage estimates of `qloom.fold.estimate`, the same test a one-part build makes; with
     `fifo_depths` (the glue FIFO depths FIFO sizing measured) each glue FIFO counts with the
     stage it feeds: frame-deep FIFOs of an early, wide layer can outweigh its stages);
  2. no link slower than needed: every link meets `budget_cycles` (the target's cycle
     budget) and, among those partitions, the slowest link is as fast as possible;
  3. balanced: the largest segment load (the fraction of the capped part it uses, its most
     used resource) is as small as possible, then the sum of squared loads.

Cuts lie where exactly one stream crosses (the design's input stream excluded): inside a
residual block both the main path and the bypass cross, and qloom does not cut there (a
segment top has one AXI-Stream input; a cut through a block would need one link per stream
and the bypass FIFO's frame of data on the far side). Between blocks, one stream crosses.

Links (`LinkModel`): a payload bandwidth in Gbit/s and a latency in cycles of the accelerator
clock. A stream wider than its link is serialised: the link needs
ceil(bits per frame / bits per cycle) cycles per frame (and at least one cycle per beat, the
AXI-Stream on either side moving one beat per cycle). Named links (`LINKS`), with the
assumptions they rest on:

  * aurora-10g: Xilinx Aurora 64B/66B on one GTH/GTY lane at 10.3125 Gbit/s line rate,
    64/66 encoding -> 10.0 Gbit/s of payload (the protocol's idle and clock-compensation
    words, < 0.1 %, ignored); latency 400 ns (order of the core's TX + RX pipeline with the
    transceivers, PG074, plus a short cable; not measured here).
  * qsfp28-100g: four such lanes at 25.78125 Gbit/s (QSFP28, 100GBASE-CR4-like), 64/66
    -> 100 Gbit/s of payload; latency 500 ns (same assumption).
  * eth-1g: a 1 Gbit/s Ethernet-like link (1000BASE-X / SGMII): 1,472-byte UDP payloads in
    1,538 bytes on the wire (preamble, headers, FCS, inter-frame gap) -> 0.957 Gbit/s;
    latency 2 us (MAC + PHY at both ends, no switch, no packetisation wait).

Not modelled: the resources of the link cores themselves (an Aurora lane takes ~1-2 k LUT
outside the cap), clock-domain crossings, bit errors and retransmission.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from qloom.dataflow.design import DataflowDesign
from qloom.dataflow.resources import ZERO
from qloom.dataflow.stage import StreamSpec
from qloom.errors import FoldingError
from qloom.fold.estimate import Resources, estimate_glue_fifo, estimate_stage
from qloom.fold.solver import RESOURCE_KINDS, Utilization, _caps, fits
from qloom.synth.devices import Device, get_device

#: the largest device count `--devices NxPART` accepts (a chain longer than this is a typo)
MAX_DEVICES = 64
#: denominators of link rates (bits per cycle) are limited to this, so that the simulation's
#: credit counter stays small; the formula uses the same rounded rate
_RATE_DENOMINATOR = 1 << 16


class PartitionError(FoldingError):
    """No chain of the given devices and links holds the design (the message says why)."""


# ------------------------------------------------------------------------------------------
# links
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkModel:
    """A serial link between two devices: payload bandwidth and latency.

    A named link states its latency in nanoseconds (converted at the build's clock); a link
    given as GBPS[:LATENCY] states it in cycles of the accelerator clock."""

    name: str
    gbps: float  # payload bits per second / 1e9
    latency_ns: float = 0.0
    latency_cycles_given: int | None = None
    description: str = ""

    def bits_per_cycle(self, clock_mhz: float) -> Fraction:
        """Payload bits the link moves per accelerator clock cycle (a rational number)."""
        rate = Fraction(repr(self.gbps)) * 1000 / Fraction(repr(float(clock_mhz)))
        return rate.limit_denominator(_RATE_DENOMINATOR)

    def latency_cycles(self, clock_mhz: float) -> int:
        """Cycles from a beat leaving one device to it arriving at the next."""
        if self.latency_cycles_given is not None:
            return self.latency_cycles_given
        return math.ceil(self.latency_ns * clock_mhz / 1000 - 1e-9)

    def cycles_per_frame(self, spec: StreamSpec, clock_mhz: float) -> int:
        """ceil(bits per frame / bits per cycle), and at least one cycle per beat."""
        bits = spec.width * spec.beats
        r = self.bits_per_cycle(clock_mhz)
        return max(spec.beats, math.ceil(Fraction(bits) / r))

    def describe(self, clock_mhz: float) -> str:
        r = float(self.bits_per_cycle(clock_mhz))
        return (
            f"{self.name}: {self.gbps:g} Gbit/s = {r:.4g} bits/cycle at {clock_mhz:g} MHz, "
            f"latency {self.latency_cycles(clock_mhz)} cycles"
        )


LINKS: dict[str, LinkModel] = {
    "aurora-10g": LinkModel(
        "aurora-10g", 10.0, 400.0, None,
        "Aurora 64B/66B, one GTH lane at 10.3125 Gbit/s line rate: 10 Gbit/s payload",
    ),
    "qsfp28-100g": LinkModel(
        "qsfp28-100g", 100.0, 500.0, None,
        "QSFP28, 4 lanes x 25.78125 Gbit/s, 64b/66b: 100 Gbit/s payload",
    ),
    "eth-1g": LinkModel(
        "eth-1g", 0.957, 2000.0, None,
        "1 Gbit/s Ethernet-like (1000BASE-X), UDP framing: 0.957 Gbit/s payload",
    ),
}  # fmt: skip
_LINK_ALIASES = {"aurora": "aurora-10g", "qsfp28": "qsfp28-100g", "100g": "qsfp28-100g",
                 "eth": "eth-1g", "1g": "eth-1g", "10g": "aurora-10g"}  # fmt: skip
DEFAULT_LINK = "aurora-10g"


def parse_link(text: str) -> LinkModel:
    """One link: NAME[:LATENCY] (a name of `LINKS`) or GBPS[:LATENCY], LATENCY in cycles."""
    spec = text.strip()
    name, _, lat = spec.partition(":")
    name = name.strip().lower()
    latency: int | None = None
    if lat.strip():
        try:
            latency = int(lat)
        except ValueError:
            latency = -1
        if latency < 0:
            raise PartitionError(
                f"--link {text}: the latency {lat!r} is not a whole number of cycles >= 0 "
                "(e.g. aurora-10g:40 or 2.5:100)"
            )
    key = _LINK_ALIASES.get(name, name)
    if key in LINKS:
        base = LINKS[key]
        if latency is None:
            return base
        return LinkModel(base.name, base.gbps, base.latency_ns, latency, base.description)
    try:
        gbps = float(name)
    except ValueError:
        gbps = None
    if gbps is None or not (math.isfinite(gbps) and gbps > 0):
        known = ", ".join(f"{n} ({m.gbps:g} Gbit/s)" for n, m in LINKS.items())
        raise PartitionError(
            f"--link {text}: not a known link nor a positive bandwidth in Gbit/s; known links: "
            f"{known}, or GBPS[:LATENCY_CYCLES] such as 2.5:100"
        )
    return LinkModel(f"{gbps:g}gbps", gbps, 0.0, latency if latency is not None else 0,
                     f"{gbps:g} Gbit/s payload")  # fmt: skip


def parse_links(text: str | Sequence[str] | None) -> list[LinkModel]:
    """`--link` as given: one link for every gap, or a comma-separated list, one per gap."""
    if text is None:
        return [LINKS[DEFAULT_LINK]]
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [i for i in items if str(i).strip()]
    if not items:
        raise PartitionError("--link: give a link name or a bandwidth, e.g. aurora-10g or 2.5")
    return [i if isinstance(i, LinkModel) else parse_link(str(i)) for i in items]


def parse_devices(text: str | Sequence[str | Device]) -> list[Device]:
    """`--devices` as given: parts in chain order, comma-separated; `NxPART` repeats a part
    (``4xxczu7ev`` = four xczu7ev; ``xc7a35t,2xxczu7ev``)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[Device] = []
    for item in items:
        if isinstance(item, Device):
            out.append(item)
            continue
        s = item.strip()
        if not s:
            continue
        m = re.fullmatch(r"(\d+)\s*[x*]\s*(.+)", s)
        count, part = (int(m.group(1)), m.group(2)) if m else (1, s)
        if count < 1:
            raise PartitionError(f"--devices {s}: a count of {count}; use 1 or more")
        out += [get_device(part)] * count
        if len(out) > MAX_DEVICES:
            raise PartitionError(f"--devices: more than {MAX_DEVICES} devices in the chain")
    if not out:
        raise PartitionError("--devices: no part given (e.g. --devices 4xxczu7ev)")
    return out


# ------------------------------------------------------------------------------------------
# the partition
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """The stages one device holds, as a design of its own (input: the stream that enters
    the segment; outputs: the stream that leaves it, or the design's outputs for the last)."""

    index: int
    device: Device
    design: DataflowDesign
    estimate: Resources  # the stages (the glue FIFOs are estimated from the generated top)
    load: float  # the most used resource as a fraction of what the cap allows (<= 1), glue
    # FIFOs included when the partition was given their depths

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.design.stages)

    @property
    def dirname(self) -> str:
        """The segment's directory under <build>/segments/."""
        return f"{self.index}_{self.device.name}"

    @property
    def cycles_per_frame(self) -> int:
        return self.design.cycles_per_frame()

    def utilization(self) -> dict[str, float]:
        """Percent of the part, per resource."""
        cap = self.device.capacity()
        used = self.estimate.as_dict()
        return {k: round(100.0 * used[k] / cap[k], 2) for k in RESOURCE_KINDS if cap.get(k)}


@dataclass(frozen=True)
class Link:
    """The link from segment `index` to segment `index + 1`, carrying `stream`."""

    index: int
    model: LinkModel
    stream: str
    spec: StreamSpec
    after_stage: str
    clock_mhz: float

    @property
    def bits_per_frame(self) -> int:
        return self.spec.width * self.spec.beats

    @property
    def bits_per_cycle(self) -> Fraction:
        return self.model.bits_per_cycle(self.clock_mhz)

    @property
    def latency_cycles(self) -> int:
        return self.model.latency_cycles(self.clock_mhz)

    @property
    def cycles_per_frame(self) -> int:
        return self.model.cycles_per_frame(self.spec, self.clock_mhz)

    @property
    def beat_delay(self) -> int:
        """Cycles a beat takes through an idle link: its serialisation, ceil(width / bits per
        cycle), then the latency (at least one cycle, a register)."""
        return math.ceil(Fraction(self.spec.width) / self.bits_per_cycle) + max(
            1, self.latency_cycles
        )

    def describe(self) -> str:
        return (
            f"link {self.index} ({self.model.name}, stream '{self.stream}' after stage "
            f"'{self.after_stage}': {self.bits_per_frame:,} bits/frame at "
            f"{float(self.bits_per_cycle):.4g} bits/cycle)"
        )


@dataclass(frozen=True)
class Partition:
    design: DataflowDesign  # the whole folded design
    segments: tuple[Segment, ...]
    links: tuple[Link, ...]
    clock_mhz: float

    def cycles_per_frame(self) -> int:
        """The chain's initiation interval: its slowest stage or link."""
        return max([self.design.cycles_per_frame()] + [lk.cycles_per_frame for lk in self.links])

    def bottleneck(self) -> str:
        """The slowest stage, or the slowest link when a link is slower ("link 0")."""
        slow = max(self.links, key=lambda lk: lk.cycles_per_frame, default=None)
        if slow is not None and slow.cycles_per_frame > self.design.cycles_per_frame():
            return f"link {slow.index} ({slow.model.name}, stream '{slow.stream}')"
        return self.design.bottleneck().name

    def fps(self) -> float:
        return self.clock_mhz * 1e6 / max(1, self.cycles_per_frame())

    def summary(self) -> str:
        lines = [
            f"{len(self.segments)} device(s), {self.cycles_per_frame()} cycles/frame "
            f"(bottleneck {self.bottleneck()})"
        ]
        for s in self.segments:
            lines.append(
                f"  segment {s.index} on {s.device.name}: {len(s.stages)} stages "
                f"({s.stages[0]} .. {s.stages[-1]}), {s.estimate}, "
                f"{100 * s.load:.0f} % of the cap, {s.cycles_per_frame} cycles/frame"
            )
            if s.index < len(self.links):
                lk = self.links[s.index]
                lines.append(
                    f"  -> {lk.describe()}: {lk.cycles_per_frame} cycles/frame, latency "
                    f"{lk.latency_cycles} cycles"
                )
        return "\n".join(lines)


def _crossing(design: DataflowDesign, k: int) -> list[str]:
    """The streams a cut before stage k carries: produced before it (or the design input)
    and used after it (or leaving the design)."""
    st = design.stages
    made = {design.input_stream} | {o for s in st[:k] for o in s.outputs}
    used = [i for s in st[k:] for i in s.inputs]
    used += [o for o in design.output_streams.values() if o in made]
    return list(dict.fromkeys(s for s in used if s in made))


def cut_points(design: DataflowDesign) -> dict[int, str]:
    """Stage index k -> the single stream a cut before stages[k] carries (only where exactly
    one stream crosses and it goes on into later stages)."""
    out = {}
    for k in range(1, len(design.stages)):
        x = _crossing(design, k)
        if len(x) == 1 and x[0] not in design.output_streams.values():
            out[k] = x[0]
    return out


def segment_design(design: DataflowDesign, lo: int, hi: int, index: int) -> DataflowDesign:
    """stages[lo:hi] as a design of its own: its input is the stream crossing the cut before
    lo, its output the one crossing the cut after hi (the design's outputs and host tail for
    the last segment), so that `generate_top` gives it AXI-Stream ports on the cut streams."""
    stages = design.stages[lo:hi]
    first = design.input_stream if lo == 0 else _crossing(design, lo)[0]
    if hi == len(design.stages):
        outs, shapes, host = dict(design.output_streams), dict(design.output_shapes), design.host
    else:
        (cut,) = _crossing(design, hi)
        spec = design.streams[cut]
        outs, shapes, host = {cut: cut}, {cut: (spec.beats, spec.elems)}, None
    names = [first] + [s for st in stages for s in (*st.inputs, *st.outputs)]
    streams = {s: design.streams[s] for s in dict.fromkeys(names)}
    return DataflowDesign(
        name=f"{design.name}_seg{index}",
        source=design.source,
        stages=stages,
        streams=streams,
        input_stream=first,
        output_streams=outs,
        output_shapes=shapes,
        host=host,
        meta={**design.meta, "segment": index, "of": design.name},
    )


def _load(total: Resources, device: Device, caps: dict[str, float]) -> float:
    """The most used resource as a fraction of what the cap allows (inf: none available)."""
    used, capd = total.as_dict(), device.capacity()
    worst = 0.0
    for k in RESOURCE_KINDS:
        if used[k]:
            avail = caps[k] * capd[k]
            worst = max(worst, used[k] / avail if avail > 0 else math.inf)
    if used.get("URAM"):  # run-time weights in UltraRAM: under the block RAM's cap, as `fits`
        avail = caps["BRAM"] * capd.get("URAM", 0)
        worst = max(worst, used["URAM"] / avail if avail > 0 else math.inf)
    return worst


def _resource_text(r: Resources) -> str:
    d = r.as_dict()
    return ", ".join(f"{k} {d[k]:,}" for k in RESOURCE_KINDS)


def _cap_text(cap: Utilization) -> str:
    caps = _caps(cap)
    if len(set(caps.values())) == 1:
        return f"{caps['LUT']:.0%} utilization"
    return "utilization " + ", ".join(f"{k} {v:.0%}" for k, v in caps.items())


class _Planner:
    """The dynamic programmes over cut positions (n stages, k devices: O(k n^2) each)."""

    def __init__(self, design, devices, links, cap, clock_mhz, fifo_depths=None):
        self.design, self.devices, self.cap, self.clock = design, devices, cap, clock_mhz
        self.caps = _caps(cap)
        self.n = len(design.stages)
        self.cuts = cut_points(design)
        self.links = links
        self.fifo_depths = fifo_depths
        kinds = {d.name: d for d in devices}
        self.stage_est = {
            n: [estimate_stage(s, d) for s in design.stages] for n, d in kinds.items()
        }
        self.est = {  # what a segment must hold: its stages and the glue FIFOs they read
            n: [r + _fifos_into(design, s, fifo_depths or {}, kinds[n])
                for s, r in zip(design.stages, self.stage_est[n], strict=True)]
            for n in kinds
        }  # fmt: skip
        self._seg: dict[tuple[str, int, int], tuple[Resources, float, bool]] = {}
        self._link: dict[tuple[int, int], int] = {}

    def link_model(self, gap: int) -> LinkModel:
        return self.links[gap] if gap < len(self.links) else self.links[-1]

    def link_cycles(self, gap: int, k: int) -> int:
        """Cycles per frame of the link in gap `gap` when the cut lies before stages[k]."""
        key = (min(gap, len(self.links) - 1), k)
        if key not in self._link:
            spec = self.design.streams[self.cuts[k]]
            self._link[key] = self.link_model(gap).cycles_per_frame(spec, self.clock)
        return self._link[key]

    def segment(self, dev: Device, lo: int, hi: int) -> tuple[Resources, float, bool]:
        """(estimate, load, fits) of stages[lo:hi] on `dev`."""
        key = (dev.name, lo, hi)
        if key not in self._seg:
            total = ZERO
            for r in self.est[dev.name][lo:hi]:
                total = total + r
            self._seg[key] = (total, _load(total, dev, self.caps), fits(total, dev, self.cap))
        return self._seg[key]

    def _starts(self, j: int, hi: int, max_link: float):
        """Start positions of segment j (0-based) ending at hi: 0 for the first, else a cut
        whose link (gap j - 1) is within max_link cycles."""
        if j == 0:
            return [0]
        return [lo for lo in self.cuts if lo < hi and self.link_cycles(j - 1, lo) <= max_link]

    def _ends(self, j: int, k: int) -> list[int]:
        return [self.n] if j == k - 1 else sorted(self.cuts)

    def minimax(self, k: int, max_link: float) -> float:
        """The smallest possible largest segment load over k segments (inf: none fits)."""
        best = {0: 0.0}  # cut position -> best max load of the segments before it
        for j in range(k):
            nxt: dict[int, float] = {}
            for hi in self._ends(j, k):
                for lo in self._starts(j, hi, max_link):
                    if lo not in best:
                        continue
                    _, load, ok = self.segment(self.devices[j], lo, hi)
                    if ok:
                        v = max(best[lo], load)
                        if v < nxt.get(hi, math.inf):
                            nxt[hi] = v
            best = nxt
        return best.get(self.n, math.inf)

    def balanced(self, k: int, max_link: float, max_load: float) -> list[int]:
        """Cut positions of the k-segment plan with every load <= max_load and the smallest
        sum of squared loads (the tie-break among the most balanced plans)."""
        limit = max_load + 1e-9
        best: dict[int, tuple[float, list[int]]] = {0: (0.0, [])}
        for j in range(k):
            nxt: dict[int, tuple[float, list[int]]] = {}
            for hi in self._ends(j, k):
                for lo in self._starts(j, hi, max_link):
                    if lo not in best:
                        continue
                    _, load, ok = self.segment(self.devices[j], lo, hi)
                    if ok and load <= limit:
                        v = best[lo][0] + load * load
                        if hi not in nxt or v < nxt[hi][0] - 1e-12:
                            nxt[hi] = (v, best[lo][1] + ([lo] if j else []))
            best = nxt
        return best[self.n][1]

    def link_levels(self, k: int) -> list[float]:
        """The distinct link cycle counts a k-segment plan can have, slowest last."""
        levels = {self.link_cycles(g, c) for g in range(k - 1) for c in self.cuts}
        return sorted(levels) or [0]


def _fifos_into(design: DataflowDesign, stage, depths: Mapping[str, int], dev: Device):
    """The glue FIFOs (at `depths`, by stream) on the input streams of `stage`."""
    total = ZERO
    for s in stage.inputs:
        if depths.get(s, 0) > 0:
            total = total + estimate_glue_fifo(f"{s}_fifo", design.streams[s], depths[s], dev)
    return total


def partition(
    design: DataflowDesign,
    devices: Sequence[Device | str] | str,
    links: Sequence[LinkModel | str] | str | None = None,
    cap: Utilization = 0.8,
    clock_mhz: float = 100.0,
    budget_cycles: int | None = None,
    what: str = "the design",
    fifo_depths: Mapping[str, int] | None = None,
) -> Partition:
    """Cut `design` into contiguous segments on the first k of `devices` (see the module
    docstring for the choice); `links` gives the link model of each gap (one for all, or one
    per gap). `budget_cycles` (the folding target's cycles per frame) bounds every link.
    `fifo_depths`: glue FIFO depths by stream (`qloom.sim.design.size_fifos`), counted with
    the stages they feed.

    Raises PartitionError naming the stage that fits no device, the link that cannot meet the
    budget (with the best FPS it allows), or the number of devices that would be needed."""
    devs = parse_devices(devices)
    lks = parse_links(links)
    if len(lks) > 1 and len(lks) < len(devs) - 1:
        raise PartitionError(
            f"--link gives {len(lks)} links for a chain of {len(devs)} devices: give one link "
            f"for every gap ({len(devs) - 1}) or a single link for all"
        )
    if not design.stages:
        raise PartitionError(f"{what} has no hardware stages to place")
    plan = _Planner(design, devs, lks, cap, clock_mhz, fifo_depths)
    _check_stages(plan, what)
    limit = math.inf if budget_cycles is None else float(budget_cycles)
    k = next((k for k in range(1, len(devs) + 1) if plan.minimax(k, limit) < math.inf), None)
    if k is None:
        if budget_cycles is not None:
            free = next(
                (k for k in range(1, len(devs) + 1) if plan.minimax(k, math.inf) < math.inf),
                None,
            )
            if free is not None:
                raise _link_error(plan, free, budget_cycles, what)
        raise _too_few_error(plan, what, budget_cycles)
    # the slowest link as fast as possible (a link slower than every stage slows the chain)
    floor = design.cycles_per_frame()
    levels = [v for v in plan.link_levels(k) if v <= limit]
    max_link = limit
    for v in [floor] + [v for v in levels if v > floor]:
        if plan.minimax(k, v) < math.inf:
            max_link = v
            break
    load = plan.minimax(k, max_link)
    cuts = plan.balanced(k, max_link, load)
    return _assemble(plan, cuts)


def _assemble(plan: _Planner, cuts: list[int]) -> Partition:
    design = plan.design
    bounds = [0, *cuts, plan.n]
    segments = []
    for i, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False)):
        _, load, _ = plan.segment(plan.devices[i], lo, hi)
        stages = ZERO
        for r in plan.stage_est[plan.devices[i].name][lo:hi]:
            stages = stages + r
        sub = segment_design(design, lo, hi, i)
        segments.append(Segment(i, plan.devices[i], sub, stages, load))
    links = tuple(
        Link(i, plan.link_model(i), s, design.streams[s], design.stages[c - 1].name, plan.clock)
        for i, c in enumerate(cuts)
        for s in (plan.cuts[c],)
    )
    return Partition(design, tuple(segments), links, plan.clock)


def _check_stages(plan: _Planner, what: str) -> None:
    """A stage that alone fits none of the devices: name it and its estimate."""
    kinds = list({d.name: d for d in plan.devices}.values())
    for i, st in enumerate(plan.design.stages):
        if any(plan.segment(d, i, i + 1)[2] for d in kinds):
            continue
        best = min(kinds, key=lambda d: plan.segment(d, i, i + 1)[1])
        est = plan.est[best.name][i]
        fifos = est != plan.stage_est[best.name][i]
        with_fifos = " with the glue FIFOs it reads" if fifos else ""
        advice = (
            "Fold it further (a lower --target-fps), raise --max-utilization or add a larger "
            "part to --devices"
        )
        bits = st.memory_bits()
        room = plan.caps["BRAM"] * best.bram_bits + plan.caps["LUT"] * best.luts * 64
        if bits > room:  # no folding helps: its memories outgrow block RAM and LUTRAM
            advice = (
                f"Its memories hold {bits / 1e6:.1f} Mbit, more than {best.name}'s block RAM "
                "and LUTs can store at the cap whatever the folding: add a part with more "
                "block RAM to --devices, quantize its weights to fewer bits, or raise "
                "--max-utilization"
            )
        raise PartitionError(
            f"stage '{st.name}' ({st.kind}){with_fifos} alone does not fit any of the devices at "
            f"{_cap_text(plan.cap)}: estimated {_resource_text(est)} on {best.name}, which "
            f"offers {_offer_text(est, best, plan.caps)}. {advice}"
        )


def _offer_text(est: Resources, dev: Device, caps: Mapping[str, float]) -> str:
    used, capd = est.as_dict(), dev.capacity()
    parts = []
    for k in RESOURCE_KINDS:
        avail = int(caps[k] * capd[k])
        parts.append(f"{k} {avail:,}" + (" (over)" if used[k] > avail else ""))
    return ", ".join(parts)


def _link_error(plan: _Planner, k: int, budget: int, what: str) -> PartitionError:
    """Every partition that fits needs a link slower than the budget: name the slowest link
    of the best one and the FPS it allows."""
    levels = plan.link_levels(k)
    max_link = next(v for v in levels + [math.inf] if plan.minimax(k, v) < math.inf)
    load = plan.minimax(k, max_link)
    part = _assemble(plan, plan.balanced(k, max_link, load))
    slow = max(part.links, key=lambda lk: lk.cycles_per_frame)
    best = plan.clock * 1e6 / slow.cycles_per_frame
    target = plan.clock * 1e6 / budget
    faster = [n for n, m in sorted(LINKS.items(), key=lambda kv: kv[1].gbps)
              if m.gbps > slow.model.gbps]  # fmt: skip
    hint = f"a faster link (--link {' or '.join(faster)})" if faster else "a faster link"
    return PartitionError(
        f"{slow.describe()} needs {slow.cycles_per_frame:,} cycles/frame, more than the "
        f"budget of {budget:,} cycles/frame for {target:,.0f} FPS at {plan.clock:g} MHz: it "
        f"allows at most {best:,.0f} FPS. Use {hint}, a target <= {best:,.0f} FPS, or larger "
        f"devices (fewer cuts; {what} needs {k} of the given ones)"
    )


def _too_few_error(plan: _Planner, what: str, budget: int | None) -> PartitionError:
    """The chain is too short: say how many devices would do, or which uncuttable group of
    stages fits no device."""
    devs, n = plan.devices, plan.n
    total = ZERO
    for r in plan.est[devs[0].name]:
        total = total + r
    limit = math.inf if budget is None else float(budget)
    longer = _Planner(plan.design, list(devs) + [devs[-1]] * n, plan.links, plan.cap, plan.clock,
                      plan.fifo_depths)  # fmt: skip
    need = next(
        (k for k in range(len(devs) + 1, len(devs) + n + 1) if longer.minimax(k, limit) < math.inf),
        None,
    )
    names = ", ".join(d.name for d in devs)
    head = (
        f"{what} does not fit {len(devs)} device(s) ({names}) at {_cap_text(plan.cap)}: "
        f"estimated total {_resource_text(total)}"
        + (" with the glue FIFOs" if plan.fifo_depths else "")
    )
    if need is not None:
        return PartitionError(
            f"{head}; it needs {need} ({need - len(devs)} more {devs[-1].name}). Give more "
            f"devices (e.g. --devices {need}x{devs[-1].name}), raise --max-utilization or "
            "lower the target"
        )
    # some run of stages between two possible cuts fits no device
    bounds = [0, *sorted(plan.cuts), n]
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        if not any(plan.segment(d, lo, hi)[2] for d in {d.name: d for d in devs}.values()):
            est = plan.segment(devs[0], lo, hi)[0]
            st = plan.design.stages
            return PartitionError(
                f"{head}; stages '{st[lo].name}' .. '{st[hi - 1].name}' cannot be cut apart "
                f"(more than one stream crosses between them, e.g. a residual block: qloom "
                f"cuts only where a single stream crosses) and together need "
                f"{_resource_text(est)}, more than any of the devices offers. Use a larger "
                "part, raise --max-utilization or lower the target"
            )
    return PartitionError(f"{head}; no chain of these parts and links holds it")


__all__ = [
    "DEFAULT_LINK",
    "LINKS",
    "Link",
    "LinkModel",
    "Partition",
    "PartitionError",
    "Segment",
    "cut_points",
    "parse_devices",
    "parse_link",
    "parse_links",
    "partition",
    "segment_design",
]
