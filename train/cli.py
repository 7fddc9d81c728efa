"""`python3 -m train <command>`: meta-train, evaluate, export, golden, ship. See train/README.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

from .cpu import set_threads
from .metatrain import MetaTrainConfig, meta_train


def _add_config_args(p: argparse.ArgumentParser, cls=MetaTrainConfig) -> None:
    d = cls()
    for f in fields(cls):
        if f.name == "stage":
            continue
        val = getattr(d, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(val, list):
            kind = type(val[0]) if val else int
            p.add_argument(flag, type=kind, nargs="+", default=None, help=f"default {val}")
        else:
            p.add_argument(flag, type=type(val), default=None, help=f"default {val}")


def _config_from_args(args, cls=MetaTrainConfig) -> MetaTrainConfig:
    cfg = cls()
    for f in fields(cls):
        v = getattr(args, f.name, None)
        if v is not None:
            setattr(cfg, f.name, v)
    return cfg


def cmd_meta_train(args) -> int:
    cfg = _config_from_args(args)
    summary = meta_train(cfg, args.out, resume=not args.fresh)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_imitate(args) -> int:
    from .imitate import ImitationConfig, imitate

    summary = imitate(_config_from_args(args, ImitationConfig), args.out, resume=not args.fresh)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_meta_train_mix(args) -> int:
    from .metamix import MixConfig, imitate_mix, meta_train_mix

    cfg = _config_from_args(args, MixConfig)
    run = imitate_mix if cfg.stage == "imitation" else meta_train_mix
    print(json.dumps(run(cfg, args.out, resume=not args.fresh), indent=2))
    return 0


def _rule_arg(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"--rule-arg takes NAME=NUMBER (e.g. a=0.5), got {text!r}")
    return name, float(value)


def _gain(optimizer, spec: str):
    """`--gain SPEC` -> a train/regimes.py gain around `optimizer` (a learned module or a rule)."""
    from .baselines import Learned
    from .optimizer import LSTMOptimizer
    from .regimes import make_gain

    try:
        return make_gain(Learned(optimizer) if isinstance(optimizer, LSTMOptimizer) else optimizer, spec)
    except ValueError as e:
        raise SystemExit(f"--gain: {e}") from None


def _decay(text: str):
    """`--decay T:P` -> (T, P); `none` -> None (no decay)."""
    if text == "none":
        return None
    after, sep, power = text.partition(":")
    try:
        return int(after), float(power)
    except ValueError:
        raise SystemExit(f"--decay takes AFTER:POWER (e.g. 200:0.5) or none, got {text!r}") from None


def _latch(text: str):
    """`--latch T:C:A:CAP` -> tanh-rms's gain record (docs/optimizer-math.md §6); `none` -> None."""
    if text == "none":
        return None
    try:
        after, center, strength, cap = text.split(":")
        return {"kind": "latch", "after": int(after), "center": float(center), "strength": float(strength),
                "cap": float(cap)}
    except ValueError:
        raise SystemExit(f"--latch takes AFTER:CENTER:STRENGTH:CAP (e.g. 10:0.02:4:0.4) or none, got {text!r}") from None


def _output_variant(weights: str, scale: float = 1.0, decay: str = "", power=None, latch: str = ""):
    """The weight file's network with its output scale times `scale`, tanh-rms's decay set to `decay`
    (`T:P` or `none`; empty: as it is), its power set to `power` (None: as it is) and its gain to
    `latch` (`T:C:A:CAP` or `none`; empty: as it is), checked as a weight file's
    (`LSTMOptimizer.set_output`); with a label saying which (`x1.5, power 0.4, decay 200:0.5`) and a
    file-name stem (`x1.5-p0.4-decay200-0.5`)."""
    from .export import load_model

    module = load_model(weights)
    try:
        module.set_output(scale=module.output_scale * scale, power=power,
                          decay=_decay(decay) if decay else module.KEEP,
                          gain=_latch(latch) if latch else module.KEEP)
    except ValueError as e:
        raise SystemExit(f"--scale / --power / --decay / --latch: {e}") from None
    label, stem = f"x{scale:g}", f"x{scale:g}"
    if power is not None:
        label, stem = label + f", power {power:g}", stem + f"-p{power:g}"
    if decay:
        label, stem = label + f", decay {decay}", stem + f"-decay{decay.replace(':', '-')}"
    if latch:
        label, stem = label + f", latch {latch}", stem + f"-latch{latch.replace(':', '-')}"
    return module, label, stem


