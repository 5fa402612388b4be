"""A self-contained report.html from a build's report.json (no scripts, no external assets)."""

from __future__ import annotations

import html
from pathlib import Path

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


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in cols)
    body = []
    for r in rows:
        cells = []
        for key, _ in cols:
            v = r
            for part in key.split("."):
                v = v.get(part) if isinstance(v, dict) else None
            cls = ' class="n"' if isinstance(v, int | float) else ""
            cells.append(f"<td{cls}>{_fmt(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


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


def _domain(d: dict | None) -> str | None:
    return f"{d['hardware_type']} integers, {d['source']}" if d else None


def render(report: dict) -> str:
    t = report.get("totals", {})
    stages = report.get("stages", [])
    summary = [
        {"k": "model", "v": report.get("model")},
        {"k": "part", "v": report.get("part")},
        {"k": "hardware input", "v": _domain(report.get("input_domain"))},
        {"k": "clock (MHz)", "v": report.get("clock_mhz")},
        {"k": "target FPS", "v": report.get("target_fps")},
        {"k": "cycles / frame (formula)", "v": t.get("cycles_per_frame")},
        {
            "k": "cycles / frame (RTL simulation)",
            "v": report.get("sim", {}).get("cycles_per_frame"),
        },
        {"k": "FPS at clock", "v": t.get("fps_at_clock")},
        {"k": "latency (cycles, simulated)", "v": report.get("sim", {}).get("latency_cycles")},
        {"k": "Fmax (MHz, nextpnr)", "v": t.get("fmax_mhz")},
        {"k": "FPS at Fmax", "v": t.get("fps_at_fmax")},
        {
            "k": "LUT estimated / synthesized",
            "v": f"{_fmt(t.get('est', {}).get('lut'))} / {_fmt(t.get('synth', {}).get('lut'))}",
        },
        {
            "k": "BRAM18 estimated / synthesized",
            "v": f"{_fmt(t.get('est', {}).get('bram'))} / {_fmt(t.get('synth', {}).get('bram'))}",
        },
        {"k": "RTL outputs equal to the integer model", "v": report.get("sim", {}).get("verdict")},
    ]
    cols = [
        ("name", "stage"),
        ("kind", "kind"),
        ("folding.PE", "PE"),
        ("folding.SIMD", "SIMD"),
        ("folding.ram_style", "ram"),
        ("cycles", "cycles/frame"),
        ("est.lut", "LUT est"),
        ("synth.lut", "LUT synth"),
        ("est.bram", "BRAM est"),
        ("synth.bram", "BRAM synth"),
        ("est.ff", "FF est"),
        ("synth.ff", "FF synth"),
        ("synth.dsp", "DSP"),
    ]
    body = [
        f"<h1>qloom build: {html.escape(str(report.get('model')))}</h1>",
        "<p class='muted'>times of this build: time_per_step.json</p>",
        "<h2>Summary</h2>",
        _table(summary, [("k", ""), ("v", "")]),
        "<h2>Stages</h2>",
        _table(stages, cols),
        bar_chart("cycles per frame", [(s["name"], s.get("cycles")) for s in stages]),
        bar_chart(
            "LUTs per stage (synthesized, else estimated)",
            [
                (s["name"], (s.get("synth") or {}).get("lut", (s.get("est") or {}).get("lut")))
                for s in stages
            ],
        ),
    ]
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>qloom report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def write_html(report: dict, path: str | Path) -> Path:
    p = Path(path)
    p.write_text(render(report))
    return p
