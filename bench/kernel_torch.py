"""The PyTorch column of `npm run bench:kernel` (bench/kernel.ts runs it with /usr/bin/python3).

One step of a learned optimizer from a weight file (docs/optimizer-math.md: every feature kind, the
ELU input layer, both output transforms), in PyTorch on one thread with no autograd, written two
ways:
- `lstmcell`: the service's coordinate-major state [N, S], torch.nn.LSTMCell per layer (as
  train/optimizer.py's `forward`);
- `addmm`: a feature-major state [S, N], one addmm per layer on [x; h] and in-place activations
  (as train/optimizer.py's `fast_forward`, the faster on CPU); its state is already transposed,
  so the transposes the wire layout would need are not timed.

It serves timing requests on stdin, one JSON object per line, so that the caller can interleave
PyTorch's steps with its own, step by step, under the same machine load:
  {"load": "MODEL.safetensors"}                       -> {"stateSize": S, "torch": version}
  {"impl": "addmm", "n": N, "runs": R, "warmup": W}   -> {"times": [ms, ...]}
Inputs are made once per N (|g| from 1e-8 to 1e2 with random signs, a state uniform in ±0.5 with
moment slots r >= 0 and z = 1), the warm-up runs on the first request for an (impl, N).
Self-contained (reads the safetensors file itself): train/ is not imported.
"""

import json
import math
import os
import struct
import sys
import time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import torch  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(1)