def cmd_evaluate_mix(args) -> int:
    from .evalmix import evaluate_mix, markdown, markdown_defaults

    weights = args.weights
    if args.scale != 1.0 or args.decay or args.power is not None or args.latch:
        # The weight file with its output scale multiplied, its decay, power or gain set (a new file,
        # so its jobs are cached apart).
        from .export import export_model

        if not weights:
            raise SystemExit("evaluate-mix: --scale, --decay, --power and --latch need --weights")
        m, _, stem = _output_variant(weights, args.scale, args.decay or "", args.power, args.latch or "")
        weights = Path(args.out) / f"model-{stem}.safetensors"
        export_model(m, weights)
    res = evaluate_mix(weights, args.out, jobs=args.jobs, tests=args.tests, instances=args.instances,
                       long_instances=args.long_instances, baselines_only=args.only_baselines,
                       tune_instances=args.tune_instances, learned_only=args.only_learned,
                       rule=(args.rule, args.rule_lr, dict(_rule_arg(a) for a in args.rule_arg)) if args.rule else None,
                       gain=args.gain)
    if res:
        from .plots import plot_mix

        plot_mix(res, Path(args.out) / "loss.png", title="held-out loss on the whole pool")
        print(markdown(res))
        print()
        print(markdown_defaults(res))
    return 0


def cmd_tune_teacher(args) -> int:
    from .imitate import tune_teacher
    from .tasks import make_family

    family = make_family(args.family, hidden=tuple(args.optimizee_hidden), activation=args.activation)
    rows = tune_teacher(family, args.instances, args.steps, args.device)
    print("| teacher | a | lr | mean loss |\n|---|---|---|---|")
    for name, a, lr, loss in rows[:10]:
        print(f"| {name} | {a} | {lr:.3g} | {loss:.4f} |")
    return 0


def _load_optimizer(path):
    from .export import load_model
    from .imitate import stage_config
    from .metatrain import load_checkpoint

    path = Path(path)
    if path.suffix == ".safetensors":
        return load_model(path)
    ck = load_checkpoint(path)  # a run's best.pt or checkpoint.pt
    run_dir = path.parent
    saved = load_checkpoint(run_dir / "checkpoint.pt")["config"]
    if "quadratic_prob" in saved:  # a stage of l2o-mlp's training (metamix), imitation or not
        from .metamix import MixConfig

        cfg = MixConfig(**saved)
    else:
        cfg = stage_config(saved)
    opt = cfg.make_optimizer()
    opt.load_state_dict(ck["model"])
    return opt


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_suite, markdown_table
    from .plots import plot_results

    module = None if args.only_baselines else _load_optimizer(args.weights)
    res = evaluate_suite(
        module, args.suite, args.out, device=args.device, instances=args.instances,
        tune_instances=args.tune_instances, only_baselines=args.only_baselines,
        tests_filter=args.tests, cached_only=args.cached_only,
    )
    if res:
        plot_results(res, Path(args.out) / "loss.png", title=f"{args.suite}: mean held-out loss")
        print(markdown_table(res))
    return 0


def cmd_export(args) -> int:
    from .export import export_model

    digest = export_model(_load_optimizer(args.checkpoint), args.out)
    print(digest)
    return 0


def cmd_golden(args) -> int:
    from . import safetensors_io as st
    from .export import load_model, make_golden

    data = Path(args.weights).read_bytes()
    out = args.out or str(Path(args.weights).with_name("golden.safetensors"))
    make_golden(load_model(args.weights), st.digest(data), out, steps=args.steps, n=args.n)
    print(out)
    return 0


