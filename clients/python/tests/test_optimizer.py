import pytest
import torch

import l2o_client as l2o
from l2o_client.client import RetryPolicy

from fake_server import FakeServer, Fault


def make_opt(params, server=None, **kw):
    server = server or FakeServer()
    retry = kw.pop("retry", RetryPolicy(sleep=lambda s: None, random=lambda: 0.5))
    kw.setdefault("optimizer", "toy@1.0.0")
    opt = l2o.RemoteOptimizer(params, url="http://l2o.test", key=server.key, transport=server, retry=retry, **kw)
    return server, opt


def with_grads(*shapes):
    params = [torch.zeros(*s, requires_grad=True) for s in shapes]
    k = 1
    for p in params:
        p.grad = torch.arange(k, k + p.numel(), dtype=torch.float32).reshape(p.shape)
        k += p.numel()
    return params


def expected_after(k, n):
    g = torch.arange(1, n + 1, dtype=torch.float32)
    total = torch.zeros(n)
    for i in range(1, k + 1):
        total += -0.1 * (i * g)  # toy optimizer: step i applies -scale·(i·g)
    return total


@pytest.mark.parametrize("n", [1, 7, 8, 9, 16, 17])
def test_shards_stateless_steps_and_reassembles_in_order(n):
    params = with_grads((n,))
    server, opt = make_opt(params)
    opt.step()
    steps = [r for r in server.requests if r.path == "/v1/step"]
    assert len(steps) == -(-n // 8)
    size = -(-n // len(steps))  # even shards: the last shorter by less than their number
    firsts = sorted(int(r.tensors["grads"][0]) for r in steps)
    assert firsts == list(range(1, n + 1, size))
    assert torch.allclose(params[0].detach(), -0.1 * torch.arange(1, n + 1, dtype=torch.float32))


def test_flattens_all_parameters_and_carries_state():
    params = with_grads((2, 3), (4,), (5,))
    server, opt = make_opt(params, concurrency=3)
    for _ in range(3):
        opt.step()
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    assert torch.allclose(flat, expected_after(3, 15), rtol=1e-6)
    last = [r for r in server.requests if r.path == "/v1/step"][-2:]
    assert sorted(tuple(r.tensors["state"].shape) for r in last) == [(7, 2), (8, 2)]


@pytest.mark.parametrize("dtype,torch_dtype", [("F16", torch.float16), ("BF16", torch.bfloat16)])
def test_state_dtype_travels(dtype, torch_dtype):
    params = with_grads((4,))
    server, opt = make_opt(params, state_dtype=dtype)
    opt.step()
    opt.step()
    last = [r for r in server.requests if r.path == "/v1/step"][-1]
    assert last.metadata["state_dtype"] == dtype and last.tensors["state"].dtype == torch_dtype
    assert torch.allclose(params[0].detach(), expected_after(2, 4))


def test_pins_the_digest_when_the_alias_moves_mid_run():
    params = with_grads((3,))
    server, opt = make_opt(params, optimizer="toy")
    opt.step()
    server.aliases["stable"] = "2.0.0"
    opt.step()
    assert torch.allclose(params[0].detach(), expected_after(2, 3))
    assert server.count("GET", "/v1/resolve") == 1
    assert all(r.metadata["optimizer"] == opt.pinned for r in server.requests if r.path == "/v1/step")
    _, fresh = make_opt(with_grads((3,)), server=server, optimizer="toy")
    assert fresh.digest == server.digest("2.0.0")


def test_digest_mismatch_is_an_error_never_silently_accepted():
    params = with_grads((3,))
    server, opt = make_opt(params)
    server.faults.append(Fault(lambda r: r.path == "/v1/step", 1, (409, "digest_mismatch", None)))
    with pytest.raises(l2o.DigestMismatchError):
        opt.step()
    assert server.count("POST", "/v1/step") == 1
    server.answer_digest = "sha256:" + "f" * 64
    with pytest.raises(l2o.DigestMismatchError):
        opt.step()
    assert torch.equal(params[0].detach(), torch.zeros(3))


def test_session_mode_steps_each_shard_once_even_when_an_answer_is_lost():
    params = with_grads((20,))
    server, opt = make_opt(params, mode="session")
    server.faults.append(Fault(lambda r: r.path.endswith("/shards/1/steps/1"), 1, "lost"))
    server.faults.append(Fault(lambda r: r.path.endswith("/shards/1/steps/1"), 1, (409, "step_conflict", None)))
    opt.step()
    opt.step()
    assert server.count("POST", "/v1/sessions/s1/shards/1/steps/1") == 3
    assert all(v == 1 for v in server.applied.values()) and len(server.applied) == 6
    assert torch.allclose(params[0].detach(), expected_after(2, 20))
    opt.close()
    assert not server.sessions


def test_a_failed_step_can_be_repeated_without_double_applying():
    params = with_grads((24,))
    server, opt = make_opt(params, mode="session", retry=RetryPolicy(max_retries=0))
    server.faults.append(Fault(lambda r: r.path.endswith("/shards/2/steps/1"), 1, (500, "internal_error", None)))
    with pytest.raises(l2o.ServerError):
        opt.step()
    assert opt.step_count == 0 and torch.equal(params[0].detach(), torch.zeros(24))
    opt.step()
    assert [server.applied[f"s1/{k}/1"] for k in range(3)] == [1, 1, 1]
    assert torch.allclose(params[0].detach(), expected_after(1, 24))


def test_first_attempt_step_conflict_is_raised():
    params = with_grads((4,))
    server, opt = make_opt(params, mode="session")
    opt.step()
    with pytest.raises(l2o.StepConflictError):
        opt.client.session_step(opt.session_id, 0, 9, torch.ones(4))


@pytest.mark.parametrize("mode", ["stateless", "session"])
def test_state_dict_round_trip_resumes_exactly(mode, tmp_path):
    params = with_grads((11,))
    server, opt = make_opt(params, mode=mode, optimizer="toy", state_dtype="BF16")
    opt.step()
    opt.step()
    path = tmp_path / "ckpt.pt"
    torch.save(opt.state_dict(), path)
    server.aliases["stable"] = "2.0.0"
    params2 = [p.detach().clone().requires_grad_(True) for p in params]
    for p, q in zip(params, params2):
        q.grad = p.grad.clone()
    _, resumed = make_opt(params2, server=server, optimizer="toy")
    resumed.load_state_dict(torch.load(path))
    assert resumed.digest == server.digest("1.0.0") and resumed.step_count == 2 and resumed.mode == mode
    resumed.step()
    assert torch.allclose(params2[0].detach(), expected_after(3, 11))
    if mode == "session":
        assert server.count("POST", "/v1/sessions") == 1 + 2 * 2 + 2


def test_session_checkpoint_behind_the_server_is_refused():
    params = with_grads((4,))
    server, opt = make_opt(params, mode="session")
    opt.step()
    old = opt.state_dict()
    opt.step()
    opt.step()
    with pytest.raises(l2o.StepConflictError):
        opt.load_state_dict(old)


def test_missing_gradient_is_a_clear_error():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    a.grad = torch.ones(2)
    _, opt = make_opt([a, b])
    with pytest.raises(ValueError, match="no gradient"):
        opt.step()


def test_shard_ranges():
    assert l2o.shard_ranges(17, 8) == [(0, 0, 6), (1, 6, 6), (2, 12, 5)]
    assert [n for _, _, n in l2o.shard_ranges(65_537, 65_536)] == [32_769, 32_768]
    for n, limit in ((100, 7), (1_000_003, 65_536), (13, 1)):
        lengths = [k for _, _, k in l2o.shard_ranges(n, limit)]
        assert len(lengths) == -(-n // limit) and sum(lengths) == n and max(lengths) <= limit
        assert max(lengths) - min(lengths) < len(lengths)
    assert l2o.shard_ranges(8, 8) == [(0, 0, 8)]
    assert l2o.shard_ranges(1, 8) == [(0, 0, 1)]
