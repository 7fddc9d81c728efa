"""The PyTorch column of `npm run bench:kernel` (bench/kernel.ts runs it with /usr/bin/python3).

One step of a learned optimizer from a weight file, in PyTorch on one thread with no autograd, by
train/'s own module (train/optimizer.py, the implementation the goldens come from, loaded by
train/export.py), written three ways:
- `lstmcell`: `LSTMOptimizer.forward`, nn.LSTMCell per layer on the service's coordinate-major
  state [N, S];
- `addmm`: `LSTMOptimizer.fast_forward`, one addmm per layer on [x; h] and in-place activations on a
  feature-major state [S, N] (the faster on CPU); its state is already transposed, so the
  transposes the wire layout would need are not timed;
- `addmm-inplace`: the same, the new state written over the old (as the fused kernel is timed).

It serves timing requests on stdin, one JSON object per line, so that the caller can interleave
PyTorch's steps with its own, step by step, under the same machine load:
  {"load": "MODEL.safetensors"}                       -> {"stateSize": S, "torch": version}
  {"impl": "addmm", "n": N, "runs": R, "warmup": W}   -> {"times": [ms, ...]}   (or lstmcell, addmm-inplace)
Inputs are made once per N (|g| from 1e-8 to 1e2 with random signs, a state uniform in ±0.5 with
moment slots r >= 0 and z = 1), the warm-up runs on the first request for an (impl, N).
"""

import json
import os
import sys
import time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from train.cpu import configure  # noqa: E402

# OPENBLAS_CORETYPE from the CPU's flags (train/cpu.py), which only takes effect before torch loads
# OpenBLAS: inside this project's VMs OpenBLAS otherwise takes the CPU for a "Prescott" and runs its
# generic SSE3 kernels (`npm run train -- blas`: 37.6 against 90.0 GFLOPS on one thread), which timed
# PyTorch's addmm slower than it runs
configure()

import torch  # noqa: E402

from train.export import load_model  # noqa: E402

torch.set_num_threads(1)


def gradients(n, gen):
    """|g| from 1e-8 to 1e2, random signs (as test/support/random.ts's randomGradients)."""
    mag = torch.pow(10.0, -8 + 10 * torch.rand(n, generator=gen, dtype=torch.float64)).float()
    return torch.where(torch.rand(n, generator=gen) < 0.5, -mag, mag)


def inputs(model, n):
    gen = torch.Generator().manual_seed(n)
    grads = gradients(n, gen)
    state = (torch.rand(n, model.state_size, generator=gen) * 2 - 1) * 0.5
    if model.features is not None:  # moment slots as a running optimizer has them
        k = model.lstm_size + len(model.features.beta1)
        state[:, k] = state[:, k].abs()
        state[:, -1] = 1.0
    state_fm = state.t().contiguous()
    return grads, state, state_fm, torch.empty_like(state_fm)


def main():
    model, made, warm = None, {}, set()
    with torch.inference_mode():
        for line in sys.stdin:
            request = json.loads(line)
            if "load" in request:
                model, made, warm = load_model(request["load"]).eval(), {}, set()
                answer = {"stateSize": model.state_size, "torch": torch.__version__, "threads": torch.get_num_threads()}
            else:
                n, impl = request["n"], request["impl"]
                if n not in made:
                    made[n] = inputs(model, n)
                grads, state, state_fm, new_fm = made[n]
                run = {
                    "lstmcell": lambda: model(grads, state),
                    "addmm": lambda: model.fast_forward(grads, state_fm, out=new_fm),
                    # the new state written over the old, as the service steps its own
                    "addmm-inplace": lambda: model.fast_forward(grads, state_fm, out=state_fm),
                }[impl]
                if (impl, n) not in warm:
                    for _ in range(request.get("warmup", 2)):
                        run()
                    warm.add((impl, n))
                times = []
                for _ in range(request.get("runs", 1)):
                    t = time.perf_counter()
                    run()
                    times.append((time.perf_counter() - t) * 1000)
                answer = {"times": times}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
