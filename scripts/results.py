#!/usr/bin/env python3
"""Runs the Fashion-MNIST examples over seeds and modes at equal total epochs and writes
docs/results.md: mean ± std of final test accuracy, accuracy after each phase, seconds per epoch
per phase. Hyper-parameters are fixed up front (no tuning on the test set).

usage: scripts/results.py [--seeds N] [--epochs D,S,R] [--hidden 300,100] [--quick] [--out FILE]"""
import argparse
import csv
import os
import machine
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LABELS = {"dense": "dense baseline", "dsd": "DSD (Keepmax-Cut)", "random-cut": "DSD with Random-Cut",
          "sparse-scratch": "sparse from scratch", "fused": "fused D+S"}
MODES = [("dense", []), ("dsd", []), ("random-cut", []), ("sparse-scratch", []), ("fused", []),
         ("dsd", ["--rounds", "2"])]


def run_example(cmd, csv_path):
    """Runs an example's command line with --csv csv_path; returns the number on its last line
    (`final test accuracy: 0.XXXX`) and the CSV's rows."""
    res = subprocess.run(cmd + ["--csv", csv_path], capture_output=True, text=True, check=True)
    final = float(res.stdout.strip().splitlines()[-1].split(":")[1])
    with open(csv_path) as f:
        return final, list(csv.DictReader(f))


def run(exe, mode, extra, seed, args, tmp):
    cmd = [exe, "--mode", mode, "--seed", str(seed), "--epochs", args.epochs, "--sparsity", str(args.sparsity),
           "--lr", str(args.lr), "--threads", str(args.threads), "--quiet"] + args.model + extra
    final, rows = run_example(cmd, os.path.join(tmp, f"{mode}-{seed}-{len(extra)}.csv"))
    shown = cmd[:len(cmd) - len(args.model) - len(extra)] + args.model  # without the mode's extras
    return final, rows, " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in shown)


def fmt(xs):
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.4f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--exe", default=os.path.join(ROOT, "build/release/examples/fashion_mlp"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", default="4,4,4")
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--title", default="LeNet-300-100")
    p.add_argument("--out", default=os.path.join(ROOT, "docs/results_mlp.md"))
    p.add_argument("--modes", default="all", help="comma-separated subset of: " + ", ".join(
        m + (" x2" if e else "") for m, e in MODES))
    p.add_argument("model", nargs="*", default=[], help="extra model flags after --, e.g. -- --hidden 1000,1000")
    args = p.parse_args()
    results = {}
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        wanted = None if args.modes == "all" else set(args.modes.split(","))
        for mode, extra in MODES:
            if wanted is not None and (mode + (" x2" if extra else "")) not in wanted:
                continue
            label = LABELS[mode] + (", 2 rounds (S,R again at lr/10)" if extra else "")
            for seed in range(1, args.seeds + 1):
                final, rows, cmd = run(args.exe, mode, extra, seed, args, tmp)
                r = results.setdefault(label, {"final": [], "phases": {}, "secs": {}, "cmd": cmd})
                r["final"].append(final)
                last = {}
                for row in rows:
                    key = (row["phase"], row["round"])
                    last[key] = float(row["test_accuracy"])
                    r["secs"].setdefault(row["phase"], []).append(float(row["seconds"]))
                for key, acc in last.items():
                    r["phases"].setdefault(key, []).append(acc)
                print(f"{label:22s} seed {seed}: {final:.4f}", file=sys.stderr, flush=True)
    cpu = machine.cpu_name()
    d, s, r_ = args.epochs.split(",")
    out = [f"## {args.title}: {args.seeds} seeds, epochs D,S,R = {args.epochs}\n",
           f"Machine: {cpu}, {os.cpu_count()} cores, {args.threads} threads; {time.time() - start:.0f} s in all. "
           f"Sparsity {args.sparsity} per layer (Keepmax-Cut unless stated), momentum SGD lr {args.lr} "
           f"(re-dense and the baseline's last {r_} epochs at lr/10), weight decay 1e-4, batch 64. "
           "Accuracies are on the 10 000 test images; all choices were fixed before these runs. "
           "Command of each row: `" + next(iter(results.values()))["cmd"] + "` with `--mode` (and `--rounds`) "
           "and `--seed` changed.\n",
           "| mode | final test accuracy | after dense | after sparse | after re-dense | s/epoch dense | s/epoch sparse | s/epoch re-dense |",
           "|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        def phase(name):
            keys = sorted(k for k in r["phases"] if k[0] == name)
            return " / ".join(fmt(r["phases"][k]) for k in keys) if keys else "–"
        secs = lambda name: f"{statistics.mean(r['secs'][name]):.2f}" if name in r["secs"] else "–"
        out.append(f"| {label} | **{fmt(r['final'])}** | {phase('dense')} | {phase('sparse')} | {phase('re-dense')} | "
                   f"{secs('dense')} | {secs('sparse')} | {secs('re-dense')} |")
    out.append("")
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
