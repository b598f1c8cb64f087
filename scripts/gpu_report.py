#!/usr/bin/env python3
"""Turns what scripts/gpu_check.sh wrote (bench_cuda.json, train.csv, device.txt) into the
markdown tables of docs/benchmarks.md and docs/results.md. Usage: scripts/gpu_report.py OUT_DIR"""
import collections
import csv
import json
import os
import statistics
import sys

out = sys.argv[1]
device = open(os.path.join(out, "device.txt")).read().splitlines()[1].split(",")[0]
bench = json.load(open(os.path.join(out, "bench_cuda.json")))
t = {b["name"].replace("/manual_time", ""): b for b in bench["benchmarks"]}
print(f"Card: {device}; run {bench['context']['date'][:16]}.\n")


def us(name):
    return t[name]["real_time"]


def tbs(name):
    return t[name]["bytes_per_second"] / 1e12


print("### Masked updates against a device copy kernel\n")
print("| n | copy kernel | masked momentum | ratio | masked Adam | ratio |")
print("|---|---|---|---|---|---|")
for n in (1 << 20, 1 << 24, 1 << 26):
    c, m, a = f"BM_DeviceCopy/{n}", f"BM_MaskedMomentum/{n}", f"BM_MaskedAdam/{n}"
    print(f"| {n:,} | {tbs(c):.2f} TB/s | {tbs(m):.2f} TB/s ({us(m):.0f} µs) | {tbs(m) / tbs(c):.2f} | "
          f"{tbs(a):.2f} TB/s ({us(a):.0f} µs) | {tbs(a) / tbs(c):.2f} |")
many, one = us("BM_MaskedMomentum_ResNet50_161_tensors"), us("BM_MaskedMomentum_ResNet50_one_tensor")
print(f"\nResNet-50's 161 parameter tensors (25.6 M values) in one launch: {many:.0f} µs against "
      f"{one:.0f} µs for one tensor of the same size ({many / one:.2f}×); Adam over the 161 tensors "
      f"{us('BM_MaskedAdam_ResNet50_161_tensors'):.0f} µs.\n")

print("### Selection and pruning against CUB's radix sort\n")
print("| n | select (k-th magnitude) | CUB SortPairs | sort / select | Keepmax-Cut prune | Random-Cut prune |")
print("|---|---|---|---|---|---|")
for n in (1 << 20, 1 << 24, 100000000, 1 << 27):
    s, c = us(f"BM_DeviceSelect/{n}"), us(f"BM_CubRadixSortPairs/{n}")
    print(f"| {n:,} | {s / 1000:.3f} ms | {c / 1000:.3f} ms | {c / s:.1f} | "
          f"{us(f'BM_KeepmaxPrune/{n}') / 1000:.3f} ms | {us(f'BM_RandomCutPrune/{n}') / 1000:.3f} ms |")
print("\nPrune times include a device-to-device restore of the weights (8 bytes per weight).\n")

print("### Pruned FC layers: cuSPARSE against cuBLAS\n")
print("cuBLAS time of the dense product, then cuSPARSE's speed-up over it (> 1: cuSPARSE faster) at "
      "each sparsity.\n")
shapes = ["LeNet fc1 300×784", "VGG fc6 4096×25088", "VGG fc7 4096×4096"]
for kind, title in (("BM_FcForward", "forward Y = X Wᵀ (SpMM)"), ("BM_FcWeightGrad", "weight gradient on the pattern (SDDMM)")):
    rows = collections.defaultdict(dict)
    for name, b in t.items():
        if not name.startswith(kind + "/"):
            continue
        a = dict(p.split(":") for p in name.split("/")[1:])
        rows[(int(a["shape"]), int(a["batch"]))][int(a["sparsity%"])] = b["real_time"]
    sp = sorted({s for r in rows.values() for s in r if s})
    print(f"**{title}**\n")
    print("| shape | batch | cuBLAS | " + " | ".join(f"{s} %" for s in sp) + " |")
    print("|---|---|---|" + "---|" * len(sp))
    for (shape, batch), r in sorted(rows.items()):
        cells = []
        for s in sp:
            ratio = r[0] / r[s]
            cells.append(f"**{ratio:.2f}**" if ratio > 1 else f"{ratio:.2f}")
        print(f"| {shapes[shape]} | {batch} | {r[0]:.0f} µs | " + " | ".join(cells) + " |")
    print()

train = os.path.join(out, "train.csv")
if os.path.exists(train):
    rows = list(csv.DictReader(open(train)))
    final, secs = {}, collections.defaultdict(list)
    for r in rows:
        final[(r["mode"], r["seed"])] = float(r["test_accuracy"])
        secs[(r["mode"], r["phase"])].append(float(r["seconds"]))
    print("### fashion_mlp_cuda: LeNet-300-100, epochs 4,4,4, sparsity 0.5, lr 0.01\n")
    print("| mode | final test accuracy (mean ± sd over seeds) | seeds | s/epoch dense | s/epoch sparse | s/epoch re-dense |")
    print("|---|---|---|---|---|---|")
    for mode in ("dense", "dsd", "random-cut", "sparse-scratch"):
        v = [a for (m, _), a in final.items() if m == mode]
        if not v:
            continue
        cell = lambda p: f"{statistics.mean(secs[(mode, p)]):.2f}" if secs[(mode, p)] else "–"
        print(f"| {mode} | {statistics.mean(v):.4f} ± {statistics.stdev(v):.4f} | {len(v)} | "
              f"{cell('dense')} | {cell('sparse')} | {cell('re-dense')} |")
