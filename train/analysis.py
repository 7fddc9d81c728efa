"""What a learned optimizer learned (issue 10 item 6): PNGs and numbers for its card.

- `update_curves`: the update as a function of the current gradient after a few typical
  histories (a fresh coordinate, steady descent, oscillation, noise), in units of the history's
  RMS, since the features are scale-free.
- `step_sizes`: over a run on a test task, the median and quartiles over coordinates of |update|,
  and of the "Adam-equivalent learning rate" |u| * r / |m_0.9| (the lr Adam would need for the
  same step), next to tuned Adam on the same instances.
- `regression`: least-squares fits of the update on momentum and Adam terms along real runs: how
  much of the update (R²) each family of hand-designed terms explains.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from .baselines import Adam  # noqa: E402
from .optimizer import LSTMOptimizer  # noqa: E402

HISTORIES = {
    "fresh (first step)": None,
    "steady descent (g = +1 for 20 steps)": lambda t: 1.0,
    "oscillation (g = ±1 alternating)": lambda t: 1.0 if t % 2 == 0 else -1.0,
    "noise (g ~ N(0, 1))": "noise",
}


@torch.no_grad()
def update_curves(module: LSTMOptimizer, points: int = 81, span: float = 4.0, history: int = 20):
    """{history name: (g values, mean update over 256 noise draws or 1)} for g in [-span, span]."""
    gs = torch.linspace(-span, span, points)
    out = {}
    gen = torch.Generator().manual_seed(0)
    for name, fn in HISTORIES.items():  # None: fresh; "noise"; else g as a function of t
        reps = 256 if isinstance(fn, str) else 1
        n = points * reps
        state = module.init_state(n)
        if fn is not None:
            for t in range(history):
                if isinstance(fn, str):  # "noise"
                    g = torch.randn(n, generator=gen)
                else:
                    g = torch.full((n,), fn(t))
                _, state = module(g, state)
        u, _ = module(gs.repeat(reps), state)
        out[name] = (gs.tolist(), u.reshape(reps, points).mean(dim=0).tolist())
    return out


def moments_of(module: LSTMOptimizer, state_fm_or_cm: torch.Tensor, coordinate_major: bool):
    """(m_k list, r) views of a state's moment slots."""
    lstm = module.lstm_size
    k = len(module.features.beta1)
    s = state_fm_or_cm if coordinate_major else state_fm_or_cm.t()
    return [s[:, lstm + j] for j in range(k)], s[:, lstm + k]


@torch.no_grad()
def trajectories(module: LSTMOptimizer, test, instances: int = 8, steps: int = 200, seed: int = 5):
    """Along a run of the learned optimizer on `test` (an evalmix.MixTest): per step the update,
    gradient, moment slots and r of every coordinate (coordinate-major torch module), and tuned
    Adam's updates on the same instances at `adam_lr`. Returns a list of dicts of tensors."""
    from .tasks import instance_seeds

    problem = test.make_family().sample(instance_seeds(seed, instances), "pool", None, steps + 1)
    theta = problem.theta0.clone()
    state = module.init_state(theta.numel())
    rows = []
    for t in range(steps):
        _, g = problem.loss_and_grad(theta, t)
        g = g.reshape(-1)
        u, state = module(g, state)
        ms, r = moments_of(module, state, True)
        rows.append({"g": g, "u": u, "m": [m.clone() for m in ms], "r": r.clone()})
        theta = theta + u.reshape(theta.shape)
    return rows, problem


@torch.no_grad()
def adam_steps(problem, lr: float, steps: int):
    opt = Adam(lr)
    theta = problem.theta0.clone()
    state = opt.init(theta.numel())
    out = []
    for t in range(steps):
        _, g = problem.loss_and_grad(theta, t)
        u, state = opt.update(g.reshape(-1), state)
        out.append(u.abs())
        theta = theta + u.reshape(theta.shape)
    return out


def _quantiles(x: torch.Tensor) -> list:
    q = torch.quantile(x[torch.isfinite(x)].float()[:200_000], torch.tensor([0.25, 0.5, 0.75]))
    return q.tolist()


def step_sizes(module: LSTMOptimizer, rows, problem, adam_lr: float):
    """Per step: quartiles of |u| for the learned optimizer and tuned Adam, and of the learned
    optimizer's Adam-equivalent lr |u| r / |m_0.9| (coordinates with |m_0.9| > r/100)."""
    adam = adam_steps(problem, adam_lr, len(rows))
    beta = module.features.beta1
    j = min(range(len(beta)), key=lambda i: abs(beta[i] - 0.9))
    learned_u, adam_u, equiv = [], [], []
    for row, a in zip(rows, adam):
        learned_u.append(_quantiles(row["u"].abs()))
        adam_u.append(_quantiles(a))
        m, r = row["m"][j], row["r"]
        ok = m.abs() > r / 100
        equiv.append(_quantiles((row["u"].abs() * r / m.abs())[ok]))
    return {"learnedAbsUpdate": learned_u, "adamAbsUpdate": adam_u, "adamEquivalentLr": equiv,
            "adamLr": adam_lr, "momentumBeta": beta[j]}


