"""The PyTorch client against the real Node server (npx tsx src/runtime/node-main.ts).

Starts the server on an ephemeral port with a temp --data-dir and known keys, publishes a small
random learned optimizer through the admin API, and trains tiny problems in both modes.
"""
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid

import pytest
import torch

import l2o_client as l2o
from l2o_client.safetensors import encode

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ADMIN_KEY = "py-admin-key-0123456789"
CLIENT_KEY = "py-client-key-0123456789"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npx") is None,
    reason="node/npx not on PATH: cannot start the l2o server (src/runtime/node-main.ts)",
)


@pytest.fixture(scope="module")
def server():
    data_dir = tempfile.mkdtemp(prefix="l2o-py-")
    env = dict(os.environ, L2O_ADMIN_KEY=ADMIN_KEY, L2O_CLIENT_KEY=CLIENT_KEY)
    proc = subprocess.Popen(
        ["npx", "--no-install", "tsx", "src/runtime/node-main.ts", "--port", "0", "--data-dir", data_dir],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group: npx does not pass signals on to node, so stop the whole group.
        start_new_session=True,
    )

    def group_alive() -> bool:
        try:
            os.killpg(proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop() -> None:
        try:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if group_alive():
                    os.killpg(proc.pid, sig)
                deadline = time.time() + 10
                while group_alive() and time.time() < deadline:
                    proc.poll()  # reap the leader so the group can empty
                    time.sleep(0.1)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)

    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    url, log, deadline = None, [], time.time() + 90
    while url is None and time.time() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        log.append(line)
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            url = m.group(1)
    if url is None:
        stop()
        pytest.fail("the l2o server did not start:\n" + "".join(log))
    with urllib.request.urlopen(url + "/healthz", timeout=10) as res:
        assert res.status == 200
    try:
        yield url
    finally:
        stop()


def random_lstm_file(seed: int, hidden: int = 4) -> bytes:
    """A small learned optimizer in the weight-file format (DESIGN §3): L = 2, log-sign p = 10."""
    g = torch.Generator().manual_seed(seed)
    u = lambda *shape: (torch.rand(*shape, generator=g) * 2 - 1) * 0.3  # noqa: E731
    tensors = {}
    for k, inputs in enumerate([2, hidden]):
        tensors[f"cells.{k}.weight_ih"] = u(4 * hidden, inputs)
        tensors[f"cells.{k}.weight_hh"] = u(4 * hidden, hidden)
        tensors[f"cells.{k}.bias_ih"] = u(4 * hidden)
        tensors[f"cells.{k}.bias_hh"] = u(4 * hidden)
    tensors["head.weight"] = u(1, hidden)
    tensors["head.bias"] = u(1) * 0.01
    arch = {"hidden": hidden, "kind": "lstm-cw", "layers": 2, "outputScale": 0.1, "p": 10, "preprocessing": "log-sign"}
    return encode(tensors, {"format": "l2o/1", "architecture": json.dumps(arch, separators=(",", ":"))})


def admin(url: str, method: str, path: str, body: bytes, content_type: str) -> dict:
    req = urllib.request.Request(
        url + path, data=body, method=method, headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": content_type}
    )
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def publish(url: str, name: str, version: str, weights: bytes) -> dict:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\n{version}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="weights"; filename="model.safetensors"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + weights + f"\r\n--{boundary}--\r\n".encode()
    return admin(url, "POST", f"/v1/admin/optimizers/{name}/versions", body, f"multipart/form-data; boundary={boundary}")


def move_alias(url: str, name: str, alias: str, version: str) -> None:
    admin(url, "PUT", f"/v1/admin/optimizers/{name}/aliases/{alias}", json.dumps({"version": version}).encode(), "application/json")


def quadratic(seed: int, n: int = 50):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(n, generator=g)
    scale = torch.rand(n, generator=g) + 0.5
    w = torch.nn.Parameter(torch.zeros(n))
    b = torch.nn.Parameter(torch.zeros(3))
    loss = lambda: ((scale * (w - target)) ** 2).sum() + (b**2).sum()  # noqa: E731
    return [w, b], loss


def train(opt_factory, steps: int = 20, seed: int = 0):
    params, loss_fn = quadratic(seed)
    opt = opt_factory(params)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    return params, opt, loss_fn().item()


@pytest.fixture(scope="module")
def learned(server):
    publish(server, "py-lstm", "1.0.0", random_lstm_file(1))
    publish(server, "py-lstm", "2.0.0", random_lstm_file(2))
    move_alias(server, "py-lstm", "stable", "1.0.0")
    return "py-lstm"


def remote(server, **kw):
    kw.setdefault("max_retries", 2)
    return lambda params: l2o.RemoteOptimizer(params, url=server, key=CLIENT_KEY, **kw)


