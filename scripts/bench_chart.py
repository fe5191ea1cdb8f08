#!/usr/bin/env python3
"""Turns the criterion output of `cargo bench` into the README's table and docs/bench.svg.

Reads target/criterion/**/new/{benchmark,estimates}.json (medians), prints a Markdown table of
each figure as a ratio to its baseline measured in the same run, and writes a small SVG bar
chart. Standard library only.

    cargo bench --bench verify --bench layer --bench mint -- --warm-up-time 1 --measurement-time 3
    python3 scripts/bench_chart.py [target/criterion] [docs/bench.svg]
"""

import json
import pathlib
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
SVG = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "docs/bench.svg")


def medians():
    out = {}
    for est in ROOT.glob("**/new/estimates.json"):
        meta = json.loads((est.parent / "benchmark.json").read_text())
        median = json.loads(est.read_text())["median"]["point_estimate"]
        out[(meta["group_id"], meta["function_id"])] = median
    return out


def fmt(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main():
    m = medians()

    def get(group, name):
        value = m.get((group, name))
        if value is None:
            sys.exit(f"missing criterion result {group}/{name}: run the benches first")
        return value

    bare = get("layer", "bare")
    rows = [
        # (what, ours, baseline, target)
        ("verify a Core access token", get("verify", "tower-jwt-login"),
         get("verify", "jsonwebtoken"), 0.5),
        ("refuse a bad signature", get("verify", "tower-jwt-login bad signature"),
         get("verify", "jsonwebtoken bad signature"), None),
        ("layer: added latency over bare", get("layer", "JwtAuthLayer") - bare,
         get("layer", "tower-http + jsonwebtoken") - bare, 0.4),
        ("mint a login pair", get("mint", "tower-jwt-login issue_pair"),
         get("mint", "jsonwebtoken 2x encode"), 1.2),
        ("mint a refreshed access token", get("mint", "tower-jwt-login issue_access"),
         get("mint", "jsonwebtoken encode"), None),
    ]
    print("| measure | tower-jwt-login | baseline | ratio | target |")
    print("|---|---:|---:|---:|---:|")
    for what, ours, base, target in rows:
        ratio = ours / base
        verdict = "—" if target is None else f"≤ {target} {'✓' if ratio <= target else '✗'}"
        print(f"| {what} | {fmt(ours)} | {fmt(base)} | {ratio:.2f} | {verdict} |")
    print(f"\nbare stack: {fmt(bare)}")
    for key in [("login", "LoginService PlaintextUser"), ("login", "RefreshService"),
                ("login-argon2", "LoginService Argon2Store")]:
        if key in m:
            print(f"{key[0]}/{key[1]}: {fmt(m[key])}")

    # The chart: one pair of bars per row, scaled to the row's baseline (= 1.0).
    width, left, bar_h, gap = 640, 230, 14, 16
    scale = (width - left - 60) / 1.0
    height = 40 + len(rows) * (2 * bar_h + gap)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="18" font-weight="bold">Median time relative to the baseline '
        '(jsonwebtoken / tower-http + jsonwebtoken = 1.0); shorter is better</text>',
    ]
    y = 32
    for what, ours, base, _ in rows:
        r = ours / base
        parts.append(f'<text x="10" y="{y + bar_h + 4}">{what}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{scale * min(r, 1.0):.1f}" '
                     f'height="{bar_h}" fill="#2b7bb9"/>')
        parts.append(f'<text x="{left + scale * min(r, 1.0) + 4:.1f}" y="{y + 11}">'
                     f'{r:.2f} ({fmt(ours)})</text>')
        parts.append(f'<rect x="{left}" y="{y + bar_h}" width="{scale:.1f}" height="{bar_h}" '
                     f'fill="#bbbbbb"/>')
        parts.append(f'<text x="{left + scale + 4:.1f}" y="{y + bar_h + 11}">'
                     f'1.00 ({fmt(base)})</text>')
        y += 2 * bar_h + gap
    parts.append("</svg>")
    SVG.parent.mkdir(parents=True, exist_ok=True)
    SVG.write_text("\n".join(parts) + "\n")
    print(f"\nwrote {SVG}")


if __name__ == "__main__":
    main()
