"""Native kernels for train/'s evaluation and meta-training on CPU, compiled on first use with the
machine's C compiler into train/.cache (keyed by the source, the flags and the compiler) and
loaded with ctypes:

- `csrc/lstm_cw.c` runs one step of the learned optimizer's coordinatewise network, a SIMD vector
  of coordinates at a time, which on CPU is several times faster than torch's one op per gate
  (`LSTMOptimizer.fast_forward`). Where no compiler is found, or on a GPU, callers fall back to
  `fast_forward`: `native_available()` says which.
- `csrc/mlp_sparse.c` runs an MLP task's first layer on the nonzero pixels of its images
  (`sparse_lib()`; tasks.MLPProblem falls back to torch without it).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import torch

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCE = CSRC / "lstm_cw.c"
SPARSE_SOURCE = CSRC / "mlp_sparse.c"
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared"]
FEATURE_KINDS = {"log-sign": 0, "none": 1, "moments": 2}
OUTPUT_KINDS = {"linear": 0, "tanh": 1, "tanh-rms": 2}

_LIBS: dict = {}  # source path -> loaded library, or None where it cannot be built


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "gcc", "cc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _compile(source: Path, declare):
    """`source` compiled (once per source, flags and compiler, cached in train/.cache), loaded, and
    its functions' ctypes signatures set by `declare(lib)`; None without a C compiler or with
    $L2O_NO_NATIVE set."""
    if source in _LIBS:
        return _LIBS[source]
    _LIBS[source] = None
    cc = _compiler()
    if os.environ.get("L2O_NO_NATIVE") or cc is None:
        return None
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(source.read_bytes() + " ".join(FLAGS).encode() + version.encode()).hexdigest()[:16]
    lib_path = CACHE_DIR / f"{source.stem}-{key}.so"
    if not lib_path.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = lib_path.with_suffix(f".{os.getpid()}.tmp")
        done = subprocess.run([cc, *FLAGS, str(source), "-o", str(tmp), "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"compiling {source} failed:\n{done.stderr}")
        tmp.replace(lib_path)
    lib = ctypes.CDLL(str(lib_path))
    declare(lib)
    _LIBS[source] = lib
    return lib


def _declare_lstm(lib) -> None:
    P = ctypes.c_void_p
    common = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_float,
              ctypes.c_int, P, ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_int,
              ctypes.c_float, ctypes.c_double, ctypes.c_int, ctypes.c_double, P, P, P, ctypes.c_int64]
    lib.l2o_lstm_cw_step.argtypes = common + [P, ctypes.c_int64]
    lib.l2o_lstm_cw_blocks.argtypes = common + [ctypes.c_int64, P, ctypes.c_int64]  # + the state size S
    for f in (lib.l2o_lstm_cw_step, lib.l2o_lstm_cw_blocks):
        f.restype = ctypes.c_int


def _declare_sparse(lib) -> None:
    P, I = ctypes.c_void_p, ctypes.c_int64
    lib.l2o_sparse_forward.argtypes = [P, P, P, P, I, I, P, I, I, I, P]
    lib.l2o_sparse_weight_grad.argtypes = [P, P, P, P, I, I, P, I, I, P, I]
    for f in (lib.l2o_sparse_forward, lib.l2o_sparse_weight_grad):
        f.restype = ctypes.c_int


def _load():
    return _compile(SOURCE, _declare_lstm)


def sparse_lib():
    """csrc/mlp_sparse.c (an MLP task's first layer on sparse images), or None."""
    return _compile(SPARSE_SOURCE, _declare_sparse)


def native_available() -> bool:
    return _load() is not None


def pack_params(module) -> torch.Tensor:
    """The module's parameters in the kernel's order (see csrc/lstm_cw.c)."""
    parts = []
    if module.input_size:
        parts += [module.input.weight.reshape(-1), module.input.bias]
    for cell in module.cells:
        parts += [torch.cat([cell.weight_ih, cell.weight_hh], dim=1).reshape(-1), cell.bias_ih + cell.bias_hh]
    parts += [module.head.weight.reshape(-1), module.head.bias]
    return torch.cat([p.detach().float().reshape(-1) for p in parts]).contiguous()


BLOCK = 2048


@torch.no_grad()
def unpack_params(module, packed: torch.Tensor) -> None:
    """The inverse of `pack_params`, into `module` (in place). A cell's bias sum goes to bias_ih,
    bias_hh becomes 0: the same optimizer."""
    off = 0

    def take(n):
        nonlocal off
        out = packed[off : off + n]
        off += n
        return out

    if module.input_size:
        module.input.weight.copy_(take(module.input.weight.numel()).reshape(module.input.weight.shape))
        module.input.bias.copy_(take(module.input.bias.numel()))
    for cell in module.cells:
        rows, cols_ih = cell.weight_ih.shape
        w = take(rows * (cols_ih + cell.weight_hh.shape[1])).reshape(rows, -1)
        cell.weight_ih.copy_(w[:, :cols_ih])
        cell.weight_hh.copy_(w[:, cols_ih:])
        cell.bias_ih.copy_(take(rows))
        cell.bias_hh.zero_()
    module.head.weight.copy_(take(module.head.weight.numel()).reshape(module.head.weight.shape))
    module.head.bias.copy_(take(1))
    if off != packed.numel():
        raise ValueError(f"packed params hold {packed.numel()} floats, the module {off}")


class NativeStep:
    """`step(grads [N], state, in place) -> updates [N]` for one module. The state is either
    feature-major [S, N] (rows contiguous) or, with `blocked`, [ceil(N / BLOCK), S, BLOCK]: each
    block's rows contiguous, so the working set of a step stays in cache (`init_blocked`)."""

    def __init__(self, module) -> None:
        self.lib = _load()
        if self.lib is None:
            raise RuntimeError("no C compiler: use LSTMOptimizer.fast_forward")
        self.module = module
        self.refresh()

    def refresh(self) -> None:
        """Re-read the module's weights (after a meta-step)."""
        m = self.module
        self.params = pack_params(m)
        feats = m.features
        if feats is not None:
            self.kind, self.k, self.p = FEATURE_KINDS["moments"], len(feats.beta1), 0.0
            self.beta1 = (ctypes.c_double * len(feats.beta1))(*feats.beta1)
            self.beta2, self.eps, self.feat_in = feats.beta2, feats.eps, feats.inputs
            self.log_rms = feats.log_rms or 0.0
        else:
            self.kind, self.k, self.p = FEATURE_KINDS[m.preprocessing], 0, m.p
            self.beta1, self.beta2, self.eps, self.log_rms = (ctypes.c_double * 1)(0.0), 0.0, 0.0, 0.0
            self.feat_in = 2 if m.preprocessing == "log-sign" else 1

    def init_blocked(self, n: int) -> torch.Tensor:
        return torch.zeros(-(-n // BLOCK), self.module.state_size, BLOCK, dtype=torch.float32)

    def __call__(self, grads: torch.Tensor, state: torch.Tensor, updates: torch.Tensor | None = None,
                 params: torch.Tensor | None = None, groups: int = 1):
        """One step; `params` (packed as `pack_params`, float32, contiguous) overrides the module's; a
        gain pools over each of `groups` equal runs of the coordinates."""
        g = grads.reshape(-1).float().contiguous()
        n = g.numel()
        out = torch.empty(n, dtype=torch.float32) if updates is None else updates
        m = self.module
        packed = self.params if params is None else params
        if packed.numel() != self.params.numel() or packed.dtype != torch.float32 or not packed.is_contiguous():
            raise ValueError("params must be a contiguous float32 vector shaped like pack_params(module)")
        # The kernel keeps the step count for a decay; a gain without one counts through a decay after
        # 65535 steps, whose factor min(1, 65535 / t')^1 is exactly 1 (t' stops at 65535)
        after, power = (m.decay.after, m.decay.power) if m.decay else (65535, 1.0) if m.gain else (0, 0.0)
        args = (m.layers, m.hidden, self.feat_in, m.input_size, self.kind, self.p, self.k, self.beta1,
                self.beta2, self.eps, self.log_rms, OUTPUT_KINDS[m.output_kind], m.output_scale, m.output_power or 0.0,
                after, power, packed.data_ptr(), g.data_ptr(), state.data_ptr())
        if state.dtype != torch.float32:
            raise ValueError("state must be float32")
        if state.dim() == 3:
            if not state.is_contiguous() or tuple(state.shape) != (-(-n // BLOCK), m.state_size, BLOCK):
                raise ValueError(f"blocked state must be contiguous [{-(-n // BLOCK)}, {m.state_size}, {BLOCK}]")
            rows = self._gain_rows(state, n) if m.gain else None  # its old [p, a], before the step
            rc = self.lib.l2o_lstm_cw_blocks(*args, BLOCK, m.state_size, out.data_ptr(), n)
        else:
            if state.stride(1) != 1 or tuple(state.shape) != (m.state_size, n):
                raise ValueError("state must be float32 [S, N] with contiguous rows")
            rows = self._gain_rows(state, n) if m.gain else None
            rc = self.lib.l2o_lstm_cw_step(*args, state.stride(0), out.data_ptr(), n)
        if rc != 0:
            raise ValueError("the native kernel supports H, E and F up to 128 and 16 layers")
        if m.gain:
            self._apply_gain(g, state, rows, out, groups)
        return out

    def _row(self, state: torch.Tensor, i: int, n: int) -> torch.Tensor:
        """Slot `i` of every coordinate, [n] (a copy)."""
        return state[:, i, :].reshape(-1)[:n].clone() if state.dim() == 3 else state[i].clone()

    def _set_row(self, state: torch.Tensor, i: int, value: torch.Tensor) -> None:
        if state.dim() == 3:
            flat = state[:, i, :].reshape(-1).clone()
            flat[: value.numel()] = value
            state[:, i, :] = flat.reshape(state.shape[0], -1)
        else:
            state[i] = value

    def _gain_rows(self, state: torch.Tensor, n: int) -> torch.Tensor:
        start = self.module.state_size - 2
        return torch.stack([self._row(state, start, n), self._row(state, start + 1, n)], dim=1)

    def _apply_gain(self, g: torch.Tensor, state: torch.Tensor, old: torch.Tensor, out: torch.Tensor, groups: int) -> None:
        """The gain (optimizer.Gain) after the kernel's step: read r' and t' from the new state and
        [p, a] from before it, multiply the updates (rounded once more) and write the new [p, a]."""
        m, n = self.module, g.numel()
        count = m.lstm_size + m.feature_slots
        r = self._row(state, count - 2, n)
        t = 256.0 * self._row(state, count + 1, n).double() + self._row(state, count, n).double()
        factor, new = m.gain(g, r, t, old, groups)
        out.copy_((out.double() * factor).float())
        self._set_row(state, count + 2, new[:, 0])
        self._set_row(state, count + 3, new[:, 1])
