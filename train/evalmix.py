"""The evaluation a user would run (l2o-mlp): loss on the whole data the model trains on.

Protocol (issue 10):
- Each test is a task; its optimizee trains on minibatches of a pool (all 10,000 MNIST digits, or
  Fashion-MNIST's 60,000 training images) and the reported loss is the cross-entropy on the whole
  pool at the step (quadratics: the loss itself).
- Held-out instances (new initialisations and minibatch orders, seeds apart from tuning and from
  meta-training): `instances` (256) for 100 and 200 steps, `long_instances` (64) for 1,000 steps.
- SGD, NAG, RMSprop and Adam get their learning rate tuned per test and per horizon on separate
  tuning instances (`tune_instances`, 16; 8 for 1,000 steps), on a half-decade log grid that is
  extended whenever the best lr lies on its edge (for 1,000 steps the grid starts at the 200-step
  lr ± half a decade). Each is also reported at its usual default lr (`default_instances`, 32).
- The summary, per horizon: the geometric mean over tests of learned loss / best tuned baseline's.

The work is split into jobs (test x optimizer), cached as JSON in the output folder, and run in
`jobs` processes, so a suite can be resumed and spread over cores.
"""

from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .baselines import BASELINES, Learned
from .cpu import set_threads
from .runner import run_full
from .tasks import instance_seeds, make_family

HORIZONS = (100, 200, 1000)
SHORT = (100, 200)
TUNE_SEED = 4_000_037
TEST_SEED = 3_000_017
# Usual defaults: torch.optim's (RMSprop 0.01, Adam 1e-3) and the common 0.01 for SGD and NAG.
DEFAULT_LR = {"sgd": 0.01, "nag": 0.01, "rmsprop": 0.01, "adam": 0.001}
# Half-decade grids; an lr tuned at an edge extends the grid by one step, until it is inside.
BASE_GRID = {
    "sgd": (-3.0, 1.0),  # log10 range
    "nag": (-3.0, 0.5),
    "rmsprop": (-4.0, -0.5),
    "adam": (-4.0, -0.5),
}
STEP = 0.5
MAX_EXTEND = 6
# Tuning scores a learning rate by the loss on the pool's first 10,000 examples (all of MNIST's;
# a sixth of Fashion-MNIST's), a user's validation sample; held-out results use the whole pool.
TUNE_POOL = 10_000


@dataclass
class MixTest:
    name: str
    family: str
    hidden: tuple = (20,)
    activation: str = "sigmoid"
    note: str = ""
    instances: int = 256
    long_instances: int = 64
    tune_instances: int = 16
    long_tune_instances: int = 8
    default_instances: int = 32  # each baseline at its usual default lr, to 1,000 steps
    chunk: int = 64
    # A test that costs seconds (quadratics) keeps the protocol's counts when a run lowers them: its
    # loss spans orders of magnitude between instances, and 8 of them can say the opposite of 64.
    full_counts: bool = False

    def make_family(self):
        if self.family == "quadratic":
            return make_family("quadratic")
        return make_family(self.family, hidden=self.hidden, activation=self.activation)

    def config(self) -> dict:
        return {"name": self.name, "task": self.make_family().config(), "note": self.note,
                "instances": self.instances, "longInstances": self.long_instances,
                "tuneInstances": self.tune_instances, "longTuneInstances": self.long_tune_instances,
                "defaultInstances": self.default_instances}


TESTS = [
    MixTest("mnist-20-sigmoid", "mnist-mlp", note="the paper's MNIST MLP"),
    MixTest("mnist-40-sigmoid", "mnist-mlp", hidden=(40,), note="wider"),
    MixTest("mnist-2x20-sigmoid", "mnist-mlp", hidden=(20, 20), note="deeper"),
    MixTest("mnist-20-relu", "mnist-mlp", activation="relu", note="ReLU"),
    MixTest("mnist-3x32-relu", "mnist-mlp", hidden=(32, 32, 32), activation="relu", note="deeper ReLU"),
    MixTest("mnist-20-tanh", "mnist-mlp", activation="tanh", note="tanh"),
    MixTest("fashion-20-sigmoid", "fashion-mlp", note="transfer: Fashion-MNIST (never meta-trained on)"),
    MixTest("fashion-2x32-relu", "fashion-mlp", hidden=(32, 32), activation="relu",
            note="transfer: Fashion-MNIST, deeper ReLU"),
    MixTest("quadratic", "quadratic", hidden=(), activation="", note="10-d quadratics ||W theta - y||^2",
            chunk=256, full_counts=True),
]


