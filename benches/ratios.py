#!/usr/bin/env python3
"""Ours-vs-baseline ratios from criterion's saved estimates.

Run after `cargo bench -p switchboard-benches` (not in --test mode, which saves nothing):

    python3 benches/ratios.py [target/criterion]

Every bench id is `<group>/<side>/<case>`, with side `ours` or `baseline…`; this prints, per
group and case, the mean time of each side and baseline/ours (above 1: ours is faster).
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def mean_ns(path):
    with open(path / "new" / "estimates.json") as f:
        return json.load(f)["mean"]["point_estimate"]


def fmt(ns):
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.1f} ns"


for group in sorted(p for p in root.iterdir() if (p / "ours").is_dir()):
    for case in sorted((group / "ours").iterdir(), key=lambda p: (len(p.name), p.name)):
        if not (case / "new").is_dir():
            continue
        ours = mean_ns(case)
        for side in sorted(p for p in group.iterdir() if p.name.startswith("baseline")):
            if (side / case.name / "new").is_dir():
                base = mean_ns(side / case.name)
                print(f"{group.name}/{case.name}: ours {fmt(ours)}  {side.name} {fmt(base)}"
                      f"  ratio {base / ours:.1f}x")
