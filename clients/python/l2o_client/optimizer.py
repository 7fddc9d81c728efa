"""RemoteOptimizer: a torch.optim.Optimizer whose step() runs on an l2o server."""
from __future__ import annotations

import concurrent.futures as cf
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

import torch

from . import errors
from .client import STATE_DTYPES, Client, Resolved, RetryPolicy, Transport
from .safetensors import DTYPES

CHECKPOINT_FORMAT = "l2o-run/1"

Range = Tuple[int, int, int]  # (index, offset, length)


def shard_ranges(num_params: int, limit: int) -> List[Range]:
    """Splits ``num_params`` coordinates into the fewest consecutive ranges of at most ``limit``, of
    even lengths (the last may be shorter by less than their number): each request is one call of
    the update, and an optimizer with a gain pools over a call's coordinates, so no shard is left with
    a handful (docs/optimizer-math.md section 6)."""
    if num_params < 1 or limit < 1:
        raise ValueError(f"need num_params >= 1 and limit >= 1, got {num_params} and {limit}")
    size = -(-num_params // -(-num_params // limit))
    return [(i, off, min(size, num_params - off)) for i, off in enumerate(range(0, num_params, size))]


class RemoteOptimizer(torch.optim.Optimizer):
    """A learned optimizer served by l2o, as a ``torch.optim.Optimizer``.

    The reference is resolved once, here, and every request of the run carries the resulting digest
    (``name@sha256:<hex>``), so moving an alias mid-run changes nothing. ``step()`` flattens the
    gradients of all parameters (float32, CPU, in ``param_groups`` order), sends them shard by shard
    on a small thread pool, and adds the updates to the parameters (θ ← θ + update).

    mode="stateless": the client keeps the optimizer state ([N, S] in ``state_dtype``) and sends it
    each step. mode="session": the server keeps it; only gradients and updates travel.

    Example::

        opt = RemoteOptimizer(model.parameters(), url="http://127.0.0.1:8787", key=key,
                              optimizer="l2o-mlp@1.5.0", mode="session")
        loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(
        self,
        params: Iterable[Any],
        url: str = "http://127.0.0.1:8787",
        key: Optional[str] = None,
        optimizer: Optional[str] = None,
        mode: str = "stateless",
        state_dtype: str = "F32",
        timeout: float = 30.0,
        max_retries: int = 4,
        *,
        hyperparameters: Optional[Mapping[str, float]] = None,
        concurrency: int = 4,
        max_coordinates_per_request: Optional[int] = None,
        retry: Optional[RetryPolicy] = None,
        transport: Optional[Transport] = None,
        client: Optional[Client] = None,
    ) -> None:
        if not optimizer:
            raise ValueError('optimizer is required: a reference such as "l2o-mnist@1.1.0" or "l2o-mnist@stable"')
        if mode not in ("stateless", "session"):
            raise ValueError(f"mode must be 'stateless' or 'session', got {mode!r}")
        if state_dtype not in STATE_DTYPES:
            raise ValueError(f"state_dtype must be one of {STATE_DTYPES}, got {state_dtype!r}")
        super().__init__(params, {})
        self.client = client or Client(
            url, key, timeout=timeout, retry=retry or RetryPolicy(max_retries=max_retries), transport=transport
        )
        self.reference = optimizer
        self.mode = mode
        self.state_dtype = state_dtype
        self.hyperparameters = dict(hyperparameters) if hyperparameters else None
        self.concurrency = max(1, int(concurrency))
        self.max_coordinates_per_request = max_coordinates_per_request
        self.resolved: Resolved = self.client.resolve(optimizer, self.hyperparameters)
        self._check_dtype()
        self.num_params = sum(p.numel() for p in self._params())
        if self.num_params == 0:
            raise ValueError("RemoteOptimizer got no parameters")
        self.step_count = 0
        self._remote_state: Optional[torch.Tensor] = None
        self._session: Optional[Dict[str, Any]] = None
        self._shards: Optional[List[Range]] = None

    # -- properties -------------------------------------------------------------------------
    @property
    def digest(self) -> str:
        """The digest this run is pinned to."""
        return self.resolved.digest

    @property
    def pinned(self) -> str:
        """The pinned reference every request carries."""
        return self.resolved.pinned

    @property
    def session_id(self) -> Optional[str]:
        """Session mode: the server-side session, once created."""
        return self._session["id"] if self._session else None

    # -- the step ---------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:  # type: ignore[override]
        """One optimizer step. If it raises, the run is still at the previous step, and calling
        step() again with the same gradients is safe (a session shard that already applied the step
        answers with its stored updates)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = self._params()
        grads = self._flat_grads(params)
        updates = self._stateless_step(grads) if self.mode == "stateless" else self._session_step(grads)
        offset = 0
        for p in params:
            n = p.numel()
            p.add_(updates[offset : offset + n].view_as(p).to(device=p.device, dtype=p.dtype))
            offset += n
        self.step_count += 1
        return loss

    def _params(self) -> List[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def _flat_grads(self, params: List[torch.Tensor]) -> torch.Tensor:
        parts = []
        for i, p in enumerate(params):
            if p.grad is None:
                raise ValueError(
                    f"parameter {i} (shape {list(p.shape)}) has no gradient; every step sends all parameters "
                    "so each keeps its optimizer state: pass only parameters that receive gradients"
                )
            if p.grad.is_sparse:
                raise ValueError(f"parameter {i} has a sparse gradient; RemoteOptimizer needs dense gradients")
            parts.append(p.grad.detach().reshape(-1).to(device="cpu", dtype=torch.float32))
        flat = torch.cat(parts).contiguous()
        if flat.numel() != self.num_params:
            raise ValueError(
                f"this run has {self.num_params} parameters, but the parameter groups now hold {flat.numel()}; "
                "a run's parameters are fixed when the optimizer is created"
            )
        return flat

    def _run(self, shards: List[Range], task: Callable[[Range], torch.Tensor]) -> List[torch.Tensor]:
        if len(shards) == 1 or self.concurrency == 1:
            return [task(s) for s in shards]
        with cf.ThreadPoolExecutor(max_workers=min(self.concurrency, len(shards))) as pool:
            futures = [pool.submit(task, s) for s in shards]
            done, pending = cf.wait(futures, return_when=cf.FIRST_EXCEPTION)
            failed = [f for f in futures if f.done() and f.exception() is not None]
            if failed:
                for f in pending:
                    f.cancel()  # not started yet: never sent
                cf.wait(futures)
                raise failed[0].exception()  # type: ignore[misc]
            return [f.result() for f in futures]

    def _stateless_step(self, grads: torch.Tensor) -> torch.Tensor:
        if self._shards is None:
            limit = self.resolved.max_coordinates_per_request
            if self.max_coordinates_per_request:
                limit = min(limit, self.max_coordinates_per_request)
            self._shards = shard_ranges(self.num_params, limit)
        S = self.resolved.state_size
        previous = self._remote_state

        def one(shard: Range) -> Tuple[torch.Tensor, torch.Tensor]:
            _, off, n = shard
            state = previous[off : off + n] if previous is not None else None
            updates, state, _ = self.client.step(
                self.pinned,
                grads[off : off + n],
                state,
                state_size=S,
                digest=self.digest,
                state_dtype=self.state_dtype,
                hyperparameters=self.hyperparameters,
            )
            return updates, state

        results = self._run(self._shards, one)  # type: ignore[arg-type]
        # Every shard succeeded: only now does the run move to the new state (all or nothing).
        updates = torch.cat([u.reshape(-1) for u, _ in results])  # type: ignore[misc]
        self._remote_state = torch.cat([s.reshape(-1, S) for _, s in results])  # type: ignore[misc]
        return updates

    def _session_step(self, grads: torch.Tensor) -> torch.Tensor:
        if self._session is None:
            body: Dict[str, Any] = {
                "optimizer": self.pinned,
                "digest": self.digest,
                "numParams": self.num_params,
                "stateDtype": self.state_dtype,
            }
            if self.hyperparameters:
                body["hyperparameters"] = self.hyperparameters
            self._adopt_session(self.client.create_session(body))
        session_id, t = self._session["id"], self.step_count + 1  # type: ignore[index]

        def one(shard: Range) -> torch.Tensor:
            index, off, n = shard
            return self.client.session_step(session_id, index, t, grads[off : off + n], expect_digest=self.digest)

        return torch.cat([u.reshape(-1) for u in self._run(self._shards, one)])  # type: ignore[arg-type]

    def _adopt_session(self, session: Mapping[str, Any]) -> None:
        if session.get("digest") != self.digest:
            raise errors.DigestMismatchError(
                409, "digest_mismatch", f"session {session.get('id')} runs {session.get('digest')}, this run is pinned to {self.digest}"
            )
        if session.get("numParams") != self.num_params:
            raise errors.SdkError(f"session {session.get('id')} has {session.get('numParams')} parameters, this optimizer {self.num_params}")
        # Shard k covers [k·shardSize, min((k + 1)·shardSize, numParams)); `steps` gives runs of shards.
        size, count = session.get("shardSize", 0), session.get("shardCount", -1)
        if size < 1 or count != -(-self.num_params // size):
            raise errors.ProtocolError(f"session {session['id']}: {count} shards of {size} do not tile the parameters")
        following = 0
        for run in session.get("steps", []):
            if run["first"] != following or run["last"] < run["first"]:
                break
            following = run["last"] + 1
        if following != count:
            raise errors.ProtocolError(f"session {session['id']}: its steps do not cover shards 0 to {count - 1} in order")
        self._session = dict(session)
        self._shards = [(k, k * size, min(size, self.num_params - k * size)) for k in range(count)]

    def _check_dtype(self) -> None:
        if self.resolved.state_dtypes and self.state_dtype not in self.resolved.state_dtypes:
            raise errors.SdkError(f"{self.pinned} accepts state dtypes {self.resolved.state_dtypes}, not {self.state_dtype}")

    # -- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:  # type: ignore[override]
        """The run: pin, mode, step, and (stateless) the state tensor or (session) the session id."""
        return {
            "format": CHECKPOINT_FORMAT,
            "mode": self.mode,
            "reference": self.reference,
            "optimizer": self.pinned,
            "digest": self.digest,
            "hyperparameters": self.hyperparameters,
            "state_dtype": self.state_dtype,
            "num_params": self.num_params,
            "param_shapes": [list(p.shape) for p in self._params()],
            "step": self.step_count,
            "session_id": self.session_id,
            "state": None if self._remote_state is None else self._remote_state.clone(),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:  # type: ignore[override]
        """Resumes a run saved by state_dict(): re-resolves only the pinned digest, never the alias."""
        sd = dict(state_dict)
        if sd.get("format") != CHECKPOINT_FORMAT:
            raise errors.SdkError(f"not an l2o checkpoint (format {sd.get('format')!r}, expected {CHECKPOINT_FORMAT})")
        shapes = [list(p.shape) for p in self._params()]
        if sd.get("param_shapes") != shapes:
            raise errors.SdkError(f"the checkpoint's parameters have shapes {sd.get('param_shapes')}, this optimizer's {shapes}")
        resolved = self.client.resolve(sd["optimizer"], sd.get("hyperparameters"))
        if resolved.digest != sd["digest"]:
            raise errors.DigestMismatchError(
                409, "digest_mismatch", f"the checkpoint is pinned to {sd['digest']}, but {sd['optimizer']} resolved to {resolved.digest}"
            )
        self.resolved = resolved
        self.reference = sd.get("reference", sd["optimizer"])
        self.mode = sd["mode"]
        self.state_dtype = sd["state_dtype"]
        self.hyperparameters = sd.get("hyperparameters")
        self._check_dtype()
        self.step_count = int(sd["step"])
        self._shards = None
        self._session = None
        self._remote_state = None
        if self.mode == "stateless":
            state = sd.get("state")
            if self.step_count > 0:
                expected = (self.num_params, resolved.state_size)
                if state is None or tuple(state.shape) != expected or state.dtype != DTYPES[self.state_dtype]:
                    got = None if state is None else (tuple(state.shape), state.dtype)
                    raise errors.SdkError(f"checkpoint state is {got}, expected {expected} {self.state_dtype}")
                self._remote_state = state.detach().to("cpu").clone()
        else:
            session = self.client.get_session(sd["session_id"])
            self._adopt_session(session)
            for run in session["steps"]:
                # One ahead: a step applied whose step() did not return; resending it gets the stored updates.
                if run["step"] not in (self.step_count, self.step_count + 1):
                    raise errors.StepConflictError(
                        409,
                        "step_conflict",
                        f"session {session['id']} shard {run['first']} is at step {run['step']}, the checkpoint at step "
                        f"{self.step_count}; a session keeps only its latest state, so resume from the latest checkpoint",
                    )

    def close(self) -> None:
        """Session mode: deletes the server-side session."""
        if self._session is not None:
            self.client.delete_session(self._session["id"])
            self._session = None
