"""The learned optimizer: one small network applied to every coordinate (DESIGN.md §2,
docs/optimizer-math.md).

Two generations of architecture share this module:
- the paper's (`l2o/1` files with `preprocessing` and `outputScale`): gradient preprocessing
  `log-sign` or `none`, L stacked LSTM cells, a linear head times `outputScale`;
- the extended form (`features`, optional `inputLayer`, `output`): feature kinds that keep
  per-coordinate state slots (Adam-style moments at several time scales), an ELU input layer, and
  output transforms such as `scale * tanh(head)` with the zero-gradient mask.

The module's state_dict names are the weight file's tensor names, so export is a plain dump. A
state is [N, S] coordinate-major: the LSTM's [h_1, c_1, …, h_L, c_L] (2·L·H floats), then the
feature kind's slots, then the output transform's (the step count of `decay` and `gain`, then
`gain`'s two slots).
"""

from __future__ import annotations

import math

import torch
from torch import nn

PREPROCESSING = ("log-sign", "none")
FEATURE_KINDS = ("log-sign", "none", "moments")
OUTPUT_KINDS = ("linear", "tanh", "tanh-rms")
FLOAT32_MAX = 3.4028234663852886e38


def output_bound_ok(scale: float, power: float, cap: float = 0.0) -> bool:
    """`tanh-rms`: |scale| * e^cap * r^power stays finite in float32 for every finite r, `cap` the
    gain's (docs/optimizer-math.md §6)."""
    return 0.0 < power <= 1.0 and abs(scale) * math.exp(cap) * FLOAT32_MAX ** power <= FLOAT32_MAX


