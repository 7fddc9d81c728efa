"""Hand-designed baselines with the optimizer interface of DESIGN §2: init(n) -> state,
update(grads, state) -> (updates, state). Update rules follow torch.optim exactly (checked in
tests/test_baselines.py), on flat float32 tensors, without mutating their inputs.
"""

from __future__ import annotations

import torch


class SGD:
    name = "sgd"

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def init(self, n: int, device=None) -> dict:
        return {}

    def update(self, g: torch.Tensor, state: dict):
        return -self.lr * g, state


class NAG:
    """SGD with Nesterov momentum, torch.optim.SGD(nesterov=True, dampening=0) convention."""

    name = "nag"

    def __init__(self, lr: float, momentum: float = 0.9) -> None:
        self.lr, self.momentum = lr, momentum

    def init(self, n: int, device=None) -> dict:
        return {"buf": torch.zeros(n, device=device)}

    def update(self, g: torch.Tensor, state: dict):
        buf = self.momentum * state["buf"] + g
        return -self.lr * (g + self.momentum * buf), {"buf": buf}


class RMSprop:
    name = "rmsprop"

    def __init__(self, lr: float, alpha: float = 0.99, eps: float = 1e-8) -> None:
        self.lr, self.alpha, self.eps = lr, alpha, eps

    def init(self, n: int, device=None) -> dict:
        return {"sq": torch.zeros(n, device=device)}

    def update(self, g: torch.Tensor, state: dict):
        sq = self.alpha * state["sq"] + (1 - self.alpha) * g * g
        return -self.lr * g / (sq.sqrt() + self.eps), {"sq": sq}


class Adam:
    name = "adam"

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr, self.betas, self.eps = lr, betas, eps

    def init(self, n: int, device=None) -> dict:
        z = torch.zeros(n, device=device)
        return {"m": z, "v": z.clone(), "t": 0}

    def moments(self, g: torch.Tensor, state: dict) -> dict:
        """The next state: step count, and first and second moments (not bias-corrected)."""
        b1, b2 = self.betas
        return {"m": b1 * state["m"] + (1 - b1) * g, "v": b2 * state["v"] + (1 - b2) * g * g,
                "t": state["t"] + 1}

    def update(self, g: torch.Tensor, state: dict):
        b1, b2 = self.betas
        new = self.moments(g, state)
        t = new["t"]
        denom = new["v"].sqrt() / (1 - b2**t) ** 0.5 + self.eps
        return -(self.lr / (1 - b1**t)) * new["m"] / denom, new


class PartiallyAdaptiveNAG:
    """NAG on g / rms(g)^a, rms from an RMSprop average with bias correction (a = 0: NAG;
    a = 1: RMSprop-normalised NAG; in between, "partially adaptive" as in Chen & Gu 2018's Padam).
    Not a baseline of the evaluation: a teacher for imitation (train/imitate.py)."""

    name = "pnag"

    def __init__(self, lr: float, a: float = 0.4, momentum: float = 0.9, alpha: float = 0.99,
                 eps: float = 1e-8) -> None:
        self.lr, self.a, self.momentum, self.alpha, self.eps = lr, a, momentum, alpha, eps

    def init(self, n: int, device=None) -> dict:
        z = torch.zeros(n, device=device)
        return {"buf": z, "sq": z.clone(), "t": 0}

    def step_parts(self, g: torch.Tensor, state: dict):
        """The update, the rms + eps of the gradient (bias-corrected), and the new state."""
        t = state["t"] + 1
        sq = self.alpha * state["sq"] + (1 - self.alpha) * g * g
        rms = (sq / (1 - self.alpha**t)).sqrt()
        gn = g / rms.clamp_min(self.eps) ** self.a
        buf = self.momentum * state["buf"] + gn
        return -self.lr * (gn + self.momentum * buf), rms + self.eps, {"buf": buf, "sq": sq, "t": t}

    def update(self, g: torch.Tensor, state: dict):
        u, _, new = self.step_parts(g, state)
        return u, new


class NesterovAdam(Adam):
    """Adam with a Nesterov look-ahead on the bias-corrected momentum (Dozat 2016's NAdam without
    its momentum schedule): update = -lr (b1 m_hat + (1 - b1) g / (1 - b1^t)) / (sqrt(v_hat) + eps).
    Not a baseline of the evaluation: a teacher for imitation (l2o-mlp@1.1.0's warm start)."""

    name = "nadam"

    def __init__(self, lr: float, betas=(0.9, 0.99), eps: float = 1e-8) -> None:
        super().__init__(lr, betas, eps)

    def step_parts(self, g: torch.Tensor, state: dict):
        """The update, the denominator sqrt(v_hat) + eps it was divided by, and the new state."""
        b1, b2 = self.betas
        new = self.moments(g, state)
        t = new["t"]
        look = (b1 * new["m"] + (1 - b1) * g) / (1 - b1**t)
        denom = (new["v"] / (1 - b2**t)).sqrt() + self.eps
        return -self.lr * look / denom, denom, new

    def update(self, g: torch.Tensor, state: dict):
        u, _, new = self.step_parts(g, state)
        return u, new