def regression(rows_by_test: dict, module: LSTMOptimizer, max_rows: int = 400_000, seed: int = 0):
    """R² of least-squares fits of the update (pooled over tests and steps, coordinates that saw a
    nonzero gradient) on families of hand-designed terms."""
    gen = torch.Generator().manual_seed(seed)
    u_all, terms_all = [], []
    for rows in rows_by_test.values():
        for row in rows:
            g, r, ms = row["g"], row["r"], row["m"]
            ok = r > 0
            den = r[ok] + module.features.eps
            t = {"g": g[ok], "sign(g)": torch.sign(g[ok]), "g/r": g[ok] / den}
            for b, m in zip(module.features.beta1, ms):
                t[f"m{b}"] = m[ok]
                t[f"m{b}/r"] = m[ok] / den
            terms_all.append(t)
            u_all.append(row["u"][ok])
    u = torch.cat(u_all).double()
    names = list(terms_all[0])
    x = {k: torch.cat([t[k] for t in terms_all]).double() for k in names}
    if u.numel() > max_rows:
        pick = torch.randperm(u.numel(), generator=gen)[:max_rows]
        u = u[pick]
        x = {k: v[pick] for k, v in x.items()}
    betas = module.features.beta1
    families = {
        "Adam direction m0.9/r alone": [f"m{b}/r" for b in betas if abs(b - 0.9) < 1e-9] or [f"m{betas[0]}/r"],
        "raw momentum terms (g, m_k)": ["g"] + [f"m{b}" for b in betas],
        "normalized momentum terms (g/r, m_k/r)": ["g/r"] + [f"m{b}/r" for b in betas],
        "all of the above and sign(g)": names,
    }
    out = {}
    total = ((u - u.mean()) ** 2).sum().item()
    for fam, cols in families.items():
        a = torch.stack([x[c] for c in cols] + [torch.ones_like(u)], dim=1)
        coef = torch.linalg.lstsq(a, u.unsqueeze(1)).solution.squeeze(1)
        resid = ((u - a @ coef) ** 2).sum().item()
        out[fam] = {"r2": 1 - resid / total, "terms": cols, "coefficients": coef[:-1].tolist(),
                    "intercept": coef[-1].item()}
    return {"rows": u.numel(), "fits": out}


def analyze(module: LSTMOptimizer, out_dir, tests, adam_lrs: dict, steps: int = 200) -> dict:
    """Writes analysis-update.png, analysis-steps.png and analysis.json into out_dir; returns the
    numbers. `tests` are evalmix.MixTest; `adam_lrs[test.name]` the tuned Adam lr for `steps`."""
    out = Path(out_dir)
    curves = update_curves(module)
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for name, (gs, us) in curves.items():
        ax.plot(gs, us, label=name)
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("current gradient, in units of the history's RMS")
    ax.set_ylabel("update")
    ax.set_title("update vs gradient after typical histories", fontsize=10)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "analysis-update.png", dpi=80)
    plt.close(fig)

    rows_by_test, steps_by_test = {}, {}
    for test in tqdm(tests, desc="analysis", unit="test", mininterval=5.0):
        rows, problem = trajectories(module, test, steps=steps)
        rows_by_test[test.name] = rows
        steps_by_test[test.name] = step_sizes(module, rows, problem, adam_lrs[test.name])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (name, s) in enumerate(steps_by_test.items()):
        color = f"C{k}"
        t = range(1, len(s["learnedAbsUpdate"]) + 1)
        med = [q[1] for q in s["learnedAbsUpdate"]]
        axes[0].plot(t, med, color=color, label=f"{name}: learned")
        axes[0].plot(t, [q[1] for q in s["adamAbsUpdate"]], color=color, ls="--", lw=0.8,
                     label=f"{name}: Adam (lr {s['adamLr']:.2g})")
        eq = s["adamEquivalentLr"]
        axes[1].plot(t, [q[1] for q in eq], color=color, label=f"{name}: learned (median)")
        axes[1].fill_between(t, [q[0] for q in eq], [q[2] for q in eq], color=color, alpha=0.15)
        axes[1].axhline(s["adamLr"], color=color, ls="--", lw=0.8, label=f"{name}: tuned Adam lr")
    axes[0].set_title("median |update| per coordinate", fontsize=10)
    axes[1].set_title("Adam-equivalent lr |u|·r/|m| (median, IQR)", fontsize=10)
    for ax in axes:
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "analysis-steps.png", dpi=80)
    plt.close(fig)

    reg = regression(rows_by_test, module)
    marks = sorted({t for t in (1, 10, 50, 100, steps) if t <= steps})
    summary = {
        "updateCurves": {k: {"g": v[0][::10], "update": v[1][::10]} for k, v in curves.items()},
        "stepSizes": {
            name: {
                "medianAbsUpdate": {str(t): s["learnedAbsUpdate"][t - 1][1] for t in marks},
                "adamMedianAbsUpdate": {str(t): s["adamAbsUpdate"][t - 1][1] for t in marks},
                "medianAdamEquivalentLr": {str(t): s["adamEquivalentLr"][t - 1][1] for t in marks},
                "tunedAdamLr": s["adamLr"],
            }
            for name, s in steps_by_test.items()
        },
        "regression": reg,
        "plots": {"update": "analysis-update.png", "stepSizes": "analysis-steps.png"},
    }
    from .ship import finite_json

    (out / "analysis.json").write_text(json.dumps(finite_json(summary), indent=1, allow_nan=False) + "\n")
    return summary
