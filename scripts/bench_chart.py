#!/usr/bin/env python3
"""Turns the criterion output of `cargo bench` into rows of docs/performance.md's table and
docs/bench.svg.

Reads target/criterion/**/new/{benchmark,estimates}.json (medians), prints the verify, layer and
mint rows of the "Current figures" table in docs/performance.md — each figure with its ratio to
the baseline measured in the same run — and writes a bar chart as SVG. With --from-doc it takes
the figures from that table instead (to redraw the chart without running the benches). Standard
library only.

    cargo bench --bench verify --bench layer --bench mint -- --warm-up-time 1 --measurement-time 3
    python3 scripts/bench_chart.py [target/criterion] [docs/bench.svg]
    python3 scripts/bench_chart.py --from-doc [--doc docs/performance.md] [docs/bench.svg]

Check the drawing after a change: `rsvg-convert -o /tmp/bench.png docs/bench.svg` (Debian:
librsvg2-bin) and look at it — nothing may reach past the right edge.
"""

import argparse
import json
import pathlib
import re
import sys
from xml.sax.saxutils import escape

# One row per figure: (label in docs/performance.md's table, chart label, baseline named on the
# chart, target ratio).
ROWS = [
    ("verify a Core access token (`Jwt::verify` vs `jsonwebtoken::decode`)",
     "verify an access token", "jsonwebtoken::decode", 0.5),
    ("refuse a bad signature",
     "refuse a bad signature", "jsonwebtoken::decode", None),
    ("layer: latency added over a bare stack (vs tower-http + `jsonwebtoken`)",
     "layer: latency added", "tower-http + jsonwebtoken", 0.4),
    ("mint a login pair (`issue_pair` vs 2 × `encode`)",
     "mint a login pair", "2 × jsonwebtoken::encode", 1.2),
    ("mint a refreshed access token (`issue_access` vs 1 × `encode`)",
     "mint a refreshed token", "jsonwebtoken::encode", None),
]


def criterion_figures(root):
    """[(ours ns, baseline ns, ratio)] per row of ROWS, and the bare stack and login extras."""
    m = {}
    for est in root.glob("**/new/estimates.json"):
        meta = json.loads((est.parent / "benchmark.json").read_text())
        m[(meta["group_id"], meta["function_id"])] = json.loads(est.read_text())["median"][
            "point_estimate"]

    def get(group, name):
        value = m.get((group, name))
        if value is None:
            sys.exit(f"missing criterion result {group}/{name}: run the benches first")
        return value

    bare = get("layer", "bare")
    pairs = [
        (get("verify", "tower-jwt-login"), get("verify", "jsonwebtoken")),
        (get("verify", "tower-jwt-login bad signature"), get("verify", "jsonwebtoken bad signature")),
        (get("layer", "JwtAuthLayer") - bare, get("layer", "tower-http + jsonwebtoken") - bare),
        (get("mint", "tower-jwt-login issue_pair"), get("mint", "jsonwebtoken 2x encode")),
        (get("mint", "tower-jwt-login issue_access"), get("mint", "jsonwebtoken encode")),
    ]
    figures = [(ours, base, ours / base) for ours, base in pairs]
    extras = [f"bare stack: {fmt(bare)}"]
    for key in [("login", "LoginService PlaintextUser"), ("login", "RefreshService"),
                ("login-argon2", "LoginService Argon2Store")]:
        if key in m:
            extras.append(f"{key[0]}/{key[1]}: {fmt(m[key])}")
    return figures, extras