class Annealed:
    """Mixin for a rule with `step_parts` (update, rms + eps, new state): its step times
    clamp(k |m_hat_slow| / (rms + eps), lo, 1), with m_hat_slow a bias-corrected momentum at beta
    `slow`. Where a coordinate's gradient is mostly minibatch noise its step shrinks (an annealing
    that needs no step count); where it is consistent the step is the rule's own."""

    k: float
    lo: float
    slow: float

    def init(self, n: int, device=None) -> dict:
        return {**super().init(n, device), "ms": torch.zeros(n, device=device)}

    def update(self, g: torch.Tensor, state: dict):
        u, rms, new = self.step_parts(g, state)
        ms = self.slow * state["ms"] + (1 - self.slow) * g
        snr = (ms / (1 - self.slow ** new["t"])).abs() / rms
        return u * (self.k * snr).clamp(self.lo, 1.0), {**new, "ms": ms}


class AnnealedNesterovAdam(Annealed, NesterovAdam):
    """NesterovAdam, annealed (Annealed): scaled by clamp(k |m_hat_slow| / (sqrt(v_hat) + eps), lo,
    1). Every term is one of l2o-mlp's input features (momentum at beta1 0.9 and 0.99 over the root
    of a beta2 0.99 average, and g over that root), so the rule is a function of what the LSTM sees.
    Not a baseline of the evaluation: l2o-mlp@1.1.0's imitation teacher."""

    name = "snr-nadam"

    def __init__(self, lr: float, k: float = 4.0, lo: float = 0.1, slow: float = 0.99,
                 betas=(0.9, 0.99), eps: float = 1e-8) -> None:
        super().__init__(lr, betas, eps)
        self.k, self.lo, self.slow = k, lo, slow


class AnnealedPartiallyAdaptiveNAG(Annealed, PartiallyAdaptiveNAG):
    """PartiallyAdaptiveNAG (a = 0.7 by default: NAG on g / rms^0.7), annealed (Annealed). Unlike
    the Adam-style rules its step grows with the gradient's scale (as rms^(1 - a)), so it takes
    larger steps where gradients are larger, as tuned SGD and NAG do. Not a baseline of the
    evaluation: a hand rule for `evaluate-mix --rule snr-pnag` (at lr 0.02: 0.992, 0.976 and 0.952
    of the best tuned baseline at 100, 200 and 1,000 steps, against snr-nadam's 1.214, 1.169 and
    0.955), and l2o-mlp@1.2.0's imitation teacher (cloned through its `tanh-rms` output, which
    multiplies by r'^0.3 the step that `logRms` alone did not let the LSTM build)."""

    name = "snr-pnag"

    def __init__(self, lr: float, a: float = 0.7, k: float = 4.0, lo: float = 0.1, slow: float = 0.99,
                 momentum: float = 0.9, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__(lr, a, momentum, alpha, eps)
        self.k, self.lo, self.slow = k, lo, slow


class Learned:
    """Adapter giving the LSTM module the same interface (no meta-gradient).

    On CPU with a C compiler it runs the native kernel (train/kernel.py) on a blocked state;
    otherwise `LSTMOptimizer.fast_forward` on a feature-major [S, N] state, in blocks that fit in
    cache. Callers treat the state as opaque.
    """

    name = "learned"
    block = 8192
    instances = 1  # a gain pools over each of this many equal runs of the coordinates (the batch's instances)

    def __init__(self, module, native: bool | None = None) -> None:
        from .kernel import NativeStep, native_available

        self.module = module
        use = native_available() if native is None else native
        self.native = NativeStep(module) if use else None

    def init(self, n: int, device=None) -> torch.Tensor:
        if self.native is not None and (device is None or torch.device(device).type == "cpu"):
            return self.native.init_blocked(n)
        return self.module.init_state(n, device).t().contiguous()

    @torch.no_grad()
    def update(self, g: torch.Tensor, state: torch.Tensor):
        g = g.reshape(-1)
        if state.dim() == 3:  # the native kernel's blocked state, stepped in place
            return self.native(g, state, groups=self.instances), state
        if g.numel() <= self.block or g.device.type != "cpu" or self.module.gain is not None:
            return self.module.fast_forward(g, state, groups=self.instances)
        updates, new = torch.empty_like(g), torch.empty_like(state)
        for i in range(0, g.numel(), self.block):
            j = i + self.block
            updates[i:j], _ = self.module.fast_forward(g[i:j], state[:, i:j], out=new[:, i:j])
        return updates, new


BASELINES = {"sgd": SGD, "nag": NAG, "rmsprop": RMSprop, "adam": Adam}
TEACHERS = {**BASELINES, PartiallyAdaptiveNAG.name: PartiallyAdaptiveNAG, NesterovAdam.name: NesterovAdam,
            AnnealedNesterovAdam.name: AnnealedNesterovAdam,
            AnnealedPartiallyAdaptiveNAG.name: AnnealedPartiallyAdaptiveNAG}


def run_rule(rule, problem, horizon: int, record: bool = False, driver=None):
    """Run the update rule `rule` (a teacher or baseline: init/update) on `problem` for `horizon`
    steps. With `driver` (another rule), the driver's updates move theta and `rule` only says what
    it would do on the same gradient history (DAgger's targets). Returns theta and, with `record`,
    the gradients and `rule`'s updates at every step (two lists of [D] tensors)."""
    theta = problem.theta0.clone()
    state = rule.init(theta.numel(), theta.device)
    dstate = driver.init(theta.numel(), theta.device) if driver is not None else None
    gs, us = [], []
    for t in range(horizon):
        _, g = problem.loss_and_grad(theta, t)
        with torch.no_grad():
            u, state = rule.update(g.reshape(-1), state)
            step = u
            if driver is not None:
                step, dstate = driver.update(g.reshape(-1), dstate)
            theta = theta + step.reshape(theta.shape)
        if record:
            gs.append(g.reshape(-1))
            us.append(u)
    return theta, gs, us
