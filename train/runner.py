"""Run an optimizer (learned or baseline) on a batch of problem instances, without meta-gradients."""

from __future__ import annotations

import torch


def run(optimizer, problem, steps: int) -> torch.Tensor:
    """Loss of every instance at theta_0..theta_steps: [steps + 1, B], float32 on CPU.

    Step t uses the problem's minibatch t; the gradient of step t is the gradient of that loss.
    """
    return run_full(optimizer, problem, steps, ())[0]


def run_full(optimizer, problem, steps: int, eval_at, limit: int = 0) -> tuple[torch.Tensor, dict]:
    """`run`'s minibatch losses [steps + 1, B], and the full-data loss at each step in `eval_at`
    (on its first `limit` examples when given), float32 on CPU."""
    theta = problem.theta0.clone()
    state = optimizer.init(theta.numel(), theta.device)
    losses, full = [], {}
    for t in range(steps + 1):
        if t in eval_at:
            full[t] = problem.full_loss(theta, limit).float().cpu()
        if t == steps:  # the last loss needs no gradient
            with torch.no_grad():
                losses.append(problem.loss(theta, t).float().cpu())
            break
        loss, g = problem.loss_and_grad(theta, t)
        losses.append(loss.float().cpu())
        with torch.no_grad():
            upd, state = optimizer.update(g.reshape(-1), state)
            theta = theta + upd.reshape(theta.shape)
    return torch.stack(losses), full
