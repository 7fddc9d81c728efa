"""What tells the optimizee regimes apart, and step gains screened on it (train/README, "A step-size
signal the features lack").

l2o-mlp's tests want different step sizes: the sigmoid nets larger ones, the ReLU and tanh nets
smaller ones. `regime_stats` measures, per validation config, how the loss at the horizon moves when
a weight file's whole step is scaled, beside statistics of the gradients along its own run, to see
whether anything a coordinate (or a whole model) sees tells which way a config wants to go. The
gains wrap any optimizer (init/update) and multiply its step; `validate-mix --gain SPEC` screens
them. They are experiments; the one that was shipped, `latch`, is in the contract as tanh-rms's
`gain` (docs/optimizer-math.md §6, optimizer.Gain) with the served definitions: each coordinate's
own step count and r' as the `moments` features keep it, pooled over one call (`--latch`).
"""

from __future__ import annotations

import torch


def _lag1(g: torch.Tensor, prev: torch.Tensor, v_hat: torch.Tensor) -> torch.Tensor:
    """x_t = clamp(g_t g_{t-1} / v_hat_t, -1, 1), the correlation gains' per-coordinate signal."""
    return (g * prev / (v_hat + 1e-30)).clamp(-1, 1)


class HypergradientGain:
    """`sign:MU:RHO[:CAP]`: a per-coordinate gain k from hypergradient signs (as in Jacobs 1988's
    delta-bar-delta and Baydin et al. 2018's hypergradient descent): log k_t = clamp((1 - rho)
    log k_{t-1} - mu sign(g_t u_{t-1}), -cap, cap) (no clamp for cap 0), u_{t-1} the wrapped rule's
    previous step. k grows while the new gradient still points along the last step (too short a
    step) and shrinks where it points back (too long); pure noise keeps it near 1."""

    def __init__(self, inner, mu: float, rho: float, cap: float = 0.0) -> None:
        if not (mu >= 0 and 0 < rho <= 1 and cap >= 0):
            raise ValueError(f"sign gain needs mu >= 0, 0 < rho <= 1 and cap >= 0, got {mu}, {rho}, {cap}")
        self.inner, self.mu, self.rho, self.cap = inner, mu, rho, cap

    def init(self, n: int, device=None) -> dict:
        z = torch.zeros(n, device=device)
        return {"inner": self.inner.init(n, device), "prev": z, "logk": z.clone()}

    def update(self, g: torch.Tensor, state: dict):
        u, inner = self.inner.update(g, state["inner"])
        logk = (1 - self.rho) * state["logk"] - self.mu * torch.sign(g * state["prev"])
        if self.cap:
            logk = logk.clamp(-self.cap, self.cap)
        return u * logk.exp(), {"inner": inner, "prev": u, "logk": logk}


class CorrelationGain:
    """A gain from the gradient's lag-1 autocorrelation: c a bias-corrected EMA (beta) of
    x_t = clamp(g_t g_{t-1} / v_t, -1, 1), v_t a bias-corrected EMA (0.99) of g^2.
    - `corr:BETA:C0:A:CAP`, per coordinate: the step times exp(clamp(A (c - C0), -cap, cap)).
    - `pooled:BETA:C0:MU:CAP`, per instance (model): integral control of one multiplier,
      L_t = clamp(L_{t-1} + MU (mean of c over the instance's coordinates - C0), -cap, cap), the step
      times exp(L). `instances` (rows of the flat vector) must be set before `init`.
    """

    instances = 1

    def __init__(self, inner, beta: float, c0: float, strength: float, cap: float, pooled: bool = False) -> None:
        if not (0 < beta < 1 and strength >= 0 and cap > 0):
            raise ValueError(f"correlation gain needs 0 < beta < 1, strength >= 0 and cap > 0, got {beta}, {strength}, {cap}")
        self.inner, self.beta, self.c0, self.strength, self.cap, self.pooled = inner, beta, c0, strength, cap, pooled

    def init(self, n: int, device=None) -> dict:
        z = torch.zeros(n, device=device)
        return {"inner": self.inner.init(n, device), "prev": z, "v": z.clone(), "c": z.clone(), "t": 0,
                "L": torch.zeros(self.instances, 1, device=device)}

    def update(self, g: torch.Tensor, state: dict):
        u, inner = self.inner.update(g, state["inner"])
        t = state["t"] + 1
        v = 0.99 * state["v"] + 0.01 * g * g
        c, L = state["c"], state["L"]
        if t > 1:
            x = _lag1(g, state["prev"], v / (1 - 0.99**t))
            c = self.beta * c + (1 - self.beta) * x
            c_hat = c / (1 - self.beta ** (t - 1))
            if self.pooled:
                rows = c_hat.reshape(self.instances, -1).mean(1, keepdim=True)
                L = (L + self.strength * (rows - self.c0)).clamp(-self.cap, self.cap)
                u = (u.reshape(self.instances, -1) * L.exp()).reshape(-1)
            else:
                u = u * (self.strength * (c_hat - self.c0)).clamp(-self.cap, self.cap).exp()
        return u, {"inner": inner, "prev": g, "v": v, "c": c, "t": t, "L": L}


