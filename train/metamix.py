"""Meta-training on a distribution of tasks (l2o-mlp): MLPs on MNIST and quadratics, with random
scaling and horizons up to 1,000 steps in truncated unrolls.

The estimator is the paper's first-order truncated BPTT, computed so that it costs little more
than running the optimizees. With the gradients fed to the optimizer detached, theta_s =
theta_t + u_t + … + u_(s-1), so the meta-loss of a truncation, L = mean_s w_s(f_s), depends on the
update u_t,i of coordinate i at step t only through the later losses of the same truncation:

    dL/du_t,i = sum_(s>t) w_s'(f_s) * g_s,i          (g_s is the gradient fed at step s)

and every coordinate's updates depend on the optimizer's weights only through that coordinate's
own gradients and state. So dL/dphi = sum_i sum_t a_t,i * du_t,i/dphi with a_t,i as above: the
optimizees run without autograd (the native kernel steps every coordinate), the gradients of a
random subset of coordinates are recorded, and autograd replays only that subset through the
optimizer's torch module. Scaled by D / |subset| this is an unbiased estimate of the full
truncated-BPTT meta-gradient. The meta-loss is the mean of log f over each truncation's steps
(f + 1e-4 f_0 for instances whose minimum is 0), which weighs tasks of every scale alike and
matches the evaluation's geometric mean.

Several workers each carry a task instance through its horizon; a meta-step advances every worker
by one truncation, so each meta-gradient mixes tasks and phases of training. Horizons are drawn
log-uniformly, so long runs (up to 1,000 steps) are seen as often as short ones per truncation.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .baselines import TEACHERS, Learned, run_rule
from .export import load_model
from .metatrain import (
    LOG_COLUMNS,
    append_log,
    keep_if_best,
    load_checkpoint,
    refuse_other_config,
    write_summary,
)
from .optimizer import LSTMOptimizer
from .tasks import make_family

ACTS = ("sigmoid", "relu", "tanh")


@dataclass(frozen=True)
class TaskConfig:
    """One task of the distribution: an MLP on MNIST (pool: all 10,000 digits) or a quadratic."""

    family: str = "mnist-mlp"
    hidden: tuple = (20,)
    activation: str = "sigmoid"
    batch_size: int = 128

    def make_family(self):
        if self.family == "quadratic":
            return make_family("quadratic")
        return make_family(self.family, hidden=self.hidden, activation=self.activation,
                           batch_size=self.batch_size)

    def label(self) -> str:
        if self.family == "quadratic":
            return "quadratic"
        return f"{'x'.join(map(str, self.hidden))} {self.activation} b{self.batch_size}"


@dataclass
class MixConfig:
    # learned optimizer architecture (docs/optimizer-math.md)
    layers: int = 2
    hidden: int = 8
    input_size: int = 8
    beta1: list = field(default_factory=lambda: [0.5, 0.9, 0.99])
    beta2: float = 0.99
    eps: float = 1e-8
    log_rms: float = 0.0  # > 0: the features include log(max(r, e^-q)) / q, the gradient's scale
    output_scale: float = 0.1
    output_power: float = 0.0  # > 0: output `tanh-rms`, scale * tanh(head) * r^power (else `tanh`)
    # > 0 (tanh-rms only): times min(1, (decay_after / t)^decay_power), t the coordinate's step count
    decay_after: int = 0
    decay_power: float = 0.0
    # task distribution
    quadratic_prob: float = 0.15
    min_layers: int = 1
    max_layers: int = 3
    min_units: int = 10
    max_units: int = 64
    batch_sizes: list = field(default_factory=lambda: [32, 64, 128, 256])
    pscale: float = 3.0  # parameter scaling log-uniform in [1/pscale, pscale]
    lscale: float = 10.0  # loss scaling log-uniform in [1/lscale, lscale]
    xscale: float = 2.0  # input scaling log-uniform in [1/xscale, xscale]
    min_horizon: int = 50
    max_horizon: int = 1000
    # meta-training
    workers: int = 8
    instances: int = 2  # per worker
    unroll: int = 20
    subset: int = 512  # coordinates per instance replayed through autograd
    meta_lr: float = 1e-3
    final_lr_ratio: float = 0.1  # cosine decay of the meta-lr to meta_lr * this
    iterations: int = 2000
    clip: float = 1.0
    val_every: int = 100
    val_configs: int = 16
    val_instances: int = 4  # per validation config: 64 instances in all
    val_horizon: int = 200
    val_long: int = 4  # the last val_long configs run to max_horizon
    patience: int = 100  # validation rounds (not iterations) without a new best before stopping
    # > 0: validation scores log(loss + val_floor * initial loss) (validate_mix's floor)
    val_floor: float = 0.0
    max_minutes: float = 0.0
    seed: int = 0
    device: str = "cpu"
    init_from: str = ""
    # estimator: "tbptt" (first-order truncated BPTT, the paper's) or "pes" (antithetic persistent
    # evolution strategies, Vicol et al. 2021: unbiased for the whole horizon's objective; `workers`
    # antithetic pairs, perturbation scale `sigma` in the packed parameters of train/kernel.py)
    estimator: str = "tbptt"
    sigma: float = 0.01
    # PES's meta-loss over a horizon: "mean", every step's log loss alike; "ramp", step t weighted
    # 2t / horizon, so that the end of the run (what validation and users judge) counts most
    meta_weight: str = "mean"
    # imitation warm start (stage "imitation"): clone `teacher` at `teacher_lr` across the
    # distribution, or with teacher "oracle" each task's own tuned teacher (ORACLE_GRID)
    stage: str = "meta-training"
    teacher: str = "adam"
    teacher_lr: float = 0.01
    coords: int = 4096
    teacher_configs: int = 16
    teacher_horizon: int = 200
    # whose steps the imitation trajectories follow: "teacher" (its own), "student" (the starting
    # weights, `init_from`, with the teacher run alongside on the same gradients: DAgger's
    # correction of the states a clone reaches but its teacher never does), or "mixed" (alternate
    # tasks one way and the other)
    driver: str = "teacher"
    # how an iteration draws its `coords` coordinates from the data: "uniform" (every coordinate
    # alike, so a quadratic's 10 are almost never drawn beside an MLP's thousands) or "per-task"
    # (each task an equal share; a task of fewer than TASK_COORDS coordinates, a quadratic, is run
    # with enough instances to have that many)
    coord_sampling: str = "uniform"

    def make_optimizer(self) -> LSTMOptimizer:
        output = {"kind": "tanh", "scale": self.output_scale}
        if self.output_power:
            output = {"kind": "tanh-rms", "scale": self.output_scale, "power": self.output_power}
            if self.decay_after:
                output["decay"] = {"after": self.decay_after, "power": self.decay_power}
        elif self.decay_after:
            raise ValueError("decay_after needs the tanh-rms output (output_power > 0)")
        return LSTMOptimizer(
            self.layers, self.hidden,
            features={"kind": "moments", "beta1": list(self.beta1), "beta2": self.beta2, "eps": self.eps,
                      **({"logRms": self.log_rms} if self.log_rms else {})},
            input_size=self.input_size,
            output=output,
        )

    def sample_task(self, rng: random.Random) -> TaskConfig:
        if rng.random() < self.quadratic_prob:
            return TaskConfig("quadratic", (), "", 0)
        depth = rng.randint(self.min_layers, self.max_layers)
        units = tuple(int(round(math.exp(rng.uniform(math.log(self.min_units), math.log(self.max_units)))))
                      for _ in range(depth))
        return TaskConfig("mnist-mlp", units, rng.choice(ACTS), rng.choice(list(self.batch_sizes)))

    def sample_horizon(self, rng: random.Random) -> int:
        lo, hi = math.log(self.min_horizon), math.log(self.max_horizon)
        return int(round(math.exp(rng.uniform(lo, hi))))

    def sample_problem(self, task: TaskConfig, rng: random.Random, n: int, horizon: int, scaled: bool = True,
                       scale_inputs: bool = True):
        seeds = [rng.randrange(2**62) for _ in range(n)]
        problem = task.make_family().sample(seeds, "pool", self.device, horizon + 1)
        if scaled:
            def draw(r):
                return torch.tensor([math.exp(rng.uniform(-math.log(r), math.log(r))) for _ in range(n)])

            p, loss, x = draw(self.pscale), draw(self.lscale), draw(self.xscale)
            if task.family != "quadratic" and scale_inputs:
                problem.xscale = x.to(problem.theta0)
            problem.scale(p, loss)
        return problem


def initial_weights(path, device="cpu") -> dict:
    """A stage's starting weights (`init_from`): an earlier stage's checkpoint (`best.pt`), or a
    shipped weight file (`.safetensors`), whose network is taken without its output fields (those
    come from the stage's own config)."""
    if str(path).endswith(".safetensors"):
        return {k: v.to(device) for k, v in load_model(path).state_dict().items()}
    return load_checkpoint(path, device)["model"]


class Worker:
    """One task instance (batch of `instances`) carried through its horizon across meta-steps."""

    def __init__(self, cfg: MixConfig, rng: random.Random, learned: Learned) -> None:
        self.cfg, self.rng, self.learned = cfg, rng, learned
        self.reset()

    def reset(self) -> None:
        cfg = self.cfg
        self.task = cfg.sample_task(self.rng)
        horizon = cfg.sample_horizon(self.rng)
        self.start(cfg.sample_problem(self.task, self.rng, cfg.instances, horizon), horizon)

    def start(self, problem, horizon: int) -> None:
        self.problem, self.horizon = problem, horizon
        self.theta = problem.theta0.clone()
        self.state = self.learned.init(self.theta.numel(), self.theta.device)
        self.t = 0
        self.loss, self.grad = problem.loss_and_grad(self.theta, 0)
        self.floor = 1e-4 * self.loss  # log(f + floor): instances whose minimum is 0 stay bounded

    def truncation(self, module: LSTMOptimizer, subset: int):
        """Advance one truncation; returns (surrogate tensor or None, mean log-loss, final loss)."""
        cfg = self.cfg
        n_inst, dim = self.theta.shape
        steps = min(cfg.unroll, self.horizon - self.t)
        k = min(subset, dim)
        idx = torch.stack([torch.randperm(dim, generator=torch.Generator().manual_seed(self.rng.randrange(2**62)))[:k]
                           + i * dim for i in range(n_inst)]).reshape(-1)
        blocked = self.state
        start_state = (blocked[idx // blocked.shape[2], :, idx % blocked.shape[2]].clone()
                       if blocked.dim() == 3 else blocked[:, idx].t().clone())
        sub_grads = [self.grad.reshape(-1)[idx]]
        weights, logs = [], []
        for _ in range(steps):
            upd, self.state = self.learned.update(self.grad.reshape(-1), self.state)
            self.theta = self.theta + upd.reshape(self.theta.shape)
            self.t += 1
            self.loss, self.grad = self.problem.loss_and_grad(self.theta, self.t)
            if not torch.isfinite(self.loss).all() or not torch.isfinite(self.grad).all():
                self.reset()
                return None, float("nan"), float("nan")
            f = self.loss + self.floor
            weights.append(1.0 / (steps * f))  # d/df of mean_s log(f_s + floor)
            logs.append(torch.log(f).mean().item())
            sub_grads.append(self.grad.reshape(-1)[idx])
        final = self.loss.mean().item()
        # upstream a_t = sum_{s>t} w_s g_s on the subset, per instance
        g = torch.stack(sub_grads)  # [steps + 1, n_inst * k]
        w = torch.stack(weights).repeat_interleave(k, dim=1)  # [steps, n_inst * k]
        contrib = w * g[1:]
        upstream = contrib.flip(0).cumsum(0).flip(0)  # a_t for t = 0..steps-1
        state = start_state
        sur = 0.0
        with torch.enable_grad():
            for t in range(steps):
                u, state = module(g[t], state)
                sur = sur + (upstream[t] * u).sum()
        sur = sur * (dim / k) / n_inst
        if self.t >= self.horizon:
            self.reset()
        return sur, sum(logs) / len(logs), final


class PESPair:
    """An antithetic pair of one task instance (two identical copies, common random numbers),
    stepped with phi + sigma*eps and phi - sigma*eps over truncations of its horizon. `xi`
    accumulates the perturbations since the horizon's start (PES)."""

    def __init__(self, cfg: MixConfig, rng: random.Random, native, n_params: int) -> None:
        self.cfg, self.rng, self.native, self.n_params = cfg, rng, native, n_params
        self.reset()

    def reset(self) -> None:
        cfg = self.cfg
        self.task = cfg.sample_task(self.rng)
        self.horizon = cfg.sample_horizon(self.rng)
        self.problem = cfg.sample_problem(self.task, self.rng, 1, self.horizon).repeat(2)
        self.theta = self.problem.theta0.clone()
        dim = self.theta.shape[1]
        self.states = [self.native.init_blocked(dim), self.native.init_blocked(dim)]
        self.t = 0
        self.loss, self.grad = self.problem.loss_and_grad(self.theta, 0)
        self.f0 = self.loss.clone()
        self.xi = torch.zeros(self.n_params)

    def truncation(self, phi: torch.Tensor, gen: torch.Generator):
        """Returns (this pair's gradient estimate [P], mean log-loss of the + copy, final loss)."""
        cfg = self.cfg
        eps = torch.randn(self.n_params, generator=gen)
        params = [(phi + cfg.sigma * eps).contiguous(), (phi - cfg.sigma * eps).contiguous()]
        self.xi += eps
        steps = min(cfg.unroll, self.horizon - self.t)
        total = torch.zeros(2, dtype=torch.float64)
        diverged = False
        for _ in range(steps):
            g = self.grad
            upd = torch.stack([self.native(g[i], self.states[i], params=params[i]) for i in range(2)])
            self.theta = self.theta + upd
            self.t += 1
            self.loss, self.grad = self.problem.loss_and_grad(self.theta, self.t)
            cap = 1e3 * self.f0
            f = torch.where(torch.isfinite(self.loss), torch.minimum(self.loss, cap), cap)
            diverged = diverged or not torch.isfinite(self.grad).all() or bool((self.loss >= cap).any())
            weight = 2.0 * self.t / self.horizon if cfg.meta_weight == "ramp" else 1.0
            total += weight * torch.log(f.double() + 1e-4 * self.f0.double()) / steps
        estimate = self.xi * float(total[0] - total[1]) / (2 * cfg.sigma)
        final = float(self.loss[0])
        if diverged or self.t >= self.horizon:
            self.reset()
        return estimate, float(total[0]), final


# Config fields a resumed run may change: the rest must match its checkpoint's.
RESUMABLE = {"max_minutes", "patience", "device", "val_every"}


def _start_run(module, val_set, out: Path, floor: float) -> float:
    """A fresh meta-training run in `out`: the log's header, its starting point validated
    (validation-start.json and the log's row 0) and kept as best.pt. Returns the starting score."""
    append_log(out / "log.csv", LOG_COLUMNS, header=True)
    score, rows = validate_mix(module, val_set, details=True, floor=floor)
    (out / "validation-start.json").write_text(json.dumps({"score": score, "configs": rows}))
    torch.save({"model": module.state_dict(), "iteration": 0, "val": score, "configs": rows}, out / "best.pt")
    append_log(out / "log.csv", [0, "", "", "", score, 0, 0.0])
    return score


def meta_train_pes(cfg: MixConfig, out_dir, resume: bool = True, progress: bool = True) -> dict:
    """Meta-training by antithetic PES on the packed parameters the native kernel reads (the
    kernel makes each truncation cheap); files, validation and resume as `meta_train_mix`."""
    from .kernel import NativeStep, pack_params, unpack_params

    if cfg.meta_weight not in ("mean", "ramp"):
        raise ValueError(f"meta_weight must be 'mean' or 'ramp', got {cfg.meta_weight!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    module = cfg.make_optimizer()
    if cfg.init_from:
        module.load_state_dict(initial_weights(cfg.init_from))
    phi = torch.nn.Parameter(pack_params(module).clone())
    meta_opt = torch.optim.Adam([phi], lr=cfg.meta_lr)
    val_set = validation_set(cfg)
    ckpt_path, best_path, log_path = out / "checkpoint.pt", out / "best.pt", out / "log.csv"
    it0, best_val, bad_rounds, skipped, elapsed0, cpu0 = 0, float("inf"), 0, 0, 0.0, 0.0
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        refuse_other_config(ckpt_path, ck["config"], cfg, RESUMABLE)
        with torch.no_grad():
            phi.copy_(ck["phi"])
        meta_opt.load_state_dict(ck["meta_opt"])
        it0, best_val, bad_rounds = ck["iteration"], ck["best_val"], ck["bad_rounds"]
        skipped, elapsed0 = ck["skipped"], ck["elapsed_s"]
        cpu0 = ck.get("cpu_s", 0.0)
        rng.setstate(ck["rng"])
        gen.set_state(ck["generator"])
    else:
        best_val = _start_run(module, val_set, out, cfg.val_floor)
    cpu_start = time.process_time() - cpu0
    native = NativeStep(module)
    pairs = [PESPair(cfg, random.Random(rng.randrange(2**62)), native, phi.numel()) for _ in range(cfg.workers)]
    t_start = time.time() - elapsed0
    bar = tqdm(range(it0, cfg.iterations), initial=it0, total=cfg.iterations, disable=not progress,
               mininterval=5.0, desc="meta-train (PES)")
    stopped, it = "iterations", it0
    for it in bar:
        for group in meta_opt.param_groups:
            group["lr"] = cfg.meta_lr * _cosine(cfg, it)
        grads, metas, finals = [], [], []
        for pair in pairs:
            est, meta, final = pair.truncation(phi.detach(), gen)
            grads.append(est)
            metas.append(meta)
            finals.append(final)
        grad = torch.stack(grads).mean(dim=0)
        norm = float(grad.norm())
        if math.isfinite(norm):
            phi.grad = grad * min(1.0, cfg.clip / max(norm, 1e-12))
            meta_opt.step()
        else:
            skipped += 1
        meta_loss = sum(metas) / len(metas)
        bar.set_postfix(log_loss=f"{meta_loss:.3f}", skipped=skipped)
        done, val = it + 1, ""
        if done % cfg.val_every == 0 or done == cfg.iterations:
            unpack_params(module, phi.detach())
            val, rows = validate_mix(module, val_set, details=True, floor=cfg.val_floor)
            best_val, bad_rounds = keep_if_best(module, best_path, done, val, best_val, bad_rounds, {"configs": rows})
        elapsed = time.time() - t_start
        append_log(log_path, [done, meta_loss, sum(finals) / len(finals), norm, val, skipped, round(elapsed, 2)])
        timed_out = bool(cfg.max_minutes) and elapsed > cfg.max_minutes * 60
        if val != "" or timed_out:
            unpack_params(module, phi.detach())
            torch.save({"config": asdict(cfg), "model": module.state_dict(), "phi": phi.detach().clone(),
                        "meta_opt": meta_opt.state_dict(), "iteration": done, "best_val": best_val,
                        "bad_rounds": bad_rounds, "skipped": skipped, "elapsed_s": elapsed,
                        "cpu_s": time.process_time() - cpu_start,
                        "rng": rng.getstate(), "generator": gen.get_state()}, ckpt_path)
        if val != "" and bad_rounds >= cfg.patience:
            stopped = "early-stopping"
            break
        if timed_out:
            stopped = "time-limit"
            break
    bar.close()
    summary = write_summary(out, it + 1 if cfg.iterations > it0 else it0, skipped, stopped, t_start, "cpu",
                            time.process_time() - cpu_start)
    write_validation(out, cfg, val_set)
    return summary


def validation_set(cfg: MixConfig, scaled: bool = False):
    """Fixed validation tasks: `val_configs` configs from the distribution (seeded apart from
    training), `val_instances` instances each, unscaled (or with training's random scaling of
    parameters and loss: `scaled`; not of inputs, whose whole-pool loss is not defined); the last
    `val_long` run to max_horizon."""
    rng = random.Random(10_000 + cfg.seed)
    out = []
    for c in range(cfg.val_configs):
        task = cfg.sample_task(rng)
        horizon = cfg.max_horizon if c >= cfg.val_configs - cfg.val_long else cfg.val_horizon
        out.append((task, horizon, cfg.sample_problem(task, rng, cfg.val_instances, horizon, scaled=scaled,
                                                           scale_inputs=False)))
    return out


@torch.no_grad()
def validate_mix(module, val_set, details: bool = False, floor: float = 0.0):
    """Mean over validation instances of log(full-pool loss at the horizon); divergence counts as
    log(1e3 * initial loss). With `floor` > 0, log(loss + floor * initial loss) instead: a loss far
    below the initial one (a quadratic solved to 1e-7) then counts as solved, however far below,
    rather than outweighing every MLP of the set. With `details`, also each config's mean final
    loss. `module` is the learned optimizer's module, or any optimizer with init/update (a
    baseline, for reference)."""
    learned = Learned(module) if isinstance(module, LSTMOptimizer) else module
    logs, rows = [], []
    for task, horizon, problem in val_set:
        theta = problem.theta0.clone()
        if hasattr(learned, "instances"):  # a gain that pools over each instance's coordinates (train/regimes.py)
            learned.instances = theta.shape[0]
        state = learned.init(theta.numel())
        f0 = problem.full_loss(theta)
        for t in range(horizon):
            _, g = problem.loss_and_grad(theta, t)
            upd, state = learned.update(g.reshape(-1), state)
            theta = theta + upd.reshape(theta.shape)
        f = problem.full_loss(theta)
        bad = ~torch.isfinite(f) | (f > 1e3 * f0)
        f = torch.where(bad, 1e3 * f0, f)
        logs.append(torch.log(f.double() + (floor * f0.double() if floor else 1e-12)))
        rows.append((task.label(), horizon, f.double().mean().item()))
    score = torch.cat(logs).mean().item()
    return (score, rows) if details else score


def _cosine(cfg: MixConfig, it: int) -> float:
    frac = min(it / max(cfg.iterations, 1), 1.0)
    lo = cfg.final_lr_ratio
    return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * frac))


def _save(path, cfg, module, meta_opt, it, best_val, bad_rounds, skipped, elapsed, rng) -> None:
    torch.save({"config": asdict(cfg), "model": module.state_dict(), "meta_opt": meta_opt.state_dict(),
                "iteration": it, "best_val": best_val, "bad_rounds": bad_rounds, "skipped": skipped,
                "elapsed_s": elapsed, "rng": rng.getstate()}, path)


def meta_train_mix(cfg: MixConfig, out_dir, resume: bool = True, progress: bool = True) -> dict:
    """Meta-train on the task distribution; writes checkpoint.pt, best.pt, log.csv, summary.json.
    A resumed run continues from its last checkpoint (validation time) with fresh workers."""
    if cfg.estimator == "pes":
        return meta_train_pes(cfg, out_dir, resume, progress)
    if cfg.estimator != "tbptt":
        raise ValueError(f"estimator must be 'tbptt' or 'pes', got {cfg.estimator!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    module = cfg.make_optimizer().to(device)
    if cfg.init_from:
        module.load_state_dict(initial_weights(cfg.init_from, device))
    meta_opt = torch.optim.Adam(module.parameters(), lr=cfg.meta_lr)
    val_set = validation_set(cfg)
    ckpt_path, best_path, log_path = out / "checkpoint.pt", out / "best.pt", out / "log.csv"
    it0, best_val, bad_rounds, skipped, elapsed0 = 0, float("inf"), 0, 0, 0.0
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, device)
        refuse_other_config(ckpt_path, ck["config"], cfg, RESUMABLE)
        module.load_state_dict(ck["model"])
        meta_opt.load_state_dict(ck["meta_opt"])
        it0, best_val, bad_rounds = ck["iteration"], ck["best_val"], ck["bad_rounds"]
        skipped, elapsed0 = ck["skipped"], ck["elapsed_s"]
        rng.setstate(ck["rng"])
    else:
        best_val = _start_run(module, val_set, out, cfg.val_floor)
    learned = Learned(module)
    workers = [Worker(cfg, random.Random(rng.randrange(2**62)), learned) for _ in range(cfg.workers)]
    t_start = time.time() - elapsed0
    bar = tqdm(range(it0, cfg.iterations), initial=it0, total=cfg.iterations, disable=not progress,
               mininterval=5.0, desc="meta-train")
    stopped, it = "iterations", it0
    for it in bar:
        for group in meta_opt.param_groups:
            group["lr"] = cfg.meta_lr * _cosine(cfg, it)
        meta_opt.zero_grad(set_to_none=True)
        metas, finals, used = [], [], 0
        for w in workers:
            sur, meta, final = w.truncation(module, cfg.subset)
            if sur is None:
                skipped += 1
                continue
            (sur / len(workers)).backward()
            metas.append(meta)
            finals.append(final)
            used += 1
        norm = float("nan")
        if used:
            norm = float(torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.clip))
            if math.isfinite(norm):
                meta_opt.step()
            else:
                skipped += 1
                warnings.warn(f"iteration {it}: non-finite meta-gradient skipped ({skipped} so far)")
        if learned.native is not None:
            learned.native.refresh()
        meta_loss = sum(metas) / len(metas) if metas else float("nan")
        bar.set_postfix(log_loss=f"{meta_loss:.3f}", skipped=skipped)
        done, val = it + 1, ""
        if done % cfg.val_every == 0 or done == cfg.iterations:
            val, rows = validate_mix(module, val_set, details=True, floor=cfg.val_floor)
            best_val, bad_rounds = keep_if_best(module, best_path, done, val, best_val, bad_rounds, {"configs": rows})
        elapsed = time.time() - t_start
        append_log(log_path, [done, meta_loss, sum(finals) / max(len(finals), 1), norm, val, skipped,
                              round(elapsed, 2)])
        timed_out = bool(cfg.max_minutes) and elapsed > cfg.max_minutes * 60
        if val != "" or timed_out:
            _save(ckpt_path, cfg, module, meta_opt, done, best_val, bad_rounds, skipped, elapsed, rng)
        if val != "" and bad_rounds >= cfg.patience:
            stopped = "early-stopping"
            break
        if timed_out:
            stopped = "time-limit"
            break
    bar.close()
    summary = write_summary(out, it + 1 if cfg.iterations > it0 else it0, skipped, stopped, t_start, device)
    write_validation(out, cfg, val_set)
    return summary