def run_instances(optimizer, test: MixTest, seeds, steps: int, eval_at, limit: int = 0, lrs=None):
    """Run `seeds` in chunks of `test.chunk`. With `lrs` (one per seed), `optimizer` is a baseline
    class, built per chunk with each instance's lr spread over its coordinates, so a whole lr grid
    runs as one batch."""
    curves, full = [], {h: [] for h in eval_at}
    family = test.make_family()
    for i in range(0, len(seeds), test.chunk):
        problem = family.sample(seeds[i : i + test.chunk], "pool", None, steps + 1)
        opt = optimizer
        if hasattr(opt, "instances"):  # a gain that pools over each instance's coordinates (train/regimes.py)
            opt.instances = problem.num
        if lrs is not None:
            opt = optimizer(torch.tensor(lrs[i : i + test.chunk], dtype=torch.float32).repeat_interleave(problem.dim))
        c, f = run_full(opt, problem, steps, eval_at, limit)
        curves.append(c)
        for h in eval_at:
            full[h].append(f[h])
    return torch.cat(curves, dim=1), {h: torch.cat(v) for h, v in full.items()}


def run_horizons(optimizer, test: MixTest):
    """Held-out runs of one optimizer: the first `long_instances` seeds to 1,000 steps, the rest
    of the `instances` seeds to 200 (seeds are prefix-stable). Returns the mean minibatch curve
    over the 200-step instances, the 1,000-step curve, and the full-pool losses per horizon."""
    seeds = instance_seeds(TEST_SEED, max(test.instances, test.long_instances))
    n_long = test.long_instances
    c_long, f_long = run_instances(optimizer, test, seeds[:n_long], 1000, {100, 200, 1000})
    c_rest, f_rest = run_instances(optimizer, test, seeds[n_long : test.instances], 200, {100, 200})
    full = {h: torch.cat([f_long[h], f_rest[h]])[: test.instances] for h in SHORT}
    full[1000] = f_long[1000]
    curve = torch.cat([c_long[:201], c_rest], dim=1)[:, : test.instances]
    return curve.double().mean(dim=1).tolist(), c_long.double().mean(dim=1).tolist(), full


def summarize(x: torch.Tensor) -> dict:
    """Mean and standard error; a diverged instance (non-finite) makes the mean infinite."""
    x = x.double()
    n = x.numel()
    finite = torch.isfinite(x)
    if not finite.all():
        return {"mean": float("inf"), "se": float("nan"), "n": n, "diverged": int((~finite).sum())}
    se = x.std().item() / math.sqrt(n) if n > 1 else float("nan")
    return {"mean": x.mean().item(), "se": se, "n": n, "diverged": 0}


def _mean_or_inf(x: torch.Tensor) -> float:
    m = x.double().mean().item()
    return m if math.isfinite(m) else float("inf")


def tune(name: str, test: MixTest, horizons, instances: int, start=None, log=print) -> dict:
    """Best lr per horizon: the half-decade grid (or `start` ± 1 step), extended at its edges.
    The lrs not scored yet run together, as one batch of instances."""
    cls = BASELINES[name]
    seeds = instance_seeds(TUNE_SEED, instances)
    lo, hi = BASE_GRID[name] if start is None else (start - STEP, start + STEP)
    exps = [lo + k * STEP for k in range(int(round((hi - lo) / STEP)) + 1)]
    scores: dict = {}
    steps = max(horizons)

    def score_all(grid):
        new = [e for e in grid if e not in scores]
        if new:
            lrs = [10.0**e for e in new for _ in seeds]
            _, full = run_instances(cls, test, seeds * len(new), steps, set(horizons), TUNE_POOL, lrs=lrs)
            for k, e in enumerate(new):
                scores[e] = {h: _mean_or_inf(full[h][k * len(seeds) : (k + 1) * len(seeds)]) for h in horizons}
        return [scores[e] for e in grid]

    best = {}
    for h in horizons:
        grid = list(exps)
        for _ in range(MAX_EXTEND + 1):
            vals = [s[h] for s in score_all(grid)]
            i = min(range(len(grid)), key=lambda k: vals[k])
            if 0 < i < len(grid) - 1 or not math.isfinite(vals[i]):
                break
            grid = [grid[0] - STEP] + grid if i == 0 else grid + [grid[-1] + STEP]
        best[h] = grid[i]
    table = {str(e): {str(h): v for h, v in s.items()} for e, s in sorted(scores.items())}
    return {"best": {str(h): 10.0 ** best[h] for h in horizons}, "bestLog10": best, "grid": table}


