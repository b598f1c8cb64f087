#!/usr/bin/env python3
"""Exports torchvision models as TorchScript for the TorchScript wrapping test (test_torchscript):
ResNet-18 scripted (torch.jit.script) and SqueezeNet 1.0 traced (torch.jit.trace), untrained
(no weights are downloaded), each beside a JSON list of its parameters' names and shapes as Python
sees them. Debian's python3-torch and python3-torchvision (0.14); exits 77 (skipped) without them.

usage: export_torchvision.py OUT_DIR"""
import json
import os
import shutil
import sys

try:
    import torch
    import torchvision
except ImportError as e:
    shutil.rmtree(sys.argv[1], ignore_errors=True)
    print(f"skipped: {e} (apt-get install python3-torch python3-torchvision)")
    sys.exit(77)

out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)  # an earlier export never stands in for this one
os.makedirs(out)
torch.manual_seed(0)
models = {
    "resnet18": (torchvision.models.resnet18(weights=None), "script", 11_689_512),
    "squeezenet1_0": (torchvision.models.squeezenet1_0(weights=None), "trace", 1_248_424),
}
for name, (model, how, total) in models.items():
    model.eval()
    got = sum(p.numel() for p in model.parameters())
    assert got == total, f"{name}: {got} parameters, torchvision 0.14 has {total}"
    exported = torch.jit.script(model) if how == "script" else torch.jit.trace(model, torch.randn(1, 3, 96, 96))
    exported.save(os.path.join(out, name + ".pt"))
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump({"how": how, "total": total,
                   "parameters": [[n, list(p.shape)] for n, p in model.named_parameters()]}, f)
    print(f"{name}: {how.replace('script', 'scripte')}d, {got} parameters, {len(list(model.parameters()))} tensors")
with open(os.path.join(out, "exported"), "w") as f:  # last: every model above is complete
    f.write("ok\n")
