"""A self-contained report.html from a build's report (no scripts, no external assets)."""

from __future__ import annotations

import html
from pathlib import Path

from qloom.report.model import BuildReport

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}
h2{margin-top:1.5em}.muted{color:#777}
"""


def _fmt(v) -> str:
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


def bar_chart(title: str, items: list[tuple[str, float]], unit: str = "") -> str:
    """A horizontal bar chart as inline SVG."""
    items = [(k, float(v)) for k, v in items if v is not None]
    if not items:
        return ""
    width, bar_h, label_w = 640, 18, 220
    top = max(v for _, v in items) or 1.0
    h = bar_h * len(items) + 30
    parts = [
        f'<svg width="{width + label_w + 120}" height="{h}" role="img">',
        f'<text x="0" y="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (k, v) in enumerate(items):
        y = 24 + i * bar_h
        w = max(1.0, width * v / top)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" '
            f'font-size="12">{html.escape(k[:32])}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 4}" fill="#4a7bd0"/>'
        )
        parts.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="12">'
            f"{_fmt(v)} {html.escape(unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render(report: BuildReport | dict) -> str:
    """The page for a build's report (a BuildReport, or report.json's content)."""
    r = report if isinstance(report, BuildReport) else BuildReport.from_json(report)
    t, sim, stages = r.totals, r.sim, r.stages
    est = t.est if t else None
    synth = t.synth if t else None
    summary = [
        ["model", r.model],
        ["part", r.part],
        ["hardware input", r.input_domain.describe() if r.input_domain else None],
        ["clock (MHz)", r.clock_mhz],
        ["target FPS", r.target_fps],
        ["cycles / frame (formula)", t.cycles_per_frame if t else None],
        ["cycles / frame (RTL simulation)", sim.cycles_per_frame if sim else None],
        ["FPS at clock", t.fps_at_clock if t else None],
        ["latency (cycles, simulated)", sim.latency_cycles if sim else None],
        ["Fmax (MHz, nextpnr)", t.fmax_mhz if t else None],
        ["FPS at Fmax", t.fps_at_fmax if t else None],
        [
            "LUT estimated / synthesized",
            f"{_fmt(est.lut if est else None)} / {_fmt(synth.lut if synth else None)}",
        ],
        [
            "BRAM18 estimated / synthesized",
            f"{_fmt(est.bram if est else None)} / {_fmt(synth.bram if synth else None)}",
        ],
        ["RTL outputs equal to the integer model", sim.verdict if sim else None],
    ]
    head = ["stage", "kind", "PE", "SIMD", "ram", "cycles/frame", "LUT est", "LUT synth"]
    head += ["BRAM est", "BRAM synth", "FF est", "FF synth", "DSP"]
    rows = []
    for s in stages:
        f, y = s.folding, s.synth
        rows.append(
            [
                s.name,
                s.kind,
                f.get("PE"),
                f.get("SIMD"),
                f.get("ram_style"),
                s.cycles,
                s.est.lut,
                y.lut if y else None,
                s.est.bram,
                y.bram if y else None,
                s.est.ff,
                y.ff if y else None,
                y.dsp if y else None,
            ]
        )
    body = [
        f"<h1>qloom build: {html.escape(str(r.model))}</h1>",
        "<p class='muted'>times of this build: time_per_step.json</p>",
        "<h2>Summary</h2>",
        _table(summary, ["", ""]),
        "<h2>Stages</h2>",
        _table(rows, head),
        bar_chart("cycles per frame", [(s.name, s.cycles) for s in stages]),
        bar_chart(
            "LUTs per stage (synthesized, else estimated)",
            [(s.name, (s.synth or s.est).lut) for s in stages],
        ),
    ]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>qloom report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def write_html(report: BuildReport | dict, path: str | Path) -> Path:
    p = Path(path)
    p.write_text(render(report))
    return p
