import struct

import pytest
import torch

from l2o_client.safetensors import SafetensorsError, decode, encode


def test_round_trips_f32_f16_bf16_with_metadata():
    tensors = {
        "grads": torch.tensor([1.5, -2.0, 3.25]),
        "state": torch.tensor([[1.0, 2.0], [3.0, 4.5]], dtype=torch.bfloat16),
        "half": torch.tensor([0.5, 65504.0], dtype=torch.float16),
    }
    data = encode(tensors, {"digest": "sha256:x", "step": "3"})
    meta, out = decode(data)
    assert meta == {"digest": "sha256:x", "step": "3"}
    for k, t in tensors.items():
        assert out[k].dtype == t.dtype and torch.equal(out[k], t)


def test_aligns_the_data_section_and_puts_f32_first():
    data = encode({"b": torch.zeros(3, dtype=torch.float16), "a": torch.ones(1)})
    (n,) = struct.unpack_from("<Q", data, 0)
    assert n % 8 == 0
    import json

    header = json.loads(data[8 : 8 + n])
    assert header["a"]["data_offsets"] == [0, 4]
    assert header["b"]["data_offsets"] == [4, 10]


def test_refuses_garbage():
    with pytest.raises(SafetensorsError):
        decode(b"\x01\x02")
    with pytest.raises(SafetensorsError):
        decode(struct.pack("<Q", 4) + b"nope")
    bad = encode({"a": torch.ones(2)})
    with pytest.raises(SafetensorsError):
        decode(bad[:-1])


def test_matches_the_typescript_codec_byte_for_byte():
    # Header JSON is compact with sorted keys, padded with spaces to a multiple of 8, as in
    # src/weights/safetensors.ts, so both SDKs produce the same bytes for the same request.
    data = encode({"grads": torch.tensor([1.0])}, {"optimizer": "toy@1.0.0"})
    text = '{"__metadata__":{"optimizer":"toy@1.0.0"},"grads":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    padded = text + " " * (-len(text) % 8)
    assert data == struct.pack("<Q", len(padded)) + padded.encode() + struct.pack("<f", 1.0)