def baseline_job(name: str, test: MixTest, log=print) -> dict:
    """Tune `name` for each horizon, then run it on the held-out instances at each horizon's lr,
    and at its default lr (the first `long_instances` seeds, to 1,000 steps)."""
    t0 = time.time()
    short = tune(name, test, SHORT, test.tune_instances, log=log)
    long = tune(name, test, (1000,), test.long_tune_instances, start=short["bestLog10"][200], log=log)
    lrs = {**short["best"], **long["best"]}
    cls = BASELINES[name]
    short_seeds = instance_seeds(TEST_SEED, test.instances)
    long_seeds = instance_seeds(TEST_SEED, test.long_instances)
    res, curves, runs = {}, {}, {}
    for h in HORIZONS:
        lr = lrs[str(h)]
        if h == 1000:
            curve, full = run_instances(cls(lr), test, long_seeds, 1000, {1000})
        else:
            if lr not in runs:
                steps = 200 if lr == lrs["200"] else h
                runs[lr] = run_instances(cls(lr), test, short_seeds, steps, {100, 200} & set(range(steps + 1)))
            curve, full = runs[lr]
        res[str(h)] = {**summarize(full[h]), "lr": lr}
        curves[f"{name}@{h}"] = curve.double().mean(dim=1).tolist()
    d = DEFAULT_LR[name]
    default_seeds = long_seeds[: test.default_instances]
    c_def, f_def = run_instances(cls(d), test, default_seeds, 1000, set(HORIZONS))
    default = {**{str(h): summarize(f_def[h]) for h in HORIZONS}, "lr": d, "instances": len(default_seeds)}
    curves[f"{name}@default"] = c_def.double().mean(dim=1).tolist()
    log(f"[{test.name}] {name}: lr {lrs} ({time.time() - t0:.0f}s)")
    return {"tuning": {"short": short["grid"], "long": long["grid"]}, "tunedLr": lrs, "results": res,
            "default": default, "curves": curves, "wallSeconds": round(time.time() - t0, 1)}


def learned_job(optimizer, test: MixTest, log=print) -> dict:
    """The optimizer in the learned one's place (a Learned module, or a fixed hand rule)."""
    t0 = time.time()
    curve, curve_long, full = run_horizons(optimizer, test)
    out = {
        "results": {str(h): summarize(full[h]) for h in HORIZONS},
        "perInstance": {str(h): full[h].tolist() for h in HORIZONS},
        "curves": {"learned": curve, "learned@1000": curve_long},
        "wallSeconds": round(time.time() - t0, 1),
    }
    log(f"[{test.name}] learned: {out['results']} ({time.time() - t0:.0f}s)")
    return out


def _job(args):
    kind, test, weights_path, cache, key = args
    set_threads(1)
    if kind == "learned":
        if "rule" in key:
            from .baselines import TEACHERS

            rule = key["rule"]
            optimizer = TEACHERS[rule["name"]](rule["lr"], **rule.get("args", {}))
        else:
            from .export import load_model

            optimizer = Learned(load_model(weights_path))
        if key.get("gain"):
            from .regimes import make_gain

            optimizer = make_gain(optimizer, key["gain"])
        result = learned_job(optimizer, test, log=lambda *_: None)
    else:
        result = baseline_job(kind, test, log=lambda *_: None)
    Path(cache).write_text(json.dumps({"key": key, "result": result}))
    return kind, test.name


def _cached(path: Path, key: dict):
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("key") == key:
            return data["result"]
    return None


