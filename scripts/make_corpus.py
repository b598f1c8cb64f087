#!/usr/bin/env python3
"""Regenerates the malformed-file corpus under tests/corpus/ and its expected.txt manifests
(one line per file: name, a tab, the substring its error message must contain). The files seed
the fuzzers and are checked by tests/test_corpus.cpp."""
import gzip
import json
import os
import struct
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "corpus")


def safetensors(header, data, length=None):
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def checkpoint_header(version="1", fmt="dsd-checkpoint", fc_shape=(3, 4), dtype="F32", mask_len=2):
    nbytes = fc_shape[0] * fc_shape[1] * (4 if dtype == "F32" else 8)
    return {
        "__metadata__": {"dsd.format": fmt, "dsd.version": version, "dsd.layer.fc.threshold": "0x0p+0",
                         "dsd.layer.fc.step": "0"},
        "fc": {"dtype": dtype, "shape": list(fc_shape), "data_offsets": [0, nbytes]},
        "fc.__mask__": {"dtype": "U8", "shape": [mask_len], "data_offsets": [nbytes, nbytes + mask_len]},
    }


def write(sub, cases):
    d = os.path.join(root, sub)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "expected.txt"), "w") as manifest:
        for name, data, expect in cases:
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            manifest.write(f"{name}\t{expect}\n")


weights = struct.pack("<12f", *[float(i) for i in range(12)])
good = safetensors(checkpoint_header(), weights + bytes([0xFF, 0x0F]))
write("safetensors", [
    ("valid.safetensors", good, "OK"),
    ("empty.safetensors", b"", "too short for the 8-byte header length"),
    ("short_length.safetensors", b"\x10\x00\x00", "too short for the 8-byte header length"),
    ("header_past_eof.safetensors", safetensors(checkpoint_header(), b"", length=4096), "runs past the end of the file"),
    ("huge_header.safetensors", struct.pack("<Q", 1 << 62) + b"{}", "byte limit"),
    ("bad_json.safetensors", struct.pack("<Q", 5) + b"{\"a\":" , "header is not valid JSON"),
    ("not_object.safetensors", safetensors([1, 2], b""), "header is not a JSON object"),
    ("truncated_data.safetensors", good[:-5], "outside the"),
    ("trailing_bytes.safetensors", good + b"xyz", "truncated or trailing bytes"),
    ("overlap.safetensors", safetensors({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                                         "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, bytes(6)),
     "overlap or hole"),
    ("unknown_dtype.safetensors", safetensors({"a": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 1]}}, bytes(1)),
     "unknown dtype"),
    ("size_mismatch.safetensors", safetensors({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
     "shape needs 12"),
    ("negative_shape.safetensors", safetensors({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 0]}}, b""),
     "not a non-negative integer"),
    ("missing_offsets.safetensors", safetensors({"a": {"dtype": "U8", "shape": [1]}}, bytes(1)),
     "needs dtype, shape and data_offsets"),
    ("bad_metadata.safetensors", safetensors({"__metadata__": {"x": 1}}, b""), "is not a string"),
    ("not_dsd.safetensors", safetensors(checkpoint_header(fmt="other"), weights + bytes([0xFF, 0x0F])),
     "not a dsd checkpoint"),
    ("future_version.safetensors", safetensors(checkpoint_header(version="2"), weights + bytes([0xFF, 0x0F])),
     "format version \"2\""),
    ("wrong_shape.safetensors", safetensors(checkpoint_header(fc_shape=(4, 3)), weights + bytes([0xFF, 0x0F])),
     "has shape [4, 3] but layer \"fc\" is [3, 4]"),
    ("wrong_dtype.safetensors", safetensors(checkpoint_header(dtype="F64"), bytes(96) + bytes([0xFF, 0x0F])),
     "is F64, expected F32"),
    ("mask_tail_bits.safetensors", safetensors(checkpoint_header(), weights + bytes([0xFF, 0xFF])),
     "has bits set past its 12 entries"),
    ("mask_short.safetensors", safetensors(checkpoint_header(mask_len=1), weights + bytes([0xFF])),
     "mask of \"fc\" has 1 bytes, expected 2"),
])


def idx_images(count, rows=28, cols=28, magic=0x803, payload=None):
    body = bytes(count * rows * cols) if payload is None else payload
    return struct.pack(">IIII", magic, count, rows, cols) + body


gz = lambda b: gzip.compress(b, mtime=0)
write("idx", [
    ("valid-images-idx3-ubyte.gz", gz(idx_images(2)), "OK"),
    # zlib reads non-gzip input as plain bytes, so this is judged as an (uncompressed) IDX file.
    ("not_gzip-images-idx3-ubyte.gz", b"this is not gzip at all, just text" * 4, "has IDX magic 1952999795"),
    ("truncated_gzip-images-idx3-ubyte.gz", gz(idx_images(2))[:-20], "is not a valid gzip file"),
    ("short_header-images-idx3-ubyte.gz", gz(b"\x00\x00\x08\x03\x00"), "shorter than its IDX header"),
    ("wrong_magic-images-idx3-ubyte.gz", gz(idx_images(2, magic=0x801)), "has IDX magic 2049, expected 2051"),
    ("wrong_dims-images-idx3-ubyte.gz", gz(idx_images(1, rows=32, cols=32)), "holds 32x32 images, expected 28x28"),
    ("truncated_payload-images-idx3-ubyte.gz", gz(idx_images(3, payload=bytes(28 * 28 * 2))), "is truncated or padded"),
    ("padded_payload-images-idx3-ubyte.gz", gz(idx_images(1, payload=bytes(28 * 28 + 7))), "is truncated or padded"),
])

