"""Read a py-spy speedscope profile: top costs by function and by package, collapsed stacks, an SVG.

py-spy drops idle samples by default, so every share here is a share of the process's busy (on-CPU)
samples. Time spent in C code (uvloop, aiohttp's C parser, syscalls) is charged to the innermost
Python frame that called it.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT_FRAMES = 0.9  # frames in more than this share of samples are the call tree's trunk, not costs
SITE = re.compile(r".*/site-packages/([^/]+)/")
STDLIB = re.compile(r".*/lib/python3\.\d+/([^/]+?)(?:\.py|/)")


def short_file(path: str) -> str:
    if "/site-packages/" in path:
        return path.split("/site-packages/", 1)[1]
    if "/gateway/" in path:
        return "gateway/" + path.split("/gateway/", 1)[1]
    match = STDLIB.match(path)
    if match:
        return path[path.index("/lib/python3") + len("/lib/") :]
    return path


def package_of(path: str) -> str:
    """A coarse owner for a frame's file: gateway.<module>, a site package, or stdlib:<module>."""
    if "/gateway/" in path and "/site-packages/" not in path:
        module = path.split("/gateway/", 1)[1].removesuffix(".py").replace("/", ".")
        return "gateway." + module
    match = SITE.match(path)
    if match:
        return match.group(1)
    match = STDLIB.match(path)
    if match:
        return "stdlib:" + match.group(1)
    return path or "?"


def load_stacks(speedscope: Path) -> tuple[Counter[tuple[str, ...]], dict[str, str]]:
    """Collapsed stacks (root first) with their sample weights, and each frame label's file."""
    doc = json.loads(speedscope.read_text(encoding="utf-8"))
    frames: list[dict[str, Any]] = doc["shared"]["frames"]
    labels: list[str] = []
    files: dict[str, str] = {}
    for frame in frames:
        file = frame.get("file") or ""
        line = frame.get("line")
        where = short_file(file) + (f":{line}" if line else "")
        label = f"{frame.get('name', '?')} ({where})"
        labels.append(label)
        files[label] = file
    stacks: Counter[tuple[str, ...]] = Counter()
    for profile in doc["profiles"]:
        if profile.get("type") != "sampled":
            continue
        for sample in profile["samples"]:  # one sample each (weights are py-spy's interval)
            stacks[tuple(labels[i] for i in sample)] += 1
    return stacks, files


def analyse(
    stacks: Counter[tuple[str, ...]], files: dict[str, str], top: int = 25
) -> dict[str, Any]:
    total = sum(stacks.values())
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    for stack, weight in stacks.items():
        if not stack:
            continue
        own[stack[-1]] += weight
        by_package[package_of(files.get(stack[-1], ""))] += weight
        for label in set(stack):
            inclusive[label] += weight

    def share(count: int) -> float:
        return round(100 * count / total, 1) if total else 0.0

    return {
        "samples": total,
        "self": [{"function": f, "share_pct": share(n)} for f, n in own.most_common(top)],
        "inclusive": [
            {"function": f, "share_pct": share(n)}
            for f, n in inclusive.most_common()
            if total and n / total < ROOT_FRAMES
        ][:top],
        "self_by_package": [
            {"package": p, "share_pct": share(n)} for p, n in by_package.most_common(top)
        ],
    }


def write_collapsed(stacks: Counter[tuple[str, ...]], path: Path) -> None:
    """Brendan Gregg's folded format (flamegraph.pl, inferno, speedscope read it)."""
    lines = [";".join(s.replace(";", ",") for s in stack) + f" {n}" for stack, n in stacks.items()]
    path.write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")


def write_svg(
    stacks: Counter[tuple[str, ...]], files: dict[str, str], path: Path, title: str
) -> None:
    """A self-contained icicle graph (root on top; width = share of busy samples; hover for numbers)."""
    tree: dict[str, Any] = {"n": 0, "kids": defaultdict(dict)}
    for stack, weight in stacks.items():
        node = tree
        node["n"] += weight
        for label in stack:
            kids = node["kids"]
            if label not in kids:
                kids[label] = {"n": 0, "kids": defaultdict(dict)}
            node = kids[label]
            node["n"] += weight
    total = tree["n"] or 1
    width, row, top_margin = 1400.0, 17, 40
    rects: list[str] = []
    depth_max = 0

    def colour(label: str) -> str:
        owner = package_of(files.get(label, ""))
        if owner.startswith("gateway"):
            return "#e8743b"
        if owner.startswith("stdlib"):
            return "#c9b458"
        palette = {
            "aiohttp": "#5b9bd5",
            "structlog": "#9e6bd6",
            "prometheus_client": "#d65b8c",
            "pydantic": "#4cae8a",
            "redis": "#d64b4b",
        }
        return palette.get(owner, "#a0a0a0")

    def draw(node: dict[str, Any], x: float, depth: int) -> None:
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        for label, kid in sorted(node["kids"].items()):
            w = kid["n"] / total * width
            if w >= 0.5:
                y = top_margin + depth * row
                pct = 100 * kid["n"] / total
                text = html.escape(
                    label if len(label) * 6.5 < w else label[: max(0, int(w / 6.5) - 2)]
                )
                tip = html.escape(f"{label} — {kid['n']} samples, {pct:.1f}%")
                rects.append(
                    f'<g><title>{tip}</title><rect x="{x:.1f}" y="{y}" width="{w:.1f}" '
                    f'height="{row - 1}" fill="{colour(label)}" rx="2"/>'
                    + (f'<text x="{x + 3:.1f}" y="{y + 12}">{text}</text>' if w > 20 else "")
                    + "</g>"
                )
                draw(kid, x, depth + 1)
            x += w

    draw(tree, 0.0, 0)
    height = top_margin + (depth_max + 2) * row
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
        'font-family="monospace" font-size="11">'
        f'<text x="4" y="16" font-size="14">{html.escape(title)}</text>'
        f'<text x="4" y="32">{total} busy samples; orange: gateway, blue: aiohttp, purple: structlog, '
        "pink: prometheus_client, green: pydantic, red: redis, yellow: stdlib</text>"
        + "".join(rects)
        + "</svg>\n"
    )
    path.write_text(svg, encoding="utf-8")


Rule = tuple[str, Callable[[str, str], bool]]


def by_concern(
    stacks: Counter[tuple[str, ...]], files: dict[str, str], rules: list[Rule], rest: str
) -> list[dict[str, Any]]:
    """Each sample charged to one concern: walking from the leaf towards the root, the first frame
    that a rule (name, predicate(label, file)) matches names it; samples no rule matches go to `rest`."""
    total = sum(stacks.values())
    charged: Counter[str] = Counter()
    for stack, weight in stacks.items():
        for label in reversed(stack):
            file = files.get(label, "")
            name = next((n for n, matches in rules if matches(label, file)), None)
            if name is not None:
                charged[name] += weight
                break
        else:
            charged[rest] += weight
    return [
        {"concern": name, "share_pct": round(100 * n / total, 1) if total else 0.0}
        for name, n in charged.most_common()
    ]