def evaluate_mix(weights_path, out_dir, jobs: int = 1, tests=None, instances=None, long_instances=None,
                 baselines_only=False, progress=True, log=print, tune_instances=None, learned_only=False,
                 rule=None, gain=None) -> dict:
    """Run (or reuse from `out_dir`'s caches) every job of the suite; assemble results.json.
    `rule` = (name, lr) or (name, lr, args) of a hand rule (baselines.TEACHERS, e.g. ("snr-nadam",
    0.02) or ("snr-pnag", 0.03, {"a": 0.5})) runs that fixed rule in the learned optimizer's place,
    for comparison (its jobs are cached apart, by name, lr and args).
    `gain` (a train/regimes.py spec, e.g. "latch:30:0.01:10:0.4") multiplies the learned optimizer's
    (or the rule's) step by that gain; its jobs are cached apart too.
    `instances`, `long_instances` and `tune_instances` (1,000-step tuning: half as many) override
    the protocol's counts for a cheaper run; results.json and the card record the counts used.
    `baselines_only` or `learned_only` run (and cache) those jobs only, so the two can run apart."""
    from . import safetensors_io as st

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if rule is not None:
        digest = None
        args = {k: float(v) for k, v in sorted((rule[2] if len(rule) > 2 else {}).items())}
        learned_key = {"rule": {"name": rule[0], "lr": float(rule[1]), **({"args": args} if args else {})}}
    else:
        digest = None if baselines_only else st.digest(Path(weights_path).read_bytes())
        learned_key = {"digest": digest}
    if gain:
        learned_key = {**learned_key, "gain": gain}
    specs = [t for t in TESTS if not tests or t.name in tests]
    for t in specs:
        if t.full_counts:
            continue
        if instances:
            t.instances = instances
        if long_instances:
            t.long_instances = long_instances
        if tune_instances:
            t.tune_instances, t.long_tune_instances = tune_instances, max(1, tune_instances // 2)
    todo, cached = [], {}
    for t in specs:
        for kind in ([] if baselines_only else ["learned"]) + ([] if learned_only else list(BASELINES)):
            # full_counts is left out of the key: it changes the counts, which the key holds
            spec = {k: v for k, v in asdict(t).items() if k != "full_counts"}
            key = json.loads(json.dumps({"test": spec, "kind": kind, "grid": BASE_GRID, "defaults": DEFAULT_LR,
                                         "protocol": 2, **(learned_key if kind == "learned" else {})}))
            name = kind
            if kind == "learned" and rule is not None:
                name = "-".join(["rule", rule[0], f"{rule[1]:g}", *(f"{k}{v:g}" for k, v in args.items())])
            if kind == "learned" and gain:
                name += "-gain-" + gain.replace(":", "_")
            path = out / f"{name}-{t.name}.json"
            hit = _cached(path, key)
            if hit is None:
                todo.append((kind, t, str(weights_path), str(path), key))
            else:
                cached[(kind, t.name)] = hit
    t0 = time.time()
    if todo:
        bar = tqdm(total=len(todo), disable=not progress, desc="evaluate", mininterval=5.0)
        # learned jobs first: the longest; baselines fill in behind them
        todo.sort(key=lambda a: (a[0] != "learned", a[1].name))
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for kind, name in pool.map(_job, todo):
                    bar.update(1)
                    bar.set_postfix_str(f"{kind} {name}")
        else:
            for a in todo:
                _job(a)
                bar.update(1)
                bar.set_postfix_str(f"{a[0]} {a[1].name}")
        bar.close()
        for kind, t, _, path, key in todo:
            cached[(kind, t.name)] = _cached(Path(path), key)
    if baselines_only or learned_only:
        return {}
    results = assemble(specs, cached, digest)
    if rule is not None:
        results["rule"] = learned_key["rule"]
    if gain:
        results["gain"] = gain
    results["wallSeconds"] = round(time.time() - t0, 1)  # this call's; 0 when every job was cached
    # what the jobs took when they ran (each in one process), cached or not: the suite's cost
    results["jobSeconds"] = round(sum(job["wallSeconds"] for job in cached.values()), 1)
    results["jobs"] = jobs
    previous = _previous_results(out / "results.json")
    if not todo and previous.get("jobSeconds") == results["jobSeconds"] and previous.get("wallSeconds"):
        # every job was cached, and the folder's results.json is the call that ran these same jobs
        results["wallSeconds"], results["jobs"] = previous["wallSeconds"], previous.get("jobs", jobs)
    from .ship import finite_json

    (out / "results.json").write_text(json.dumps(finite_json(results), indent=1, allow_nan=False))
    return results


def _previous_results(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def assemble(specs, cached, digest) -> dict:
    tests = {}
    for t in specs:
        learned = cached[("learned", t.name)]
        base = {b: cached[(b, t.name)] for b in BASELINES}
        results = {"learned": learned["results"], **{b: base[b]["results"] for b in BASELINES}}
        defaults = {b: base[b]["default"] for b in BASELINES}
        curves = {**learned["curves"]}
        for b in BASELINES:
            curves.update(base[b]["curves"])
        ratios = {}
        for h in map(str, HORIZONS):
            mine = results["learned"][h]["mean"]
            best = min(BASELINES, key=lambda b: results[b][h]["mean"])
            best_default = min(BASELINES, key=lambda b: defaults[b][h]["mean"])
            ratios[h] = {"bestBaseline": best, "ratio": mine / results[best][h]["mean"],
                         "vsAdam": mine / results["adam"][h]["mean"],
                         # beside each baseline at its usual lr, untuned, as a user starts with it
                         "bestDefault": best_default, "vsBestDefault": mine / defaults[best_default][h]["mean"],
                         "vsAdamDefault": mine / defaults["adam"][h]["mean"]}
        tests[t.name] = {**t.config(), "results": results, "defaults": defaults, "ratios": ratios,
                         "tunedLr": {b: base[b]["tunedLr"] for b in BASELINES},
                         "tuning": {b: base[b]["tuning"] for b in BASELINES}, "curves": curves,
                         "perInstance": learned["perInstance"],
                         "wallSeconds": {k: (learned if k == "learned" else base[k])["wallSeconds"]
                                         for k in ["learned", *BASELINES]}}
    def geo_mean(key: str) -> dict:
        """Per horizon, the geometric mean over tests of ratios[h][key]; infinite unless every ratio is
        finite and positive (the learned optimizer diverged, or the baseline did)."""
        out = {}
        for h in map(str, HORIZONS):
            ratios = [r["ratios"][h][key] for r in tests.values()]
            ok = all(math.isfinite(x) and x > 0 for x in ratios)
            out[h] = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ok else float("inf")
        return out

    diverged = {name: r["results"]["learned"]["1000"]["diverged"] for name, r in tests.items()}
    worst_vs_adam = {h: max(r["ratios"][h]["vsAdam"] for r in tests.values()) for h in map(str, HORIZONS)}
    return {"protocol": __doc__.strip().splitlines()[0], "digest": digest, "horizons": list(HORIZONS),
            "geoMean": geo_mean("ratio"), "worstVsAdam": worst_vs_adam, "divergedAt1000": diverged,
            "geoMeanVsDefaults": {"best": geo_mean("vsBestDefault"), "adam": geo_mean("vsAdamDefault")},
            "defaults": DEFAULT_LR, "grids": BASE_GRID, "tests": tests}


def _cells(values: list) -> list:
    """Mean ± standard error per result (or "diverged"), the lowest mean in bold."""
    best = min(range(len(values)), key=lambda i: values[i]["mean"])
    cells = ["diverged" if not math.isfinite(v["mean"]) else f"{v['mean']:.4g} ± {v['se']:.2g}" for v in values]
    return [f"**{c}**" if i == best else c for i, c in enumerate(cells)]


def markdown(results: dict) -> str:
    """Tests x horizons: learned, each tuned baseline (best in bold), the ratio to the best."""
    opts = ["learned", *BASELINES]
    rule = results.get("rule")
    first = " ".join([rule["name"], f"{rule['lr']:g}", *(f"{k}={v:g}" for k, v in rule.get("args", {}).items())]) if rule else "learned"
    lines = ["| test | steps | " + " | ".join([first, *opts[1:]]) + f" | {first} ÷ best |", "|---|---:|" + "---:|" * (len(opts) + 1)]
    for name, r in results["tests"].items():
        for h in map(str, results["horizons"]):
            cells = _cells([r["results"][o][h] for o in opts])
            lines.append(f"| {name} | {h} | " + " | ".join(cells) + f" | {r['ratios'][h]['ratio']:.3f} |")
    geo = results["geoMean"]
    lines.append("")
    lines.append(f"Geometric mean of {first} ÷ best tuned baseline: " +
                 ", ".join(f"{h} steps **{geo[h]:.3f}**" for h in map(str, results["horizons"])))
    return "\n".join(lines)


def markdown_defaults(results: dict) -> str:
    """Tests x horizons: learned beside each baseline at its usual lr, untuned (the best in bold)."""
    opts = list(BASELINES)
    head = ["learned", *(f"{b} {results['defaults'][b]:g}" for b in opts)]
    lines = ["| test | steps | " + " | ".join(head) + " | learned ÷ best default | learned ÷ adam default |",
             "|---|---:|" + "---:|" * (len(head) + 2)]
    for name, r in results["tests"].items():
        for h in map(str, results["horizons"]):
            cells = _cells([r["results"]["learned"][h], *(r["defaults"][b][h] for b in opts)])
            q = r["ratios"][h]
            lines.append(f"| {name} | {h} | " + " | ".join(cells) + f" | {q['vsBestDefault']:.3f} | {q['vsAdamDefault']:.3f} |")
    geo = results["geoMeanVsDefaults"]
    lines.append("")
    lines.append("Geometric mean of learned ÷ the best baseline at its default lr: " +
                 ", ".join(f"{h} steps **{geo['best'][h]:.3f}**" for h in map(str, results["horizons"])) +
                 "; ÷ Adam at its default lr: " + ", ".join(f"{h} steps **{geo['adam'][h]:.3f}**" for h in map(str, results["horizons"])))
    return "\n".join(lines)


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))
