#!/usr/bin/env python3
"""Turn `perf script` output into folded stacks and a static SVG flame graph.

Why this exists: the bench machine has no flamegraph tooling (no
stackcollapse-perf.pl / flamegraph.pl, no inferno) and we must not download
any, so this is a small stdlib-only stand-in in the same spirit.

    perf script -i DATA.perf 2>/dev/null | \
        python3 bench/flamegraph.py --title T --folded OUT.folded --svg OUT.svg

Each sample counts once (the event period is ignored). Folded lines read
`comm;root;...;leaf COUNT`; kernel frames get a `_[k]` suffix.
"""
import argparse
import hashlib
import io
import re
import sys
from xml.sax.saxutils import escape

HEADER = re.compile(r"^(.*?)\s+\d+(?:/\d+)?\s+(?:\[\d+\]\s+)?\d+\.\d+:")
OFFSET = re.compile(r"\+0x[0-9a-f]+$")
HASH = re.compile(r"::h[0-9a-f]{16}$")
COMM_NUM = re.compile(r"(?<![^-_.:/ ])\d+(?![^-_.:/ ])")  # whole numeric parts


def strip_generics(sym, limit=60):
    """Drop `<...>` generic argument lists longer than `limit` and `::h<hash>`."""
    sym = HASH.sub("", sym)
    out, stack = [], []  # stack: index in `out` where each open `<` group starts
    for i, ch in enumerate(sym):
        if ch == "<":
            stack.append(len(out))
            out.append(ch)
        elif ch == ">" and stack and not (i and sym[i - 1] == "-"):  # not `->`
            start = stack.pop()
            body = "".join(out[start + 1:])
            # A `<` right after an identifier opens generic args; a leading
            # `<T as Trait>` is a qualified path and is kept (its insides shrink).
            is_generic = start > 0 and (out[start - 1][-1].isalnum() or out[start - 1][-1] in "_>")
            out[start:] = ["<..>"] if is_generic and len(body) > limit else [f"<{body}>"]
        else:
            out.append(ch)
    return "".join(out)


def parse_frame(line, shorten):
    """`ADDR SYMBOL+OFF (DSO)` -> frame name, or None for frames to skip."""
    addr, _, rest = line.strip().partition(" ")
    if set(addr) == {"f"} or not rest:  # 0xffffffffffffffff: end-of-stack marker
        return None
    rest, dso = rest.strip(), ""
    if rest.endswith(")"):  # split off the trailing, possibly nested, (DSO)
        depth = 0
        for j in range(len(rest) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(rest[j], 0)
            if depth == 0:
                rest, dso = rest[:j].strip(), rest[j + 1:-1]
                break
    sym = OFFSET.sub("", rest) or "[unknown]"
    if sym == "[unknown]" and dso and dso != "[unknown]":
        sym = "[%s]" % dso.split()[0].rsplit("/", 1)[-1]
    elif shorten:
        sym = strip_generics(sym)
    if "kallsyms" in dso or dso.startswith("[kernel") or dso.endswith(".ko"):
        sym += "_[k]"
    return sym.replace(";", ":")


def collapse(lines, shorten=True):
    """Yield one root-to-leaf frame list per sample, comm first."""
    stack = None
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if stack is not None:
                yield stack[:1] + stack[:0:-1]
            stack = None
        elif not line[0].isspace():  # sample header
            if stack is not None:
                yield stack[:1] + stack[:0:-1]
            m = HEADER.match(line)
            comm = (m.group(1) if m else line.split()[0]).strip() or "[unknown]"
            stack = [COMM_NUM.sub("N", comm).replace(" ", "_").replace(";", ":")]
        elif stack is not None:
            frame = parse_frame(line, shorten)
            if frame:
                stack.append(frame)
    if stack is not None:
        yield stack[:1] + stack[:0:-1]


def colour(name):
    h = hashlib.md5(name.encode()).digest()
    v1, v2, v3 = h[0] / 255, h[1] / 255, h[2] / 255
    if name.endswith("_[k]"):  # kernel: cool aqua, stands out from the warm user frames
        return "rgb(%d,%d,%d)" % (50 + 60 * v1, 165 + 55 * v2, 165 + 55 * v3)
    return "rgb(%d,%d,%d)" % (205 + 50 * v3, 230 * v1, 55 * v2)  # flamegraph.pl "hot"


def render_svg(folded, title, min_width_pct, width=1200, row=16, font=12):
    total = sum(folded.values())
    tree = {}  # name -> [count, children]
    for stack, count in folded.items():
        node = tree
        for name in stack.split(";"):
            entry = node.setdefault(name, [0, {}])
            entry[0] += count
            node = entry[1]

    pad, top, bottom = 10, 3 * row, row
    scale = (width - 2 * pad) / total if total else 0
    min_px = (width - 2 * pad) * min_width_pct / 100
    frames = []  # (depth, x, w, name, count)

    def walk(node, depth, x):
        for name in sorted(node):
            count, children = node[name]
            w = count * scale
            if w >= min_px and w > 0:
                frames.append((depth, x, w, name, count))
                walk(children, depth + 1, x)
            x += w

    if total:
        frames.append((0, pad, total * scale, "all", total))
        walk(tree, 1, pad)
    depth = max((f[0] for f in frames), default=0) + 1
    height = top + depth * row + bottom
    char_w = font * 0.59
    out = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<style>text {{ font-family: Verdana, sans-serif; font-size: {font}px; fill: #000; }}'
        " .t { font-size: 17px; text-anchor: middle; } rect { stroke: #fff; stroke-width: 0.5; }</style>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f8f8f0" stroke="none"/>',
        f'<text class="t" x="{width / 2}" y="{row + 4}">{escape(title)}</text>',
        f'<text x="{pad}" y="{2 * row + 6}">{total} samples, frames under {min_width_pct}% hidden</text>',
    ]
    if not total:
        out.append(f'<text class="t" x="{width / 2}" y="{top + row}">no samples</text>')
    for d, x, w, name, count in frames:
        y = height - bottom - (d + 1) * row
        tip = escape(f"{name} ({count} samples, {100 * count / total:.2f}%)")
        fits = int((w - 6) / char_w)
        label = name if len(name) <= fits else (name[: fits - 2] + ".." if fits >= 3 else "")
        fill = "rgb(220,220,220)" if name == "all" else colour(name)
        out.append(
            f'<g><title>{tip}</title><rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row - 1}" '
            f'fill="{fill}"/>' + (f'<text x="{x + 3:.2f}" y="{y + row - 4}">{escape(label)}</text>' if label else "")
            + "</g>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--title", default="Flame Graph")
    ap.add_argument("--folded", help="also write folded stacks here")
    ap.add_argument("--svg", required=True)
    ap.add_argument("--min-width-pct", type=float, default=0.1)
    ap.add_argument("--strip-generics", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()

    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    folded = {}
    for stack in collapse(stdin, args.strip_generics):
        key = ";".join(stack)
        folded[key] = folded.get(key, 0) + 1
    if args.folded:
        with open(args.folded, "w", encoding="utf-8") as f:
            f.writelines(f"{k} {v}\n" for k, v in sorted(folded.items()))
    with open(args.svg, "w", encoding="utf-8") as f:
        f.write(render_svg(folded, args.title, args.min_width_pct))
    print(f"{sum(folded.values())} samples, {len(folded)} stacks -> {args.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
