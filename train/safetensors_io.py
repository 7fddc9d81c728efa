"""A small pure-Python safetensors writer/reader (no third-party package).

Framing: 8-byte little-endian header length, JSON header, raw little-endian data. The header is
padded with trailing spaces so the data section starts at a multiple of 8 bytes, and tensors are
laid out in sorted-name order (DESIGN.md §3, §5).
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import torch

_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8")}


def to_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """Serialize {name: tensor} (float32) to safetensors bytes; metadata values must be strings."""
    header: dict = {}
    if metadata:
        if not all(isinstance(v, str) for v in metadata.values()):
            raise TypeError("safetensors __metadata__ values must be strings")
        header["__metadata__"] = dict(metadata)
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        arr = (t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t))
        arr = np.ascontiguousarray(arr.astype(_DTYPES["F32"]))
        data = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    h += b" " * ((-(8 + len(h))) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write(path, tensors: dict, metadata: dict | None = None) -> bytes:
    data = to_bytes(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return data


def from_bytes(data: bytes):
    """Parse safetensors bytes strictly: returns ({name: np.ndarray}, metadata dict)."""
    if len(data) < 8:
        raise ValueError("safetensors: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError("safetensors: header length past end of file")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n :]
    tensors, end = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dt = _DTYPES[info["dtype"]]
        a, b = info["data_offsets"]
        if a != end:
            raise ValueError(f"safetensors: tensor {name} is not contiguous with the previous one")
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        if b - a != count * dt.itemsize or b > len(body):
            raise ValueError(f"safetensors: tensor {name} has wrong byte length")
        tensors[name] = np.frombuffer(body[a:b], dtype=dt).reshape(info["shape"]).copy()
        end = b
    if end != len(body):
        raise ValueError("safetensors: trailing bytes after the last tensor")
    return tensors, metadata


def read(path):
    with open(path, "rb") as f:
        return from_bytes(f.read())


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
