#!/usr/bin/env python3
"""Summarize `lords finetune --json` runs: one row per run, then mean ± sd over seeds per (bits, method, lr).

usage: summarize_finetune.py RESULT.json...   (file names: <method>_b<bits>_lr<lr>_s<seed>.json)
"""
import json
import os
import re
import statistics
import sys
from collections import defaultdict


def fmt(xs):
    return "%.3f ± %.3f" % (statistics.mean(xs), statistics.stdev(xs)) if len(xs) > 1 else "%.3f" % xs[0]


def main(paths):
    groups = defaultdict(list)
    print("| run | trainable | loss before | after | ppl after | tokens/s | positions/s |")
    print("|---|---|---|---|---|---|---|")
    for p in sorted(paths):
        m = re.match(r"(\w+?)_b(\d)_lr([\d.e-]+)_s(\d+)\.json$", os.path.basename(p))
        if not m:
            sys.exit("unexpected result name: " + p)
        d = json.load(open(p))
        i, f = d["initial"], d["final"]
        print("| %s | %d | %.4f | %.4f | %.3f | %.0f | %.0f |" % (os.path.basename(p)[:-5], d["trainable_params"], i["loss"],
                                                             f["loss"], f["ppl"], d["tokens_per_s"], d["positions_per_s"]))
        groups[(int(m.group(2)), m.group(1), m.group(3))].append(d)
    print()
    print("| bits | method | lr | seeds | trainable | held-out loss before | after | drop | ppl after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (bits, method, lr), runs in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1], kv[0][2])):
        b = [r["initial"]["loss"] for r in runs]
        a = [r["final"]["loss"] for r in runs]
        print("| %d | %s | %s | %d | %d | %s | %s | %s | %s |" % (bits, method, lr, len(runs), runs[0]["trainable_params"],
                                                             fmt(b), fmt(a), fmt([x - y for x, y in zip(b, a)]),
                                                             fmt([r["final"]["ppl"] for r in runs])))


if __name__ == "__main__":
    main(sys.argv[1:])