def _f32(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


class Moments:
    """Feature kind `moments` (docs/optimizer-math.md): momentum EMAs at K time scales and an RMS
    EMA, normalised so that the inputs are invariant to the gradient's scale. Slots per
    coordinate: m_1..m_K, r (the RMS), z (1 once a nonzero gradient was seen). The moments are
    computed in float64 from float32 operands and rounded once, so every implementation agrees
    bit for bit; the first nonzero gradient initialises the averages (no bias correction, hence no
    step counter to keep)."""

    def __init__(self, beta1, beta2: float, eps: float, log_rms: float | None = None) -> None:
        self.beta1 = [float(b) for b in beta1]
        self.beta2 = float(beta2)
        self.eps = float(eps)
        self.log_rms = None if log_rms is None else float(log_rms)
        if not self.beta1 or not all(0.0 <= b < 1.0 for b in self.beta1 + [self.beta2]):
            raise ValueError("moments: beta1 (a non-empty list) and beta2 must lie in [0, 1)")
        if not (self.eps > 0 and math.isfinite(self.eps)):
            raise ValueError("moments: eps must be a finite number > 0")
        if self.log_rms is not None and not (self.log_rms > 0 and math.isfinite(self.log_rms)):
            raise ValueError("moments: logRms must be a finite number > 0")
        if not (self.beta2 > 0 and all(b < math.sqrt(self.beta2) for b in self.beta1)):
            raise ValueError("moments: beta2 > 0 and every beta1 < sqrt(beta2) keep the inputs bounded")

    @property
    def inputs(self) -> int:
        return len(self.beta1) + 1 + (self.log_rms is not None)

    @property
    def slots(self) -> int:
        return len(self.beta1) + 2

    def spec(self) -> dict:
        spec = {"kind": "moments", "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}
        if self.log_rms is not None:
            spec["logRms"] = self.log_rms
        return spec

    def __call__(self, g: torch.Tensor, slots: torch.Tensor):
        """g [N] float32, slots [N, K+2] -> (features [N, K+1], new slots, seen mask [N] bool)."""
        k = len(self.beta1)
        gd = g.double()
        z = slots[:, k + 1]
        seen_before = z > 0
        seen = seen_before | (g != 0)
        new = []
        before = seen_before.double()  # the β's widened as the JSON numbers, never via float32
        for j, b in enumerate(self.beta1):
            w = before * b
            new.append((w * slots[:, j].double() + (1.0 - w) * gd).float())
        w2 = before * self.beta2
        r_old = slots[:, k].double()
        r = torch.sqrt(w2 * r_old * r_old + (1.0 - w2) * gd * gd).float()
        denom = r.double() + self.eps
        feats = [(m.double() / denom).float() for m in new] + [(gd / denom).float()]
        if self.log_rms is not None:  # the gradient's scale, log(max(r, e^-q)) / q
            q = self.log_rms
            feats.append((torch.log(torch.clamp(r.double(), min=math.exp(-q))) / q).float())
        new_slots = torch.stack(new + [r, seen.float()], dim=1)
        return torch.stack(feats, dim=1), new_slots, seen


def _step_count(slots: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """t' [N] (float64) from the two base-256 digits [c_lo, c_hi] and `seen` (docs/optimizer-math.md
    §6): the coordinate's steps since its first nonzero gradient, this one included, at most 65535."""
    lo = torch.clamp(torch.floor(slots[:, 0].double()), 0.0, 255.0)
    hi = torch.clamp(torch.floor(slots[:, 1].double()), 0.0, 255.0)
    return torch.where(seen, torch.clamp(256.0 * hi + lo + 1.0, max=float(Decay.MAX_COUNT)), torch.zeros_like(lo))


def _count_slots(t: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.remainder(t, 256.0), torch.floor(t / 256.0)], dim=1).float()


class Decay:
    """`tanh-rms`'s optional `decay` (docs/optimizer-math.md §6): the step times min(1, (T / t')^d),
    t' the coordinate's steps since its first nonzero gradient (this one included, at most 65535),
    kept as two base-256 digits [c_lo, c_hi] (`_step_count`) so that 16-bit states count exactly."""
    MAX_COUNT = 65535

    def __init__(self, after, power) -> None:
        if isinstance(after, bool) or int(after) != after or not 1 <= int(after) <= self.MAX_COUNT:
            raise ValueError("decay.after must be an integer from 1 to 65535")
        self.after, self.power = int(after), float(power)
        if not 0.0 < self.power <= 1.0:
            raise ValueError("decay.power must lie in (0, 1]")

    def spec(self) -> dict:
        return {"after": self.after, "power": self.power}

    def factor(self, t: torch.Tensor) -> torch.Tensor:
        """The step count t' [N] (float64, `_step_count`) -> the factor [N] (float64)."""
        return torch.clamp(self.after / torch.clamp(t, min=1.0), max=1.0).pow(self.power)


class Gain:
    """`tanh-rms`'s optional `gain` of kind `latch` (docs/optimizer-math.md §6): one multiplier for
    the coordinates stepped together (one call: a request, a session shard; one group of `groups`),
    read from their gradients' lag-1 autocorrelation over each coordinate's steps 2..T and held from
    its step T on. Per coordinate, x = clamp(g p / r'^2, -1, 1) (p its previous gradient, r' its new
    RMS slot; 0 where r' is 0); X the mean of x over the group; a' = a + X while 2 <= t' <= T; from
    t' = T on, the step times exp(clamp(A (a' / (T - 1) - C), -cap, cap)). Slots [p, a], after the
    step count's two."""

    slots = 2

    def __init__(self, kind, after, center, strength, cap) -> None:
        if kind != "latch":
            raise ValueError(f"unknown gain kind {kind!r}; use latch")
        if isinstance(after, bool) or int(after) != after or not 2 <= int(after) <= Decay.MAX_COUNT:
            raise ValueError("gain.after must be an integer from 2 to 65535")
        self.after, self.center, self.strength, self.cap = int(after), float(center), float(strength), float(cap)
        if not (math.isfinite(self.center) and math.isfinite(self.strength) and self.strength >= 0):
            raise ValueError("gain.center must be finite and gain.strength finite and >= 0")
        if not (0.0 < self.cap <= 20.0):
            raise ValueError("gain.cap must lie in (0, 20]")

    @classmethod
    def from_spec(cls, spec: dict) -> "Gain":
        return cls(spec.get("kind"), spec["after"], spec["center"], spec["strength"], spec["cap"])

    def spec(self) -> dict:
        return {"kind": "latch", "after": self.after, "center": self.center, "strength": self.strength,
                "cap": self.cap}

    def __call__(self, g: torch.Tensor, r: torch.Tensor, t: torch.Tensor, slots: torch.Tensor, groups: int = 1):
        """g [N] float32, r [N] the new RMS slot, t [N] the new step count (float64), slots [N, 2] the
        old [p, a], `groups` equal runs of coordinates pooled apart -> (factor [N] float64, new slots)."""
        rd, pd = r.double(), slots[:, 0].double()
        x = torch.where(rd > 0, g.double() * pd / (rd * rd).clamp(min=1e-300), torch.zeros_like(rd)).clamp(-1.0, 1.0)
        mean = x.reshape(groups, -1).mean(1, keepdim=True).expand(groups, x.numel() // groups).reshape(-1)
        a = slots[:, 1]
        a = torch.where((t >= 2) & (t <= self.after), (a.double() + mean).float(), a)
        level = (self.strength * (a.double() / (self.after - 1) - self.center)).clamp(-self.cap, self.cap)
        factor = torch.where(t >= self.after, level.exp(), torch.ones_like(level))
        return factor, torch.stack([g.float(), a], dim=1)


def _elu(x: torch.Tensor) -> torch.Tensor:
    # ELU with alpha 1, written out (F.elu computes exp(x) - 1; docs/optimizer-math.md says expm1).
    return torch.where(x > 0, x, torch.expm1(torch.clamp(x, max=0.0)))


class LSTMOptimizer(nn.Module):
    """Coordinatewise L-layer LSTM; `forward(grads [N], state [N, S]) -> (updates [N], state)`.

    The paper's architecture: `LSTMOptimizer(layers, hidden, preprocessing, p, output_scale)`.
    The extended one: pass `features` (e.g. `{"kind": "moments", "beta1": [0.5, 0.9, 0.99],
    "beta2": 0.99, "eps": 1e-8, "logRms": 10}`), `input_size` (ELU input layer width, 0 for none) and
    `output` (`{"kind": "tanh", "scale": 0.1}`, `{"kind": "tanh-rms", "scale": 1, "power": 0.3}` or
    `{"kind": "linear", "scale": …}`); `tanh-rms` may add `"decay": {"after": T, "power": d}` and
    `"gain": {"kind": "latch", "after": T, "center": C, "strength": A, "cap": cap}`. A gain pools
    over the coordinates of one call, or of each of `groups` equal runs of them (`forward`'s and
    `fast_forward`'s argument: the instances of a batched evaluation).
    """

    def __init__(
        self,
        layers: int = 2,
        hidden: int = 20,
        preprocessing: str = "log-sign",
        p: float = 10.0,
        output_scale: float = 0.1,
        *,
        features: dict | None = None,
        input_size: int = 0,
        output: dict | None = None,
    ) -> None:
        super().__init__()
        if layers < 1 or hidden < 1:
            raise ValueError("layers and hidden must be >= 1")
        self.layers = int(layers)
        self.hidden = int(hidden)
        self.extended = features is not None
        if self.extended:
            if features.get("kind") != "moments":
                raise ValueError(f"unknown feature kind {features.get('kind')!r}; use moments")
            self.features = Moments(features["beta1"], features["beta2"], features["eps"], features.get("logRms"))
            out = output or {"kind": "tanh", "scale": 0.1}
            if out.get("kind") not in OUTPUT_KINDS:
                raise ValueError(f"output kind must be one of {OUTPUT_KINDS}, got {out.get('kind')!r}")
            self.output_kind, self.output_scale = out["kind"], float(out["scale"])
            self.output_power = float(out["power"]) if self.output_kind == "tanh-rms" else None
            if ("decay" in out or "gain" in out) and self.output_kind != "tanh-rms":
                raise ValueError("only the tanh-rms output takes a decay or a gain")
            self.decay = Decay(out["decay"]["after"], out["decay"]["power"]) if "decay" in out else None
            self.gain = Gain.from_spec(out["gain"]) if "gain" in out else None
            if self.output_power is not None and not output_bound_ok(self.output_scale, self.output_power,
                                                                     self.gain.cap if self.gain else 0.0):
                raise ValueError("tanh-rms needs 0 < power <= 1 and |scale| * e^gain.cap * FLT_MAX^power <= FLT_MAX")
            self.preprocessing, self.p = None, None
            in_dim = self.features.inputs
        else:
            if preprocessing not in PREPROCESSING:
                raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
            if input_size or output is not None:
                raise ValueError("inputLayer and output need the extended form (features=…)")
            self.features = None
            self.preprocessing = preprocessing
            self.p = float(p)
            self.output_kind, self.output_scale, self.output_power = "linear", float(output_scale), None
            self.decay = self.gain = None
            in_dim = 2 if preprocessing == "log-sign" else 1
        if not math.isfinite(self.output_scale):
            raise ValueError("the output scale must be finite")
        self.input_size = int(input_size)
        if self.input_size:
            self.input = nn.Linear(in_dim, self.input_size)
            in_dim = self.input_size
        self.cells = nn.ModuleList(
            [nn.LSTMCell(in_dim if k == 0 else hidden, hidden) for k in range(layers)]
        )
        self.head = nn.Linear(hidden, 1)

    @property
    def lstm_size(self) -> int:
        return 2 * self.layers * self.hidden

    @property
    def feature_slots(self) -> int:
        return self.features.slots if self.features else 0

    @property
    def counted(self) -> bool:
        """Whether the output keeps the step count (for a decay or a gain)."""
        return self.decay is not None or self.gain is not None

    @property
    def output_slots(self) -> int:
        return (2 if self.counted else 0) + (Gain.slots if self.gain else 0)

    @property
    def state_size(self) -> int:
        return self.lstm_size + self.feature_slots + self.output_slots

    KEEP = object()  # `set_output`'s "as it is" for the decay and the gain (None removes one)

    def set_output(self, scale=None, power=None, decay=KEEP, gain=KEEP) -> "LSTMOptimizer":
        """Changes the output's fields that hold no weights, in place: `scale`, and for `tanh-rms` its
        `power`, its `decay` ((T, d) or None) and its `gain` (a record's dict or None); None (the
        decay and gain: KEEP) leaves a field as it is. Refuses what a weight file may not hold
        (ValueError)."""
        if self.output_kind != "tanh-rms" and (power is not None or decay is not self.KEEP or gain is not self.KEEP):
            raise ValueError("power, decay and gain belong to a tanh-rms output")
        if scale is not None:
            self.output_scale = float(scale)
        if power is not None:
            self.output_power = float(power)
        if decay is not self.KEEP:
            self.decay = None if decay is None else Decay(*decay)
        if gain is not self.KEEP:
            self.gain = None if gain is None else Gain.from_spec(gain)
        if self.output_kind == "tanh-rms" and not output_bound_ok(self.output_scale, self.output_power,
                                                                  self.gain.cap if self.gain else 0.0):
            raise ValueError("tanh-rms's bound: needs 0 < power <= 1 and |scale| * e^gain.cap * FLT_MAX^power <= FLT_MAX")
        return self

    def architecture(self) -> dict:
        """The architecture record stored in the weight file's metadata (DESIGN.md §3)."""
        arch = {"kind": "lstm-cw", "layers": self.layers, "hidden": self.hidden}
        if self.extended:
            arch["features"] = self.features.spec()
            if self.input_size:
                arch["inputLayer"] = {"size": self.input_size, "activation": "elu"}
            arch["output"] = {"kind": self.output_kind, "scale": self.output_scale}
            if self.output_power is not None:
                arch["output"]["power"] = self.output_power
            if self.decay is not None:
                arch["output"]["decay"] = self.decay.spec()
            if self.gain is not None:
                arch["output"]["gain"] = self.gain.spec()
            return arch
        arch.update(preprocessing=self.preprocessing, outputScale=self.output_scale)
        if self.preprocessing == "log-sign":
            arch["p"] = self.p
        return arch

    @classmethod
    def from_architecture(cls, arch: dict) -> "LSTMOptimizer":
        if arch.get("kind") != "lstm-cw":
            raise ValueError(f"unknown optimizer kind {arch.get('kind')!r}; expected 'lstm-cw'")
        if "features" in arch:
            layer = arch.get("inputLayer")
            if layer is not None and layer.get("activation") != "elu":
                raise ValueError("inputLayer.activation must be 'elu'")
            return cls(int(arch["layers"]), int(arch["hidden"]), features=arch["features"],
                       input_size=int(layer["size"]) if layer else 0, output=arch["output"])
        return cls(
            layers=int(arch["layers"]),
            hidden=int(arch["hidden"]),
            preprocessing=arch["preprocessing"],
            p=float(arch.get("p", 10.0)),
            output_scale=float(arch["outputScale"]),
        )

    def init_state(self, n: int, device=None) -> torch.Tensor:
        return torch.zeros(n, self.state_size, dtype=torch.float32, device=device)

    def preprocess(self, g: torch.Tensor) -> torch.Tensor:
        """Paper's gradient preprocessing: (log|g|/p, sign g), so tiny and huge grads share one scale."""
        g = g.reshape(-1, 1).to(torch.float32)
        if self.preprocessing == "none":
            return g
        a = g.abs()
        # Compare in float64: the contract's threshold is exp(-p), not its float32 rounding.
        big = a.double() >= math.exp(-self.p)
        log_part = torch.log(torch.where(big, a, torch.ones_like(a))) / self.p
        x0 = torch.where(big, log_part, torch.full_like(a, -1.0))
        x1 = torch.where(big, torch.sign(g), g * math.exp(self.p))
        return torch.cat([x0, x1], dim=1)

    def inputs(self, grads: torch.Tensor, state: torch.Tensor):
        """(cell-0 inputs [N, in], new feature slots or None, seen mask or None)."""
        if self.features is None:
            x, slots, seen = self.preprocess(grads), None, None
        else:
            lo = self.lstm_size
            x, slots, seen = self.features(grads.reshape(-1).float(), state[:, lo : lo + self.feature_slots])
        if self.input_size:
            x = _elu(self.input(x))
        return x, slots, seen

    def output_state(self, grads: torch.Tensor, out_state: torch.Tensor, slots, seen, groups: int = 1):
        """The output's factors and new slots from its old slots `out_state` [N, output_slots]
        (coordinate-major), the new feature slots and `seen`: (decay's factor or None, the gain's or
        None, new slots [N, output_slots] or None), the factors float64 [N]."""
        if not self.counted:
            return None, None, None
        t = _step_count(out_state[:, :2], seen)
        new = [_count_slots(t)]
        factor = gain = None
        if self.decay is not None:
            factor = self.decay.factor(t)
        if self.gain is not None:
            r = slots[:, len(self.features.beta1)]
            gain, gain_slots = self.gain(grads.reshape(-1).float(), r, t, out_state[:, 2:4], groups)
            new.append(gain_slots)
        return factor, gain, torch.cat(new, dim=1)

    def transform(self, y: torch.Tensor, seen, slots=None, factor=None, gain=None) -> torch.Tensor:
        """Head output [N] (and the new feature slots [N, K+2], for `tanh-rms`; `decay`'s factor, the
        gain's) -> update [N]."""
        if self.output_kind != "linear":
            y = torch.tanh(y)
        u = self.output_scale * y
        if self.output_kind == "tanh-rms":  # r'^power in float64 from the float32 r', rounded once
            r = slots[:, len(self.features.beta1)]
            u = u * r.double().pow(self.output_power).float()
        if factor is not None:  # decay: rounded once more
            u = (u.double() * factor).float()
        if gain is not None:  # and the gain: once more
            u = (u.double() * gain).float()
        if seen is not None:  # by construction, never-nonzero gradients give exactly 0
            u = torch.where(seen, u, torch.zeros_like(u))
        return u

    def forward(self, grads: torch.Tensor, state: torch.Tensor, groups: int = 1):
        n = grads.numel()
        if state.shape != (n, self.state_size):
            raise ValueError(f"state must be [{n}, {self.state_size}], got {list(state.shape)}")
        x, slots, seen = self.inputs(grads, state)
        lo = self.lstm_size + self.feature_slots
        factor, gain, out_slots = self.output_state(grads, state[:, lo:], slots, seen, groups)
        h_dim = self.hidden
        new_parts = []
        for k, cell in enumerate(self.cells):
            h = state[:, 2 * k * h_dim : (2 * k + 1) * h_dim]
            c = state[:, (2 * k + 1) * h_dim : (2 * k + 2) * h_dim]
            h, c = cell(x, (h, c))
            new_parts += [h, c]
            x = h
        updates = self.transform(self.head(x).reshape(-1), seen, slots, factor, gain).reshape(grads.shape)
        if slots is not None:
            new_parts.append(slots)
        if out_slots is not None:
            new_parts.append(out_slots)
        return updates, torch.cat(new_parts, dim=1)

    @torch.no_grad()
    def fast_forward(self, grads: torch.Tensor, state_fm: torch.Tensor, out=None, groups: int = 1):
        """Inference-only forward with the same math as `forward` (float32 rounding aside), for
        evaluation. The state is feature-major, [S, N] (the transpose of `forward`'s), so each
        gate is a contiguous block of rows: one matmul per layer on [x; h] and in-place
        activations, faster on CPU than strided gate slices of the coordinate-major layout. `out`
        receives the new state."""
        h_dim = self.hidden
        new = torch.empty_like(state_fm) if out is None else out
        lstm = self.lstm_size
        factor = gain = None
        if self.features is None:
            x, seen, slots = self.preprocess(grads).t(), None, None
        else:
            end = lstm + self.feature_slots
            feats, slots, seen = self.features(grads.reshape(-1).float(), state_fm[lstm:end].t())
            new[lstm:end] = slots.t()
            x = feats.t()
            if self.counted:
                factor, gain, out_slots = self.output_state(grads, state_fm[end:].t(), slots, seen, groups)
                new[end:] = out_slots.t()
        if self.input_size:
            x = _elu(torch.addmm(self.input.bias.unsqueeze(1), self.input.weight, x))
        for k, cell in enumerate(self.cells):
            w = torch.cat([cell.weight_ih, cell.weight_hh], dim=1)
            b = (cell.bias_ih + cell.bias_hh).unsqueeze(1)
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
        y = torch.addmm(self.head.bias.unsqueeze(1), self.head.weight, x).reshape(-1)
        return self.transform(y, seen, slots, factor, gain).reshape(grads.shape), new
