"""Meta-training as in Andrychowicz et al. 2016 §3.

Each meta-iteration samples a batch of instances and optimizes them for `horizon` steps, unrolled
`unroll` at a time (truncated BPTT carrying theta and the LSTM state across truncations). The
meta-loss of a truncation is the mean over instances and steps of f(theta_t); the gradients fed to
the LSTM are detached (no second derivatives). Adam meta-optimizer, meta-gradient norm clipping,
early stopping on validation instances, checkpoints and resume, CSV log.
"""

from __future__ import annotations

import csv
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .baselines import Learned
from .optimizer import LSTMOptimizer
from .runner import run
from .tasks import instance_seeds, make_family


def load_checkpoint(path, map_location="cpu") -> dict:
    """Our own checkpoints (trusted, plain types): torch >= 2.6 defaults to weights_only=True,
    whose unpickler rejects them on some versions, so ask for the full unpickler explicitly."""
    return torch.load(path, map_location=map_location, weights_only=False)


@dataclass
class MetaTrainConfig:
    family: str = "mnist-mlp"
    optimizee_hidden: list = field(default_factory=lambda: [20])
    activation: str = "sigmoid"
    # learned optimizer architecture (DESIGN §2)
    layers: int = 2
    hidden: int = 20
    preprocessing: str = "log-sign"
    p: float = 10.0
    output_scale: float = 0.1
    # meta-training
    meta_lr: float = 1e-3
    batch: int = 8
    iterations: int = 200
    horizon: int = 100
    unroll: int = 20
    clip: float = 1.0
    val_every: int = 10
    val_instances: int = 16
    patience: int = 10
    max_minutes: float = 0.0  # 0: no wall-clock limit
    seed: int = 0
    device: str = "cpu"
    # "mean": mean over steps and instances of f(theta_t) (the paper's sum, scaled).
    # "relative": each instance's f(theta_t) divided by its (constant) loss at the truncation's
    # start, so late truncations, where losses are small, get meta-gradients as large as early ones.
    # "late": mean of f(theta_t) over the last fifth of the horizon only (what the evaluation
    # reports); truncations that end before it make no meta-step.
    meta_loss: str = "mean"
    init_from: str = ""  # warm start: a run's best.pt (weights only)
    # Early-stopping criterion on the validation instances: "mean" loss over all steps, or "late":
    # mean loss over the last fifth of the horizon (closer to what the evaluation reports).
    val_metric: str = "mean"

    def make_family(self):
        if self.family == "quadratic":
            return make_family("quadratic")
        return make_family(self.family, hidden=tuple(self.optimizee_hidden), activation=self.activation)

    def make_optimizer(self) -> LSTMOptimizer:
        return LSTMOptimizer(self.layers, self.hidden, self.preprocessing, self.p, self.output_scale)


def truncation(opt, problem, theta, state, start: int, unroll: int, meta_loss: str = "mean",
               horizon: int = 0):
    """One truncated-BPTT segment: returns (meta-loss tensor, theta, state, per-step mean losses).
    With meta_loss "late" the meta-loss is None when the segment ends before the last fifth of
    `horizon`."""
    theta = theta.detach().requires_grad_(True)
    state = state.detach()
    loss = problem.loss(theta, start)
    scale = 1.0 / loss.detach().clamp_min(1e-12) if meta_loss == "relative" else None
    late_from = horizon - horizon // 5 + 1  # first step counted by "late"
    total, counted = 0.0, 0
    step_losses = []
    for k in range(unroll):
        # The gradient fed to the optimizer is data: no second derivatives (paper §3).
        (g,) = torch.autograd.grad(loss.sum(), theta, retain_graph=k > 0)
        upd, state = opt(g.detach().reshape(-1), state)
        theta = theta + upd.reshape(theta.shape)
        loss = problem.loss(theta, start + k + 1)
        mean = loss.mean()
        if meta_loss != "late" or start + k + 1 >= late_from:
            total = total + (mean if scale is None else (loss * scale).mean())
            counted += 1
        step_losses.append(mean.item())
    return (total / counted if counted else None), theta, state, step_losses


