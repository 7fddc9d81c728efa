"""Task families: seeded samplers of problem instances that run a whole batch at once.

A `Problem` holds B instances of one family with flat parameters theta [B, D] and evaluates all
of them with batched matmuls: `loss(theta, step) -> [B]`. Instance i is generated only from its
own seed, so a set of instances is the same whatever chunk size it is evaluated in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data import load_dataset

ACTIVATIONS = {"sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}


def instance_seeds(base_seed: int, num: int, offset: int = 0) -> list[int]:
    """Per-instance seeds of a named set: instance i of base seed s always gets the same seed."""
    return [(base_seed * 1_000_003 + offset + i) % (2**62) for i in range(num)]


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


class Problem:
    """B instances of a family on one device; subclasses implement `loss(theta, step) -> [B]`."""

    theta0: torch.Tensor

    @property
    def num(self) -> int:
        return self.theta0.shape[0]

    @property
    def dim(self) -> int:
        return self.theta0.shape[1]

    def loss(self, theta: torch.Tensor, step: int) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class QuadraticProblem(Problem):
    def __init__(self, w: torch.Tensor, y: torch.Tensor, theta0: torch.Tensor) -> None:
        self.w, self.y, self.theta0 = w, y, theta0

    def loss(self, theta: torch.Tensor, step: int) -> torch.Tensor:
        r = torch.bmm(self.w, theta.unsqueeze(2)).squeeze(2) - self.y
        return (r * r).sum(dim=1)


@dataclass
class QuadraticFamily:
    """Paper §3.1: f(theta) = ||W theta - y||^2 with W, y IID Gaussian, theta in R^dim."""

    dim: int = 10
    init_std: float = 0.01  # as in DeepMind's reference implementation
    name: str = "quadratic"

    def config(self) -> dict:
        return {"family": self.name, "dim": self.dim, "initStd": self.init_std}

    def sample(self, seeds: list[int], split: str = "train", device=None, horizon: int = 0):
        ws, ys, ts = [], [], []
        for s in seeds:
            g = _generator(s)
            ws.append(torch.randn(self.dim, self.dim, generator=g))
            ys.append(torch.randn(self.dim, generator=g))
            ts.append(torch.randn(self.dim, generator=g) * self.init_std)
        return QuadraticProblem(
            torch.stack(ws).to(device), torch.stack(ys).to(device), torch.stack(ts).to(device)
        )


class MLPProblem(Problem):
    def __init__(self, family, x, y, theta0, batch_idx) -> None:
        self.family, self.x, self.y, self.theta0, self.batch_idx = family, x, y, theta0, batch_idx

    def loss(self, theta: torch.Tensor, step: int) -> torch.Tensor:
        idx = self.batch_idx[:, step % self.batch_idx.shape[1]]  # [B, batch]
        h = self.x[idx]  # [B, batch, 784]
        targets = self.y[idx]
        act = ACTIVATIONS[self.family.activation]
        off = 0
        sizes = self.family.layer_sizes()
        for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = theta[:, off : off + fan_in * fan_out].reshape(-1, fan_in, fan_out)
            off += fan_in * fan_out
            b = theta[:, off : off + fan_out]
            off += fan_out
            h = torch.baddbmm(b.unsqueeze(1), h, w)
            if k < len(sizes) - 2:
                h = act(h)
        ce = F.cross_entropy(h.reshape(-1, sizes[-1]), targets.reshape(-1), reduction="none")
        return ce.reshape(theta.shape[0], -1).mean(dim=1)


@dataclass
class MLPFamily:
    """Cross-entropy of an MLP on minibatches of an image dataset (paper §3.2: 1x20 sigmoid, 128)."""

    dataset: str = "mnist"
    hidden: tuple = (20,)
    activation: str = "sigmoid"
    batch_size: int = 128
    name: str = "mnist-mlp"

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")

    def layer_sizes(self) -> list[int]:
        return [784, *self.hidden, 10]

    @property
    def dim(self) -> int:
        s = self.layer_sizes()
        return sum(a * b + b for a, b in zip(s[:-1], s[1:]))

    def config(self) -> dict:
        return {
            "family": self.name,
            "dataset": self.dataset,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "batchSize": self.batch_size,
            "dim": self.dim,
        }

    def sample(self, seeds: list[int], split: str = "train", device=None, horizon: int = 200):
        x, y = load_dataset(self.dataset, split, device)
        sizes = self.layer_sizes()
        thetas, idxs = [], []
        for s in seeds:
            g = _generator(s)
            parts = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                parts.append(torch.randn(fan_in * fan_out, generator=g) / fan_in**0.5)
                parts.append(torch.zeros(fan_out))
            thetas.append(torch.cat(parts))
            idxs.append(torch.randint(0, x.shape[0], (max(horizon, 1), self.batch_size), generator=g))
        theta0 = torch.stack(thetas).to(device)
        return MLPProblem(self, x, y, theta0, torch.stack(idxs).to(device))


def make_family(name: str, **kw):
    """Family by name: quadratic, mnist-mlp, fashion-mlp (kw: hidden, activation, batch_size)."""
    if name == "quadratic":
        return QuadraticFamily(**{k: v for k, v in kw.items() if k in ("dim",)})
    if name in ("mnist-mlp", "fashion-mlp"):
        dataset = "mnist" if name == "mnist-mlp" else "fashion"
        return MLPFamily(dataset=dataset, name=name, **kw)
    raise ValueError(f"unknown task family {name!r}; use quadratic, mnist-mlp or fashion-mlp")