UNITS = {"ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def parse_time(text):
    match = re.fullmatch(r"\s*([0-9.]+)\s*(ns|µs|us|ms|s)\s*", text)
    if not match:
        sys.exit(f"not a time: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def doc_figures(doc):
    """The same figures, read back from the table in `doc` (the rows this script prints). The
    ratio is the table's own, computed from the unrounded medians."""
    cells = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            row = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(row) >= 4:
                cells[row[0]] = row
    figures = []
    for label, *_ in ROWS:
        row = cells.get(label)
        if row is None:
            sys.exit(f"{doc}: no table row {label!r}")
        figures.append((parse_time(row[1]), parse_time(row[2]), float(row[3])))
    return figures


def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def text_width(text, size):
    """A generous estimate of rendered width (DejaVu Sans is among the widest sans fonts)."""
    return len(text) * size * 0.62


def svg(figures):
    blue, grey, ink, faint = "#2b7bb9", "#b4b4b4", "#222222", "#666666"
    width = 780
    left = 250                   # row labels
    scale = 380                  # px for ratio 1.0 (the baseline bar)
    label_gap = 6
    bar_h, row_gap = 15, 30
    top = 96                     # first row
    axis_h = 30
    height = top + len(figures) * (2 * bar_h + row_gap) - row_gap + axis_h + 10

    p = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Verdana, sans-serif" '
        f'font-size="12" fill="{ink}">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="12" y="22" font-size="15" font-weight="bold">'
        'tower-jwt-login vs the usual Rust stack: median time per operation</text>',
        f'<text x="12" y="41" fill="{faint}">Relative to the baseline measured in the same '
        'criterion run (baseline = 1.00); shorter is better.</text>',
        # Legend.
        f'<rect x="12" y="54" width="14" height="14" fill="{blue}"/>',
        '<text x="32" y="65">tower-jwt-login</text>',
        f'<rect x="162" y="54" width="14" height="14" fill="{grey}"/>',
        '<text x="182" y="65">baseline (named under each row)</text>',
        f'<text x="440" y="65" fill="{faint}">label: ratio (median time)</text>',
    ]
    rows_bottom = top + len(figures) * (2 * bar_h + row_gap) - row_gap
    # Grid: ratio 0, 0.25 … 1.0.
    for i in range(5):
        r = i / 4
        x = left + scale * r
        p.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{rows_bottom + 4}" '
                 f'stroke="#e3e3e3" stroke-width="1"/>')
        p.append(f'<text x="{x:.1f}" y="{rows_bottom + 18}" text-anchor="middle" '
                 f'fill="{faint}" font-size="11">{r:.2f}</text>')
    p.append(f'<text x="{left - 26}" y="{rows_bottom + 18}" text-anchor="end" fill="{faint}" '
             f'font-size="11">ratio to baseline:</text>')

    y = top
    for (_, name, baseline, target), (ours, base, r) in zip(ROWS, figures):
        sub = [f"vs {baseline}"]
        if target is not None:
            sub.append(f"target: ratio ≤ {target} {'✓' if r <= target else '✗'}")
        p.append(f'<text x="12" y="{y + 12}" font-weight="bold">{escape(name)}</text>')
        for i, line in enumerate(sub):
            p.append(f'<text x="12" y="{y + 27 + 14 * i}" fill="{faint}" font-size="11">'
                     f'{escape(line)}</text>')
        bars = [(r, ours, blue, y), (1.0, base, grey, y + bar_h)]
        for ratio, ns, colour, by in bars:
            w = scale * min(ratio, 1.25)
            label = f"{ratio:.2f} ({fmt(ns)})"
            p.append(f'<rect x="{left}" y="{by}" width="{w:.1f}" height="{bar_h - 1}" '
                     f'fill="{colour}"/>')
            p.append(f'<text x="{left + w + label_gap:.1f}" y="{by + bar_h - 3}">'
                     f'{escape(label)}</text>')
            right = left + w + label_gap + text_width(label, 12)
            if right > width - 8:
                sys.exit(f"chart too narrow: {label!r} would end at {right:.0f} px of {width}")
        if max([text_width(name, 12)] + [text_width(t, 11) for t in sub]) > left - 20:
            sys.exit(f"row label too long for the label column: {name!r} / {sub!r}")
        y += 2 * bar_h + row_gap
    p.append("</svg>")
    return "\n".join(p) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-doc", action="store_true",
                    help="take the figures from the table of --doc instead of criterion's output")
    ap.add_argument("--doc", type=pathlib.Path, default=pathlib.Path("docs/performance.md"),
                    help="the document whose table --from-doc reads (default: %(default)s)")
    ap.add_argument("paths", nargs="*", help="[criterion dir] [svg] (without --from-doc) or [svg]")
    args = ap.parse_args()

    if args.from_doc:
        if len(args.paths) > 1:
            ap.error("with --from-doc, only the SVG path may follow")
        out = pathlib.Path(args.paths[0] if args.paths else "docs/bench.svg")
        figures, extras = doc_figures(args.doc), []
    else:
        if len(args.paths) > 2:
            ap.error("at most a criterion directory and an SVG path")
        root = pathlib.Path(args.paths[0] if args.paths else "target/criterion")
        out = pathlib.Path(args.paths[1] if len(args.paths) > 1 else "docs/bench.svg")
        figures, extras = criterion_figures(root)

    print("| measure | tower-jwt-login | baseline | ratio |")
    print("|---|---:|---:|---:|")
    for (label, _, _, _), (ours, base, ratio) in zip(ROWS, figures):
        print(f"| {label} | {fmt(ours)} | {fmt(base)} | {ratio:.2f} |")
    if extras:
        print()
        print("\n".join(extras))

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(svg(figures), encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
