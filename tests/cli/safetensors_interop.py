#!/usr/bin/env python3
"""Cross-checks a dsd checkpoint with readers that are not ours: the JSON header through
json + struct, and, when installed, the `safetensors` package (pip install safetensors numpy).
Checks each pruned weight is 0 exactly where its bit-packed mask bit is 0.
Usage: safetensors_interop.py FILE. Exit 77 (skipped) without numpy, unless the environment
sets DSD_REQUIRE_SAFETENSORS=1 (scripts/test.sh does): then a missing reader is a failure."""
import json
import os
import struct
import sys

required = os.environ.get("DSD_REQUIRE_SAFETENSORS") == "1"

path = sys.argv[1]
with open(path, "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
assert meta["dsd.format"] == "dsd-checkpoint" and meta["dsd.version"] == "1", meta
end = max(v["data_offsets"][1] for v in header.values())
assert 8 + n + end == len(raw), "data section must end the file"
try:
    import numpy as np
except ImportError:
    if required:
        sys.exit("numpy is required (DSD_REQUIRE_SAFETENSORS=1) but not installed")
    print("numpy not installed: header checked only")
    sys.exit(77)
try:
    from safetensors.numpy import load_file
    tensors = load_file(path)
    reader = "safetensors"
except ImportError:
    if required:
        sys.exit("safetensors is required (DSD_REQUIRE_SAFETENSORS=1) but not installed")
    dt = {"F32": np.float32, "F64": np.float64, "U8": np.uint8}
    base = 8 + n
    tensors = {k: np.frombuffer(raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]], dtype=dt[v["dtype"]])
               .reshape(v["shape"]) for k, v in header.items()}
    reader = "numpy"
checked = 0
for name, w in tensors.items():
    if name.endswith("__") or "." in name and name.rsplit(".", 1)[1].startswith("__"):
        continue
    mask = np.unpackbits(tensors[name + ".__mask__"], bitorder="little")[: w.size].astype(bool)
    flat = w.reshape(-1)
    assert np.all(flat[~mask] == 0), f"{name}: a pruned weight is not zero"
    kept = int(mask.sum())
    print(f"{name}: shape {list(w.shape)}, kept {kept} of {w.size}")
    checked += 1
assert checked > 0
print(f"OK ({reader})")