def validate(opt, problem, horizon: int, metric: str = "mean") -> float:
    losses = run(Learned(opt), problem, horizon)
    m = (losses[1:] if metric == "mean" else losses[horizon - horizon // 5 + 1 :]).mean().item()
    return m if math.isfinite(m) else float("inf")


# Run bookkeeping shared by meta_train and imitate.imitate: the same files, log and summary.
LOG_COLUMNS = ["iteration", "meta_loss", "final_loss", "grad_norm", "val_loss", "skipped", "wall_s"]


def append_log(path: Path, row: list, header: bool = False) -> None:
    with open(path, "w" if header else "a", newline="") as f:
        csv.writer(f).writerow(row)


def refuse_other_config(ckpt_path: Path, saved: dict, cfg, stopping: set) -> None:
    """A checkpoint resumes only the run it was written by: every field but `stopping` must match
    (fields the checkpoint predates count at their defaults)."""
    saved = {**asdict(type(cfg)()), **saved}
    differs = {k for k, v in asdict(cfg).items() if k not in stopping and saved[k] != v}
    if differs:
        raise ValueError(f"{ckpt_path} was written with other {sorted(differs)}; use a new --out")


def guarded_step(meta_opt, params, loss, clip: float):
    """zero_grad, backward, clip, step. Returns (gradient norm, "") or, when the loss or the
    gradient is not finite, (None, what was) with nothing applied."""
    meta_opt.zero_grad(set_to_none=True)
    if not math.isfinite(loss.item()):
        return None, "meta-loss"
    loss.backward()
    norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
    if not math.isfinite(norm):
        meta_opt.zero_grad(set_to_none=True)
        return None, "meta-gradient"
    meta_opt.step()
    return norm, ""


def keep_if_best(opt, best_path: Path, iteration: int, val: float, best_val: float, bad_rounds: int,
                 details: dict | None = None):
    """Saves best.pt (with `details` beside the score) when `val` beats `best_val`. Returns the new
    (best_val, bad_rounds)."""
    if val < best_val:
        torch.save({"model": opt.state_dict(), "iteration": iteration, "val": val, **(details or {})}, best_path)
        return val, 0
    return best_val, bad_rounds + 1


def write_summary(out: Path, iterations: int, skipped: int, stopped: str, t_start: float, device,
                  cpu_seconds: float | None = None) -> dict:
    """summary.json; `cpu_seconds` (the process's CPU time over the whole run, resumes included) is
    what the run would take on an idle machine, when other work shared its cores."""
    best = load_checkpoint(out / "best.pt", device)
    summary = {
        "iterations": iterations,
        "bestIteration": best["iteration"],
        "bestValLoss": best["val"],
        "skippedNonFinite": skipped,
        "stopped": stopped,
        "wallSeconds": round(time.time() - t_start, 1),
        **({"cpuSeconds": round(cpu_seconds, 1)} if cpu_seconds is not None else {}),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def meta_train(cfg: MetaTrainConfig, out_dir, resume: bool = True, progress: bool = True) -> dict:
    """Meta-train; writes checkpoint.pt, best.pt and log.csv under out_dir. Returns a summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    family = cfg.make_family()
    opt = cfg.make_optimizer().to(device)
    if cfg.init_from:
        opt.load_state_dict(load_checkpoint(cfg.init_from, device)["model"])
    meta_opt = torch.optim.Adam(opt.parameters(), lr=cfg.meta_lr)
    if cfg.meta_loss not in ("mean", "relative", "late"):
        raise ValueError(f"meta_loss must be 'mean', 'relative' or 'late', got {cfg.meta_loss!r}")
    val_problem = family.sample(
        instance_seeds(cfg.seed + 1, cfg.val_instances), "train", device, cfg.horizon + 1
    )

    ckpt_path, best_path, log_path = out / "checkpoint.pt", out / "best.pt", out / "log.csv"
    it0, best_val, bad_rounds, skipped, elapsed0 = 0, float("inf"), 0, 0, 0.0
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, device)
        # Stopping rules may change on resume (e.g. a longer time limit); what is trained may not.
        refuse_other_config(ckpt_path, ck["config"], cfg, {"iterations", "max_minutes", "patience", "device"})
        opt.load_state_dict(ck["model"])
        meta_opt.load_state_dict(ck["meta_opt"])
        it0, best_val, bad_rounds = ck["iteration"], ck["best_val"], ck["bad_rounds"]
        skipped, elapsed0 = ck["skipped"], ck["elapsed_s"]
    else:
        append_log(log_path, LOG_COLUMNS, header=True)
        best_val = validate(opt, val_problem, cfg.horizon, cfg.val_metric)
        torch.save({"model": opt.state_dict(), "iteration": 0, "val": best_val}, best_path)

    t_start = time.time() - elapsed0
    bar = tqdm(range(it0, cfg.iterations), initial=it0, total=cfg.iterations, disable=not progress,
               mininterval=5.0)
    stopped = "iterations"
    it = it0
    for it in bar:
        problem = family.sample(
            instance_seeds(cfg.seed, cfg.batch, offset=it * cfg.batch), "train", device, cfg.horizon + 1
        )
        theta, state = problem.theta0, opt.init_state(problem.theta0.numel(), device)
        metas, norms, final = [], [], float("nan")
        for start in range(0, cfg.horizon, cfg.unroll):
            n = min(cfg.unroll, cfg.horizon - start)
            meta, theta, state, step_losses = truncation(
                opt, problem, theta, state, start, n, cfg.meta_loss, cfg.horizon
            )
            final = step_losses[-1]
            if meta is None:  # "late": nothing of the last fifth in this segment
                continue
            norm, bad = guarded_step(meta_opt, opt.parameters(), meta, cfg.clip)
            if norm is None:
                skipped += 1
                warnings.warn(f"iteration {it}: non-finite {bad} skipped ({skipped} so far)")
                break  # the trajectory diverged: its later truncations would be garbage too
            metas.append(meta.item())
            norms.append(norm)
        meta_loss = sum(metas) / len(metas) if metas else float("nan")
        bar.set_postfix(meta_loss=f"{meta_loss:.4f}", final=f"{final:.4f}", skipped=skipped)

        val = ""
        done = it + 1
        if done % cfg.val_every == 0 or done == cfg.iterations:
            val = validate(opt, val_problem, cfg.horizon, cfg.val_metric)
            best_val, bad_rounds = keep_if_best(opt, best_path, done, val, best_val, bad_rounds)
        elapsed = time.time() - t_start
        append_log(log_path, [done, meta_loss, final, max(norms, default=""), val, skipped, round(elapsed, 2)])
        timed_out = bool(cfg.max_minutes) and elapsed > cfg.max_minutes * 60
        if val != "" or timed_out:
            torch.save(
                {
                    "config": asdict(cfg),
                    "model": opt.state_dict(),
                    "meta_opt": meta_opt.state_dict(),
                    "iteration": done,
                    "best_val": best_val,
                    "bad_rounds": bad_rounds,
                    "skipped": skipped,
                    "elapsed_s": elapsed,
                },
                ckpt_path,
            )
        if val != "" and bad_rounds >= cfg.patience:
            stopped = "early-stopping"
            break
        if timed_out:
            stopped = "time-limit"
            break
    bar.close()
    return write_summary(out, it + 1 if cfg.iterations > it0 else it0, skipped, stopped, t_start, device)


def load_best(cfg: MetaTrainConfig, out_dir) -> LSTMOptimizer:
    opt = cfg.make_optimizer()
    opt.load_state_dict(load_checkpoint(Path(out_dir) / "best.pt")["model"])
    return opt


