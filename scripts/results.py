#!/usr/bin/env python3
"""Runs the Fashion-MNIST experiment trainers over seeds and modes at equal total epochs and writes
docs/results.md: mean ± std of final test accuracy, accuracy after each phase, seconds per epoch
per phase. Hyper-parameters are fixed up front (no tuning on the test set).

usage: scripts/results.py [--seeds N] [--epochs D,S,R] [--out FILE] [-- model flags]
       scripts/results.py --paired dsd-extra,dense-extra --lrs 0.03,0.003,0.0003 ...

--paired A,B runs both modes on every seed (same initialisation, data order and label noise;
the *-extra modes continue one shared baseline checkpoint per seed) and reports the paired
difference A - B: mean, standard deviation, 95 % interval and a two-sided paired t-test."""
import argparse
import csv
import json
import math
import re
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


def run(exe, mode, extra, seed, args, tmp, records=None):
    cmd = [exe, "--mode", mode, "--seed", str(seed), "--epochs", args.epochs, "--sparsity", str(args.sparsity),
           "--lr", str(args.lr), "--threads", str(args.threads), "--quiet"] + args.model + extra
    if records:  # --report: this run's records, named by its configuration
        cmd = cmd + ["--report-data", records, "--report-name", mode + (" " + " ".join(extra) if extra else "")]
    final, rows = run_example(cmd, os.path.join(tmp, f"{mode}-{seed}-{len(extra)}.csv"))
    if records:
        cmd = cmd[:-4]  # the table shows the run's own flags
    shown = cmd[:len(cmd) - len(args.model) - len(extra)] + args.model  # without the mode's extras

    return final, rows, " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in shown)


def merge_report(exe, record_files, out, title):
    """--report: one HTML report of every run's records (dsd_report, built beside the trainers);
    the seeds of a configuration are drawn as mean ± sd."""
    merger = os.path.join(os.path.dirname(exe), "dsd_report")
    subprocess.run([merger, "--out", out, "--title", title] + record_files, check=True)
    print(f"report of {len(record_files)} runs written to {out}", file=sys.stderr)


