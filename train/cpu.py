"""CPU setup for train/: which kernels OpenBLAS runs, and on how many threads.

Debian's torch does its matrix products in the system BLAS, OpenBLAS. Inside some virtual machines
OpenBLAS does not recognise the CPU and falls back to its generic "Prescott" (SSE3) kernels. On
this project's 2-core machine a [5000, 784] x [784, 2048] product then ran at 19.4 GFLOPS on one
thread, and at 109.1 with the SkylakeX kernels the CPU supports (`npm run train -- blas` measures
both).
`configure()` picks the kernels from the CPU's flags before torch loads OpenBLAS, unless
OPENBLAS_CORETYPE is set already; train/__init__.py calls it.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

# OpenBLAS core names by the CPU flags they need, best first
CORES = (("SkylakeX", {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}), ("Haswell", {"avx2", "fma"}))


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def core_for(flags: set[str]) -> str | None:
    return next((name for name, need in CORES if need <= flags), None)


def configure() -> None:
    """Set OPENBLAS_CORETYPE from the CPU's flags (no effect once OpenBLAS is loaded)."""
    core = core_for(cpu_flags())
    if core and "OPENBLAS_CORETYPE" not in os.environ:
        os.environ["OPENBLAS_CORETYPE"] = core


def set_threads(n: int) -> None:
    """torch's CPU threads and OpenBLAS's (which torch.set_num_threads leaves alone here): the
    evaluation's worker processes each take one, so that two of them do not share a core."""
    import torch

    torch.set_num_threads(n)
    try:
        ctypes.CDLL("libblas.so.3").openblas_set_num_threads(n)
    except (OSError, AttributeError):
        pass  # not OpenBLAS


def matmul_gflops() -> float:
    """One thread's speed on a product the size of the evaluation's full-data losses."""
    import time

    import torch

    set_threads(1)
    x, w = torch.rand(5000, 784), torch.randn(784, 2048)
    x @ w
    t0 = time.perf_counter()
    for _ in range(3):
        x @ w
    return 3 * 2 * x.shape[0] * x.shape[1] * w.shape[1] / (time.perf_counter() - t0) / 1e9


def compare_cores() -> dict:
    """GFLOPS with OpenBLAS's generic kernels and with those `configure()` picks, each measured in
    a fresh process (OpenBLAS reads OPENBLAS_CORETYPE once, when it loads)."""
    import subprocess
    import sys

    out = {}
    for core in ("Prescott", core_for(cpu_flags())):
        if core:
            code = "from train.cpu import matmul_gflops; print(matmul_gflops())"
            env = {**os.environ, "OPENBLAS_CORETYPE": core}
            done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True,
                                  cwd=Path(__file__).resolve().parent.parent)
            out[core] = float(done.stdout.strip().splitlines()[-1])
    return out


def step_costs(tests=("mnist-20-sigmoid", "mnist-3x32-relu", "fashion-2x32-relu"), instances: int = 64,
               steps: int = 10, weights: str = "weights/l2o-mlp/1.3.0/model.safetensors") -> list:
    """What one step of the evaluation costs on one thread, per instance, for a few of its tests:
    the task's loss and gradient with the native sparse first layer (where it is used) and with
    torch's, l2o-mlp's step in the native kernel, and the whole-pool loss. Best of 3 runs."""
    import time

    from .baselines import Learned
    from .evalmix import TESTS
    from .export import load_model
    from .tasks import instance_seeds

    set_threads(1)
    learned = Learned(load_model(Path(__file__).resolve().parent.parent / weights))

    def best(fn, reps=3):
        out = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return min(out)

    rows = []
    for name in tests:
        test = next(t for t in TESTS if t.name == name)
        problem = test.make_family().sample(instance_seeds(1, instances), "pool", None, steps)
        theta = problem.theta0.clone()
        sparse = problem._native_first_layer(theta) is not None
        grads = lambda: [problem.loss_and_grad(theta, t) for t in range(steps)]  # noqa: E731
        row = {"test": name, "dim": problem.dim, "sparse": sparse, "gradTorchMs": None}
        row["gradMs"] = best(grads) / (instances * steps) * 1e3
        if sparse:
            problem.native = False
            row["gradTorchMs"] = best(grads) / (instances * steps) * 1e3
        g = problem.loss_and_grad(theta, 0)[1].reshape(-1)
        state = learned.init(g.numel())
        row["learnedMs"] = best(lambda: [learned.update(g, state) for _ in range(steps)]) / (instances * steps) * 1e3
        row["fullLossMs"] = best(lambda: problem.full_loss(theta), reps=2) / instances * 1e3
        rows.append(row)
    return rows
