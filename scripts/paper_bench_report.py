#!/usr/bin/env python3
"""Turns one sitting of dsd_bench_paper (Google Benchmark JSON) and bench/torch_prune.py (its JSON)
into the tables of docs/benchmarks.md's section "The paper's networks at their real shapes",
between its markers; every figure is a ratio within one run or a time beside its peer's.

usage: paper_bench_report.py DSD_JSON TORCH_JSON DOC"""
import bench_report
import json
import machine
import os
import sys

BEGIN, END = "<!-- paper-nets:begin -->", "<!-- paper-nets:end -->"
NETS = [("alexnet", "AlexNet"), ("alexnet_caffe", "AlexNet (Caffe)"), ("vgg16", "VGG-16"), ("googlenet", "GoogLeNet"),
        ("googlenet_aux", "GoogLeNet + aux"),
        ("resnet18", "ResNet-18"), ("resnet50", "ResNet-50"), ("resnet152", "ResNet-152"),
        ("squeezenet1_0", "SqueezeNet 1.0"), ("neuraltalk", "NeuralTalk"), ("deepspeech1", "DeepSpeech 1"),
        ("deepspeech2", "DeepSpeech 2")]


def dsd_rows(path):
    """bench_report's rows, keyed by name, each with its real time in ms."""
    ctx, rows = bench_report.load(path)
    unit = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}
    return ctx, {"/".join(k): dict(b, ms=b["real_time"] * unit[b.get("time_unit", "ns")]) for k, b in rows.items()}


def ms(x):
    return f"{x:.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 10 else f"{x:.2f} ms"


def peak(row, spec):
    return format(row["peak_MiB"], spec) if "peak_MiB" in row else "n/a"


def pct(x):
    return f"{100 * x:.2f} %"


