"""A self-contained report.html from a build's report (no scripts, no external assets)."""

from __future__ import annotations

import html
from pathlib import Path

from qloom.report.model import BuildReport

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:100%}
table{border-collapse:collapse;margin:1em 0;max-width:100%}
td,th{border:1px solid #ccc;padding:3px 8px}.nm{overflow-wrap:anywhere}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
h2{margin-top:1.5em}.muted{color:#777}.bad{color:#b00;font-weight:bold}.good{color:#070}
svg{max-width:100%;height:auto}
"""
#: stage names longer than this are shortened in tables and charts (full name on hover)
NAME_CHARS = 40


class Raw(str):
    """A table cell that is already HTML (a link, a shortened name with its title)."""


def short_name(name: str, limit: int = NAME_CHARS) -> Raw:
    """`name` as HTML, its tail kept when it is long (Brevitas names differ at the end:
    /features/features.12/Conv), the full name on hover."""
    full = html.escape(name)
    if len(name) <= limit:
        return Raw(f"<span class='nm' title='{full}'>{full}</span>")
    return Raw(f"<span class='nm' title='{full}'>…{html.escape(name[-(limit - 1) :])}</span>")


def _fmt(v) -> str:
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v))


def _table(rows: list[list], head: list[str]) -> str:
    """An HTML table of `rows` (cells: numbers right-aligned, None as a dash)."""
    cells = "".join(f"<th>{html.escape(title)}</th>" for title in head)
    body = []
    for r in rows:
        tds = []
        for v in r:
            cls = ' class="n"' if isinstance(v, int | float) else ""
            tds.append(f"<td{cls}>{_fmt(v)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><tr>{cells}</tr>{''.join(body)}</table>"


def bar_chart(
    title: str,
    items: list[tuple[str, float]],
    unit: str = "",
    line: tuple[str, float] | None = None,
) -> str:
    """A horizontal bar chart as inline SVG; `line` = (label, value) draws a vertical
    reference line (the cycle budget of the target FPS in the pipeline-balance chart)."""
    items = [(k, float(v)) for k, v in items if v is not None]
    if not items:
        return ""
    width, bar_h, label_w = 640, 18, 220
    top = max([v for _, v in items] + ([line[1]] if line else [])) or 1.0
    h = bar_h * len(items) + 30
    parts = [
        f'<svg width="{width + label_w + 120}" height="{h}" role="img">',
        f'<text x="0" y="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (k, v) in enumerate(items):
        y = 24 + i * bar_h
        w = max(1.0, width * v / top)
        label = k if len(k) <= 32 else "…" + k[-31:]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" '
            f'font-size="12"><title>{html.escape(k)}</title>{html.escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 4}" fill="#4a7bd0"/>'
        )
        parts.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="12">'
            f"{_fmt(v)} {html.escape(unit)}</text>"
        )
    if line is not None:
        x = label_w + width * line[1] / top
        parts.append(
            f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{h}" stroke="#c33" '
            f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="14" font-size="12" '
            f'fill="#c33">{html.escape(line[0])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _timing(r: BuildReport) -> Raw | None:
    """Whether place and route met the clock, loudly when it did not."""
    p = r.pnr
    if p is None:
        return None
    if p.timing_met:
        return Raw(f"<span class='good'>met</span> on {html.escape(p.part)}: Fmax "
                   f"{_fmt(p.fmax_mhz)} MHz &ge; {_fmt(r.clock_mhz)} MHz")  # fmt: skip
    fmax = "no Fmax reported" if p.fmax_mhz is None else f"Fmax {_fmt(p.fmax_mhz)} MHz"
    return Raw(f"<span class='bad'>NOT MET</span> on {html.escape(p.part)}: {fmax} "
               f"&lt; {_fmt(r.clock_mhz)} MHz target")  # fmt: skip


def _utilization_table(r: BuildReport) -> str:
    """Per resource: the stages (estimated, synthesized), the glue FIFOs, the accelerator's
    total and its share of the part."""
    t = r.totals
    if t is None:
        return ""
    rows = []
    kinds = [("lut", "LUT"), ("ff", "FF"), ("bram", "BRAM18"), ("dsp", "DSP")]
    if t.accelerator.uram:  # run-time weights in UltraRAM
        kinds.append(("uram", "URAM288"))
    for key, title in kinds:
        est = t.est.to_json().get(key, 0)
        syn = t.synth.to_json().get(key, 0) if t.synth else None
        fifo = t.fifos.to_json().get(key, 0) if t.fifos else None
        total = t.accelerator.to_json().get(key, 0)
        pct = (t.utilization or {}).get(title.removesuffix("18").removesuffix("288"))
        rows.append([title, est, syn, fifo, total, None if pct is None else f"{pct:.1f} %"])
    head = ["", "stages (estimate)", "stages (Yosys)", f"glue FIFOs ({t.fifo_count or 0}, "
            "estimate)", "accelerator", f"of {r.part}"]  # fmt: skip
    return _table(rows, head)


def _links(r: BuildReport) -> str:
    """Links to what the build directory holds (relative: the page moves with the directory),
    decided from the report alone so that the page is the same wherever it is rendered."""
    files = ["report.json", "time_per_step.json", "build.log", "folding.json",
             "build_config.json", "design.json", "graphs/", "driver/"]  # fmt: skip
    if r.rtl is not None:
        files += ["rtl/", f"rtl/{r.rtl.top}.v", *r.rtl.deployment]
    if r.sim is not None:
        files.append("sim/result.json")
    if r.totals is not None and r.totals.synth is not None:
        files += ["synth/yosys_stages.json", "synth/vivado/"]
    if r.pnr is not None and r.pnr.bitstream:
        files.append(r.pnr.bitstream)
    if r.partition is not None:
        files += [f"{d.dir}/" for d in r.partition.devices]
    items = "".join(f"<li><a href='{html.escape(f)}'>{html.escape(f)}</a></li>" for f in files)
    return f"<ul>{items}</ul>"


DEVICE_HEAD = ["device", "part", "stages", "from .. to", "cycles/frame", "alone in RTL",
               "LUT / FF / BRAM / DSP of part"]  # fmt: skip
LINK_HEAD = ["link", "model", "Gbit/s", "stream", "bits/frame", "cycles/frame", "in RTL"]


def _partition_section(r: BuildReport) -> list[str]:
    """Where the pipeline is cut (qloom build --devices): each device with its stages and share
    of its part, and each link with the stream it carries and its cycles per frame."""
    p = r.partition
    if p is None:
        return []
    devices = []
    for d in p.devices:
        used = " / ".join(f"{v:.1f}" for v in d.utilization.values())
        first, last = short_name(d.stages[0]), short_name(d.stages[-1])
        sim = d.sim or {}
        used += " %" + (" (the last: URAM)" if "URAM" in d.utilization else "")
        devices.append([d.index, d.part, len(d.stages), Raw(f"{first} .. {last}"),
                        d.cycles_per_frame, sim.get("cycles_per_frame"), used])  # fmt: skip
    links = []
    for lk in p.links:
        sim = lk.sim or {}
        hop = f"{lk.index} -> {lk.index + 1}"
        links.append([hop, lk.name, lk.gbps, short_name(lk.stream), lk.bits_per_frame,
                      lk.cycles_per_frame, sim.get("cycles_per_frame")])  # fmt: skip
    return [
        "<h2>Devices (the pipeline cut across parts)</h2>",
        f"<p>chain: {_fmt(p.cycles_per_frame)} cycles per frame, bottleneck "
        f"{short_name(p.bottleneck)}; cap {_fmt(p.max_utilization)} of each part</p>",
        _table(devices, DEVICE_HEAD),
        _table(links, LINK_HEAD),
    ]


LATENCY_HEAD = ["stage / glue FIFO", "kind", "first input beat", "first output beat",
                "first beat", "last output beat", "latency sim", "latency"]  # fmt: skip


def _latency_section(r: BuildReport) -> list[str]:
    """The first simulated frame through every stage and glue FIFO, in pipeline order, and how
    the elements' first-beat delays add up to the simulated latency."""
    sim = r.sim
    if sim is None or not sim.latency_path:
        return []
    rows = []
    for s in sim.latency_path:
        name = short_name(s.name)
        if s.glue:
            name = Raw(f"<span class='muted'>{name}</span>")
        # a glue FIFO's first input .. last output beat is the stream's pace, not the FIFO's
        rows.append([name, s.kind, s.first_in, s.first_out, s.first_beat, s.last_out,
                     None if s.glue else s.latency, s.formula])  # fmt: skip
    total = sum(s.first_beat for s in sim.latency_path if s.first_beat is not None)
    note = (
        "<p class='muted'>The first frame, cycles from reset release. <b>first beat</b>: first "
        "output beat &minus; first input beat, what the element adds before the frame's first "
        "beat moves on; <b>latency sim</b>: first input beat .. last output beat, inclusive, as "
        "the <b>latency</b> formula counts (the formula assumes input beats one per cycle and "
        "an output never held back: a stage fed slower by the one before it, or held by the "
        "one after it, measures longer). Glue FIFOs are rows of their own (their first beat "
        "is what they add; the stage rows exclude them).</p>"
    )
    if sim.is_chain and sim.output_span is not None and sim.latency_cycles is not None:
        whole = total + sim.output_span
        formula = r.totals.latency_estimate_cycles if r.totals else None
        span = Raw("on the output port: last beat &minus; first + 1")
        rows.append([Raw("<b>output frame</b>"), span, None, None, sim.output_span, None,
                     None, None])  # fmt: skip
        rows.append([Raw("<b>whole design</b>"), Raw("&Sigma; first beat + output frame"),
                     None, None, whole, None, sim.latency_cycles, formula])  # fmt: skip
        note += (
            f"<p>Simulated latency = &Sigma; first beat over the stages and glue FIFOs "
            f"({_fmt(total)}) + the first output frame's span on the output port "
            f"({_fmt(sim.output_span)}) = {_fmt(whole)} cycles "
            f"(whole design: {_fmt(sim.latency_cycles)}). The formula's total chains the "
            "stage formulas with the stages overlapping (a stage starts on its input's first "
            "beat and ends after its last one).</p>"
        )
    else:
        note += (
            "<p class='muted'>The pipeline branches: along each path from the input to the "
            "output port the first beats add up to that path's first-beat delay.</p>"
        )
    return ["<h2>Latency of the first frame (RTL simulation)</h2>", note,
            _table(rows, LATENCY_HEAD)]  # fmt: skip


def _weights_row(r: BuildReport) -> list[list]:
    """A row for run-time weights (the top then needs its weight stream), none without."""
    if r.rtl is None or not r.rtl.weight_words:
        return []
    return [["run-time weights", f"{r.rtl.weight_words:,} words into s_axis_weights after "
             "reset (weights.bin)"]]  # fmt: skip


def render(report: BuildReport | dict) -> str:
    """The page for a build's report (a BuildReport, or report.json's content)."""
    r = report if isinstance(report, BuildReport) else BuildReport.from_json(report)
    t, sim, stages = r.totals, r.sim, r.stages
    budget = r.clock_mhz * 1e6 / r.target_fps if r.target_fps else None
    summary = [
        ["model", r.model],
        ["part", r.part],
        ["hardware input", r.input_domain.describe() if r.input_domain else None],
        ["clock (MHz)", r.clock_mhz],
        ["target FPS", r.target_fps],
        ["cycle budget / frame at the target", None if budget is None else round(budget)],
        ["cycles / frame (formula)", t.cycles_per_frame if t else None],
        ["cycles / frame (RTL simulation)", sim.cycles_per_frame if sim else None],
        ["bottleneck stage", short_name(t.bottleneck) if t else None],
        ["FPS at clock", t.fps_at_clock if t else None],
        ["latency (cycles, formula: stages overlapping)", t.latency_estimate_cycles if t else None],
        ["latency (cycles, simulated)", sim.latency_cycles if sim else None],
        ["Fmax (MHz, nextpnr)", t.fmax_mhz if t else None],
        ["timing", _timing(r) or "not placed and routed (--pnr PART)"],
        ["FPS at Fmax", t.fps_at_fmax if t else None],
        *_weights_row(r),
        ["simulated frames", f"{sim.frames:,} ({sim.inputs})" if sim else None],
        [
            f"RTL outputs equal to the {sim.reference if sim else 'integer model'}",
            sim.verdict if sim else None,
        ],
    ]
    if sim and sim.differ_from_integer is not None:
        summary.append(["frames where the don't-care tables differ from the integer model",
                     f"{sim.differ_from_integer:,} of {sim.frames:,}"])  # fmt: skip
    head = ["stage", "kind", "PE", "SIMD", "ram", "cycles/frame", "latency", "latency sim",
            "LUT est", "LUT synth", "BRAM est", "BRAM synth", "FF est", "FF synth",
            "DSP"]  # fmt: skip
    uram = any(s.est.uram for s in stages)  # run-time weights in UltraRAM: a column of its own
    if uram:
        head.insert(head.index("FF est"), "URAM est")
    rows = []
    for s in stages:
        f, y = s.folding, s.synth
        rows.append(
            [
                short_name(s.name),
                s.kind,
                f.get("PE"),
                f.get("SIMD"),
                f.get("ram_style"),
                s.cycles,
                s.latency,
                s.latency_simulated,
                s.est.lut,
                y.lut if y else None,
                s.est.bram,
                y.bram if y else None,
                *([s.est.uram] if uram else []),
                s.est.ff,
                y.ff if y else None,
                y.dsp if y else None,
            ]
        )
    fifo_rows = sorted((sim.fifo_depths if sim else {}).items())
    body = [
        f"<h1>qloom build: {html.escape(str(r.model))}</h1>",
        "<h2>Summary</h2>",
        _table(summary, ["", ""]),
        "<h2>Resources</h2>",
        _utilization_table(r),
        "<h2>Stages</h2>",
        "<p class='muted'>latency: the stage's formula in cycles, from a frame's first input "
        "beat to its last output beat; latency sim: the same span measured on the first frame "
        "in the RTL simulation (glue FIFOs excluded: see Latency below)</p>",
        _table(rows, head),
        bar_chart(
            "pipeline balance: cycles per frame per stage",
            [(s.name, s.cycles) for s in stages],
            line=(f"target {_fmt(budget)}", budget) if budget else None,
        ),
        bar_chart(
            "LUTs per stage (synthesized, else estimated)",
            [(s.name, (s.synth or s.est).lut) for s in stages],
        ),
    ]
    body += _latency_section(r)
    if fifo_rows:
        depths = [[short_name(k), v] for k, v in fifo_rows]
        body += ["<h2>Glue FIFO depths (sized by simulation)</h2>",
                 _table(depths, ["stream", "depth"])]  # fmt: skip
    body += _partition_section(r)
    body += ["<h2>Files</h2>", _links(r)]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>qloom report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def write_html(report: BuildReport | dict, path: str | Path) -> Path:
    p = Path(path)
    p.write_text(render(report))
    return p