def write_validation(out: Path, cfg: MixConfig, val_set) -> dict:
    """validation.json: the validation set's per-config losses for the stage's starting point
    and for its best weights, so a card can show what the stage changed."""
    best = load_checkpoint(out / "best.pt")
    if "configs" in best:  # validated when it was kept
        score, rows = best["val"], best["configs"]
    else:  # a best.pt from before best.pt kept its per-config losses
        module = cfg.make_optimizer()
        module.load_state_dict(best["model"])
        score, rows = validate_mix(module, val_set, details=True, floor=cfg.val_floor)
    start = json.loads((out / "validation-start.json").read_text())
    report = {
        "instances": cfg.val_configs * cfg.val_instances,
        "metric": "mean over instances of log(whole-pool loss at the horizon" + (
            f" + {cfg.val_floor:g} * the initial loss)" if cfg.val_floor else ")"),
        "start": start,
        "best": {"score": score, "configs": rows},
        "lossRatioGeoMean": math.exp(score - start["score"]),
    }
    (out / "validation.json").write_text(json.dumps(report, indent=1))
    return report


# Teachers for `teacher: "oracle"`: on each task the best of these (by its whole-pool loss at
# teacher_horizon, on two tuning instances) is the one imitated there.
ORACLE_GRID = {"adam": [3e-3, 1e-2, 3e-2], "nag": [3e-2, 1e-1, 3e-1, 1.0], "pnag": [3e-2, 1e-1, 3e-1]}