def main(dsd_json, torch_json, doc):
    ctx, d = dsd_rows(dsd_json)
    with open(torch_json) as f:
        pt = json.load(f)
    t = {r["name"]: r for r in pt["rows"]}
    out = []
    w = out.append
    w(f"Machine: {machine.cpu_name()}, {ctx['num_cpus']} cores visible; run {ctx['date']}, nothing else "
      f"running. Both sides {pt['threads']} threads, batch {pt['batch']}, Debian's libtorch / python3-torch "
      f"{pt['torch']} (torchvision {pt['torchvision']}), synthetic inputs of each network's real shape. "
      "dsd: `dsd_bench_paper`; PyTorch: `bench/torch_prune.py` (medians of its repetitions). Regenerate "
      "with `scripts/bench.sh --paper`.\n")
    w("**Steps.** *enforce share*: `layers.enforce(opt)`'s time over the whole step's, timed within the "
      "same steps. *hooks add*: PyTorch's pruned step (`l1_unstructured` on the same layers, its forward "
      "pre-hooks) over its plain step, minus one, both measured by the script in one run; noise of a "
      "few percent can make it negative.\n")
    w("| network | pruned first | libtorch step | dsd enforce share | dsd fused ÷ plain step | PyTorch step | "
      "PyTorch hooks add | hooks ÷ enforce |")
    w("|---|---|---|---|---|---|---|---|")
    goals = {"share": [], "prune": [], "global": [], "memory": []}
    missing = []
    for key, title in NETS:
        plain, enf, fused = (d.get(f"{key}/step/{v}") for v in ("plain", "enforce", "dsd_fused"))
        tp, th = t.get(f"{key}/step/plain"), t.get(f"{key}/step/hooks")
        if not (plain and enf and fused and tp and th and "dsd_share" in enf):
            missing.append(f"{title} (steps)")
            continue
        share = enf["dsd_share"]
        hooks = th["ms"] / tp["ms"] - 1
        goals["share"].append((title, share))
        w(f"| {title} | {enf.get('label', '')} | {ms(plain['ms'])} | {pct(share)} | {fused['ms'] / plain['ms']:.3f} | "
          f"{ms(tp['ms'])} | {pct(hooks)} | {hooks / share:.1f} × |")
    w("")
    w("**Prunes.** dsd's rows start from the dense weights every iteration (the copy is not timed); "
      "PyTorch's from a fresh copy of the dense network. *peak*: for PyTorch, the resident memory the "
      "prune adds at its peak (VmHWM after `clear_refs`, glibc mapping every block of 64 KiB or more); "
      "for dsd, which allocates through operator new only, the most its prune holds on "
      "the heap at once, counted by `dsd_bench_paper`'s operator new. *per candidate*: `sensitivity_analysis`' own work (prune one layer to one sparsity, "
      "restore it exactly) per (layer, sparsity), the user's evaluation excluded.\n")
    w("| network | dsd recipe prune | ÷ step | dsd global | PyTorch `global_unstructured` | PyTorch ÷ dsd | "
      "PyTorch per-layer `l1_unstructured` | ÷ dsd recipe prune | peak: dsd global / PyTorch global | "
      "dsd masks | sensitivity per candidate |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for key, title in NETS:
        rec, glo, sen, plain = (d.get(f"{key}/{v}") for v in ("prune/recipe", "prune/global", "sensitivity", "step/plain"))
        tg, tl = t.get(f"{key}/prune/global"), t.get(f"{key}/prune/l1")
        if not (rec and glo and sen and plain and tg and tl and "mask_MiB" in glo and "items_per_second" in sen):
            missing.append(f"{title} (prunes)")
            continue
        goals["prune"].append((title, rec["ms"] / plain["ms"]))
        goals["global"].append((title, tg["ms"] / glo["ms"]))
        if "peak_MiB" in glo and "peak_MiB" in tg:
            goals["memory"].append((title, glo["peak_MiB"], glo["mask_MiB"], tg["peak_MiB"]))
        w(f"| {title} | {ms(rec['ms'])} | {rec['ms'] / plain['ms']:.3f} | {ms(glo['ms'])} | {ms(tg['ms'])} | "
          f"{tg['ms'] / glo['ms']:.1f} × | {ms(tl['ms'])} | {tl['ms'] / rec['ms']:.1f} × | "
          f"{peak(glo, '.1f')} / {peak(tg, '.0f')} MiB | "
          f"{glo['mask_MiB']:.2f} MiB | {1e3 / sen['items_per_second']:.2f} ms |")
    w("")
    if missing:
        w(f"Not in this sitting's JSON (no verdict over them): {', '.join(missing)}.\n")
        print("paper_bench_report: rows missing for " + ", ".join(missing), file=sys.stderr)
    w("**The issue's goals** (benchmarks, not tests), read off these tables:\n")

    def verdict(ok):
        return "met" if ok else "**not met**"
    worst = max(goals["share"], key=lambda g: g[1], default=None)
    if worst:
        w(f"- dsd's masking at most 1 % of a step: worst {worst[0]} at {pct(worst[1])}: "
          f"{verdict(worst[1] <= 0.01)}.")
    if goals["prune"]:
        over = [f"{n} {r:.3f}" for n, r in goals["prune"] if r > 0.1]
        w(f"- the recipe's prune at most a tenth of a step: {verdict(not over)}"
          + (f" ({', '.join(over)} of a step)." if over else "."))
    if goals["global"]:
        slow = [f"{n} {r:.1f} ×" for n, r in goals["global"] if r < 50]
        w(f"- dsd's global prune at least 50 × faster than `global_unstructured`: {verdict(not slow)}"
          + (f" ({', '.join(slow)})." if slow else "."))
    if goals["memory"]:
        big = max(goals["memory"], key=lambda g: g[1] - g[2])
        w(f"- dsd's global prune needs no memory beyond its masks: its heap peak exceeds the masks by at most "
          f"{max(0.0, big[1] - big[2]):.1f} MiB ({big[0]}), where `global_unstructured` adds up to "
          f"{max(g[3] for g in goals['memory']):.0f} MiB.")
    body = "\n".join(out) + "\n"
    with open(doc) as f:
        text = f.read()
    if BEGIN not in text or END not in text or text.index(END) < text.index(BEGIN):
        sys.exit(f"{doc}: no {BEGIN} ... {END} section to replace")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(head + BEGIN + "\n" + body + END + tail)
    os.replace(tmp, doc)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
