"""Evaluation against tuned baselines on held-out instances (issue 3 item 5).

For each test: SGD, NAG, RMSprop and Adam get their learning rate tuned on a log grid, separately
for each horizon (100 and 200 steps), on tuning instances drawn from the meta-training data split
with their own seeds; then every optimizer runs on held-out instances (held-out data split, other
seeds) and we report the mean loss at the horizon with its standard error.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .baselines import BASELINES, TEACHERS, Learned
from .runner import run
from .tasks import instance_seeds, make_family

HORIZONS = (100, 200)
# Log grids in half-decade steps, wide enough that no tuned lr has landed on an edge.
LR_GRIDS = {
    "sgd": [10.0 ** (k / 2) for k in range(-6, 3)],  # 1e-3 .. 10
    "nag": [10.0 ** (k / 2) for k in range(-6, 3)],
    "rmsprop": [10.0 ** (k / 2) for k in range(-8, 1)],  # 1e-4 .. 1
    "adam": [10.0 ** (k / 2) for k in range(-8, 1)],
}
TUNE_SEED = 2_000_003
TEST_SEED = 1_000_003


@dataclass
class TestSpec:
    name: str
    family: str
    hidden: tuple = (20,)
    activation: str = "sigmoid"
    instances: int = 256
    tune_instances: int = 16
    note: str = ""
    chunk: int = 32  # instances evaluated together (bounded by memory)

    def make_family(self):
        if self.family == "quadratic":
            return make_family("quadratic")
        return make_family(self.family, hidden=self.hidden, activation=self.activation)

    def config(self) -> dict:
        return {
            "name": self.name,
            "task": self.make_family().config(),
            "instances": self.instances,
            "tuneInstances": self.tune_instances,
            "note": self.note,
        }


SUITES = {
    "quadratic": [TestSpec("quadratic", "quadratic", instances=1000, tune_instances=256, chunk=1000,
                           note="10-d quadratics (paper §3.1)")],
    "mnist": [
        TestSpec("mnist", "mnist-mlp", note="training task: 1x20 sigmoid MLP"),
        # The paper's generalisation tests, with as many instances as the training task.
        TestSpec("mnist-40units", "mnist-mlp", hidden=(40,), note="generalisation: 40 hidden units"),
        TestSpec("mnist-2layers", "mnist-mlp", hidden=(20, 20), note="generalisation: 2 hidden layers"),
        TestSpec("mnist-relu", "mnist-mlp", activation="relu", note="generalisation: ReLU"),
        TestSpec("fashion", "fashion-mlp", note="transfer: Fashion-MNIST, 1x20 sigmoid"),
    ],
}


def _chunks(seeds, size):
    for i in range(0, len(seeds), size):
        yield seeds[i : i + size]


def run_set(optimizer, family, seeds, split, steps, device, chunk) -> torch.Tensor:
    """Losses [steps + 1, len(seeds)] for a set of instances, evaluated chunk by chunk."""
    parts = []
    for s in _chunks(seeds, chunk):
        problem = family.sample(s, split, device, steps + 1)
        parts.append(run(optimizer, problem, steps))
    return torch.cat(parts, dim=1)


def mean_se(x: torch.Tensor) -> dict:
    x = x.double()
    n = x.numel()
    m = x.mean().item()
    se = (x.std().item() / math.sqrt(n)) if n > 1 else float("nan")
    return {"mean": m, "se": se, "n": n}


def _finite_mean(x: torch.Tensor) -> float:
    m = x.double().mean().item()
    return m if math.isfinite(m) else float("inf")


def baseline_runs() -> int:
    """Instance sets evaluate_baselines runs for one test, if each baseline's horizons share one lr
    (one more for each baseline whose tuned lr differs between horizons)."""
    return sum(len(LR_GRIDS[name]) + 1 for name in BASELINES)


def evaluate_baselines(spec: TestSpec, steps: int = 0, device="cpu", log=print, bar=None):
    """Tune each baseline's lr per horizon, then run it on the held-out instances. `bar` (a tqdm
    bar) counts each set of instances run."""
    steps = steps or max(HORIZONS)
    family = spec.make_family()
    tune_seeds = instance_seeds(TUNE_SEED, spec.tune_instances)
    test_seeds = instance_seeds(TEST_SEED, spec.instances)
    out = {"tuning": {}, "tunedLr": {}, "results": {}, "curves": {}}
    for name, cls in BASELINES.items():
        t0 = time.time()
        grid = {}
        lr_grid = LR_GRIDS[name]
        for lr in lr_grid:
            losses = run_set(cls(lr), family, tune_seeds, "train", steps, device, spec.chunk)
            grid[lr] = {str(h): _finite_mean(losses[h]) for h in HORIZONS}
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{spec.name} tune {name}")
        out["tuning"][name] = {"lr": lr_grid, **{str(h): [grid[lr][str(h)] for lr in lr_grid] for h in HORIZONS}}
        best = {str(h): min(lr_grid, key=lambda lr: grid[lr][str(h)]) for h in HORIZONS}
        out["tunedLr"][name] = best
        res, runs = {}, {}
        if bar is not None and len(set(best.values())) > 1:
            bar.total += len(set(best.values())) - 1
            bar.refresh()
        for h in HORIZONS:
            lr = best[str(h)]
            if lr not in runs:
                runs[lr] = run_set(cls(lr), family, test_seeds, "test", steps, device, spec.chunk)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{spec.name} held-out {name}")
            res[str(h)] = {**mean_se(runs[lr][h]), "lr": lr}
            out["curves"][f"{name}@{h}"] = runs[lr].double().mean(dim=1).tolist()
        out["results"][name] = res
        log(f"[{spec.name}] {name}: lr {best} -> {res} ({time.time() - t0:.0f}s)")
    return out


def evaluate_learned(spec: TestSpec, module, steps: int = 0, device="cpu"):
    steps = steps or max(HORIZONS)
    family = spec.make_family()
    test_seeds = instance_seeds(TEST_SEED, spec.instances)
    module = module.to(device).eval()
    losses = run_set(Learned(module), family, test_seeds, "test", steps, device, spec.chunk)
    return {
        "results": {str(h): mean_se(losses[h]) for h in HORIZONS},
        "curve": losses.double().mean(dim=1).tolist(),
        "curveSe": (losses.double().std(dim=1) / math.sqrt(losses.shape[1])).tolist(),
    }


def read_cache(path: Path, key: dict, field: str):
    """The cached `field` in `path` when it was made for exactly `key`, else None."""
    if not path.exists():
        return None
    cached = json.loads(path.read_text())
    return cached[field] if cached.get("key") == key else None


def baseline_cache(out_dir: Path, spec: TestSpec) -> Path:
    return out_dir / f"baselines-{spec.name}.json"


def evaluate_teacher(spec: TestSpec, teacher, steps: int, device="cpu") -> dict:
    """An imitation teacher at its own fixed lr (not tuned per test) on the held-out instances."""
    losses = run_set(teacher, spec.make_family(), instance_seeds(TEST_SEED, spec.instances), "test",
                     steps, device, spec.chunk)
    return {"results": {str(h): mean_se(losses[h]) for h in HORIZONS},
            "curve": losses.double().mean(dim=1).tolist()}


def evaluate_suite(module, suite: str, out_dir, device="cpu", instances=None, tune_instances=None,
                   steps: int = 0, only_baselines=False, tests_filter=None, cached_only=False,
                   teacher=None, log=print, progress=True) -> dict:
    """Evaluate a suite (a progress bar with an ETA counts the sets of instances still to run). Results are cached per test in out_dir (baselines by test config, the
    learned optimizer also by its digest), so several processes can each take some tests and a
    final call assembles results.json from the caches. `teacher` (name, lr) adds the imitation
    teacher of the learned optimizer as a reference column ("teacher"), run at that lr."""
    steps = steps or max(HORIZONS)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tests = {}
    digest = None
    if module is not None:
        from .export import model_bytes
        from .safetensors_io import digest as sha

        digest = sha(model_bytes(module))
    specs = [spec for spec in SUITES[suite] if not (tests_filter and spec.name not in tests_filter)]
    for spec in specs:
        if instances:
            spec.instances = instances
        if tune_instances:
            spec.tune_instances = tune_instances
    keys = {spec.name: {"spec": spec.config(), "steps": steps, "grids": LR_GRIDS} for spec in specs}
    # The work still to do, for the bar's ETA: what the caches do not hold yet.
    todo = 0
    for spec in specs:
        key = keys[spec.name]
        if read_cache(baseline_cache(out_dir, spec), key, "baselines") is None and not cached_only:
            todo += baseline_runs()
        if only_baselines or cached_only:
            continue
        if read_cache(out_dir / f"learned-{spec.name}.json", {**key, "digest": digest}, "learned") is None:
            todo += 1
        if teacher is not None and read_cache(out_dir / f"teacher-{spec.name}.json",
                                              {**key, "teacher": list(teacher)}, "teacher") is None:
            todo += 1
    bar = tqdm(total=todo, desc=f"evaluate {suite}", unit="set", disable=not progress or todo == 0,
               mininterval=5.0)
    for spec in specs:
        cache = baseline_cache(out_dir, spec)
        key = keys[spec.name]
        base = read_cache(cache, key, "baselines")
        if base is None and cached_only:
            log(f"[{spec.name}] no cached baseline results: left out")
            continue
        if base is None:
            base = evaluate_baselines(spec, steps, device, log=log, bar=bar)
            cache.write_text(json.dumps({"key": key, "baselines": base}))
        if only_baselines:
            continue
        lcache = out_dir / f"learned-{spec.name}.json"
        lkey = {**key, "digest": digest}
        learned = read_cache(lcache, lkey, "learned")
        if learned is None and cached_only:
            log(f"[{spec.name}] no cached results for this optimizer: left out")
            continue
        if learned is None:
            t0 = time.time()
            bar.set_postfix_str(f"{spec.name} learned")
            learned = evaluate_learned(spec, module, steps, device)
            bar.update(1)
            learned["wallSeconds"] = round(time.time() - t0, 1)
            lcache.write_text(json.dumps({"key": lkey, "learned": learned}))
            log(f"[{spec.name}] learned: {learned['results']} ({time.time() - t0:.0f}s)")
        tests[spec.name] = {
            **spec.config(),
            "steps": steps,
            "tunedLr": base["tunedLr"],
            "tuning": base["tuning"],
            "learnedWallSeconds": learned.get("wallSeconds"),
            "results": {"learned": learned["results"], **base["results"]},
            "curves": {"learned": learned["curve"], **base["curves"]},
        }
        if teacher is not None:
            name, lr = teacher
            tcache, tkey = out_dir / f"teacher-{spec.name}.json", {**key, "teacher": [name, lr]}
            ref = read_cache(tcache, tkey, "teacher")
            if ref is None:
                bar.set_postfix_str(f"{spec.name} teacher")
                ref = evaluate_teacher(spec, TEACHERS[name](lr), steps, device)
                bar.update(1)
                tcache.write_text(json.dumps({"key": tkey, "teacher": ref}))
            tests[spec.name]["teacher"] = {"name": name, "lr": lr}
            tests[spec.name]["results"]["teacher"] = ref["results"]
            tests[spec.name]["curves"]["teacher"] = ref["curve"]
    bar.close()
    if only_baselines or tests_filter:
        return {}
    results = {"suite": suite, "digest": digest, "horizons": list(HORIZONS), "lrGrids": LR_GRIDS, "tests": tests}
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    write_curves_csv(results, out_dir / "curves.csv")
    return results


def write_curves_csv(results: dict, path) -> None:
    """Long format: test, optimizer (baselines as name@horizon-they-were-tuned-for), step, mean loss."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["test", "optimizer", "step", "mean_loss"])
        for test, r in results["tests"].items():
            for opt, curve in r["curves"].items():
                for step, v in enumerate(curve):
                    w.writerow([test, opt, step, f"{v:.6g}"])


def markdown_table(results: dict) -> str:
    """Markdown table: rows = test x horizon, columns = learned and each tuned baseline."""
    opts = ["learned", *BASELINES]
    if any("teacher" in r["results"] for r in results["tests"].values()):
        opts.append("teacher")
    lines = [
        "| test | steps | " + " | ".join(opts) + " |",
        "|---|---|" + "---|" * len(opts),
    ]
    for test, r in results["tests"].items():
        for h in results["horizons"]:
            cells = []
            vals = {o: r["results"][o][str(h)]["mean"] for o in opts}
            best = min(vals, key=lambda o: vals[o] if math.isfinite(vals[o]) else float("inf"))
            for o in opts:
                m, se = r["results"][o][str(h)]["mean"], r["results"][o][str(h)]["se"]
                cell = f"{m:.4g} ± {se:.2g}"
                cells.append(f"**{cell}**" if o == best else cell)
            lines.append(f"| {test} | {h} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
