#!/usr/bin/env python3
"""Looks for DSD settings that beat the equal-epoch dense baseline, choosing on the validation split
only: every candidate (sparsity, sparsity from sensitivity analysis, phase lengths, lr) and the
dense baseline at the same lr and epochs run over the same seeds; the candidate with the best mean
validation accuracy is chosen, and only then are test accuracies printed, for the chosen one and
its baseline. Writes a markdown section (--out).

usage: scripts/investigate.py [--exe build/release/experiments/fashion_mlp] [--seeds 3] [--out FILE]
                              [--lr 0.01] [--epochs 4,4,4] [--candidates 0,1,3] [-- model flags]"""
import argparse
import os
import statistics
import sys
import tempfile
import time

import machine
from results import fmt, run_example

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# (label, flags). Each DSD candidate is compared against the dense run with the same --lr and
# --epochs, so a candidate never wins by training longer or at another learning rate.
CANDIDATES = [
    ("sparsity 0.5 (as in the results)", ["--sparsity", "0.5"]),
    ("sparsity 0.3", ["--sparsity", "0.3"]),
    ("sparsity 0.7", ["--sparsity", "0.7"]),
    ("sensitivity, max drop 0.005", ["--sparsity-from-sensitivity", "0.005"]),
    ("sensitivity, max drop 0.02", ["--sparsity-from-sensitivity", "0.02"]),
    ("longer dense phase: 8,2,2", ["--epochs", "8,2,2"]),
    ("longer re-dense phase: 2,2,8", ["--epochs", "2,2,8"]),
    ("lr 0.02", ["--lr", "0.02"]),
    ("lr 0.005", ["--lr", "0.005"]),
]


def run(exe, flags, seed, threads, tmp):
    """Final validation and test accuracy of one run."""
    cmd = [exe, "--seed", str(seed), "--threads", str(threads), "--quiet"] + flags
    test, rows = run_example(cmd, os.path.join(tmp, "run.csv"))
    return float(rows[-1]["validation_accuracy"]), test


def shown_args():
    """The command line as given, without --out FILE (a local path)."""
    argv, shown = sys.argv[1:], []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif not a.startswith("--out="):
            shown.append(a)
    return shown


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--exe", default=os.path.join(ROOT, "build/release/experiments/fashion_mlp"))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", default="4,4,4")
    p.add_argument("--lr", default="0.01")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--title", default="LeNet-300-100")
    p.add_argument("--out", default=os.path.join(ROOT, "docs/investigation.md"))
    p.add_argument("--candidates", default=None,
                   help="comma-separated indices into the candidate list (default: all): " +
                   "; ".join(f"{i} {label}" for i, (label, _) in enumerate(CANDIDATES)))
    p.add_argument("model", nargs="*", default=[], help="extra model flags after --")
    args = p.parse_args()
    start = time.time()
    seeds = range(101, 101 + args.seeds)  # not the seeds of the results tables
    cache = {}

    def measure(flags):
        key = tuple(flags)
        if key not in cache:
            vals, tests = [], []
            with tempfile.TemporaryDirectory() as tmp:
                for s in seeds:
                    v, t = run(args.exe, flags, s, args.threads, tmp)
                    vals.append(v)
                    tests.append(t)
            cache[key] = (vals, tests)
            print(f"{' '.join(flags):70s} validation {fmt(vals)}", file=sys.stderr, flush=True)
        return cache[key]

    rows = []
    chosen = CANDIDATES if args.candidates is None else [
        CANDIDATES[int(i)] for i in args.candidates.split(",")]
    for label, extra in chosen:
        lr = extra[extra.index("--lr") + 1] if "--lr" in extra else args.lr
        epochs = extra[extra.index("--epochs") + 1] if "--epochs" in extra else args.epochs
        rest = [f for i, f in enumerate(extra)
                if f not in ("--lr", "--epochs") and (i == 0 or extra[i - 1] not in ("--lr", "--epochs"))]
        common = ["--lr", lr, "--epochs", epochs] + args.model
        dense = measure(["--mode", "dense"] + common)
        dsd = measure(["--mode", "dsd"] + common + rest)
        rows.append((label, common, rest, dsd, dense))

    best = max(rows, key=lambda r: statistics.mean(r[3][0]) - statistics.mean(r[4][0]))
    label, common, rest, dsd, dense = best
    shown = lambda flags: " ".join(flags)
    out = [f"## {args.title}: choosing DSD settings on the validation split ({args.seeds} seeds)\n",
           f"Machine: {machine.describe()}, {args.threads} threads; {time.time() - start:.0f} s in all. "
           f"Seeds {seeds.start}–{seeds.stop - 1} (not those of the results tables). Every DSD candidate is "
           "compared with the dense baseline at the same lr and total epochs; validation accuracy is "
           "on the 5 000 held-out training images after the last epoch.\n",
           "```sh", "scripts/investigate.py " + " ".join(shown_args()), "```\n",
           "| candidate | DSD validation | dense validation (same lr, epochs) | DSD − dense |",
           "|---|---|---|---|"]
    for l, _, _, d, b in rows:
        gap = statistics.mean(d[0]) - statistics.mean(b[0])
        out.append(f"| {l} | {fmt(d[0])} | {fmt(b[0])} | {gap:+.4f} |")
    out += ["",
            f"Chosen on validation: **{label}** (`{shown(['--mode', 'dsd'] + common + rest)}`). "
            f"Its test accuracy, seen only now: DSD **{fmt(dsd[1])}**, dense baseline **{fmt(dense[1])}** "
            f"({statistics.mean(dsd[1]) - statistics.mean(dense[1]):+.4f}).", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
