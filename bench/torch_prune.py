#!/usr/bin/env python3
"""PyTorch's own pruning (torch.nn.utils.prune) on the DSD paper's networks, the peer of
dsd_bench_paper (bench/bench_paper.cpp): the same networks at the same shapes and batch, the same
libtorch underneath (Debian's python3-torch), the same layers pruned at the same sparsity.

  NET/step/plain        zero_grad, forward, backward, torch.optim.SGD step (momentum 0.9, weight
                        decay 1e-4), nothing pruned
  NET/step/hooks        the same after prune.l1_unstructured of every layer dsd prunes: each
                        forward first recomputes weight = weight_orig * weight_mask (its forward
                        pre-hooks), the backward goes through that product
  NET/prune/l1          prune.l1_unstructured of every such layer, one after another
  NET/prune/global      prune.global_unstructured over all of them (L1), with peak_MiB: the
                        resident memory it adds at its peak (it concatenates every weight)

Each prune row starts from a fresh copy of the dense network (the copy is not timed). Times are
medians of --repetitions; the JSON (--out) has every repetition.

usage: torch_prune.py [--threads 2] [--nets vgg16,resnet18,...] [--repetitions 3] [--out FILE]
Exits 77 (skipped) without python3-torch / python3-torchvision."""
import argparse
import copy
import fnmatch
import gc
import json
import math
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
    import torchvision
    from torch.nn.utils import prune
except ImportError as e:
    print(f"skipped: {e} (apt-get install python3-torch python3-torchvision)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 8

# The prune dsd_bench_paper applies first (the recipe's; uniform 50 % where none is published) and
# its exclusions: recipes/*.json, read here so the two benchmarks cannot disagree.
RECIPE = {"vgg16": "vgg16-iclr2017.json", "googlenet": "googlenet-iclr2017.json",
          "googlenet_aux": "googlenet-iclr2017.json", "resnet18": "resnet18-iclr2017.json",
          "resnet50": "resnet50-iclr2017.json", "squeezenet1_0": "squeezenet-iclr2017.json",
          "neuraltalk": "neuraltalk-iclr2017.json", "deepspeech1": "deepspeech1-iclr2017.json",
          "deepspeech2": "deepspeech2-iclr2017.json"}


def first_prune(net):
    """(sparsity, exclusions) of the recipe's first uniform prune, or (0.5, []) without one."""
    if net not in RECIPE:
        return 0.5, []
    with open(os.path.join(HERE, "..", "recipes", RECIPE[net])) as f:
        recipe = json.load(f)
    for phase in recipe["phases"]:
        if "uniform" in phase.get("prune", {}):
            return phase["prune"]["uniform"], recipe.get("exclude", [])
    return 0.5, []


def clipped_relu(x):
    return torch.clamp(x, 0.0, 20.0)


class NeuralTalk(torch.nn.Module):
    """Karpathy's lstm_generator, as experiments/torch/paper_rnns.hpp (6,798,314 parameters)."""

    def __init__(self, vocabulary=2538, image=4096, e=512, h=512):
        super().__init__()
        w = lambda r, c: torch.nn.Parameter((torch.rand(r, c) * 2 - 1) * 0.1)
        self.We, self.be = w(image, e), torch.nn.Parameter(torch.zeros(e))
        self.Ws = w(vocabulary, e)
        self.WLSTM = w(1 + e + h, 4 * h)
        self.Wd, self.bd = w(h, vocabulary), torch.nn.Parameter(torch.zeros(vocabulary))
        self.h = h

    def forward(self, features, words):
        steps, batch = words.shape
        image = features @ self.We + self.be
        embedded = self.Ws.index_select(0, words.flatten()).view(steps, batch, -1)
        h = c = torch.zeros(batch, self.h)
        one = torch.ones(batch, 1)
        out = []
        for t in range(steps):
            x = image if t == 0 else embedded[t - 1]
            i, f, o, g = (torch.cat([one, x, h], 1) @ self.WLSTM).chunk(4, 1)
            c = torch.sigmoid(i) * torch.tanh(g) + torch.sigmoid(f) * c
            h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h @ self.Wd + self.bd)
        return torch.stack(out)


class BiRnn(torch.nn.Module):
    """A bidirectional RNN whose directions share the input projection (DeepSpeech 1 and 2)."""

    def __init__(self, n_in, h, batch_norm):
        super().__init__()
        self.input = torch.nn.Linear(n_in, h, bias=not batch_norm)
        self.bn = torch.nn.BatchNorm1d(h) if batch_norm else None
        bound = 1.0 / math.sqrt(h)
        self.weight_hh_forward = torch.nn.Parameter(torch.empty(h, h).uniform_(-bound, bound))
        self.weight_hh_backward = torch.nn.Parameter(torch.empty(h, h).uniform_(-bound, bound))

    def forward(self, x):
        steps, batch = x.shape[:2]
        wx = self.input(x.flatten(0, 1))
        if self.bn is not None:
            wx = self.bn(wx)
        wx = wx.view(steps, batch, -1)
        hf = hb = torch.zeros(batch, wx.shape[2])
        fwd, bwd = [None] * steps, [None] * steps
        for t in range(steps):
            hf = clipped_relu(wx[t] + hf @ self.weight_hh_forward.t())
            hb = clipped_relu(wx[steps - 1 - t] + hb @ self.weight_hh_backward.t())
            fwd[t], bwd[steps - 1 - t] = hf, hb
        return torch.stack(fwd) + torch.stack(bwd)