@pytest.mark.parametrize("mode", ["stateless", "session"])
def test_adam_baseline_matches_torch_adam(server, mode):
    got, opt, _ = train(remote(server, optimizer="adam", hyperparameters={"learningRate": 0.05}, mode=mode))
    want, _, _ = train(lambda p: torch.optim.Adam(p, lr=0.05))
    for a, b in zip(got, want):
        assert torch.allclose(a.detach(), b.detach(), rtol=1e-4, atol=1e-5)
    opt.close()


def test_learned_optimizer_both_modes_agree_and_shard(server, learned):
    a, sa, _ = train(remote(server, optimizer=f"{learned}@1.0.0", mode="stateless", max_coordinates_per_request=16))
    b, sb, _ = train(remote(server, optimizer=f"{learned}@1.0.0", mode="session"))
    for x, y in zip(a, b):
        assert torch.equal(x.detach(), y.detach())
    assert sa.digest == sb.digest and sa.pinned.endswith(sa.digest)
    assert sa._shards is not None and len(sa._shards) == 4  # 53 coordinates, 16 per request
    sb.close()


@pytest.mark.parametrize("mode", ["stateless", "session"])
def test_alias_move_mid_run_changes_nothing_and_checkpoints_resume(server, learned, mode):
    straight, _, _ = train(remote(server, optimizer=f"{learned}@1.0.0", mode=mode), steps=10)

    params, loss_fn = quadratic(0)
    opt = remote(server, optimizer=learned, mode=mode, state_dtype="F32")(params)  # = py-lstm@stable = 1.0.0
    for i in range(10):
        if i == 3:
            move_alias(server, learned, "stable", "2.0.0")
        if i == 6:
            ckpt = opt.state_dict()
            opt = remote(server, optimizer=f"{learned}@2.0.0", mode=mode)(params)
            opt.load_state_dict(ckpt)
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    move_alias(server, learned, "stable", "1.0.0")
    for x, y in zip(params, straight):
        assert torch.equal(x.detach(), y.detach())
    fresh = remote(server, optimizer=learned)(quadratic(0)[0])
    assert fresh.digest == opt.digest


def test_errors_from_the_real_server(server, learned):
    # Registry reads are public; stepping needs a valid key.
    params, loss_fn = quadratic(0)
    opt = l2o.RemoteOptimizer(params, url=server, key="wrong-key-0123456789", optimizer=learned)
    loss_fn().backward()
    with pytest.raises(l2o.AuthError):
        opt.step()
    with pytest.raises(l2o.NotFoundError):
        remote(server, optimizer="no-such-optimizer")(quadratic(0)[0])
    client = l2o.Client(server, CLIENT_KEY)
    v1 = client.resolve(f"{learned}@1.0.0")
    v2 = client.resolve(f"{learned}@2.0.0")
    with pytest.raises(l2o.DigestMismatchError):
        client.step(v1.pinned, torch.ones(3), None, state_size=v1.state_size, digest=v2.digest)
    with pytest.raises(l2o.ValidationError) as e:
        client.step(v1.pinned, torch.tensor([1.0, float("nan")]), None, state_size=v1.state_size)
    assert e.value.code == "non_finite_gradient"
    session = client.create_session({"optimizer": v1.pinned, "digest": v1.digest, "numParams": 4, "stateDtype": "F32"})
    with pytest.raises(l2o.StepConflictError):
        client.session_step(session["id"], 0, 2, torch.ones(4))
    client.delete_session(session["id"])
    with pytest.raises(l2o.NotFoundError):
        client.get_session(session["id"])


EXTENDED = os.path.join(ROOT, "test", "fixtures", "extended", "moments-elu-tanh", "model.safetensors")


@pytest.fixture(scope="module")
def extended(server):
    """An optimizer of the extended architecture (docs/optimizer-math.md): train/'s fixture file."""
    with open(EXTENDED, "rb") as f:
        publish(server, "py-extended", "1.0.0", f.read())
    return "py-extended@1.0.0"


def test_extended_optimizer_reads_its_state_width_and_steps_in_both_modes(server, extended):
    assert l2o.Client(server, CLIENT_KEY).resolve(extended).state_size == 37  # 2·2·8 + 3 + 2
    a, sa, _ = train(remote(server, optimizer=extended, mode="stateless", max_coordinates_per_request=16))
    b, sb, _ = train(remote(server, optimizer=extended, mode="session"))
    c, _, _ = train(remote(server, optimizer=extended, mode="stateless", state_dtype="BF16"))
    for x, y in zip(a, b):
        assert torch.equal(x.detach(), y.detach())
    # The bias of the quadratic never gets a nonzero gradient: the zero-gradient rule keeps it at 0.
    for params in (a, b, c):
        assert torch.equal(params[1].detach(), torch.zeros(3))
    assert len(sa._shards) == 4
    sb.close()