def recipe(**top):
    base = {"name": "t", "source": "a test",
            "phases": [{"kind": "dense", "epochs": 2, "lr": 0.1},
                       {"kind": "sparse", "epochs": 2, "lr": 0.01, "prune": {"uniform": 0.5}},
                       {"kind": "redense", "epochs": 2, "lr": 0.001}]}
    base.update(top)
    return json.dumps(base, indent=1).encode()


def phases(*p):
    return list(p)


D = {"kind": "dense", "epochs": 1, "lr": 0.1}
# Recipes: each malformed one names the field and the value (the layers are "fc1", "fc2", "conv1").
write("recipes", [
    ("valid.json", recipe(exclude=["conv*"]), "OK"),
    ("not_json.json", b'{"name": "t",', "is not valid JSON"),
    ("not_object.json", b"[1, 2]", "the recipe must be a JSON object, not a JSON array"),
    ("unknown_key.json", recipe(epochs=3), 'the recipe has an unknown key "epochs"'),
    ("no_source.json", json.dumps({"name": "t", "phases": [D]}).encode(), "source is missing"),
    ("no_phases.json", json.dumps({"name": "t", "source": "s"}).encode(), "phases is missing"),
    ("empty_phases.json", recipe(phases=[]), "phases must be a non-empty array of phases, not []"),
    ("bad_kind.json", recipe(phases=[{"kind": "dence", "epochs": 1, "lr": 0.1}]),
     'phases[0].kind "dence" is not dense, sparse or redense'),
    ("no_length.json", recipe(phases=[{"kind": "dense", "lr": 0.1}]),
     'phases[0] needs a length: "epochs" or "steps", one of them'),
    ("both_lengths.json", recipe(phases=[{"kind": "dense", "epochs": 1, "steps": 5, "lr": 0.1}]),
     'phases[0] needs a length: "epochs" or "steps", one of them'),
    ("zero_epochs.json", recipe(phases=[{"kind": "dense", "epochs": 0, "lr": 0.1}]),
     "phases[0].epochs 0 must be > 0"),
    ("negative_epochs.json", recipe(phases=[{"kind": "dense", "epochs": -1, "lr": 0.1}]),
     "phases[0].epochs -1 must be > 0"),
    ("fractional_epochs.json", recipe(phases=[{"kind": "dense", "epochs": 1.25, "lr": 0.1}]),
     "phases[0].epochs 1.25 is a fraction of an epoch: it needs the steps of one epoch"),
    ("steps_without_unit.json", recipe(phases=[{"kind": "dense", "steps": 100, "lr": 0.1}]),
     "phases[0].steps needs the recipe's steps_per_epoch"),
    ("negative_lr.json", recipe(phases=[{"kind": "dense", "epochs": 1, "lr": -0.1}]),
     "phases[0].lr -0.1 must be > 0"),
    ("string_lr.json", recipe(phases=[{"kind": "dense", "epochs": 1, "lr": "0.1"}]),
     'phases[0].lr must be a number, not "0.1"'),
    ("sparsity_one.json", recipe(phases=[D, {"kind": "sparse", "epochs": 1, "lr": 0.1, "prune": {"uniform": 1.0}}]),
     "phases[1].prune.uniform 1.0 is outside [0, 1)"),
    ("sparsity_negative.json", recipe(phases=[D, {"kind": "sparse", "epochs": 1, "lr": 0.1, "prune": {"global": -0.5}}]),
     "phases[1].prune.global -0.5 is outside [0, 1)"),
    ("sparse_without_prune.json", recipe(phases=[D, {"kind": "sparse", "epochs": 1, "lr": 0.1}]),
     "phases[1].prune is missing"),
    ("two_prune_kinds.json", recipe(phases=[D, {"kind": "sparse", "epochs": 1, "lr": 0.1,
                                                "prune": {"uniform": 0.5, "global": 0.5}}]),
     'phases[1].prune needs exactly one of "uniform", "global" or "layers"'),
    ("prune_on_dense.json", recipe(phases=[{"kind": "dense", "epochs": 1, "lr": 0.1, "prune": {"uniform": 0.5}}]),
     "phases[0].prune belongs to a sparse phase, not a dense one"),
    ("bad_decay.json", recipe(phases=[{"kind": "dense", "epochs": 1, "lr": 0.1, "decay": {"kind": "linear"}}]),
     'phases[0].decay.kind "linear" is not constant, step, exponential, cosine or polynomial'),
    ("decay_gamma.json", recipe(phases=[{"kind": "dense", "epochs": 1, "lr": 0.1,
                                         "decay": {"kind": "step", "gamma": 2}}]),
     "phases[0].decay: decay gamma 2 is outside (0, 1]"),
    ("exclude_not_array.json", recipe(exclude="conv1"), 'exclude must be an array of layer names or patterns, not "conv1"'),
    ("exclude_unmatched.json", recipe(exclude=["embedding"]), 'exclude[0] "embedding" matches no layer of the model'),
    ("layers_unmatched.json", recipe(phases=[D, {"kind": "sparse", "epochs": 1, "lr": 0.1,
                                                 "prune": {"layers": {"fc9": 0.5}}}]),
     'phases[1].prune.layers.fc9 "fc9" matches no layer of the model'),
    ("duplicate_key.json",
     b'{"name": "t", "source": "s", "phases": [{"kind": "dense", "epochs": 1, "lr": 0.1, "lr": 0.5}]}',
     'the key "lr" appears twice in one object'),
    ("fractional_steps.json", recipe(steps_per_epoch=10, phases=[{"kind": "dense", "steps": 2.5, "lr": 0.1}]),
     "phases[0].steps must be a positive integer, not 2.5"),
])
print("corpus written under", os.path.relpath(root))
