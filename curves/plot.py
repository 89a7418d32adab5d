#!/usr/bin/env python3
"""Draws one criterion benchmark group, or one curve file a bench wrote, as an SVG line chart.

Reads what `cargo bench` left in target/criterion/<group>/: every benchmark of the group whose
parameter is a number (criterion's `BenchmarkId::new(function, size)`), or whose name ends in
`/N` or `_N`, one line per function, the median estimate of each size as a point. Both axes
are logarithmic by default, so a constant cost is flat, a linear one a straight line of slope
1 and a logarithmic one a curve that flattens. Standard library only.

    python3 curves/plot.py GROUP OUT.svg [--criterion target/criterion] [--title TEXT]
                           [--linear-y] [--note TEXT]
    python3 curves/plot.py --json CURVE.json OUT.svg [--title TEXT] [--linear-y] [--note TEXT]

Example, after `cargo bench -p dmabuf --bench chain`:

    python3 curves/plot.py chain_lookup curves/chain_lookup.svg \
        --title "timeline point lookup (find_seqno) vs pending points"

With --json, the points come from a file a bench's own interleaved pass wrote (under
target/curves/, through dmabuf-testkit's `write_curve`), for measures criterion's groups do not
hold:

    {"title": "the chart's title",
     "x": "the x axis's name, e.g. lock classes",
     "y": "the y axis's name with its unit, e.g. added ns per lock+unlock",
     "lines": {"one line's name": [[x, y], ...], ...}}

The lines are drawn in the file's order, the x values of the points are the x axis's ticks and
the y values are plain numbers in the unit the "y" name gives. Example, after
`cargo bench -p dmabuf-lockdep --bench lockdep -- interleaved`:

    python3 curves/plot.py --json target/curves/validator_classes.json \
        curves/validator_classes.svg
"""

import argparse
import html
import json
import math
import pathlib
import sys

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
WIDTH, HEIGHT = 720, 440
LEFT, RIGHT, TOP, BOTTOM = 80, 200, 50, 60


def load(root, group):
    """{function: [(size, median ns)]} of the group's benchmarks with numeric parameters."""
    lines = {}
    base = root / group.replace("/", "_")
    if not base.is_dir():
        sys.exit(f"no criterion results for group {group!r} under {root}")
    for meta in base.glob("**/new/benchmark.json"):
        bench = json.loads(meta.read_text())
        name = bench.get("function_id") or ""
        try:
            size = float(bench["value_str"])
        except (KeyError, TypeError, ValueError):
            # A benchmark named `line/N` or `line_N` without a parameter: line `line`, size N.
            line, _, n = name.replace("/", "_").rpartition("_")
            try:
                name, size = line, float(n)
            except ValueError:
                continue
            if not line:
                continue
        estimates = json.loads((meta.parent / "estimates.json").read_text())
        median = estimates["median"]["point_estimate"]
        lines.setdefault(name, []).append((size, median))
    for points in lines.values():
        points.sort()
    if not lines:
        sys.exit(f"group {group!r} has no benchmark with a numeric parameter")
    return dict(sorted(lines.items()))


def load_json(path):
    """(title, x name, y name, {line: [(x, y)]}) of a curve file (see the docstring)."""
    try:
        curve = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        lines = {
            name: sorted((float(x), float(y)) for x, y in pts)
            for name, pts in curve["lines"].items()
        }
        title, x, y = curve["title"], curve["x"], curve["y"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        sys.exit(f"{path}: not a curve file ({e})")
    if not any(lines.values()):
        sys.exit(f"{path}: no points")
    return title, x, y, {name: pts for name, pts in lines.items() if pts}


def esc(text):
    """Text with XML's special characters escaped, for an SVG text element."""
    return html.escape(text, quote=False)


def ticks(lo, hi, log):
    """Tick values covering lo to hi: powers of ten (log), or about five even steps of 1, 2, 2.5
    or 5 times a power of ten."""
    if log:
        first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        return [10.0**e for e in range(first, last + 1)]
    least = (hi - lo) / 5 or 1
    power = 10.0 ** math.floor(math.log10(least))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= least)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(math.ceil((hi - first) / step) + 1)]


