"""The learned optimizer: one small LSTM applied to every coordinate (DESIGN.md §2).

The module's state_dict names are the weight file's tensor names, so export is a plain dump.
"""

from __future__ import annotations

import math

import torch
from torch import nn

PREPROCESSING = ("log-sign", "none")


class LSTMOptimizer(nn.Module):
    """Coordinatewise L-layer LSTM; `forward(grads [N], state [N, 2LH]) -> (updates [N], state)`."""

    def __init__(
        self,
        layers: int = 2,
        hidden: int = 20,
        preprocessing: str = "log-sign",
        p: float = 10.0,
        output_scale: float = 0.1,
    ) -> None:
        super().__init__()
        if preprocessing not in PREPROCESSING:
            raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}")
        if layers < 1 or hidden < 1:
            raise ValueError("layers and hidden must be >= 1")
        self.layers = int(layers)
        self.hidden = int(hidden)
        self.preprocessing = preprocessing
        self.p = float(p)
        self.output_scale = float(output_scale)
        in_dim = 2 if preprocessing == "log-sign" else 1
        self.cells = nn.ModuleList(
            [nn.LSTMCell(in_dim if k == 0 else hidden, hidden) for k in range(layers)]
        )
        self.head = nn.Linear(hidden, 1)

    @property
    def state_size(self) -> int:
        return 2 * self.layers * self.hidden

    def architecture(self) -> dict:
        """The architecture record stored in the weight file's metadata (DESIGN.md §3)."""
        arch = {
            "kind": "lstm-cw",
            "layers": self.layers,
            "hidden": self.hidden,
            "preprocessing": self.preprocessing,
            "outputScale": self.output_scale,
        }
        if self.preprocessing == "log-sign":
            arch["p"] = self.p
        return arch

    @classmethod
    def from_architecture(cls, arch: dict) -> "LSTMOptimizer":
        if arch.get("kind") != "lstm-cw":
            raise ValueError(f"unknown optimizer kind {arch.get('kind')!r}; expected 'lstm-cw'")
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

    def forward(self, grads: torch.Tensor, state: torch.Tensor):
        n = grads.numel()
        if state.shape != (n, self.state_size):
            raise ValueError(f"state must be [{n}, {self.state_size}], got {list(state.shape)}")
        x = self.preprocess(grads)
        h_dim = self.hidden
        new_parts = []
        for k, cell in enumerate(self.cells):
            h = state[:, 2 * k * h_dim : (2 * k + 1) * h_dim]
            c = state[:, (2 * k + 1) * h_dim : (2 * k + 2) * h_dim]
            h, c = cell(x, (h, c))
            new_parts += [h, c]
            x = h
        updates = self.output_scale * self.head(x).reshape(grads.shape)
        return updates, torch.cat(new_parts, dim=1)

    @torch.no_grad()
    def fast_forward(self, grads: torch.Tensor, state_fm: torch.Tensor, out=None):
        """Inference-only forward with the same math as `forward` (float32 rounding aside), for
        evaluation. The state is feature-major, [2LH, N] (the transpose of `forward`'s), so each
        gate is a contiguous block of rows: one matmul per layer on [x; h] and in-place
        activations, faster on CPU than strided gate slices of the coordinate-major layout. `out`
        receives the new state."""
        h_dim = self.hidden
        x = self.preprocess(grads).t()
        new = torch.empty_like(state_fm) if out is None else out
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
        updates = torch.addmm(self.head.bias.unsqueeze(1), self.head.weight, x).mul_(self.output_scale)
        return updates.reshape(grads.shape), new