class LatchedGain:
    """`latch:T0:C0:A:CAP[:SHARD]`: one multiplier per instance (model), set once from its early
    gradients: over steps 2..T0 the mean over the instance's coordinates of x_t = clamp(g_t g_{t-1} /
    v_t, -1, 1) (v as in CorrelationGain) is averaged, and from step T0 on the step is times
    exp(clamp(A (that average - C0), -cap, cap)); before, times 1. A regime classifier: the sigmoid
    nets' early autocorrelation is positive and they want larger steps, the ReLU and tanh nets'
    is about 0 and they want smaller ones. With SHARD, one multiplier per run of SHARD consecutive
    coordinates of each instance instead (the last run may be shorter), as a service that pools
    over each shard of a sharded client would give. `instances` must be set before `init`."""

    instances = 1

    def __init__(self, inner, t0: float, c0: float, a: float, cap: float, shard: float = 0,
                 moments_rms: bool = False) -> None:
        if not (t0 >= 2 and t0 == int(t0) and a >= 0 and cap > 0 and shard >= 0 and shard == int(shard)):
            raise ValueError(f"latched gain needs integers T0 >= 2 and SHARD >= 0, A >= 0 and cap > 0, "
                             f"got {t0}, {shard}, {a}, {cap}")
        self.inner, self.t0, self.c0, self.a, self.cap, self.shard = inner, int(t0), c0, a, cap, int(shard)
        # `latchr:…`: v is r'^2 as the `moments` features keep it (docs/optimizer-math.md §3: the
        # first nonzero gradient's square, then an EMA at 0.99), as a served version would read it
        self.moments_rms = moments_rms

    def _blocks(self, n: int) -> tuple[int, int]:
        """Coordinates per instance, and coordinates per pooled block."""
        dim = n // self.instances
        return dim, self.shard if 0 < self.shard < dim else dim

    def _block_means(self, x: torch.Tensor) -> torch.Tensor:
        dim, size = self._blocks(x.numel())
        rows = x.reshape(self.instances, dim)
        blocks = -(-dim // size)
        padded = torch.nn.functional.pad(rows, (0, blocks * size - dim)).reshape(self.instances, blocks, size)
        counts = torch.full((blocks,), float(size), device=x.device)
        counts[-1] = dim - (blocks - 1) * size
        return padded.sum(2) / counts

    def init(self, n: int, device=None) -> dict:
        z = torch.zeros(n, device=device)
        dim, size = self._blocks(n)
        blocks = torch.zeros(self.instances, -(-dim // size), device=device)
        return {"inner": self.inner.init(n, device), "prev": z, "v": z.clone(), "t": 0, "sum": blocks,
                "L": blocks.clone()}

    def update(self, g: torch.Tensor, state: dict):
        u, inner = self.inner.update(g, state["inner"])
        t = state["t"] + 1
        if self.moments_rms:
            w = torch.where(state["v"] > 0, 0.99, 0.0)
            v = w * state["v"] + (1 - w) * g * g
            v_hat = v
        else:
            v = 0.99 * state["v"] + 0.01 * g * g
            v_hat = v / (1 - 0.99**t)
        total, L = state["sum"], state["L"]
        if 1 < t <= self.t0:
            total = total + self._block_means(_lag1(g, state["prev"], v_hat))
            if t == self.t0:
                L = (self.a * (total / (self.t0 - 1) - self.c0)).clamp(-self.cap, self.cap)
        dim, size = self._blocks(g.numel())
        gain = L.exp().repeat_interleave(size, dim=1)[:, :dim]
        return (u.reshape(self.instances, dim) * gain).reshape(-1), {"inner": inner, "prev": g, "v": v, "t": t,
                                                                    "sum": total, "L": L}


def make_gain(inner, spec: str):
    """`sign:MU:RHO[:CAP]`, `corr:BETA:C0:A:CAP`, `pooled:BETA:C0:MU:CAP` or
    `latch:T0:C0:A:CAP[:SHARD]` (`latchr:…`: v as the moments features keep r'^2) around `inner`."""
    kind, _, rest = spec.partition(":")
    try:
        numbers = [float(x) for x in rest.split(":")]
    except ValueError:
        numbers = []
    if kind == "sign" and len(numbers) in (2, 3):
        return HypergradientGain(inner, *numbers)
    if kind in ("corr", "pooled") and len(numbers) == 4:
        return CorrelationGain(inner, *numbers, pooled=kind == "pooled")
    if kind in ("latch", "latchr") and len(numbers) in (4, 5):
        return LatchedGain(inner, *numbers, moments_rms=kind == "latchr")
    raise ValueError("a gain is sign:MU:RHO[:CAP], corr:BETA:C0:A:CAP, pooled:BETA:C0:MU:CAP or "
                     f"latch[r]:T0:C0:A:CAP[:SHARD], not {spec!r}")


class _GradientStats:
    """Wraps an optimizer (init/update) and keeps, at the steps `at` (0-based), the means over
    coordinates of snr |m_hat| / sqrt(v_hat) and of the bias-corrected EMA (0.99) of
    g_t g_{t-1} / v_hat, m and v bias-corrected EMAs at 0.99 (regime_stats)."""

    def __init__(self, inner, at) -> None:
        self.inner, self.at = inner, set(at)
        self.snr, self.corr = {}, {}

    def init(self, n: int, device=None):
        z = torch.zeros(n, device=device)
        self.t, self.m, self.v, self.c, self.prev = 0, z, z.clone(), z.clone(), None
        return self.inner.init(n, device)

    def update(self, g: torch.Tensor, state):
        t = self.t
        self.m, self.v = 0.99 * self.m + 0.01 * g, 0.99 * self.v + 0.01 * g * g
        v_hat = self.v / (1 - 0.99 ** (t + 1))
        if self.prev is not None:
            self.c = 0.99 * self.c + 0.01 * g * self.prev
        self.prev, self.t = g, t + 1
        if t in self.at:
            self.snr[t] = ((self.m / (1 - 0.99 ** (t + 1))).abs() / (v_hat.sqrt() + 1e-30)).mean().item()
            self.corr[t] = (self.c / max(1 - 0.99**t, 1e-12) / (v_hat + 1e-30)).mean().item()
        return self.inner.update(g, state)


def regime_stats(weights: str, val_set, scales=(0.7, 1.0, 1.4), at=(20, 50, 100, 200, 500, 999), floor: float = 1e-4):
    """Per validation config: its validate_mix score (the mean of log(loss + floor * initial loss)
    at the horizon) with the weight file's step times each of `scales`, and along the unscaled run,
    at the steps `at`, the means over coordinates of
    - snr: |m_hat| / sqrt(v_hat), both bias-corrected EMAs at 0.99;
    - corr: the bias-corrected EMA (0.99) of g_t g_{t-1} / v_hat (the lag-1 autocorrelation).
    Yields one dict per config."""
    from .baselines import Learned
    from .cli import _output_variant
    from .metamix import validate_mix

    modules = {scale: Learned(_output_variant(weights, scale, "", None)[0]) for scale in scales}
    for config in val_set:
        task, horizon, _ = config
        row = {"task": task.label(), "horizon": horizon, "loss": {}, "snr": {}, "corr": {}}
        for scale, learned in modules.items():
            opt = _GradientStats(learned, at) if scale == 1.0 else learned
            row["loss"][scale] = validate_mix(opt, [config], floor=floor)
            if scale == 1.0:
                row["snr"], row["corr"] = opt.snr, opt.corr
        yield row