def read_safetensors(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = memoryview(data)[8 + n :]
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise ValueError(f"{name}: expected F32, got {t['dtype']}")
        begin, end = t["data_offsets"]
        flat = torch.frombuffer(bytearray(body[begin:end]), dtype=torch.float32)
        tensors[name] = flat.reshape(t["shape"])
    return json.loads(meta["architecture"]), tensors


class Step:
    """One optimizer step, in both layouts, from an architecture record and its tensors."""

    def __init__(self, arch, tensors):
        self.layers, self.hidden = arch["layers"], arch["hidden"]
        if "features" in arch:
            f = arch["features"]
            self.kind = f["kind"]
            self.beta1, self.beta2, self.eps = [float(b) for b in f["beta1"]], f["beta2"], f["eps"]
            self.output_kind, self.scale = arch["output"]["kind"], arch["output"]["scale"]
            layer = arch.get("inputLayer")
            self.input_size = layer["size"] if layer else 0
        else:
            self.kind, self.p = arch["preprocessing"], arch.get("p")
            self.output_kind, self.scale, self.input_size = "linear", arch["outputScale"], 0
        self.slots = len(self.beta1) + 2 if self.kind == "moments" else 0
        self.lstm = 2 * self.layers * self.hidden
        self.state_size = self.lstm + self.slots
        self.tensors = tensors
        self.cells = []
        for k in range(self.layers):
            w_ih = tensors[f"cells.{k}.weight_ih"]
            cell = nn.LSTMCell(w_ih.shape[1], self.hidden)
            cell.load_state_dict(
                {
                    "weight_ih": w_ih,
                    "weight_hh": tensors[f"cells.{k}.weight_hh"],
                    "bias_ih": tensors[f"cells.{k}.bias_ih"],
                    "bias_hh": tensors[f"cells.{k}.bias_hh"],
                }
            )
            self.cells.append(cell)
        self.joined = [
            (
                torch.cat([c.weight_ih, c.weight_hh], dim=1).contiguous(),
                (c.bias_ih + c.bias_hh).unsqueeze(1).contiguous(),
            )
            for c in self.cells
        ]
        self.head_w, self.head_b = tensors["head.weight"], tensors["head.bias"]

    def features(self, g, slots):
        """g [N] -> (x [N, F], new slots [N, K+2] or None, seen [N] or None)."""
        if self.kind == "none":
            return g.reshape(-1, 1), None, None
        if self.kind == "log-sign":
            a = g.abs()
            big = a.double() >= math.exp(-self.p)
            x0 = torch.where(big, torch.log(torch.where(big, a, torch.ones_like(a))) / self.p, -torch.ones_like(a))
            x1 = torch.where(big, torch.sign(g), g * math.exp(self.p))
            return torch.stack([x0, x1], dim=1), None, None
        k = len(self.beta1)
        gd = g.double()
        before = slots[:, k + 1] > 0
        seen = before | (g != 0)
        new = []
        for j, b in enumerate(self.beta1):
            w = torch.where(before, b, 0.0).double()
            new.append((w * slots[:, j].double() + (1.0 - w) * gd).float())
        w2 = torch.where(before, self.beta2, 0.0).double()
        r_old = slots[:, k].double()
        r = torch.sqrt(w2 * r_old * r_old + (1.0 - w2) * gd * gd).float()
        den = r.double() + self.eps
        feats = [(m.double() / den).float() for m in new] + [(gd / den).float()]
        return torch.stack(feats, dim=1), torch.stack(new + [r, seen.float()], dim=1), seen

    def elu_input(self, x):
        if not self.input_size:
            return x
        a = torch.addmm(self.tensors["input.bias"], x, self.tensors["input.weight"].t())
        return torch.where(a > 0, a, torch.expm1(torch.clamp(a, max=0.0)))

    def output(self, y, seen):
        if self.output_kind == "tanh":
            y = torch.tanh(y)
        u = self.scale * y
        return u if seen is None else torch.where(seen, u, torch.zeros_like(u))

    def lstmcell(self, grads, state):
        """Coordinate-major: state [N, S] -> (updates [N], new state [N, S])."""
        x, slots, seen = self.features(grads, state[:, self.lstm :])
        x = self.elu_input(x)
        parts = []
        h_dim = self.hidden
        for k, cell in enumerate(self.cells):
            h = state[:, 2 * k * h_dim : (2 * k + 1) * h_dim]
            c = state[:, (2 * k + 1) * h_dim : (2 * k + 2) * h_dim]
            h, c = cell(x, (h, c))
            parts += [h, c]
            x = h
        y = torch.addmm(self.head_b, x, self.head_w.t()).reshape(-1)
        if slots is not None:
            parts.append(slots)
        return self.output(y, seen), torch.cat(parts, dim=1)

    def addmm(self, grads, state_fm, new):
        """Feature-major: state [S, N] -> (updates [N], new state written into `new` [S, N])."""
        x, slots, seen = self.features(grads, state_fm[self.lstm :].t())
        if slots is not None:
            new[self.lstm :] = slots.t()
        x = self.elu_input(x).t()
        h_dim = self.hidden
        for k, (w, b) in enumerate(self.joined):
            h = state_fm[2 * k * h_dim : (2 * k + 1) * h_dim]
            c = state_fm[(2 * k + 1) * h_dim : (2 * k + 2) * h_dim]
            gates = torch.addmm(b, w, torch.cat([x, h], dim=0))
            gates[: 2 * h_dim].sigmoid_()
            gates[2 * h_dim : 3 * h_dim].tanh_()
            gates[3 * h_dim :].sigmoid_()
            i, f, g, o = gates.split(h_dim, dim=0)
            c_new = new[(2 * k + 1) * h_dim : (2 * k + 2) * h_dim]
            torch.mul(f, c, out=c_new)
            c_new.addcmul_(i, g)
            h_new = new[2 * k * h_dim : (2 * k + 1) * h_dim]
            torch.tanh(c_new, out=h_new)
            h_new.mul_(o)
            x = h_new
        y = torch.addmm(self.head_b.unsqueeze(1), self.head_w, x).reshape(-1)
        return self.output(y, seen), new


def gradients(n, gen):
    """|g| from 1e-8 to 1e2, random signs (as test/support/random.ts's randomGradients)."""
    mag = torch.pow(10.0, -8 + 10 * torch.rand(n, generator=gen, dtype=torch.float64)).float()
    return torch.where(torch.rand(n, generator=gen) < 0.5, -mag, mag)


def main():
    step, inputs, warm = None, {}, set()
    with torch.inference_mode():
        for line in sys.stdin:
            request = json.loads(line)
            if "load" in request:
                step, inputs, warm = Step(*read_safetensors(request["load"])), {}, set()
                answer = {"stateSize": step.state_size, "torch": torch.__version__, "threads": torch.get_num_threads()}
            else:
                n, impl = request["n"], request["impl"]
                if n not in inputs:
                    gen = torch.Generator().manual_seed(n)
                    grads = gradients(n, gen)
                    state = (torch.rand(n, step.state_size, generator=gen) * 2 - 1) * 0.5
                    if step.slots:
                        k = step.lstm + len(step.beta1)
                        state[:, k] = state[:, k].abs()
                        state[:, -1] = 1.0
                    state_fm = state.t().contiguous()
                    inputs[n] = (grads, state, state_fm, torch.empty_like(state_fm))
                grads, state, state_fm, new_fm = inputs[n]
                run = (lambda: step.lstmcell(grads, state)) if impl == "lstmcell" else (
                    lambda: step.addmm(grads, state_fm, new_fm)
                )
                if (impl, n) not in warm:
                    for _ in range(request.get("warmup", 2)):
                        run()
                    warm.add((impl, n))
                times = []
                for _ in range(request.get("runs", 1)):
                    t = time.perf_counter()
                    run()
                    times.append((time.perf_counter() - t) * 1000)
                answer = {"times": times}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
