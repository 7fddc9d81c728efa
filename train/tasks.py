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


_SPARSE: dict = {}
SPARSE_MAX_HIDDEN = 64  # csrc/mlp_sparse.c's MAXV * LANES
# The sparse first layer pays where most pixels are 0: per step of a 64-instance batch (SkylakeX
# OpenBLAS) 0.20 against 0.35 ms an instance on MNIST (19% nonzero), but 0.66 against 0.51 ms on
# Fashion-MNIST (50% nonzero).
SPARSE_MAX_DENSITY = 0.3


def _sparse_rows(x: torch.Tensor):
    """The images x [n, 784] as CSR, (rowptr int64 [n + 1], cols int32, vals float32), or None
    where more than SPARSE_MAX_DENSITY of the pixels are nonzero; memoised per tensor (datasets are
    loaded once, see data.load_dataset)."""
    key = (x.data_ptr(), tuple(x.shape))
    if key not in _SPARSE:
        csr = None
        if (x != 0).float().mean().item() <= SPARSE_MAX_DENSITY:
            rows, cols = x.nonzero(as_tuple=True)  # row-major order
            rowptr = torch.zeros(x.shape[0] + 1, dtype=torch.int64)
            rowptr[1:] = torch.bincount(rows, minlength=x.shape[0]).cumsum(0)
            csr = (rowptr, cols.to(torch.int32).contiguous(), x[rows, cols].contiguous())
        _SPARSE[key] = (csr, x)  # x kept alive, so that its address is not reused
    return _SPARSE[key][0]


def instance_seeds(base_seed: int, num: int, offset: int = 0) -> list[int]:
    """Per-instance seeds of a named set: instance i of base seed s always gets the same seed."""
    return [(base_seed * 1_000_003 + offset + i) % (2**62) for i in range(num)]


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


