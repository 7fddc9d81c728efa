"""Minimal safetensors codec (F32, F16, BF16) on torch tensors, standard library + torch only.

Framing (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, N bytes of
JSON, then the raw little-endian data. Matches src/weights/safetensors.ts: the header is padded
with spaces to a multiple of 8 and F32 tensors come first, so every tensor is aligned.
"""
from __future__ import annotations

import json
import struct
import sys
from typing import Dict, Mapping, Optional, Tuple

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
NAMES = {v: k for k, v in DTYPES.items()}
ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2}
MAX_HEADER_BYTES = 1 << 20

if sys.byteorder != "little":  # pragma: no cover - every platform torch ships for is little-endian
    raise ImportError("l2o_client's safetensors codec needs a little-endian host")


class SafetensorsError(ValueError):
    """A body that is not valid safetensors (or uses a dtype this codec does not read)."""


def encode(tensors: Mapping[str, torch.Tensor], metadata: Optional[Mapping[str, str]] = None) -> bytes:
    """Encodes CPU tensors (float32, float16 or bfloat16) with optional string metadata."""
    items = []
    for name, t in tensors.items():
        if t.dtype not in NAMES:
            raise SafetensorsError(f"tensor {name!r}: dtype {t.dtype} is not float32, float16 or bfloat16")
        items.append((name, t.detach().to("cpu").contiguous()))
    layout = sorted(items, key=lambda kv: (-ITEMSIZE[NAMES[kv[1].dtype]], kv[0]))
    header: Dict[str, object] = {}
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise SafetensorsError(f"metadata {k!r} must be a string")
        header["__metadata__"] = dict(sorted(metadata.items()))
    offsets: Dict[str, Tuple[int, int]] = {}
    cursor = 0
    for name, t in layout:
        size = t.numel() * ITEMSIZE[NAMES[t.dtype]]
        offsets[name] = (cursor, cursor + size)
        cursor += size
    for name, t in sorted(items, key=lambda kv: kv[0]):
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": list(offsets[name])}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    padded = (len(text) + 7) // 8 * 8
    out = bytearray(8 + padded + cursor)
    struct.pack_into("<Q", out, 0, padded)
    out[8 : 8 + len(text)] = text
    out[8 + len(text) : 8 + padded] = b" " * (padded - len(text))
    start = 8 + padded
    for name, t in layout:
        begin, end = offsets[name]
        if end > begin:
            # A tensor viewing the output buffer: copy_ writes straight into the bytes.
            view = torch.frombuffer(out, dtype=t.dtype, count=t.numel(), offset=start + begin)
            view.copy_(t.reshape(-1))
    return bytes(out)


def decode(data: bytes) -> Tuple[Dict[str, str], Dict[str, torch.Tensor]]:
    """Decodes safetensors bytes into (metadata, tensors); tensors own their memory."""
    if len(data) < 8:
        raise SafetensorsError(f"{len(data)} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise SafetensorsError(f"header length {n} is invalid for a {len(data)}-byte body")
    try:
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError("__metadata__ must map strings to strings")
    buf = bytearray(data[8 + n :])  # one writable copy, shared by every tensor view
    tensors: Dict[str, torch.Tensor] = {}
    for name, info in header.items():
        try:
            dtype = info["dtype"]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"tensor {name!r}: malformed header entry") from None
        if dtype not in DTYPES:
            raise SafetensorsError(f"tensor {name!r}: unsupported dtype {dtype!r}")
        count = 1
        for d in shape:
            count *= d
        if not 0 <= begin <= end <= len(buf) or end - begin != count * ITEMSIZE[dtype]:
            raise SafetensorsError(f"tensor {name!r}: data_offsets [{begin}, {end}] do not fit shape {shape}")
        if count == 0:
            tensors[name] = torch.zeros(shape, dtype=DTYPES[dtype])
        else:
            tensors[name] = torch.frombuffer(buf, dtype=DTYPES[dtype], count=count, offset=begin).reshape(shape)
    return dict(metadata), tensors
