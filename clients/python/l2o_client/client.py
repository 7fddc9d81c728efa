"""HTTP client for the l2o API: urllib transport, retries with jittered backoff, typed errors."""
from __future__ import annotations

import email.utils
import http.client
import json
import random as _random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch

from . import errors
from .safetensors import SafetensorsError, decode, encode

SAFETENSORS_MEDIA_TYPE = "application/vnd.l2o.safetensors"
STATE_DTYPES = ("F32", "F16", "BF16")


@dataclass
class RawResponse:
    """One HTTP answer with its body read."""

    status: int
    headers: Dict[str, str]  # lower-case names
    body: bytes


Transport = Callable[[str, str, Dict[str, str], Optional[bytes], float], RawResponse]
"""(method, url, headers, body, timeout_s) -> RawResponse; raises errors.ConnectionError/TimeoutError."""


def urllib_transport(method: str, url: str, headers: Dict[str, str], body: Optional[bytes], timeout: float) -> RawResponse:
    """The default transport: urllib.request, one connection per request."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return RawResponse(res.status, {k.lower(): v for k, v in res.headers.items()}, res.read())
    except urllib.error.HTTPError as e:
        try:
            data = e.read()
        except (OSError, http.client.HTTPException):
            data = b""
        return RawResponse(e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, data)
    except (socket.timeout, TimeoutError) as e:
        raise errors.TimeoutError(f"{method} {url}: no answer within {timeout} s") from e
    except urllib.error.URLError as e:
        if isinstance(e.reason, (socket.timeout, TimeoutError)):
            raise errors.TimeoutError(f"{method} {url}: no answer within {timeout} s") from e
        raise errors.ConnectionError(f"{method} {url}: {e.reason}") from e
    except (OSError, http.client.HTTPException) as e:
        raise errors.ConnectionError(f"{method} {url}: {e}") from e


@dataclass
class RetryPolicy:
    """How failed requests are retried: network errors, 408, 429 (Retry-After honoured) and 5xx."""

    max_retries: int = 4
    initial_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = _random.random

    def backoff(self, retry: int) -> float:
        """Equal jitter: uniform in [d/2, d) with d = min(max_delay, initial_delay * 2**retry)."""
        ceiling = min(self.max_delay, self.initial_delay * 2**retry)
        return ceiling / 2 + ceiling / 2 * self.random()


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Retry-After (delay-seconds or HTTP-date) in seconds; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _retryable_status(status: int) -> bool:
    return status in (408, 429) or 500 <= status <= 599


@dataclass
class Resolved:
    """A reference resolved to a digest, with the limits a run needs."""

    name: str
    digest: str
    version: Optional[str]
    kind: str
    deprecated: bool
    state_size: int
    max_coordinates_per_request: int
    state_dtypes: List[str]
    raw: Dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def pinned(self) -> str:
        """``name@sha256:<hex>``: the reference naming exactly this digest."""
        return f"{self.name}@{self.digest}"


class Client:
    """Connection settings and the API's calls. ``transport`` is injectable for tests."""

    def __init__(
        self,
        url: str,
        key: Optional[str] = None,
        *,
        timeout: float = 30.0,
        retry: Optional[RetryPolicy] = None,
        transport: Optional[Transport] = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.transport = transport or urllib_transport

    # -- plumbing ---------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Optional[str]]] = None,
        json_body: Any = None,
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        accept: str = "application/json",
        retry_if: Optional[Callable[[errors.ApiError, int], bool]] = None,
    ) -> RawResponse:
        """Sends one logical request, retrying what is safe; returns a 2xx answer or raises SdkError."""
        q = {k: v for k, v in (query or {}).items() if v is not None}
        url = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(q)}" if q else "")
        headers = {"Accept": accept, "User-Agent": "l2o-client-python/0.1"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            content_type = "application/json"
        if body is not None:
            headers["Content-Type"] = content_type or "application/octet-stream"
        if method == "POST":
            # One key for every attempt, so the server can tell a retry from a new request.
            headers["Idempotency-Key"] = str(uuid.uuid4())
        policy = self.retry
        attempt = 0
        while True:
            wait: Optional[float] = None
            try:
                res = self.transport(method, url, headers, body, self.timeout)
            except errors.ConnectionError as e:
                failure: errors.SdkError = e
            else:
                if 200 <= res.status < 300:
                    return res
                err = _api_error(res, method, url)
                retryable = _retryable_status(res.status) or bool(retry_if and retry_if(err, attempt))
                if not retryable:
                    raise err
                if err.retry_after is not None and err.retry_after > policy.max_retry_after:
                    raise err
                failure, wait = err, err.retry_after
            if attempt >= policy.max_retries:
                raise failure
            policy.sleep(policy.backoff(attempt) if wait is None else wait)
            attempt += 1

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        res = self.request(method, path, **kw)
        if not res.body:
            return None
        try:
            return json.loads(res.body.decode("utf-8"))
        except ValueError:
            raise errors.ProtocolError(f"{method} {path}: the answer is not JSON") from None

    # -- API calls --------------------------------------------------------------------------
    def list_optimizers(self) -> List[Dict[str, Any]]:
        """Every optimizer with its versions and aliases."""
        return self._json("GET", "/v1/optimizers")["optimizers"]

    def resolve(self, reference: str, hyperparameters: Optional[Mapping[str, float]] = None) -> Resolved:
        """Resolves ``name``, ``name@1.2.0``, ``name@alias`` or ``name@sha256:<hex>`` to its digest now."""
        hp = json.dumps(dict(hyperparameters)) if hyperparameters else None
        res = self.request("GET", "/v1/resolve", query={"ref": reference, "hyperparameters": hp})
        try:
            d = json.loads(res.body.decode("utf-8"))
            return Resolved(
                name=d["name"],
                digest=d["digest"],
                version=d.get("version"),
                kind=d.get("kind", "learned"),
                deprecated=bool(d.get("deprecated")) or "deprecation" in res.headers,
                state_size=int(d["stateSize"]),
                max_coordinates_per_request=int(d["maxCoordinatesPerRequest"]),
                state_dtypes=list(d.get("stateDtypes") or STATE_DTYPES),
                raw=d,
            )
        except (ValueError, KeyError, TypeError) as e:
            raise errors.ProtocolError(f"GET /v1/resolve: the answer does not match the API contract ({e})") from None

    def step(
        self,
        optimizer: str,
        grads: torch.Tensor,
        state: Optional[torch.Tensor],
        *,
        state_size: int,
        digest: Optional[str] = None,
        state_dtype: str = "F32",
        hyperparameters: Optional[Mapping[str, float]] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, str]:
        """One binary stateless step: returns (updates F32 [N], state [N, S] in state_dtype, digest)."""
        meta = {"optimizer": optimizer, "state_dtype": state_dtype}
        if digest is not None:
            meta["digest"] = digest
        if hyperparameters:
            meta["hyperparameters"] = json.dumps(dict(hyperparameters))
        tensors = {"grads": grads}
        if state is not None:
            tensors["state"] = state
        res = self.request(
            "POST", "/v1/step", body=encode(tensors, meta), content_type=SAFETENSORS_MEDIA_TYPE, accept=SAFETENSORS_MEDIA_TYPE
        )
        where = "POST /v1/step"
        metadata, out = _decode(res.body, where)
        n = grads.numel()
        updates, new_state = out.get("updates"), out.get("state")
        _check(updates, "F32", (n,), where, "updates")
        _check(new_state, state_dtype, (n, state_size), where, "state")
        answered = metadata.get("digest") or res.headers.get("l2o-digest")
        if answered is None:
            raise errors.ProtocolError(f"{where}: the answer names no digest")
        if digest is not None and answered != digest:
            raise errors.DigestMismatchError(409, "digest_mismatch", f"the server answered under {answered}, but the request was pinned to {digest}")
        return updates, new_state, answered

    def create_session(self, body: Mapping[str, Any]) -> Dict[str, Any]:
        """Creates a session (server-held state split into shards)."""
        return self._json("POST", "/v1/sessions", json_body=dict(body))

    def get_session(self, session_id: str) -> Dict[str, Any]:
        """Reads a session: digest and each shard's step."""
        return self._json("GET", f"/v1/sessions/{urllib.parse.quote(session_id, safe='')}")

    def delete_session(self, session_id: str) -> None:
        """Deletes a session and its state."""
        self.request("DELETE", f"/v1/sessions/{urllib.parse.quote(session_id, safe='')}")

    def session_step(
        self, session_id: str, shard: int, step: int, grads: torch.Tensor, *, expect_digest: Optional[str] = None
    ) -> torch.Tensor:
        """Step ``step`` of one shard. A 409 step_conflict to a retry is retried: the server answers a
        repeat of step t with the stored updates, so a step is never applied twice."""
        path = f"/v1/sessions/{urllib.parse.quote(session_id, safe='')}/shards/{shard}/steps/{step}"
        res = self.request(
            "POST",
            path,
            body=encode({"grads": grads}),
            content_type=SAFETENSORS_MEDIA_TYPE,
            accept=SAFETENSORS_MEDIA_TYPE,
            retry_if=lambda err, attempt: attempt > 0 and isinstance(err, errors.StepConflictError),
        )
        metadata, out = _decode(res.body, f"POST {path}")
        updates = out.get("updates")
        _check(updates, "F32", (grads.numel(),), f"POST {path}", "updates")
        answered = metadata.get("digest") or res.headers.get("l2o-digest")
        if expect_digest is not None and answered is not None and answered != expect_digest:
            raise errors.DigestMismatchError(409, "digest_mismatch", f"session {session_id} answered under {answered}, but the run is pinned to {expect_digest}")
        return updates


def _decode(body: bytes, where: str) -> Tuple[Dict[str, str], Dict[str, torch.Tensor]]:
    try:
        return decode(body)
    except SafetensorsError as e:
        raise errors.ProtocolError(f"{where}: {e}") from None


def _check(t: Optional[torch.Tensor], dtype: str, shape: Tuple[int, ...], where: str, name: str) -> None:
    from .safetensors import DTYPES

    if t is None or t.dtype != DTYPES[dtype] or t.numel() != _prod(shape):
        got = "none" if t is None else f"{t.dtype} {list(t.shape)}"
        raise errors.ProtocolError(f"{where}: expected {name} {dtype} {list(shape)}, got {got}")


def _prod(shape: Tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _api_error(res: RawResponse, method: str, url: str) -> errors.ApiError:
    retry_after = parse_retry_after(res.headers.get("retry-after"))
    problem: Optional[Dict[str, Any]] = None
    text = res.body.decode("utf-8", errors="replace")
    if "json" in res.headers.get("content-type", ""):
        try:
            parsed = json.loads(text)
            problem = parsed if isinstance(parsed, dict) else None
        except ValueError:
            problem = None
    inner = problem.get("error") if problem and isinstance(problem.get("error"), dict) else problem
    inner = inner or {}
    code = inner.get("code") or (str(inner.get("type", "")).rsplit("/", 1)[-1] or None)
    detail = inner.get("detail") or inner.get("message") or inner.get("title") or text[:500] or f"HTTP {res.status}"
    cls = errors.error_class_for(code, res.status)
    return cls(
        res.status,
        code if code in errors.PROBLEM_STATUS else "unknown",
        str(detail),
        request_id=inner.get("requestId") or res.headers.get("x-request-id"),
        problem=problem,
        retry_after=retry_after,
        method=method,
        url=url,
    )