def student_t_cdf(t, df):
    """P(T <= t) for Student's t with df degrees of freedom (regularised incomplete beta)."""
    x = df / (df + t * t)
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def incomplete_beta(a, b, x):
    """I_x(a, b) by its continued fraction (Numerical Recipes' betacf), to 1e-12."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - incomplete_beta(b, a, 1.0 - x)
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
            c = 1.0 + num / c if abs(1.0 + num / c) > 1e-300 else 1e-300
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return front * h / a


def student_t_quantile(p, df):
    lo, hi = 0.0, 100.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if student_t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def paired_stats(diffs):
    """Mean, sd, 95 % interval half-width, t and two-sided p of paired differences."""
    n = len(diffs)
    mean = statistics.mean(diffs)
    sd = statistics.stdev(diffs) if n > 1 else 0.0
    if n < 2 or sd == 0.0:
        return mean, sd, float("nan"), float("nan"), float("nan")
    se = sd / math.sqrt(n)
    t = mean / se
    p = 2.0 * (1.0 - student_t_cdf(abs(t), n - 1))
    return mean, sd, student_t_quantile(0.975, n - 1) * se, t, p


def after_prune(stdout):
    """Validation accuracy right after pruning: acc@start of the sparse phase in the report."""
    for line in stdout.splitlines():
        m = re.match(r"sparse\s+1\s+\d+\s+\S+\s+([0-9.]+)\s+([0-9.]+)", line)
        if m:
            return float(m.group(1))
    return None


def paired_main(args):
    arms = args.paired.split(",")
    cache = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            cache = json.load(f)
        # Runs cached while the trainers were built in examples/ (before issue 21) are the same runs.
        cache = {re.sub(r"^(\S*)/examples/(fashion_\w+) ", r"\1/experiments/\2 ", k): v for k, v in cache.items()}
    extra = ["--train-limit", str(args.train_limit)] if args.train_limit else []
    if args.label_noise:
        extra += ["--label-noise", str(args.label_noise)]
    if args.recipe:  # the recipe's phases, rates, sparsities and optimizer replace the flags
        extra += ["--recipe", args.recipe] + (["--scale-epochs", str(args.scale_epochs)] if args.scale_epochs else [])
    elif args.lrs:
        extra += ["--lrs", args.lrs]
    else:
        extra += ["--lr", str(args.lr)]
    base_dir = args.baselines or tempfile.mkdtemp(prefix="dsd-baselines-")
    os.makedirs(base_dir, exist_ok=True)
    per_arm = {a: {"final": [], "pruned": []} for a in arms}
    record_files = []
    shown = None
    run_seconds, untimed = 0.0, 0  # time of the runs themselves, cached or not
    for seed in range(1, args.seeds + 1):
        for arm in arms:
            # A dense arm never prunes: without --sparsity its cached runs serve every sparsity.
            sparsity = [] if arm.startswith("dense") or args.recipe else ["--sparsity", str(args.sparsity)]
            epochs = [] if args.recipe else ["--epochs", args.epochs]
            cmd = [args.exe, "--mode", arm, "--seed", str(seed)] + epochs + sparsity + [
                   "--threads", str(args.threads), "--quiet"] + extra + args.model
            if arm.endswith("-extra"):
                tag = re.sub(r"[^A-Za-z0-9.]+", "_", "-".join([os.path.basename(args.exe), args.epochs.split(",")[0],
                                                              args.lrs or str(args.lr), str(args.train_limit),
                                                              str(args.label_noise)] + args.model))
                cmd += ["--baseline", os.path.join(base_dir, f"{tag}-seed{seed}.safetensors")]
            key = " ".join(c for c in cmd if not c.startswith(base_dir))
            if key not in cache or (args.report and "records" not in cache[key]):
                records = os.path.join(base_dir, f"records-{arm}-{seed}.json")
                t0 = time.time()
                res = subprocess.run(cmd + (["--report-data", records] if args.report else []),
                                     capture_output=True, text=True, check=True)
                cache[key] = {"final": float(res.stdout.strip().splitlines()[-1].split(":")[1]),
                              "pruned": after_prune(res.stdout), "seconds": round(time.time() - t0, 1)}
                if args.report:  # kept with the run, so that a cached run still has its records
                    with open(records) as f:
                        cache[key]["records"] = json.load(f)
                if args.cache:
                    with open(args.cache + ".tmp", "w") as f:
                        json.dump(cache, f, indent=1)
                    os.replace(args.cache + ".tmp", args.cache)
            r = cache[key]
            if args.report:
                record_files.append(os.path.join(base_dir, f"records-{arm}-{seed}.json"))
                with open(record_files[-1], "w") as f:
                    json.dump(r["records"], f)
            run_seconds += r.get("seconds", 0.0)
            untimed += "seconds" not in r
            per_arm[arm]["final"].append(r["final"])
            per_arm[arm]["pruned"].append(r["pruned"])
            print(f"{arm:12s} seed {seed}: {r['final']:.4f}", file=sys.stderr, flush=True)
            if shown is None:
                shown = " ".join("BASELINE_FILE" if c.startswith(base_dir) else '""' if c == "" else
                                 os.path.relpath(c, ROOT) if c.startswith(ROOT) else c for c in cmd)
    if args.report:
        merge_report(args.exe, record_files, args.report,
                     f"{args.title}: {args.seeds} paired seeds, {arms[0]} vs {arms[1]}")
    a, b = arms
    diffs = [x - y for x, y in zip(per_arm[a]["final"], per_arm[b]["final"])]
    mean, sd, half, t, p = paired_stats(diffs)
    shared = ["initialisation", "data order"] + (["label noise"] if args.label_noise else []) + (
        ["the dense baseline checkpoint"] if any(x.endswith("-extra") for x in arms) else [])
    out = [f"### {args.title}\n",
           f"{args.seeds} paired seeds; each seed's two runs share " + ", ".join(shared[:-1]) + " and " + shared[-1]
           + (f". {recipe_phases(args.recipe, args.scale_epochs)}" if args.recipe else
              f". Epochs D,S,R = {args.epochs}; " + (f"lrs D,S,R = {args.lrs}" if args.lrs else f"lr {args.lr}"))
           + (f"; {args.train_limit} training images" if args.train_limit else "")
           + (f"; {args.label_noise:.0%} symmetric label noise on the training split" if args.label_noise else "")
           + (f". Machine: {args.machine}" if args.machine else f". Machine: {machine.cpu_name()}, {args.threads} threads")
           + f"; {run_seconds:.0f} s of runs"
           + (f" ({untimed} cached before run times were kept)" if untimed else "")
           + f". First command: `{shown}`, then `--mode` and `--seed` changed"
           + (" (`--mode dense` runs the recipe's phases and rates without pruning)" if args.recipe and "dense" in arms
              else ", `--sparsity` dropped for the dense arm" if any(x.startswith("dense") for x in arms) else "")
           + (", `--baseline` per seed" if any(x.endswith("-extra") for x in arms) else "") + ".\n",
           "| arm | final test accuracy | val. accuracy right after pruning | per seed |",
           "|---|---|---|---|"]
    for arm in arms:
        pr = [x for x in per_arm[arm]["pruned"] if x is not None]
        out.append(f"| {arm} | {fmt(per_arm[arm]['final'])} | {fmt(pr) if pr else '–'} | "
                   + ", ".join(f"{x:.4f}" for x in per_arm[arm]["final"]) + " |")
    verdict = ("beats" if mean > 0 else "trails") if not math.isnan(t) and abs(mean) > 2 * sd else "is level with"
    out += ["",
            f"Paired difference {a} − {b}: **{mean:+.4f}** (sd {sd:.4f}, 95 % interval "
            f"[{mean - half:+.4f}, {mean + half:+.4f}], t = {t:.2f}, two-sided p = {p:.3f}); per seed "
            + ", ".join(f"{d:+.4f}" for d in diffs) + f". By the 2-sd rule {a} {verdict} {b}.", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("\n".join(out))


def recipe_phases(path, scale):
    """A recipe's phases as one line: "Recipe `r.json` (nesterov): D 6 @ 0.1 → S 50 % 6 @ 0.06 → ..."."""
    with open(path) as f:
        r = json.load(f)
    scale = scale or 1.0
    parts = []
    for p in r["phases"]:
        half_up = lambda x: max(1, math.floor(x + 0.5))  # as the trainer's std::round, not Python's to-even
        length = (f"{half_up(p['epochs'] * scale)}" if "epochs" in p and float(p["epochs"]).is_integer()
                  else f"{p['epochs'] * scale:g} ep" if "epochs" in p else f"{half_up(p['steps'] * scale)} steps")
        prune = p.get("prune", {})
        cut = next((f"{v:.0%} " for k, v in prune.items() if k in ("uniform", "global")), "per-layer " if prune else "")
        parts.append(f"{dict(dense='D', sparse='S', redense='R')[p['kind']]} {cut}{length} @ {p['lr']:g}")
    where = os.path.relpath(path, ROOT) if os.path.abspath(path).startswith(ROOT) else path
    return (f"Recipe `{where}`" + (f" at --scale-epochs {scale:g}" if scale != 1.0 else "")
            + (f" ({r['optimizer']})" if r.get("optimizer") else "") + ": " + " → ".join(parts)
            + (f"; never pruned: {', '.join(r['exclude'])}" if r.get("exclude") else ""))