class DeepSpeech1(torch.nn.Module):
    """DSD paper Table 6, as paper_rnns.hpp (8,139,805 parameters)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = torch.nn.Linear(1771, 1024), torch.nn.Linear(1024, 1024), torch.nn.Linear(1024, 1024)
        self.rnn4 = BiRnn(1024, 1024, False)
        self.fc5, self.out = torch.nn.Linear(1024, 1024), torch.nn.Linear(1024, 29)

    def forward(self, x):
        y = clipped_relu(self.fc3(clipped_relu(self.fc2(clipped_relu(self.fc1(x))))))
        return torch.log_softmax(self.out(clipped_relu(self.fc5(self.rnn4(y)))), 2)


class DeepSpeech2(torch.nn.Module):
    """DSD paper Table 8, as paper_rnns.hpp (67,740,758 parameters)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 32, (41, 11), stride=(2, 2), padding=(20, 5), bias=False)
        self.conv1_bn = torch.nn.BatchNorm1d(32 * 81)
        self.conv2 = torch.nn.Conv2d(32, 32, (21, 11), stride=(2, 1), padding=(10, 5), bias=False)
        self.conv2_bn = torch.nn.BatchNorm1d(32 * 41)
        for i in range(7):
            setattr(self, f"rnn{i + 1}", BiRnn(32 * 41 if i == 0 else 1760, 1760, True))
        self.fc, self.fc_bn = torch.nn.Linear(1760, 1760, bias=False), torch.nn.BatchNorm1d(1760)
        self.out = torch.nn.Linear(1760, 54)

    @staticmethod
    def norm(y, bn):
        b, c, f, t = y.shape
        return bn(y.permute(0, 3, 1, 2).reshape(b * t, c * f)).view(b, t, c, f).permute(0, 2, 3, 1)

    def forward(self, x):
        y = clipped_relu(self.norm(self.conv1(x), self.conv1_bn))
        y = clipped_relu(self.norm(self.conv2(y), self.conv2_bn)).permute(3, 0, 1, 2).flatten(2)
        for i in range(7):
            y = getattr(self, f"rnn{i + 1}")(y)
        steps, batch = y.shape[:2]
        y = clipped_relu(self.fc_bn(self.fc(y.flatten(0, 1)))).view(steps, batch, 1760)
        return torch.log_softmax(self.out(y), 2)


