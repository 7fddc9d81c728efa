"""Warm start by behaviour cloning: the LSTM learns to reproduce a tuned baseline's steps.

Meta-training from a random initialisation needs the LSTM's input-gate weights on log|g|/p to
grow to about p before its steps can be proportional to the gradient (momentum SGD is
sigmoid(log|g| + b) * sign(g) accumulated in the cell). Adam at meta-lr 1e-3 gets nowhere near that in a
few hundred meta-steps, so on a CPU budget the paper's objective alone ends at an Adam-like
optimizer. Cloning a tuned baseline first (Chen et al. 2020, "Training stronger baselines for
learning to optimize", use imitation of an analytic optimizer the same way) is cheap, because the
baseline's trajectories are fixed data: no optimizee in the loop.

The teacher runs on `batch` training instances for `horizon` steps; each iteration takes
`coords` random coordinates of those trajectories, feeds their gradient sequences through the LSTM
from a zero state (truncated BPTT of `unroll` steps) and regresses the teacher's updates, each
coordinate's error scaled by that coordinate's RMS update (plus half the median one, so that
coordinates the teacher hardly moves do not dominate). Validation, checkpoints, early stopping
and the CSV log work as in meta-training, on the real task.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .baselines import TEACHERS, run_rule
from .metatrain import (
    LOG_COLUMNS,
    MetaTrainConfig,
    append_log,
    guarded_step,
    keep_if_best,
    load_checkpoint,
    refuse_other_config,
    validate,
    write_summary,
)
from .tasks import instance_seeds


@dataclass
class ImitationConfig(MetaTrainConfig):
    """MetaTrainConfig's fields keep their meaning, read per imitation iteration: `batch` teacher
    trajectories, `iterations` regression steps, `meta_lr` the peak learning rate (cosine decay to
    a tenth), `unroll` the BPTT truncation, `clip` the gradient-norm clip."""

    stage: str = "imitation"
    teacher: str = "nag"
    teacher_lr: float = 1.0
    coords: int = 4096
    # Which weights the stage hands on: "best" on validation (as in meta-training) or the "final"
    # iterate, for when the validation set is too small to rank iterates whose imitation loss has
    # converged (the cosine schedule ends at a tenth of meta_lr).
    select: str = "best"


def stage_config(saved: dict) -> MetaTrainConfig:
    """The config of a run from its checkpoint's record: imitation or meta-training."""
    cls = ImitationConfig if saved.get("stage") == "imitation" else MetaTrainConfig
    return cls(**saved)


def teacher_trajectories(cfg: ImitationConfig, device):
    """Gradients and the teacher's updates along its own trajectories: two [horizon, batch*D]."""
    problem = cfg.make_family().sample(instance_seeds(cfg.seed + 7, cfg.batch), "train", device, cfg.horizon + 1)
    _, grads, updates = run_rule(TEACHERS[cfg.teacher](cfg.teacher_lr), problem, cfg.horizon, record=True)
    return torch.stack(grads), torch.stack(updates)


def coordinate_scale(updates: torch.Tensor) -> torch.Tensor:
    rms = updates.pow(2).mean(dim=0).sqrt()
    return rms + 0.5 * rms.median()


def imitation_loss(opt, grads, targets, scale, unroll: int, step=None) -> float:
    """Scaled MSE between the LSTM's and the teacher's updates over the whole horizon, from a zero
    state; with `step` (a callable) the meta-gradient is applied after every truncation."""
    state = opt.init_state(grads.shape[1], grads.device)
    total, horizon = 0.0, grads.shape[0]
    for a in range(0, horizon, unroll):
        state = state.detach()
        loss = 0.0
        for t in range(a, min(a + unroll, horizon)):
            u, state = opt(grads[t], state)
            loss = loss + ((u - targets[t]) / scale).pow(2).mean()
        loss = loss / (min(a + unroll, horizon) - a)
        if step is not None:
            step(loss)
        total += loss.item()
    return total / math.ceil(horizon / unroll)


