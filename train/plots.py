"""PNG plots: mean loss per step on a log scale, one panel per test, learned vs every baseline."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"teacher": "tab:orange", "learned": "tab:red", "sgd": "tab:gray", "nag": "tab:green", "rmsprop": "tab:purple", "adam": "tab:blue"}
LABELS = {"teacher": "teacher", "learned": "learned", "sgd": "SGD", "nag": "NAG", "rmsprop": "RMSprop", "adam": "ADAM"}


def plot_results(results: dict, path, horizon_tuned: int = 100, title: str = "") -> None:
    """One panel per test; baselines use the lr tuned for `horizon_tuned` steps."""
    tests = results["tests"]
    n = len(tests)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, (name, r) in zip(axes.flat, tests.items()):
        for opt in ["sgd", "nag", "rmsprop", "adam", "teacher", "learned"]:
            key = opt if opt in ("learned", "teacher") else f"{opt}@{horizon_tuned}"
            curve = r["curves"].get(key)
            if curve is None:
                continue
            label = LABELS[opt]
            if opt == "teacher":
                label = f"{r['teacher']['name']} (teacher, lr {r['teacher']['lr']:.2g})"
            elif opt != "learned":
                label += f" (lr {r['tunedLr'][opt][str(horizon_tuned)]:.2g})"
            ax.plot(range(len(curve)), curve, color=COLORS[opt], label=label,
                    lw=1.6 if opt == "learned" else 1.1, ls="--" if opt == "teacher" else "-")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("mean loss")
        ax.axvline(100, color="k", lw=0.5, ls=":")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_training_log(log_csvs, path, title: str = "") -> None:
    """Training objective (top) and validation score (bottom) per iteration; several logs are
    consecutive stages. An objective that is a mean log loss (PES) or a validation score (mean log
    loss) can be negative, so the top axis is logarithmic only while every objective is positive
    (symmetric-log otherwise) and the bottom one is linear."""
    import csv

    if isinstance(log_csvs, (str, Path)):
        log_csvs = [log_csvs]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 4.6), sharex=True)
    offset, lowest = 0, float("inf")
    for k, log_csv in enumerate(log_csvs):
        it, meta, val_it, val = [], [], [], []
        last = offset
        with open(log_csv) as f:
            for row in csv.DictReader(f):
                i = int(row["iteration"]) + offset
                last = i
                if row["meta_loss"] not in ("", "nan"):
                    it.append(i)
                    meta.append(float(row["meta_loss"]))
                if row["val_loss"] != "":
                    val_it.append(i)
                    val.append(float(row["val_loss"]))
        sfx = f" (stage {k + 1})" if len(log_csvs) > 1 else ""
        color = f"C{k % 10}"
        top.plot(it, meta, lw=0.6, alpha=0.7, color=color, label="training objective" + sfx)
        bottom.plot(val_it, val, "o-", ms=3, color=color, label="validation" + sfx)
        lowest = min([lowest, *meta])
        if k:
            for ax in (top, bottom):
                ax.axvline(offset, color="k", lw=0.5, ls=":")
        offset = last
    if lowest > 0:
        top.set_yscale("log")
    else:
        top.set_yscale("symlog", linthresh=0.01)
    top.set_ylabel("objective\n(imitation or meta-loss)", fontsize=8)
    bottom.set_ylabel("validation score\n(lower is better)", fontsize=8)
    bottom.set_xlabel("iteration")
    for ax in (top, bottom):
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
        ax.legend(fontsize=6)
    if title:
        top.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_mix(results: dict, path, title: str = "", horizon: int = 200) -> None:
    """l2o-mlp's evaluation (evalmix): one panel per test, mean minibatch loss per step of the
    learned optimizer and of each baseline at the lr tuned for `horizon` (200 or 1000), with the
    full-pool loss at the horizon as markers."""
    tests = results["tests"]
    n = len(tests)
    cols = 3
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    key_learned = "learned@1000" if horizon == 1000 else "learned"
    for ax, (name, r) in zip(axes.flat, tests.items()):
        for opt in ["sgd", "nag", "rmsprop", "adam", "learned"]:
            key = key_learned if opt == "learned" else f"{opt}@{horizon}"
            curve = r["curves"].get(key)
            if curve is None:
                continue
            label = LABELS[opt] if opt == "learned" else f"{LABELS[opt]} (lr {r['tunedLr'][opt][str(horizon)]:.2g})"
            ax.plot(range(len(curve)), curve, color=COLORS[opt], label=label, lw=1.6 if opt == "learned" else 1.0)
            full = r["results"][opt][str(horizon)]["mean"]
            if math.isfinite(full):
                ax.plot([horizon], [full], "o", color=COLORS[opt], ms=4)
        ax.set_yscale("log")
        ax.set_title(f"{name}: learned/best {r['ratios'][str(horizon)]['ratio']:.2f}", fontsize=9)
        ax.set_xlabel("step (dots: whole-pool loss)")
        ax.grid(True, which="both", lw=0.3, alpha=0.5)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(f"{title} ({horizon} steps)", fontsize=11)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)
    plt.close(fig)
