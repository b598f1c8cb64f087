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
print("corpus written under", os.path.relpath(root))
