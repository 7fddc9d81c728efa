"""An in-memory l2o server behind a fake transport (mirrors test/sdk/fake-server.ts).

Toy optimizer: update = -scale * (g + s0), then s0 += g, s1 += 1; scale depends on the version,
so a test can tell which digest answered and whether state travelled.
"""
from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import torch

from l2o_client import errors
from l2o_client.client import RawResponse
from l2o_client.safetensors import DTYPES, decode, encode


@dataclass
class Seen:
    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: Optional[bytes]
    tensors: Dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: Dict[str, str] = field(default_factory=dict)
    json: Any = None


@dataclass
class Fault:
    when: Callable[[Seen], bool]
    times: int
    kind: Any  # "network" | "lost" | "timeout" | (status, code, headers)


class FakeServer:
    def __init__(self) -> None:
        self.requests: List[Seen] = []
        self.faults: List[Fault] = []
        self.max_coordinates = 8
        self.shard_size = 8
        self.S = 2
        self.key = "test-key"
        self.versions = {"1.0.0": (f"sha256:{1:064x}", 0.1), "2.0.0": (f"sha256:{2:064x}", 0.2)}
        self.aliases = {"stable": "1.0.0"}
        self.sessions: Dict[str, Dict[str, Any]] = {}
        self.applied: Dict[str, int] = {}
        self.answer_digest: Optional[str] = None
        self.lock = threading.Lock()

    def digest(self, version: str) -> str:
        return self.versions[version][0]

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path.startswith(prefix))

    def __call__(self, method: str, url: str, headers: Dict[str, str], body: Optional[bytes], timeout: float) -> RawResponse:
        u = urllib.parse.urlsplit(url)
        seen = Seen(method, u.path, dict(urllib.parse.parse_qsl(u.query)), dict(headers), body)
        if body is not None and headers.get("Content-Type") == "application/vnd.l2o.safetensors":
            seen.metadata, seen.tensors = decode(body)
        elif body is not None:
            seen.json = json.loads(body)
        with self.lock:
            self.requests.append(seen)
            fault = next((f for f in self.faults if f.times > 0 and f.when(seen)), None)
            if fault:
                fault.times -= 1
            if fault is not None and fault.kind == "network":
                raise errors.ConnectionError("connection reset")
            if fault is not None and fault.kind == "timeout":
                raise errors.TimeoutError("timed out")
            if fault is not None and isinstance(fault.kind, tuple):
                status, code, extra = fault.kind
                return problem(status, code, "injected", extra)
            res = self.handle(seen)
            if fault is not None and fault.kind == "lost":
                raise errors.ConnectionError("socket hang up")
            return res

    def find(self, ref: str):
        name, _, rest = ref.partition("@")
        rest = rest or "stable"
        if name != "toy":
            return None
        if rest.startswith("sha256:"):
            return next(((v, d, s) for v, (d, s) in self.versions.items() if d == rest), None)
        v = rest if rest in self.versions else self.aliases.get(rest)
        return (v, *self.versions[v]) if v in self.versions else None

    def handle(self, r: Seen) -> RawResponse:
        if r.headers.get("Authorization") != f"Bearer {self.key}":
            return problem(401, "unauthorized", "bad key")
        if r.method == "GET" and r.path == "/v1/resolve":
            found = self.find(r.query.get("ref", ""))
            if not found:
                return problem(404, "optimizer_not_found", "no such optimizer")
            v, d, _ = found
            return json_res(200, {
                "reference": r.query["ref"], "name": "toy", "kind": "learned", "version": v, "digest": d,
                "deprecated": False, "architecture": None, "hyperparameters": None, "stateSize": self.S,
                "maxCoordinatesPerRequest": self.max_coordinates, "stateDtypes": ["F32", "F16", "BF16"],
            })
        if r.method == "POST" and r.path == "/v1/step":
            return self.step(r)
        if r.method == "POST" and r.path == "/v1/sessions":
            return self.create_session(r)
        parts = r.path.split("/")
        if len(parts) >= 4 and parts[1:3] == ["v1", "sessions"]:
            s = self.sessions.get(parts[3])
            if s is None:
                return problem(404, "session_not_found", "no session")
            if len(parts) == 4 and r.method == "GET":
                return json_res(200, self.session_json(s))
            if len(parts) == 4 and r.method == "DELETE":
                del self.sessions[s["id"]]
                return RawResponse(204, {}, b"")
            if len(parts) == 8 and r.method == "POST":
                return self.session_step(r, s, int(parts[5]), int(parts[7]))
        return problem(404, "not_found", "no route")

    def math(self, scale: float, g: torch.Tensor, state: torch.Tensor):
        state = state.reshape(-1, self.S).to(torch.float32)
        updates = (-scale * (g + state[:, 0])).to(torch.float32)
        nxt = state.clone()
        nxt[:, 0] += g
        nxt[:, 1] += 1
        return updates, nxt

    def step(self, r: Seen) -> RawResponse:
        found = self.find(r.metadata.get("optimizer", ""))
        if not found:
            return problem(404, "optimizer_not_found", "no such optimizer")
        v, d, scale = found
        if r.metadata.get("digest") not in (None, d):
            return problem(409, "digest_mismatch", "digest differs")
        g = r.tensors["grads"]
        n = g.numel()
        if n > self.max_coordinates:
            return problem(413, "too_many_coordinates", "too many")
        sent = r.tensors.get("state")
        dtype = sent.dtype if sent is not None else DTYPES[r.metadata.get("state_dtype", "F32")]
        state = sent.to(torch.float32) if sent is not None else torch.zeros(n, self.S)
        updates, nxt = self.math(scale, g, state)
        body = encode({"updates": updates, "state": nxt.to(dtype)}, {"digest": self.answer_digest or d})
        return RawResponse(200, {"content-type": "application/vnd.l2o.safetensors"}, body)

    def create_session(self, r: Seen) -> RawResponse:
        body = r.json
        found = self.find(body["optimizer"])
        if not found:
            return problem(404, "optimizer_not_found", "no such optimizer")
        _, d, scale = found
        shards = []
        for i, off in enumerate(range(0, body["numParams"], self.shard_size)):
            n = min(self.shard_size, body["numParams"] - off)
            shards.append({"index": i, "offset": off, "length": n, "step": 0, "state": torch.zeros(n, self.S), "last": None})
        s = {"id": f"s{len(self.sessions) + 1}", "digest": d, "scale": scale, "dtype": body.get("stateDtype", "F32"), "shards": shards}
        self.sessions[s["id"]] = s
        return json_res(201, self.session_json(s))

    def session_json(self, s):
        return {
            "id": s["id"], "optimizer": "toy", "digest": s["digest"], "numParams": sum(x["length"] for x in s["shards"]),
            "stateDtype": s["dtype"], "stateSize": self.S, "shardSize": self.shard_size, "createdAt": "2026-01-01T00:00:00Z",
            "shardCount": len(s["shards"]),
            "steps": [{"first": x["index"], "last": x["index"], "step": x["step"]} for x in s["shards"]],
        }

    def session_step(self, r: Seen, s, k: int, t: int) -> RawResponse:
        shard = s["shards"][k]
        meta = {"digest": self.answer_digest or s["digest"], "step": str(t)}
        if t == shard["step"] and shard["last"] is not None:
            return RawResponse(200, {"content-type": "application/vnd.l2o.safetensors"}, encode({"updates": shard["last"]}, meta))
        if t != shard["step"] + 1:
            return problem(409, "step_conflict", f"expected step {shard['step'] + 1}")
        updates, shard["state"] = self.math(s["scale"], r.tensors["grads"], shard["state"])
        shard["step"], shard["last"] = t, updates
        key = f"{s['id']}/{k}/{t}"
        self.applied[key] = self.applied.get(key, 0) + 1
        return RawResponse(200, {"content-type": "application/vnd.l2o.safetensors"}, encode({"updates": updates}, meta))


def json_res(status: int, body: Any) -> RawResponse:
    return RawResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def problem(status: int, code: str, detail: str, headers: Optional[Dict[str, str]] = None) -> RawResponse:
    body = {"type": f"/problems/{code}", "title": code, "status": status, "detail": detail, "code": code, "requestId": "req-1"}
    h = {"content-type": "application/problem+json", "x-request-id": "req-1"}
    h.update({k.lower(): v for k, v in (headers or {}).items()})
    return RawResponse(status, h, json.dumps(body).encode())
