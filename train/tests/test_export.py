"""Weight files and goldens: exact safetensors framing, names and metadata; export round trip."""

import hashlib
import json
import struct

import numpy as np
import torch

from train import safetensors_io as st
from train.export import export_model, golden_grads, load_model, make_golden
from train.optimizer import LSTMOptimizer
from train.tests.helpers import randomized


def _trained_like(opt):
    return randomized(opt, seed=3, scale=0.3)


def test_export_reload_gives_the_same_outputs(tmp_path):
    opt = _trained_like(LSTMOptimizer(layers=2, hidden=20, preprocessing="log-sign", p=10.0))
    digest = export_model(opt, tmp_path / "model.safetensors")
    back = load_model(tmp_path / "model.safetensors")
    g, state = torch.randn(100) * 1e-2, torch.randn(100, 80)
    for a, b in zip(opt(g, state), back(g, state)):
        assert torch.equal(a, b)
    data = (tmp_path / "model.safetensors").read_bytes()
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_file_bytes_follow_the_contract(tmp_path):
    opt = LSTMOptimizer(layers=2, hidden=20, preprocessing="log-sign", p=10.0, output_scale=0.1)
    export_model(opt, tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0
    raw = data[8 : 8 + n].decode("utf-8")
    assert raw == raw.rstrip(" ") + " " * (len(raw) - len(raw.rstrip(" ")))
    header = json.loads(raw)
    assert header["__metadata__"] == {
        "format": "l2o/1",
        "architecture": '{"hidden":20,"kind":"lstm-cw","layers":2,"outputScale":0.1,"p":10.0,"preprocessing":"log-sign"}',
    }
    names = [k for k in header if k != "__metadata__"]
    assert sorted(names) == sorted(opt.state_dict())
    offsets = [header[k]["data_offsets"] for k in sorted(names)]
    assert offsets[0][0] == 0 and all(a[1] == b[0] for a, b in zip(offsets, offsets[1:]))
    assert offsets[-1][1] == len(data) - 8 - n
    for k in names:
        assert header[k]["dtype"] == "F32"
        a, b = header[k]["data_offsets"]
        arr = np.frombuffer(data[8 + n + a : 8 + n + b], dtype="<f4").reshape(header[k]["shape"])
        np.testing.assert_array_equal(arr, opt.state_dict()[k].numpy())


def test_none_preprocessing_has_no_p_in_its_architecture(tmp_path):
    export_model(LSTMOptimizer(preprocessing="none"), tmp_path / "m.safetensors")
    _, meta = st.read(tmp_path / "m.safetensors")
    assert json.loads(meta["architecture"]) == {
        "hidden": 20, "kind": "lstm-cw", "layers": 2, "outputScale": 0.1, "preprocessing": "none"
    }


def test_golden_vectors_replay_through_the_module(tmp_path):
    opt = _trained_like(LSTMOptimizer())
    digest = export_model(opt, tmp_path / "model.safetensors")
    make_golden(load_model(tmp_path / "model.safetensors"), digest, tmp_path / "golden.safetensors", steps=3, n=64)
    tensors, meta = st.read(tmp_path / "golden.safetensors")
    assert meta == {"format": "l2o-golden/1", "digest": digest}
    assert tensors["grads"].shape == (3, 64) and tensors["updates"].shape == (3, 64)
    assert tensors["states"].shape == (4, 64, 80) and not tensors["states"][0].any()
    state = torch.zeros(64, 80)
    for t in range(3):
        with torch.no_grad():
            upd, state = opt(torch.from_numpy(tensors["grads"][t]), state)
        np.testing.assert_allclose(upd.numpy(), tensors["updates"][t], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(state.numpy(), tensors["states"][t + 1], rtol=1e-6, atol=1e-8)


def test_golden_grads_cover_zero_tiny_ordinary_and_huge():
    g = golden_grads(5, 384).abs()
    assert (g == 0).any() and ((g > 0) & (g < np.exp(-10))).any()
    assert ((g > 1e-4) & (g < 10)).sum() > 100 and (g >= 1e10).any() and (g >= 1e20).any()


def test_reader_rejects_truncated_files(tmp_path):
    data = st.to_bytes({"a": torch.ones(3)}, {"format": "x"})
    try:
        st.from_bytes(data[:-4])
    except ValueError:
        pass
    else:
        raise AssertionError("truncated file accepted")


def test_an_extended_architecture_round_trips_and_its_golden_tests_the_zero_gradient_rule(tmp_path):
    from train.export import ALWAYS_ZERO, LATE_START
    from train.tests.helpers import MOMENTS

    opt = _trained_like(LSTMOptimizer(layers=2, hidden=6, features={**MOMENTS, "logRms": 10.0}, input_size=5,
                                      output={"kind": "tanh", "scale": 0.1}))
    digest = export_model(opt, tmp_path / "model.safetensors")
    back = load_model(tmp_path / "model.safetensors")
    assert back.architecture() == opt.architecture()
    assert json.loads(st.read(tmp_path / "model.safetensors")[1]["architecture"])["features"]["logRms"] == 10.0
    g, state = torch.randn(50) * 1e-2, back.init_state(50)
    for a, b in zip(opt(g, state), back(g, state)):
        assert torch.equal(a, b)
    tensors = make_golden(back, digest, tmp_path / "golden.safetensors", steps=8, n=64)
    grads, updates, states = tensors["grads"], tensors["updates"], tensors["states"]
    assert grads.shape == (8, 64) and states.shape == (9, 64, opt.state_size)
    zero = slice(64 - ALWAYS_ZERO, 64)
    late = slice(64 - ALWAYS_ZERO - LATE_START, 64 - ALWAYS_ZERO)
    assert torch.all(grads[:, zero] == 0) and torch.all(updates[:, zero] == 0)
    assert torch.all(torch.signbit(updates[:, zero]) == 0), "never-nonzero coordinates get exactly +0"
    assert torch.all(updates[:2, late] == 0)
    seen = (grads[:, late] != 0).cumsum(dim=0) > 0  # a nonzero gradient has come by step t
    assert torch.all((updates[:, late] != 0) == seen) and seen[2:].any()