def cmd_validate_mix(args) -> int:
    from dataclasses import replace

    from .baselines import TEACHERS
    from .metamix import validate_mix, validation_set
    from .ship import PRESETS

    if bool(args.weights) == bool(args.rule):
        raise SystemExit("validate-mix: give --weights or --rule (with --rule-lr), not both")
    cfg = replace(PRESETS["l2o-mlp"]["1.0.0"]["stages"][0], seed=args.seed)
    if args.long:
        cfg = replace(cfg, val_long=cfg.val_configs)
    val_set = validation_set(cfg, scaled=args.scaled)
    if args.rule:
        rule_args = dict(_rule_arg(a) for a in args.rule_arg)
        runs = [(f"{args.rule} lr {args.rule_lr:g}{''.join(f' {k} {v:g}' for k, v in rule_args.items())}",
                 TEACHERS[args.rule](args.rule_lr, **rule_args))]
    else:
        runs = []
        for factor in args.scale:
            for decay in args.decay or [""]:
                for latch in args.latch or [""]:
                    m, label, _ = _output_variant(args.weights, factor, decay, args.power, latch)
                    runs.append((f"{args.weights} output {label}", m))
    if args.gain:
        runs = [(f"{label}, gain {text}", _gain(opt, text)) for text in args.gain for label, opt in runs]
    for label, opt in runs:
        score, rows = validate_mix(opt, val_set, details=True, floor=args.floor)
        print(f"{label}, validation set of seed {args.seed}{' (randomly scaled)' if args.scaled else ''}"
              f"{f', floor {args.floor:g}' if args.floor else ''}: {score:.4f}", flush=True)
        if args.details:
            for task, horizon, loss in rows:
                print(f"  {task:>24} {horizon:5d} steps: mean whole-pool loss {loss:.4g}")
    return 0


def cmd_regimes(args) -> int:
    from dataclasses import replace

    from .metamix import validation_set
    from .regimes import regime_stats
    from .ship import PRESETS

    cfg = replace(PRESETS["l2o-mlp"]["1.0.0"]["stages"][0], seed=args.seed)
    scales = sorted(set(args.scale) | {1.0})
    base = scales.index(1.0)
    print(f"{args.weights}, validation set of seed {args.seed} (every config to 1,000 steps); mean log(loss + 1e-4 "
          f"initial loss) with the step times {' / '.join(f'{x:g}' for x in scales)} (as the difference from x1), and "
          "along the x1 run the coordinates' mean snr |m_hat| / sqrt(v_hat) and lag-1 autocorrelation at steps "
          "20 / 50 / 100 / 200 / 500 / 999", flush=True)
    for row in regime_stats(args.weights, validation_set(replace(cfg, val_long=cfg.val_configs)), scales):
        losses = list(row["loss"].values())
        moved = " ".join(f"{x - losses[base]:+.3f}" if i != base else f"{x:.3f}" for i, x in enumerate(losses))
        print(f"{row['task']:>24}  loss {moved}  snr {' '.join(f'{x:.3f}' for x in row['snr'].values())}"
              f"  corr {' '.join(f'{x:+.3f}' for x in row['corr'].values())}", flush=True)
    return 0


def cmd_fixtures(args) -> int:
    from .fixtures import write_fixtures

    for name, digest in write_fixtures().items():
        print(name, digest)
    return 0


def cmd_ship(args) -> int:
    from .ship import ship

    ship(args.name, args.version, args.run, suite=args.suite, device=args.device,
         skip_train=args.skip_train, instances=args.instances, tune_instances=args.tune_instances,
         cached_only=args.cached_only, long_instances=args.long_instances, jobs=args.jobs)
    return 0


