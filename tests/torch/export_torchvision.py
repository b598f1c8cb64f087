#!/usr/bin/env python3
"""Exports torchvision models as TorchScript for the TorchScript wrapping test (test_torchscript):
ResNet-18 scripted (torch.jit.script) and SqueezeNet 1.0 traced (torch.jit.trace), untrained
(no weights are downloaded), each beside a JSON list of its parameters' names and shapes as Python
sees them; and torchvision_shapes.json, the names and shapes of every torchvision network the
paper uses, for test_paper_nets. Debian's python3-torch and python3-torchvision (0.14); exits 77 (skipped) without them.

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
# A tied weight (a decoder sharing its embedding's matrix), scripted: one tensor under two names.
class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.decode = torch.nn.Linear(4, 10, bias=False)
        self.decode.weight = self.embed.weight

    def forward(self, x):
        return self.decode(self.embed(x))


torch.jit.script(Tied()).save(os.path.join(out, "tied.pt"))

# The names and shapes of every torchvision network the paper uses, for test_paper_nets (the
# libtorch definitions in experiments/torch/paper_nets.hpp must match them parameter by parameter).
nets = {
    "alexnet": (lambda: torchvision.models.alexnet(weights=None), 61_100_840),
    "vgg16": (lambda: torchvision.models.vgg16(weights=None), 138_357_544),
    "googlenet": (lambda: torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False), 6_624_904),
    "googlenet_aux": (lambda: torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False), None),
    "resnet18": (lambda: torchvision.models.resnet18(weights=None), 11_689_512),
    "resnet50": (lambda: torchvision.models.resnet50(weights=None), 25_557_032),
    "resnet152": (lambda: torchvision.models.resnet152(weights=None), 60_192_808),
    "squeezenet1_0": (lambda: torchvision.models.squeezenet1_0(weights=None), 1_248_424),
}
shapes = {}
for name, (make, total) in nets.items():
    model = make()
    got = sum(p.numel() for p in model.parameters())
    assert total is None or got == total, f"{name}: {got} parameters, expected {total}"
    shapes[name] = {"total": got, "parameters": [[n, list(p.shape)] for n, p in model.named_parameters()]}
    del model
with open(os.path.join(out, "torchvision_shapes.json"), "w") as f:
    json.dump(shapes, f)
print("names and shapes of", ", ".join(f"{k} ({v['total']})" for k, v in shapes.items()))
with open(os.path.join(out, "exported"), "w") as f:  # last: every model above is complete
    f.write("ok\n")
