import pytest
import torch

import l2o_client as l2o
from l2o_client.client import Client, RetryPolicy, parse_retry_after
from l2o_client.errors import PROBLEM_STATUS

from fake_server import FakeServer, Fault, problem


def make(server=None, **retry):
    server = server or FakeServer()
    sleeps = []
    policy = RetryPolicy(sleep=sleeps.append, random=lambda: 0.5, **retry)
    return server, Client("http://l2o.test/", server.key, retry=policy, transport=server), sleeps


def step_fault(kind, times=1):
    return Fault(lambda r: r.path == "/v1/step", times, kind)


def do_step(client, server):
    return client.step(f"toy@{server.digest('1.0.0')}", torch.ones(2), None, state_size=2, digest=server.digest("1.0.0"))


def test_retries_5xx_with_jittered_exponential_backoff():
    server, client, sleeps = make()
    server.faults.append(step_fault((503, "internal_error", None), 3))
    do_step(client, server)
    assert server.count("POST", "/v1/step") == 4
    assert sleeps == [0.1875, 0.375, 0.75]


def test_backoff_is_capped_and_jittered():
    p = RetryPolicy(initial_delay=0.1, max_delay=1.0, random=lambda: 0.0)
    assert [p.backoff(k) for k in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]


def test_retries_network_errors_and_408_then_gives_up():
    server, client, sleeps = make(max_retries=2)
    server.faults.append(step_fault("network"))
    server.faults.append(step_fault((408, "invalid_request", None)))
    do_step(client, server)
    server.faults.append(step_fault("timeout", 3))
    with pytest.raises(l2o.TimeoutError):
        do_step(client, server)
    assert server.count("POST", "/v1/step") == 6
    assert isinstance(l2o.TimeoutError("x"), l2o.ConnectionError)


def test_honours_retry_after_and_fails_fast_beyond_the_cap():
    server, client, sleeps = make(max_retry_after=10)
    server.faults.append(step_fault((429, "rate_limited", {"Retry-After": "2"})))
    do_step(client, server)
    assert sleeps == [2.0]
    server.faults.append(step_fault((429, "rate_limited", {"Retry-After": "30"})))
    with pytest.raises(l2o.RateLimitError) as e:
        do_step(client, server)
    assert e.value.retry_after == 30.0


def test_parses_retry_after_dates():
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:05 GMT", now=1767225600.0) == 5.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_does_not_retry_4xx():
    server, client, sleeps = make()
    server.faults.append(step_fault((400, "shape_mismatch", None)))
    with pytest.raises(l2o.ValidationError):
        do_step(client, server)
    assert server.count("POST", "/v1/step") == 1 and sleeps == []


def test_reuses_one_idempotency_key_across_retries():
    server, client, _ = make()
    server.faults.append(step_fault((502, "internal_error", None), 2))
    do_step(client, server)
    do_step(client, server)
    keys = [r.headers["Idempotency-Key"] for r in server.requests if r.path == "/v1/step"]
    assert len(set(keys[:3])) == 1 and keys[3] != keys[0]


@pytest.mark.parametrize("code", sorted(PROBLEM_STATUS))
def test_maps_every_problem_code(code):
    expected = {
        401: l2o.AuthError, 403: l2o.AuthError, 404: l2o.NotFoundError, 409: l2o.ConflictError,
        429: l2o.RateLimitError, 500: l2o.ServerError, 503: l2o.ServerError, 408: l2o.ApiError, 431: l2o.ApiError,
    }.get(PROBLEM_STATUS[code], l2o.ValidationError)
    expected = {"digest_mismatch": l2o.DigestMismatchError, "step_conflict": l2o.StepConflictError}.get(code, expected)
    status = PROBLEM_STATUS[code]
    client = Client("http://x", transport=lambda *a: problem(status, code, f"detail {code}"), retry=RetryPolicy(max_retries=0))
    with pytest.raises(expected) as e:
        client.resolve("toy")
    assert (e.value.status, e.value.code, e.value.detail, e.value.request_id) == (status, code, f"detail {code}", "req-1")


def test_unknown_codes_fall_back_on_the_status():
    from l2o_client.client import RawResponse

    client = Client("http://x", transport=lambda *a: RawResponse(502, {}, b"<h1>bad gateway</h1>"), retry=RetryPolicy(max_retries=0))
    with pytest.raises(l2o.ServerError) as e:
        client.resolve("toy")
    assert e.value.code == "unknown" and "bad gateway" in e.value.detail


def test_problem_codes_match_the_typescript_contract():
    # src/contract/problems.ts is the one source of truth; this table mirrors it for Python.
    import pathlib
    import re

    source = pathlib.Path(__file__).resolve().parents[3] / "src" / "contract" / "problems.ts"
    table = source.read_text().split("export const problemCodes = {", 1)[1].split("}", 1)[0]
    contract = {code: int(status) for code, status in re.findall(r"^\s*(\w+): (\d+),", table, re.M)}
    assert len(contract) > 20
    assert PROBLEM_STATUS == contract