def label(v):
    """A duration in ns, in its unit."""
    if v >= 1e9:
        return f"{v / 1e9:.3g} s"
    if v >= 1e6:
        return f"{v / 1e6:.3g} ms"
    if v >= 1e3:
        return f"{v / 1e3:.3g} µs"
    return f"{v:.3g} ns"


def size_label(v):
    """A size, with thousands separators."""
    return f"{v:,.0f}"


def number_label(v):
    """A plain number: three significant digits, or whole with thousands separators."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def svg(lines, title, note, log_y, x_name="size", y_name="median cost", y_label=label,
        data_ticks=False):
    """The chart of {line: [(x, y)]}, log x, as SVG text; x ticks at the data's x if data_ticks."""
    xs = [x for pts in lines.values() for x, _ in pts]
    ys = [y for pts in lines.values() for _, y in pts]
    x_ticks = sorted(set(xs)) if data_ticks else ticks(min(xs), max(xs), True)
    y_ticks = ticks(min(ys), max(ys), log_y) if log_y else ticks(0, max(ys) * 1.1, False)
    x_lo, x_hi = math.log10(x_ticks[0]), math.log10(x_ticks[-1])
    if log_y:
        y_lo, y_hi = math.log10(y_ticks[0]), math.log10(y_ticks[-1])
    else:
        y_lo, y_hi = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + (math.log10(x) - x_lo) / ((x_hi - x_lo) or 1) * plot_w

    def py(y):
        v = math.log10(y) if log_y else y
        return TOP + plot_h - (v - y_lo) / ((y_hi - y_lo) or 1) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{esc(title)}</text>",
    ]
    for t in x_ticks:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#ddd"/>')
        out.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{size_label(t)}</text>'
        )
    for t in y_ticks:
        if log_y and t <= 0:
            continue
        y = py(t)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{y_label(t)}</text>')
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>'
    )
    out.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 18}" text-anchor="middle">'
        f"{esc(x_name)} (log scale)</text>"
    )
    axis = esc(y_name) + (" (log scale)" if log_y else "")
    out.append(
        f'<text x="18" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + plot_h / 2})">{axis}</text>'
    )
    for i, (name, pts) in enumerate(lines.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        ly = TOP + 16 + 20 * i
        out.append(
            f'<line x1="{LEFT + plot_w + 14}" y1="{ly - 4}" x2="{LEFT + plot_w + 34}" '
            f'y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{LEFT + plot_w + 40}" y="{ly}">{esc(name)}</text>')
    if note:
        out.append(
            f'<text x="{LEFT}" y="{TOP - 8}" font-size="11" fill="#555">{esc(note)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    """Draws the group or curve file the command line names."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("group", help="the criterion group's name (with --json: the curve file)")
    parser.add_argument("out", help="the SVG file to write")
    parser.add_argument("--json", action="store_true", help="GROUP is a curve file a bench wrote")
    parser.add_argument("--criterion", default="target/criterion", help="criterion's directory")
    parser.add_argument("--title", help="the chart's title (default: the group or the file's)")
    parser.add_argument("--note", default="", help="a line above the chart (machine, date)")
    parser.add_argument("--linear-y", action="store_true", help="a linear y axis")
    args = parser.parse_args()
    if args.json:
        title, x_name, y_name, lines = load_json(args.group)
        axes = dict(x_name=x_name, y_name=y_name, y_label=number_label, data_ticks=True)
        x_label, y_label = number_label, number_label
    else:
        lines = load(pathlib.Path(args.criterion), args.group)
        title, axes = args.group, {}
        x_label, y_label = size_label, label
    if not args.linear_y and any(y <= 0 for pts in lines.values() for _, y in pts):
        sys.exit("a value is not positive: draw it with --linear-y")
    text = svg(lines, args.title or title, args.note, not args.linear_y, **axes)
    pathlib.Path(args.out).write_text(text, encoding="utf-8")
    for name, pts in lines.items():
        print(name + ": " + ", ".join(f"{x_label(x)} -> {y_label(y)}" for x, y in pts))


if __name__ == "__main__":
    main()