def imitate(cfg: ImitationConfig, out_dir, resume: bool = True, progress: bool = True) -> dict:
    """Behaviour cloning; writes checkpoint.pt, best.pt, log.csv and summary.json like meta_train."""
    if cfg.select not in ("best", "final"):
        raise ValueError(f"select must be 'best' or 'final', got {cfg.select!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    opt = cfg.make_optimizer().to(device)
    adam = torch.optim.Adam(opt.parameters(), lr=cfg.meta_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(adam, cfg.iterations, eta_min=cfg.meta_lr / 10)
    grads, targets = teacher_trajectories(cfg, device)
    scale = coordinate_scale(targets)
    val_problem = cfg.make_family().sample(
        instance_seeds(cfg.seed + 1, cfg.val_instances), "train", device, cfg.horizon + 1
    )
    ckpt_path, best_path, log_path = out / "checkpoint.pt", out / "best.pt", out / "log.csv"
    it0, best_val, bad_rounds, elapsed0, skipped = 0, float("inf"), 0, 0.0, 0
    gen = torch.Generator().manual_seed(cfg.seed)
    if resume and ckpt_path.exists():
        ck = load_checkpoint(ckpt_path, device)
        # Unlike meta-training, the iteration count is part of what is trained (the lr schedule).
        refuse_other_config(ckpt_path, ck["config"], cfg, {"max_minutes", "patience", "device", "select"})
        opt.load_state_dict(ck["model"])
        adam.load_state_dict(ck["meta_opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["generator"])
        it0, best_val, bad_rounds, elapsed0 = ck["iteration"], ck["best_val"], ck["bad_rounds"], ck["elapsed_s"]
        skipped = ck["skipped"]
    else:
        append_log(log_path, LOG_COLUMNS, header=True)
        best_val = validate(opt, val_problem, cfg.horizon, cfg.val_metric)
        torch.save({"model": opt.state_dict(), "iteration": 0, "val": best_val}, best_path)

    norms: list[float] = []

    def step(loss):
        nonlocal skipped
        norm, bad = guarded_step(adam, opt.parameters(), loss, cfg.clip)
        if norm is None:
            skipped += 1
            warnings.warn(f"non-finite {bad} skipped ({skipped} so far)")
        else:
            norms.append(norm)

    t_start = time.time() - elapsed0
    stopped, it = "iterations", it0
    bar = tqdm(range(it0, cfg.iterations), initial=it0, total=cfg.iterations, disable=not progress, mininterval=5.0)
    for it in bar:
        idx = torch.randint(0, grads.shape[1], (cfg.coords,), generator=gen).to(device)
        norms.clear()
        loss = imitation_loss(opt, grads[:, idx], targets[:, idx], scale[idx], cfg.unroll, step)
        sched.step()
        bar.set_postfix(imitation_loss=f"{loss:.4f}")
        done, val = it + 1, ""
        if done % cfg.val_every == 0 or done == cfg.iterations:
            val = validate(opt, val_problem, cfg.horizon, cfg.val_metric)
            best_val, bad_rounds = keep_if_best(opt, best_path, done, val, best_val, bad_rounds)
        elapsed = time.time() - t_start
        append_log(log_path, [done, loss, "", max(norms, default=""), val, skipped, round(elapsed, 2)])
        if val != "":
            torch.save(
                {
                    "config": asdict(cfg), "model": opt.state_dict(), "meta_opt": adam.state_dict(),
                    "sched": sched.state_dict(), "generator": gen.get_state(), "iteration": done,
                    "best_val": best_val, "bad_rounds": bad_rounds, "skipped": skipped, "elapsed_s": elapsed,
                },
                ckpt_path,
            )
            if bad_rounds >= cfg.patience:
                stopped = "early-stopping"
                break
    bar.close()
    iterations = it + 1 if cfg.iterations > it0 else it0
    if cfg.select == "final":
        final_val = validate(opt, val_problem, cfg.horizon, cfg.val_metric)
        torch.save({"model": opt.state_dict(), "iteration": iterations, "val": final_val}, best_path)
    return write_summary(out, iterations, skipped, stopped, t_start, device)


# The grid `tune-teacher` searched for l2o-mnist@1.1.0's teacher: exponent a, and lr on a
# quarter-decade grid around where the step's scale puts it (|g|^(1-a) with |g| ~ 1e-2).
TEACHER_GRID = {0.25: [0.178, 0.237, 0.316, 0.422, 0.562], 0.4: [0.0896, 0.12, 0.16, 0.213, 0.285],
                0.5: [0.056, 0.075, 0.1, 0.133, 0.178]}


def tune_teacher(family, instances: int = 16, steps: int = 100, device="cpu", grid=None, log=print):
    """Mean loss at `steps` of NAG (its evaluation grid) and of partially adaptive NAG (`grid`) on
    the evaluation's tuning instances. Returns rows (name, a, lr, loss), best first."""
    from .baselines import NAG, PartiallyAdaptiveNAG
    from .evaluate import LR_GRIDS, TUNE_SEED, run_set

    seeds = instance_seeds(TUNE_SEED, instances)
    rows = []
    candidates = [("nag", 0.0, lr, NAG(lr)) for lr in LR_GRIDS["nag"]]
    for a, lrs in (grid or TEACHER_GRID).items():
        candidates += [("pnag", a, lr, PartiallyAdaptiveNAG(lr, a=a)) for lr in lrs]
    for name, a, lr, opt in tqdm(candidates, desc="tune-teacher", unit="rule", mininterval=5.0):
        loss = run_set(opt, family, seeds, "train", steps, device, 32)[steps].double().mean().item()
        rows.append((name, a, lr, loss))
        log(f"{name} a={a} lr={lr:.3g}: {loss:.4f}")
    return sorted(rows, key=lambda r: r[3] if math.isfinite(r[3]) else float("inf"))