def cmd_blas(args) -> int:
    from .cpu import compare_cores, step_costs

    for core, gflops in compare_cores().items():
        print(f"OPENBLAS_CORETYPE={core}: {gflops:.1f} GFLOPS on one thread ([5000, 784] x [784, 2048])")
    print(f"train/ runs with OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}; "
          "one evaluation step on one thread, ms per instance (64 instances at a time):")
    print("| test | coordinates | loss and gradient | the same, torch's first layer | l2o-mlp@1.3.0's step | whole-pool loss |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in step_costs():
        grad, torch_grad = f"{r['gradMs']:.3f}", "(the same)"
        if r["sparse"]:
            grad, torch_grad = grad + " (sparse)", f"{r['gradTorchMs']:.3f}"
        print(f"| {r['test']} | {r['dim']:,} | {grad} | {torch_grad} | {r['learnedMs']:.3f} | {r['fullLossMs']:.1f} |")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m train", description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenBLAS CPU threads (default 1)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("meta-train", help="meta-train a learned optimizer (checkpoints, log.csv)")
    _add_config_args(p)
    p.add_argument("--out", required=True, help="run folder, e.g. train/runs/mnist")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.set_defaults(fn=cmd_meta_train)

    p = sub.add_parser("imitate", help="warm start: clone a tuned baseline's steps (train/imitate.py)")
    from .imitate import ImitationConfig

    _add_config_args(p, ImitationConfig)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.set_defaults(fn=cmd_imitate)

    from .metamix import MixConfig

    p = sub.add_parser("meta-train-mix", help="l2o-mlp: imitation warm start or meta-training on the task distribution")
    _add_config_args(p, MixConfig)
    p.add_argument("--stage", choices=["imitation", "meta-training"], default=None)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.set_defaults(fn=cmd_meta_train_mix)

    p = sub.add_parser("evaluate-mix", help="l2o-mlp's evaluation: 9 tests, full-pool loss, 100/200/1,000 steps")
    p.add_argument("--weights", help="model.safetensors")
    p.add_argument("--out", required=True)
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    p.add_argument("--tests", nargs="+", help="only these tests")
    p.add_argument("--instances", type=int, help="held-out instances at 100/200 steps (default 256)")
    p.add_argument("--long-instances", type=int, help="held-out instances at 1,000 steps (default 64)")
    p.add_argument("--tune-instances", type=int, help="tuning instances at 100/200 steps (default 16; 1,000 steps: half)")
    p.add_argument("--only-baselines", action="store_true", help="tune and run the baselines only (cached)")
    p.add_argument("--only-learned", action="store_true", help="run the learned optimizer only (cached)")
    p.add_argument("--gain", help="the learned optimizer's (or the rule's) step times a gain of train/regimes.py, "
                                  "e.g. latch:30:0.01:10:0.4 (cached apart)")
    p.add_argument("--rule", help="a hand rule in the learned optimizer's place (e.g. snr-nadam, nadam; see train/baselines.py)")
    p.add_argument("--rule-lr", type=float, default=0.02, help="the rule's learning rate (default 0.02)")
    p.add_argument("--rule-arg", action="append", default=[], metavar="NAME=NUMBER",
                   help="another argument of the rule, e.g. a=0.5 for snr-pnag (repeatable)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="evaluate --weights with its output scale multiplied by this (written to OUT first)")
    p.add_argument("--decay", metavar="AFTER:POWER",
                   help="evaluate --weights (tanh-rms) with the step decay min(1, (AFTER/t)^POWER), or none "
                        "(written to OUT first)")
    p.add_argument("--power", type=float, help="evaluate --weights (tanh-rms) with this power of the RMS "
                                                "(written to OUT first)")
    p.add_argument("--latch", metavar="AFTER:CENTER:STRENGTH:CAP",
                   help="evaluate --weights (tanh-rms) with the latched gain of docs/optimizer-math.md section 6 "
                        "(e.g. 10:0.02:4:0.4), or none (written to OUT first)")
    p.set_defaults(fn=cmd_evaluate_mix)

    p = sub.add_parser("validate-mix", help="l2o-mlp's validation score (mean log whole-pool loss on 64 instances) of a weight file")
    p.add_argument("--weights", help="model.safetensors")
    p.add_argument("--rule", help="a hand rule in the learned optimizer's place (baselines.TEACHERS, e.g. snr-pnag)")
    p.add_argument("--rule-lr", type=float, default=0.02, help="the hand rule's lr (default 0.02)")
    p.add_argument("--rule-arg", action="append", default=[], metavar="NAME=NUMBER",
                   help="another argument of the rule, e.g. a=0.5 for snr-pnag (repeatable)")
    p.add_argument("--gain", nargs="+", metavar="SPEC",
                   help="the step times a gain of train/regimes.py, one run per SPEC: sign:MU:RHO[:CAP], "
                        "corr:BETA:C0:A:CAP or pooled:BETA:C0:MU:CAP")
    p.add_argument("--seed", type=int, default=0, help="the validation set: stage 1's is 0, stage 2's is 1")
    p.add_argument("--scale", type=float, nargs="+", default=[1.0], help="output scale factors to try")
    p.add_argument("--decay", nargs="+", metavar="AFTER:POWER",
                   help="tanh-rms step decays to try on --weights (e.g. none 200:0.5)")
    p.add_argument("--power", type=float, help="tanh-rms's power of the RMS for every run (default: the file's)")
    p.add_argument("--latch", nargs="+", metavar="AFTER:CENTER:STRENGTH:CAP",
                   help="tanh-rms latched gains to try on --weights (docs/optimizer-math.md section 6; e.g. none "
                        "10:0.02:4:0.4)")
    p.add_argument("--long", action="store_true", help="run every validation config to 1,000 steps (default: 4 of 16)")
    p.add_argument("--details", action="store_true", help="also each validation config's mean loss")
    p.add_argument("--floor", type=float, default=0.0,
                   help="score log(loss + FLOOR * initial loss), so that losses far below FLOOR * the initial one "
                        "(solved quadratics) count as solved (default 0: log(loss))")
    p.add_argument("--scaled", action="store_true",
                   help="with training's random scaling of parameters and loss (not inputs: the whole-pool loss needs "
                        "the pool as it is); the scales are drawn from the same stream, so the configs after the "
                        "first differ from the unscaled set's")
    p.set_defaults(fn=cmd_validate_mix)

    p = sub.add_parser("regimes", help="per validation config: the loss with a weight file's step scaled, beside its "
                                       "gradients' statistics (train/regimes.py)")
    p.add_argument("--weights", required=True, help="model.safetensors")
    p.add_argument("--seed", type=int, default=7, help="the validation set (default 7), every config run to 1,000 steps")
    p.add_argument("--scale", type=float, nargs="+", default=[0.7, 1.0, 1.4], help="step scales (default 0.7 1 1.4)")
    p.set_defaults(fn=cmd_regimes)

    p = sub.add_parser("tune-teacher", help="tune NAG and partially adaptive NAG as imitation teachers")
    p.add_argument("--family", default="mnist-mlp")
    p.add_argument("--optimizee-hidden", type=int, nargs="+", default=[20])
    p.add_argument("--activation", default="sigmoid")
    p.add_argument("--instances", type=int, default=16)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.set_defaults(fn=cmd_tune_teacher)

    p = sub.add_parser("evaluate", help="learned vs tuned baselines: results.json, curves.csv, loss.png")
    p.add_argument("--weights", help="model.safetensors, or a run's best.pt")
    p.add_argument("--suite", required=True, choices=["quadratic", "mnist"])
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--instances", type=int, help="held-out instances per test (default: suite's)")
    p.add_argument("--tune-instances", type=int, help="lr-tuning instances per test")
    p.add_argument("--only-baselines", action="store_true", help="tune and run baselines only (cached)")
    p.add_argument("--tests", nargs="+", help="only these tests (fills the caches; no results.json)")
    p.add_argument("--cached-only", action="store_true", help="assemble from cached tests only")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("export", help="write model.safetensors from a run's best.pt; prints the digest")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("golden", help="golden vectors for parity tests, from a model.safetensors")
    p.add_argument("--weights", required=True)
    p.add_argument("--out", help="default: golden.safetensors beside the weights")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--n", type=int, default=384, help="coordinates (384 keeps the folder under 1 MB)")
    p.set_defaults(fn=cmd_golden)

    p = sub.add_parser("fixtures", help="rewrite test/fixtures/extended (extended-architecture parity fixtures)")
    p.set_defaults(fn=cmd_fixtures)

    p = sub.add_parser("blas", help="OpenBLAS's speed with its generic kernels and train/'s choice; "
                       "what one step of the l2o-mlp evaluation costs")
    p.set_defaults(fn=cmd_blas)

    p = sub.add_parser("ship", help="reproduce a shipped optimizer end to end: train, evaluate, export, card")
    p.add_argument("name", choices=["l2o-quadratic", "l2o-mnist", "l2o-mlp"])
    p.add_argument("--version", default="", help="default: the newest recipe for the name")
    p.add_argument("--run", help="run folder (default train/runs/<name>)")
    p.add_argument("--suite", help="evaluation suite (default from the name)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--skip-train", action="store_true", help="reuse the run folder's best.pt")
    p.add_argument("--instances", type=int, help="held-out instances (l2o-mlp: at 100 and 200 steps)")
    p.add_argument("--long-instances", type=int, help="l2o-mlp: held-out instances at 1,000 steps")
    p.add_argument("--tune-instances", type=int)
    p.add_argument("--jobs", type=int, default=2, help="l2o-mlp: evaluation processes")
    p.add_argument("--cached-only", action="store_true", help="evaluation: cached tests only")
    p.set_defaults(fn=cmd_ship)

    args = parser.parse_args(argv)
    set_threads(args.threads)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