def fmt(xs):
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.4f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--exe", default=os.path.join(ROOT, "build/release/experiments/fashion_mlp"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", default="4,4,4")
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--title", default="LeNet-300-100")
    p.add_argument("--out", default=os.path.join(ROOT, "docs/results_mlp.md"))
    p.add_argument("--modes", default="all", help="comma-separated subset of: " + ", ".join(
        m + (" x2" if e else "") for m, e in MODES))
    p.add_argument("--paired", help="A,B: run both modes per seed and test the paired difference A - B")
    p.add_argument("--lrs", help="D,S,R learning rates per phase (--paired; replaces --lr)")
    p.add_argument("--recipe", help="--paired: run this recipe file (its phases, rates, sparsities; "
                   "the dense arm is its control) instead of --epochs/--lr/--lrs/--sparsity")
    p.add_argument("--scale-epochs", type=float, help="--paired with --recipe: the trainer's --scale-epochs")
    p.add_argument("--machine", help="--paired: the machine to name in the table (default: the CPU model and threads)")
    p.add_argument("--train-limit", type=int, default=0)
    p.add_argument("--label-noise", type=float, default=0.0)
    p.add_argument("--cache", help="JSON file of finished runs (keyed by command line), reused across calls")
    p.add_argument("--baselines", help="directory for the *-extra modes' baseline checkpoints (default: temporary)")
    p.add_argument("--report", help="also write every run into one HTML report (each configuration's seeds as "
                                     "mean ± sd; the trainers' --report-data merged by dsd_report)")
    p.add_argument("model", nargs="*", default=[], help="extra model flags after --, e.g. -- --hidden 1000,1000")
    args = p.parse_args()
    if args.paired:
        return paired_main(args)
    results = {}
    start = time.time()
    record_files = []
    with tempfile.TemporaryDirectory() as tmp:
        wanted = None if args.modes == "all" else set(args.modes.split(","))
        for mode, extra in MODES:
            if wanted is not None and (mode + (" x2" if extra else "")) not in wanted:
                continue
            label = LABELS[mode] + (", 2 rounds (S,R again at lr/10)" if extra else "")
            for seed in range(1, args.seeds + 1):
                records = os.path.join(tmp, f"{mode}-{seed}-{len(extra)}.json") if args.report else None
                final, rows, cmd = run(args.exe, mode, extra, seed, args, tmp, records)
                if records:
                    record_files.append(records)
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
        if args.report:
            merge_report(args.exe, record_files, args.report, f"{args.title}: {args.seeds} seeds, epochs {args.epochs}")
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