class Problem:
    """B instances of a family on one device; subclasses implement `base_loss(theta, step) -> [B]`
    (the minibatch loss of step `step`) and may override `base_full_loss(theta) -> [B]` (the loss on
    all the data the model trains on; by default the minibatch-free loss of step 0).

    Random scaling (RNNprop's augmentation): with per-instance factors `pscale` and `lscale` the
    optimizer sees parameters theta' = pscale * theta and the loss lscale * f(theta' / pscale), so
    the same instance asks for other step sizes and gradient scales. `theta0` is already scaled."""

    theta0: torch.Tensor
    pscale: torch.Tensor | None = None
    lscale: torch.Tensor | None = None

    @property
    def num(self) -> int:
        return self.theta0.shape[0]

    @property
    def dim(self) -> int:
        return self.theta0.shape[1]

    def repeat(self, k: int) -> "Problem":
        """The same instances, each k times in a row (identical data, inits and minibatches: the
        common random numbers of antithetic estimators). In place; returns self."""
        for name in self.REPEATED + ("theta0", "pscale", "lscale"):
            v = getattr(self, name, None)
            if v is not None:
                setattr(self, name, v.repeat_interleave(k, dim=0))
        return self

    REPEATED: tuple = ()

    def scale(self, pscale: torch.Tensor, lscale: torch.Tensor) -> "Problem":
        """Apply random scaling factors [B] (in place); returns self."""
        self.pscale, self.lscale = pscale.to(self.theta0), lscale.to(self.theta0)
        self.theta0 = self.theta0 * self.pscale[:, None]
        return self

    def _unscaled(self, theta: torch.Tensor) -> torch.Tensor:
        return theta if self.pscale is None else theta / self.pscale[:, None]

    def _scaled(self, loss: torch.Tensor) -> torch.Tensor:
        return loss if self.lscale is None else loss * self.lscale

    def loss(self, theta: torch.Tensor, step: int) -> torch.Tensor:
        return self._scaled(self.base_loss(self._unscaled(theta), step))

    def loss_and_grad(self, theta: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of step `step` [B] and its gradient with respect to theta [B, D], both detached
        (no graph is kept). Families with a hand-written backward pass override `base_loss_and_grad`;
        the others go through autograd."""
        x = self._unscaled(theta.detach())
        with torch.no_grad():
            loss, grad = self.base_loss_and_grad(x, step)
        # d/dtheta of lscale * base(theta / pscale): the chain rule through _unscaled, then _scaled.
        grad = self._unscaled(grad)
        if self.lscale is not None:
            grad = grad * self.lscale[:, None]
        return self._scaled(loss), grad

    def base_loss_and_grad(self, theta: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        th = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = self.base_loss(th, step)
            (g,) = torch.autograd.grad(loss.sum(), th)
        return loss.detach(), g

    def full_loss(self, theta: torch.Tensor, limit: int = 0) -> torch.Tensor:
        """The loss on all the data (or, with `limit`, on the first `limit` examples of it)."""
        with torch.no_grad():
            return self._scaled(self.base_full_loss(self._unscaled(theta), limit))

    def base_loss(self, theta: torch.Tensor, step: int) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def base_full_loss(self, theta: torch.Tensor, limit: int = 0) -> torch.Tensor:
        return self.base_loss(theta, 0)


class QuadraticProblem(Problem):
    REPEATED = ("w", "y")

    def __init__(self, w: torch.Tensor, y: torch.Tensor, theta0: torch.Tensor) -> None:
        self.w, self.y, self.theta0 = w, y, theta0

    def base_loss(self, theta: torch.Tensor, step: int) -> torch.Tensor:
        r = torch.bmm(self.w, theta.unsqueeze(2)).squeeze(2) - self.y
        return (r * r).sum(dim=1)

    def base_loss_and_grad(self, theta: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        r = torch.bmm(self.w, theta.unsqueeze(2)).squeeze(2) - self.y
        return (r * r).sum(dim=1), 2 * torch.bmm(r.unsqueeze(1), self.w).squeeze(1)


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
    REPEATED = ("batch_idx", "xscale")

    def __init__(self, family, x, y, theta0, batch_idx, xscale=None) -> None:
        self.family, self.x, self.y, self.theta0, self.batch_idx = family, x, y, theta0, batch_idx
        self.xscale = xscale  # [B] input scaling (random scaling of the inputs), or None
        self.native = True  # False: the first layer in torch even where csrc/mlp_sparse.c could run it

    def _layers(self, theta: torch.Tensor):
        """Per layer: (offset of its weight in theta, weight [B, fan_in, fan_out], bias [B, fan_out])."""
        sizes, off, out = self.family.layer_sizes(), 0, []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            w = theta[:, off : off + fan_in * fan_out].reshape(-1, fan_in, fan_out)
            out.append((off, w, theta[:, off + fan_in * fan_out : off + fan_in * fan_out + fan_out]))
            off += fan_in * fan_out + fan_out
        return out

    def _logits(self, theta: torch.Tensor, h: torch.Tensor, first_done: bool = False, inputs=None,
                layers=None) -> torch.Tensor:
        """h [B, rows, 784] -> logits [B, rows, 10]; with `first_done`, h is already the first
        layer's product x @ W1 [B, rows, H1] (without its bias). `inputs`, a list, receives each
        layer's input (a backward pass needs them); `layers` is `_layers(theta)` when at hand."""
        act = ACTIVATIONS[self.family.activation]
        layers = self._layers(theta) if layers is None else layers
        if self.xscale is not None and not first_done:
            h = h * self.xscale.reshape(-1, 1, 1)
        for k, (_, w, b) in enumerate(layers):
            if inputs is not None:
                inputs.append(h)
            h = h + b.unsqueeze(1) if (k == 0 and first_done) else torch.baddbmm(b.unsqueeze(1), h, w)
            if k < len(layers) - 1:
                h = act(h)
        return h

    def _batch(self, step: int):
        """Minibatch `step`: inputs [B, batch, 784] and labels [B, batch]."""
        idx = self.batch_idx[:, step % self.batch_idx.shape[1]]  # [B, batch]
        flat = idx.reshape(-1)
        x = self.x.index_select(0, flat).reshape(*idx.shape, self.x.shape[1])
        return x, self.y.index_select(0, flat).reshape(idx.shape)

    def base_loss(self, theta: torch.Tensor, step: int) -> torch.Tensor:
        x, y = self._batch(step)
        logits = self._logits(theta, x)
        ce = F.cross_entropy(logits.reshape(-1, 10), y.reshape(-1), reduction="none")
        return ce.reshape(theta.shape[0], -1).mean(dim=1)

    def _native_first_layer(self, theta: torch.Tensor):
        """(train/csrc/mlp_sparse.c, the pool as CSR) where that runs the first layer here (CPU,
        float32, at most SPARSE_MAX_HIDDEN units, sparse images), or None."""
        if not self.native or theta.dtype != torch.float32:
            return None
        if theta.device.type != "cpu" or self.x.device.type != "cpu":
            return None
        if self.family.layer_sizes()[1] > SPARSE_MAX_HIDDEN:
            return None
        from .kernel import sparse_lib

        lib = sparse_lib()
        csr = _sparse_rows(self.x) if lib is not None else None
        return None if csr is None else (lib, [t.data_ptr() for t in csr])

    def base_loss_and_grad(self, theta: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward by hand, batched over instances: 20-30% faster on CPU than
        autograd through the flat theta's slices (tests/test_tasks.py checks it against autograd).
        On CPU, for MNIST, the first layer runs in train/csrc/mlp_sparse.c on the images' nonzero
        pixels, which also spares gathering the minibatch (SPARSE_MAX_DENSITY)."""
        act = self.family.activation
        layers = self._layers(theta)
        native = self._native_first_layer(theta)
        lib, csr = native if native is not None else (None, None)
        hs: list = []  # each layer's input
        if lib is None:
            x, y = self._batch(step)
            logits = self._logits(theta, x, inputs=hs, layers=layers)
        else:
            theta = theta.contiguous()
            idx = self.batch_idx[:, step % self.batch_idx.shape[1]].contiguous()  # [B, batch]
            y = self.y.index_select(0, idx.reshape(-1)).reshape(idx.shape)
            (n_inst, batch), hidden = idx.shape, layers[0][1].shape[2]
            z1 = torch.empty(n_inst, batch, hidden)
            rc = lib.l2o_sparse_forward(*csr, idx.data_ptr(), n_inst, batch, theta.data_ptr(), theta.shape[1],
                                        self.x.shape[1], hidden, z1.data_ptr())
            if rc != 0:
                raise MemoryError("l2o_sparse_forward failed")
            if self.xscale is not None:
                z1.mul_(self.xscale.reshape(-1, 1, 1))
            logits = self._logits(theta, z1, first_done=True, inputs=hs, layers=layers)
        logp = torch.log_softmax(logits, dim=2)
        nll = -logp.gather(2, y.unsqueeze(2)).squeeze(2)  # [B, batch]
        # d mean_i CE / d logits = (softmax - onehot) / batch
        dz = logp.exp_()
        dz.scatter_add_(2, y.unsqueeze(2), torch.full_like(nll, -1.0).unsqueeze(2))
        dz.mul_(1.0 / y.shape[1])
        grad = torch.empty_like(theta)
        for k in range(len(layers) - 1, -1, -1):
            off, w, _ = layers[k]
            h, size = hs[k], w.shape[1] * w.shape[2]
            if k == 0 and lib is not None:
                rc = lib.l2o_sparse_weight_grad(*csr, idx.data_ptr(), n_inst, batch, dz.contiguous().data_ptr(),
                                                w.shape[1], w.shape[2], grad.data_ptr(), grad.shape[1])
                if rc != 0:
                    raise MemoryError("l2o_sparse_weight_grad failed")
                if self.xscale is not None:
                    grad[:, :size].mul_(self.xscale.reshape(-1, 1))
            else:
                torch.bmm(h.transpose(1, 2), dz, out=grad[:, off : off + size].view_as(w))
            grad[:, off + size : off + size + w.shape[2]] = dz.sum(dim=1)
            if k == 0:
                break
            dh = torch.bmm(dz, w.transpose(1, 2))
            if act == "sigmoid":
                dz = dh.mul_(h * (1 - h))
            elif act == "tanh":
                dz = dh.mul_(1 - h * h)
            else:  # relu: h > 0 exactly where z > 0
                dz = dh.mul_(h > 0)
        return nll.mean(dim=1), grad

    def base_full_loss(self, theta: torch.Tensor, limit: int = 0, rows: int = 5000) -> torch.Tensor:
        """Mean cross-entropy over every example of the pool the minibatches are drawn from (or
        its first `limit` examples). The first layer of all instances is one matrix product."""
        sizes = self.family.layer_sizes()
        n_inst, n_pool = theta.shape[0], self.x.shape[0] if not limit else min(limit, self.x.shape[0])
        w1 = theta[:, : sizes[0] * sizes[1]].reshape(n_inst, sizes[0], sizes[1])
        w1 = w1.permute(1, 0, 2).reshape(sizes[0], n_inst * sizes[1])
        if self.xscale is not None:
            raise ValueError("full_loss of input-scaled instances is not supported")
        total = torch.zeros(n_inst, dtype=torch.float64, device=theta.device)
        for i in range(0, n_pool, rows):
            x = self.x[i : min(i + rows, n_pool)]
            h1 = (x @ w1).reshape(x.shape[0], n_inst, sizes[1]).permute(1, 0, 2)
            logits = self._logits(theta, h1, first_done=True)
            y = self.y[i : i + x.shape[0]].expand(n_inst, -1)
            ce = F.cross_entropy(logits.reshape(-1, 10), y.reshape(-1), reduction="none")
            total += ce.reshape(n_inst, -1).double().sum(dim=1)
        return (total / n_pool).float()


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
        """Instances whose minibatches come from `split` (see data.load_dataset; 'pool' is what
        l2o-mlp's evaluation trains on)."""
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