def oracle_teacher(cfg: MixConfig, task: TaskConfig, rng: random.Random):
    """(name, lr, loss) of the best teacher of ORACLE_GRID on `task`, tuned on two instances."""
    problem = cfg.sample_problem(task, rng, 2, cfg.teacher_horizon, scaled=False)
    best = (None, None, float("inf"))
    for name, lrs in ORACLE_GRID.items():
        for lr in lrs:
            theta, _, _ = run_rule(TEACHERS[name](lr), problem, cfg.teacher_horizon)
            loss = problem.full_loss(theta).double().mean().item()
            if math.isfinite(loss) and loss < best[2]:
                best = (name, lr, loss)
    return best


TASK_COORDS = 512


def teacher_data(cfg: MixConfig, log=None, student=None):
    """A teacher's gradients and updates along trajectories on `teacher_configs` tasks of the
    distribution (unscaled), coordinates of all tasks side by side: two [horizon, sum D], the
    teacher choices, and each task's number of coordinates. The trajectories are the teacher's own,
    or (`cfg.driver`) those of `student` (a Learned) on all or every other task. With `teacher:
    "oracle"` each task gets its own tuned teacher."""
    if cfg.driver not in ("teacher", "student", "mixed"):
        raise ValueError(f"driver must be 'teacher', 'student' or 'mixed', got {cfg.driver!r}")
    if cfg.driver != "teacher" and student is None:
        raise ValueError(f"driver {cfg.driver!r} needs a student to follow (init_from)")
    if cfg.coord_sampling not in ("uniform", "per-task"):
        raise ValueError(f"coord_sampling must be 'uniform' or 'per-task', got {cfg.coord_sampling!r}")
    rng = random.Random(20_000 + cfg.seed)
    grads, updates, chosen, sizes = [], [], [], []
    for k in range(cfg.teacher_configs):
        task = cfg.sample_task(rng)
        if cfg.teacher == "oracle":
            name, lr, loss = oracle_teacher(cfg, task, rng)
            chosen.append({"task": task.label(), "teacher": name, "lr": lr, "loss": loss})
            if log:
                log(f"{task.label()}: {name} lr {lr} -> {loss:.4f}")
        else:
            name, lr = cfg.teacher, cfg.teacher_lr
        n = 1
        if cfg.coord_sampling == "per-task":
            n = -(-TASK_COORDS // task.make_family().dim)
        problem = cfg.sample_problem(task, rng, n, cfg.teacher_horizon, scaled=False)
        driver = student if cfg.driver == "student" or (cfg.driver == "mixed" and k % 2 == 1) else None
        _, gs, us = run_rule(TEACHERS[name](lr), problem, cfg.teacher_horizon, record=True, driver=driver)
        grads.append(torch.stack(gs))
        updates.append(torch.stack(us))
        sizes.append(grads[-1].shape[1])
    return torch.cat(grads, dim=1), torch.cat(updates, dim=1), chosen, sizes


def draw_coords(cfg: MixConfig, sizes: list, gen: torch.Generator) -> torch.Tensor:
    """`cfg.coords` column indices into teacher_data's tasks side by side (`coord_sampling`)."""
    if cfg.coord_sampling == "uniform":
        return torch.randint(0, sum(sizes), (cfg.coords,), generator=gen)
    size = torch.tensor(sizes)
    start = torch.cumsum(size, 0) - size
    task = torch.randint(0, len(sizes), (cfg.coords,), generator=gen)
    return start[task] + (torch.rand(cfg.coords, generator=gen) * size[task]).long().clamp_max(size[task] - 1)


def imitate_mix(cfg: MixConfig, out_dir, resume: bool = True, progress: bool = True) -> dict:
    """Warm start: regress the teacher's updates (imitate.imitation_loss) on random coordinates of
    its trajectories over the distribution; cosine lr from meta_lr to meta_lr * final_lr_ratio;
    validation as in meta-training. Hands on the final iterate."""
    from .imitate import coordinate_scale, imitation_loss

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    module = cfg.make_optimizer()
    adam = torch.optim.Adam(module.parameters(), lr=cfg.meta_lr)
    student = None
    if cfg.init_from:  # the starting weights, whose trajectories `driver` may follow
        module.load_state_dict(initial_weights(cfg.init_from))
        student = Learned(copy.deepcopy(module))
    grads, targets, chosen, sizes = teacher_data(cfg, log=tqdm.write if progress else None, student=student)
    (out / "teachers.json").write_text(json.dumps(chosen, indent=1))
    scale = coordinate_scale(targets)
    val_set = validation_set(cfg)
    ckpt_path, best_path, log_path = out / "checkpoint.pt", out / "best.pt", out / "log.csv"
    gen = torch.Generator().manual_seed(cfg.seed)
    it0, elapsed0, skipped = 0, 0.0, 0
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path)
        refuse_other_config(ckpt_path, ck["config"], cfg, RESUMABLE)
        module.load_state_dict(ck["model"])
        adam.load_state_dict(ck["meta_opt"])
        gen.set_state(ck["generator"])
        it0, elapsed0 = ck["iteration"], ck["elapsed_s"]
    else:  # a later stage continues from an earlier one's weights, loaded above
        append_log(log_path, LOG_COLUMNS, header=True)
    t_start = time.time() - elapsed0
    cpu_start = time.process_time() - (ck.get("cpu_s", 0.0) if it0 else 0.0)
    it, val = it0, ""
    bar = tqdm(range(it0, cfg.iterations), initial=it0, total=cfg.iterations, disable=not progress,
               mininterval=5.0, desc="imitate")
    for it in bar:
        for group in adam.param_groups:
            group["lr"] = cfg.meta_lr * _cosine(cfg, it)
        idx = draw_coords(cfg, sizes, gen)

        def step(loss):
            nonlocal skipped
            adam.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.clip)
            if math.isfinite(float(norm)):
                adam.step()
            else:
                skipped += 1

        loss = imitation_loss(module, grads[:, idx], targets[:, idx], scale[idx], cfg.unroll, step)
        bar.set_postfix(imitation_loss=f"{loss:.4f}")
        done, val = it + 1, ""
        if done % cfg.val_every == 0 or done == cfg.iterations:
            val = validate_mix(module, val_set, floor=cfg.val_floor)
            torch.save({"config": asdict(cfg), "model": module.state_dict(), "meta_opt": adam.state_dict(),
                        "generator": gen.get_state(), "iteration": done, "elapsed_s": time.time() - t_start,
                        "cpu_s": time.process_time() - cpu_start}, ckpt_path)
        append_log(log_path, [done, loss, "", "", val, skipped, round(time.time() - t_start, 2)])
    bar.close()
    # the last iteration was validated in the loop (done == cfg.iterations), unless this call resumed a finished run
    final_val = val if val != "" else validate_mix(module, val_set, floor=cfg.val_floor)
    torch.save({"model": module.state_dict(), "iteration": cfg.iterations, "val": final_val}, best_path)
    return write_summary(out, cfg.iterations, skipped, "iterations", t_start, cfg.device,
                         time.process_time() - cpu_start)