class CaffeAlexNet(torch.nn.Module):
    """BVLC Caffe's bvlc_alexnet, the paper's AlexNet, as experiments/torch/paper_nets.hpp writes it:
    conv2, conv4 and conv5 grouped in two, LRN after relu1 and relu2, pools rounding up."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.fc6, self.fc7, self.fc8 = nn.Linear(9216, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000)
        self.norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        y = self.pool(self.norm(F.relu(self.conv1(x))))
        y = self.pool(self.norm(F.relu(self.conv2(y))))
        y = F.relu(self.conv4(F.relu(self.conv3(y))))
        y = self.drop(F.relu(self.fc6(self.pool(F.relu(self.conv5(y))).flatten(1))))
        return self.fc8(self.drop(F.relu(self.fc7(y))))


TOTALS = {"alexnet": 61_100_840, "alexnet_caffe": 60_965_224, "vgg16": 138_357_544, "googlenet": 6_624_904,
          "googlenet_aux": 13_004_888, "resnet18": 11_689_512, "resnet50": 25_557_032, "resnet152": 60_192_808,
          "squeezenet1_0": 1_248_424, "neuraltalk": 6_798_314, "deepspeech1": 8_139_805, "deepspeech2": 67_740_758}


def network(net):
    """(module, batch, loss(module, batch), wrapped names) at paper_nets' default shapes."""
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(7)
    if net == "neuraltalk":
        m = NeuralTalk()
        batch = (torch.randn(BATCH, 4096, generator=g), torch.randint(0, 2538, (16, BATCH), generator=g))
        loss = lambda m, b: F.cross_entropy(m(b[0], b[1]).flatten(0, 1), b[1].flatten())
    elif net in ("deepspeech1", "deepspeech2"):
        frames = 64
        if net == "deepspeech1":
            m, x, steps = DeepSpeech1(), torch.randn(frames, BATCH, 1771, generator=g), frames
            y = torch.randint(1, 29, (BATCH, frames // 4), generator=g)
        else:
            m, x, steps = DeepSpeech2(), torch.randn(BATCH, 1, 161, frames, generator=g), frames // 2
            y = torch.randint(1, 54, (BATCH, frames // 8), generator=g)
        batch = (x, y)
        loss = lambda m, b: F.ctc_loss(m(b[0]), b[1], torch.full((BATCH,), steps, dtype=torch.long),
                                       torch.full((BATCH,), b[1].shape[1], dtype=torch.long))
    else:
        if net == "alexnet_caffe":
            m = CaffeAlexNet()
        elif net.startswith("googlenet"):
            m = torchvision.models.googlenet(weights=None, aux_logits=net == "googlenet_aux", init_weights=True)
        else:
            m = getattr(torchvision.models, net)(weights=None)
        batch = (torch.randn(BATCH, 3, 224, 224, generator=g), torch.randint(0, 1000, (BATCH,), generator=g))

        def loss(m, b):
            out = m(b[0])
            if isinstance(out, torch.Tensor):
                return F.cross_entropy(out, b[1])
            # torchvision's GoogLeNet in training with its auxiliary heads (weights 0.3, as trained)
            return F.cross_entropy(out.logits, b[1]) + 0.3 * (F.cross_entropy(out.aux_logits1, b[1]) +
                                                              F.cross_entropy(out.aux_logits2, b[1]))
    total = sum(p.numel() for p in m.parameters())
    assert total == TOTALS[net], f"{net}: {total} parameters, expected {TOTALS[net]}"
    sparsity, exclude = first_prune(net)
    names = [n for n in wrapped_names(m, net) if not any(fnmatch.fnmatchcase(n, e) for e in exclude)]
    return m, batch, loss, names, sparsity


def wrapped_names(m, net):
    """The parameters dsd wraps, in module order: its default selection (WrapOptions: two or more
    dimensions, last name component starting "weight"), every matrix for NeuralTalk (paper_nets)."""
    if net == "neuraltalk":
        return [n for n, p in m.named_parameters() if p.dim() >= 2]
    return [n for n, p in m.named_parameters() if p.dim() >= 2 and n.rsplit(".", 1)[-1].startswith("weight")]


def targets(m, names):
    """(module, attribute) pairs torch.nn.utils.prune takes, for parameter names."""
    out = []
    for n in names:
        owner, _, attr = n.rpartition(".")
        out.append((m.get_submodule(owner) if owner else m, attr))
    return out


def kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def reset_peak():
    """VmHWM back to the current resident size (Linux clear_refs 5), as dsd_bench_paper does."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def step_times(m, batch, loss, reps):
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    m.train()

    def one():
        t0 = time.perf_counter()
        opt.zero_grad()
        loss(m, batch).backward()
        opt.step()
        return time.perf_counter() - t0
    one()  # the first step allocates the momentum buffers, as dsd_bench_paper's warm-up step
    return [one() for _ in range(reps)]


def prune_times(base, names, sparsity, how, reps):
    times, peaks = [], []
    for _ in range(reps):
        m = copy.deepcopy(base)
        params = targets(m, names)
        gc.collect()
        before = kib("VmRSS")
        measured = reset_peak()
        t0 = time.perf_counter()
        if how == "global":
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
        else:
            for module, attr in params:
                prune.l1_unstructured(module, attr, amount=sparsity)
        times.append(time.perf_counter() - t0)
        if measured:
            peaks.append((kib("VmHWM") - before) / 1024.0)
        del m, params
    return times, peaks


def fixed_mmap_threshold():
    """glibc maps every block of 64 KiB or more and unmaps it when freed (its threshold otherwise
    grows after frees, and a freed block's pages, still resident, hide the next allocation from
    the resident peak). dsd_bench_paper sets the same."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def main():
    fixed_mmap_threshold()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nets", default=",".join(TOTALS))
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    nets = a.nets.split(",")
    bad = [n for n in nets if n not in TOTALS]
    if bad or a.repetitions < 1 or a.threads < 1:
        sys.exit(f"unknown network {bad[0]!r}: one of {', '.join(TOTALS)}" if bad else
                 "--repetitions and --threads must be at least 1")
    torch.set_num_threads(a.threads)
    rows = []
    for net in nets:
        m, batch, loss, names, sparsity = network(net)
        row = lambda name, times, **extra: rows.append(
            {"name": f"{net}/{name}", "ms": 1e3 * statistics.median(times), "times_ms": [1e3 * t for t in times],
             "sparsity": sparsity, "layers": len(names), **extra})
        row("step/plain", step_times(copy.deepcopy(m), batch, loss, a.repetitions))
        hooked = copy.deepcopy(m)
        for module, attr in targets(hooked, names):
            prune.l1_unstructured(module, attr, amount=sparsity)
        row("step/hooks", step_times(hooked, batch, loss, a.repetitions))
        del hooked
        for how in ("l1", "global"):
            times, peaks = prune_times(m, names, sparsity, how, a.repetitions)
            row(f"prune/{how}", times, **({"peak_MiB": max(peaks)} if peaks else {}))
        for r in rows[-4:]:
            extra = f"  peak {r['peak_MiB']:.1f} MiB" if "peak_MiB" in r else ""
            print(f"{r['name']:<28} {r['ms']:10.2f} ms{extra}", flush=True)
        del m
        gc.collect()
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"threads": a.threads, "batch": BATCH, "torch": torch.__version__,
                       "torchvision": torchvision.__version__, "rows": rows}, f, indent=1)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
