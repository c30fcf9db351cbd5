#!/usr/bin/env python3
"""PTQ weight-error table: RTN block-wise vs LoRDS (SVD init only, Adam-500, ALS) on one model, for each
bit width and block size, all measured in one run. Prints a markdown table with ratios against RTN.

  python3 scripts/bench_ptq.py MODEL [--bits 4 3 2] [--blocks 128 64] [--lords build/cpu-release/lords]
"""
import argparse
import json
import subprocess
import sys


def run(lords, model, args):
    out = subprocess.run([lords, "quantize", model, "--json", "-q", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--bits", type=int, nargs="+", default=[4, 3, 2])
    ap.add_argument("--blocks", type=int, nargs="+", default=[128, 64])
    ap.add_argument("--codebook", default="nf")
    ap.add_argument("--lords", default="build/cpu-release/lords")
    ap.add_argument("--skip-adam", action="store_true")
    a = ap.parse_args()
    variants = [("rtn", ["--method", "rtn"]),
                ("lords svd-init", ["--method", "lords", "--solver", "none"]),
                ("lords adam-500", ["--method", "lords", "--solver", "adam", "--steps", "500"]),
                ("lords als-20", ["--method", "lords", "--solver", "als", "--steps", "20"])]
    if a.skip_adam:
        variants = [v for v in variants if "adam" not in v[0]]
    print("| bits | G | method | bits/weight | rel. error ‖W−Ŵ‖/‖W‖ | vs RTN | wall time (s) |")
    print("|---|---|---|---|---|---|---|")
    for bits in a.bits:
        for g in a.blocks:
            rtn = None
            for name, args in variants:
                r = run(a.lords, a.model, args + ["--bits", str(bits), "--block", str(g), "--codebook", a.codebook])
                err = r["total_rel_err"]
                rtn = err if rtn is None else rtn
                print(f"| {bits} | {g} | {name} | {r['bits_per_weight']:.3f} | {err:.5f} | {err / rtn:.3f} | "
                      f"{r['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
