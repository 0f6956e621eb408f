#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (valid inputs they start from): run once, commit.
Pure Python (no torch): safetensors and protobuf are small enough to encode by hand."""
import json, os, struct

here = os.path.dirname(os.path.abspath(__file__))
D = 8  # d_model the fuzz targets check prompts against


def safetensors(tensors):  # [(name, shape, floats)]
    header, data = {}, b""
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def write(target, name, data):
    with open(os.path.join(here, "corpus", target, name), "wb") as f:
        f.write(data)


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(num, wire, payload):
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def framed(messages):  # the upload target's framing: 2-byte length, then the message
    return b"".join(struct.pack("<H", len(m)) + m for m in messages)


# PEFT: 2 virtual tokens, seq2seq (2N rows stored).
config = json.dumps({"peft_type": "PROMPT_TUNING", "task_type": "SEQ_2_SEQ_LM", "num_virtual_tokens": 2,
                     "token_dim": D, "num_transformer_submodules": 2}, indent=2).encode()
weights = safetensors([("prompt_embeddings", [4, D], [0.1 * i for i in range(4 * D)])])
write("peft", "seq2seq", struct.pack("<H", len(config)) + config + weights)

# Residual: P [3, D] and a bottleneck-4 MLP.
b = 4
write("residual", "fold", safetensors([
    ("prompt", [3, D], [0.01 * i for i in range(3 * D)]),
    ("mlp.down.weight", [b, D], [0.02] * (b * D)), ("mlp.down.bias", [b], [0.0] * b),
    ("mlp.up.weight", [D, b], [-0.03] * (D * b)), ("mlp.up.bias", [D], [0.1] * D),
    ("mlp.norm.weight", [D], [1.0] * D), ("mlp.norm.bias", [D], [0.0] * D)]))

# Config and tenants files.
with open(os.path.join(here, "..", "..", "deploy", "config", "softserve.json"), "rb") as f:
    write("config", "deploy-softserve.json", f.read())
write("config", "tenants.json", json.dumps({"tenants": [
    {"name": "acme", "api_key_sha256": "ab" * 32, "admin": False, "max_prompts": 10, "max_uploads": 1}]}).encode())

# Upload: a raw prompt in a header and two chunks.
prompt = safetensors([("p", [2, D], [0.5] * (2 * D))])
header = field(1, 2, field(1, 2, b"seed") + field(2, 0, 1) + field(5, 0, len(prompt)))
write("upload", "raw-two-chunks", framed([header, field(2, 2, prompt[:40]), field(2, 2, prompt[40:])]))
