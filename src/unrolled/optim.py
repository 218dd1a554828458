"""Optimizers, gradient clipping by global norm, and learning-rate schedules.

Parameters are a ``dict[str, np.ndarray]`` owned by the model (PyTorch names); an optimizer updates those
arrays **in place** and never rebinds them. Gradients are a dict with some or all of the same keys, each a
dense array of the parameter's shape or, for an embedding, ``SparseRows`` (only the rows used in the batch).
A parameter without a gradient in a step is left alone and its state does not advance (as in torch).

Notation: p parameter, g gradient, t the parameter's step count (1 at its first update), lr this step's
learning rate, λ weight decay, μ momentum, β₁ β₂ ε Adam's constants. The dense updates are torch.optim's,
in torch's order of floating-point operations, so float64 results agree with torch to ~1e-15:

SGD (``torch.optim.SGD``, dampening 0)::

    g ← g + λ p                                     L2 weight decay
    b ← μ b + g                                     momentum buffer, b₀ = 0 (so b₁ = g₁, as torch)
    g ← g + μ b   (nesterov)      g ← b   (otherwise)
    p ← p − lr g

Adam (``torch.optim.Adam``; weight decay is L2, added to the gradient)::

    g ← g + λ p
    m ← m + (1 − β₁)(g − m)                         = β₁ m + (1 − β₁) g  (torch's lerp)
    v ← β₂ v + (1 − β₂) g²
    p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)

AdamW (``torch.optim.AdamW``; decoupled weight decay): first ``p ← p (1 − lr λ)``, then Adam with λ = 0.

Sparse gradients (``SparseRows``, rows R = ``indices``), ``lazy=True`` (the default): only the rows in R are
touched, by the same equations applied to the gathered (R, E) block and scattered back:

- SGD: weight decay and the momentum buffer act on the rows in R only; other rows keep their buffer.
- Adam/AdamW follow ``torch.optim.SparseAdam``: the moments of rows in R are updated, other rows keep their
  parameter *and* moments (no moment decay, no update, even where their moments are non-zero). Bias
  correction uses the parameter's step count t (one count per parameter, not per row), and the rows update as

      p_R ← p_R − lr √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m_R / (√v_R + ε)

  i.e. ε is added *before* the bias correction of v, exactly as SparseAdam does: in dense Adam's form ε acts
  as ε / √(1 − β₂ᵗ) (≈ 32 ε at t = 1, → ε as t grows), a relative difference from dense Adam's update of
  order ε / (√(1 − β₂ᵗ) √v̂), negligible unless gradients are tiny. AdamW's decoupled decay and Adam's L2
  term also apply to the rows in R only.

``lazy=False`` (exact mode) densifies a sparse gradient (zeros outside R) and applies the dense update, so
the result equals dense torch Adam/AdamW/SGD on ``g.to_dense()``: every row's moments decay and every row
moves while its moments are non-zero.

``clip_grad_norm`` rescales all gradients by one factor so that their global L2 norm is at most
``max_norm`` (``torch.nn.utils.clip_grad_norm_``). Schedules are pure functions of the 0-based step; the
training loop passes their value as ``step(grads, lr=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np

from unrolled.nn import fused
from unrolled.nn.embedding import SparseRows
from unrolled.nn.fused import subnormals_flushed

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "clip_grad_norm",
    "constant",
    "linear_warmup",
    "warmup_linear_decay",
    "warmup_cosine_decay",
    "step_decay",
]

Grad = np.ndarray | SparseRows
ROWS_PER_BLOCK = 512  # sparse Adam updates this many embedding rows at a time (see Adam._update_rows)


# --------------------------------------------------------------------------------------------------------------
# argument checks


def _check_real(name: str, value: object, *, low: float | None = None, low_inclusive: bool = True) -> float:
    """A finite real number (not bool), optionally bounded below; returns it as float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if low is not None and (x < low if low_inclusive else x <= low):
        op = ">=" if low_inclusive else ">"
        raise ValueError(f"{name}: expected a number {op} {low}, got {value!r}")
    return x


def _check_int(name: str, value: object, low: int) -> int:
    """An integer (not bool) ≥ ``low``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def _check_betas(betas: object) -> tuple[float, float]:
    try:
        b1, b2 = betas  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}") from None
    out = []
    for name, b in (("betas[0]", b1), ("betas[1]", b2)):
        x = _check_real(name, b, low=0.0)
        if not x < 1.0:
            raise ValueError(f"{name}: expected a number in [0, 1), got {b!r}")
        out.append(x)
    return out[0], out[1]


def _check_params(params: object) -> dict[str, np.ndarray]:
    if not isinstance(params, dict):
        raise ValueError(f"params: expected a dict of NumPy arrays, got {type(params).__name__}")
    for key, p in params.items():
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            what = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
            raise ValueError(f"params[{key!r}]: expected a floating-point NumPy array, got {what}")
        if not p.flags.writeable:
            raise ValueError(f"params[{key!r}]: the array is read-only; the optimizer updates it in place")
    return params


def _check_grad(key: str, p: np.ndarray, g: object) -> None:
    """Raise ValueError naming ``key`` unless ``g`` is a valid dense or sparse gradient for ``p``."""
    if isinstance(g, SparseRows):
        if p.ndim != 2:
            raise ValueError(f"grads[{key!r}]: SparseRows for a parameter of shape {p.shape} (expected 2-D)")
        idx, vals = g.indices, g.values
        if g.num_rows != p.shape[0]:
            raise ValueError(f"grads[{key!r}]: SparseRows has num_rows {g.num_rows}, parameter has {p.shape[0]} rows")
        if not isinstance(idx, np.ndarray) or idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"grads[{key!r}]: SparseRows.indices must be a 1-D integer array")
        if not isinstance(vals, np.ndarray) or vals.dtype.kind != "f":
            raise ValueError(f"grads[{key!r}]: SparseRows.values must be a floating-point array")
        if vals.shape != (idx.shape[0], p.shape[1]):
            raise ValueError(
                f"grads[{key!r}]: SparseRows.values has shape {vals.shape}, expected ({idx.shape[0]}, {p.shape[1]})"
            )
        if idx.size:
            if idx[0] < 0 or idx[-1] >= p.shape[0] or (idx.size > 1 and np.any(idx[1:] <= idx[:-1])):
                raise ValueError(
                    f"grads[{key!r}]: SparseRows.indices must be unique, ascending and in [0, {p.shape[0]})"
                )
    elif isinstance(g, np.ndarray):
        if g.shape != p.shape:
            raise ValueError(f"grads[{key!r}]: expected shape {p.shape}, got {g.shape}")
        if g.dtype.kind != "f":
            raise ValueError(f"grads[{key!r}]: expected a floating-point array, got dtype {g.dtype}")
    else:
        raise ValueError(f"grads[{key!r}]: expected a NumPy array or SparseRows, got {type(g).__name__}")


# --------------------------------------------------------------------------------------------------------------
# optimizers


class _Optimizer:
    """Shared machinery: gradient checks, scratch buffers, the step loop and state (de)serialisation."""

    _STATE_ARRAYS: tuple[str, ...] = ()  # per-parameter state arrays, shaped like the parameter
    _STATE_INTS: tuple[str, ...] = ()  # per-parameter integer counters

    def __init__(self, params: dict[str, np.ndarray], hyperparams: dict[str, Any]) -> None:
        self.params = _check_params(params)  # the model's dict itself: its arrays are updated in place
        self._set_hyperparams(hyperparams)
        self._state: dict[str, dict[str, Any]] = {}
        # Flat scratch arrays per dtype, reused every step so the dense updates allocate nothing.
        self._scratch: dict[np.dtype, list[np.ndarray]] = {}

    # -- hyperparameters ------------------------------------------------------------------------------------
    def _hyperparams(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_hyperparams(self, hp: Mapping[str, Any]) -> None:
        """Validate every value of ``hp``, then assign them all (nothing changes when one is invalid)."""
        raise NotImplementedError

    # -- helpers --------------------------------------------------------------------------------------------
    def _buffer(self, slot: int, like: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Scratch array ``slot`` in ``like``'s dtype, shaped like it or ``shape`` (contents undefined).

        Reused across steps: a fresh megabyte-sized temporary costs page faults on every step.
        """
        shape = like.shape if shape is None else shape
        size = math.prod(shape)
        bufs = self._scratch.setdefault(like.dtype, [])
        while len(bufs) <= slot:
            bufs.append(np.empty(0, like.dtype))
        if bufs[slot].size < size:
            bufs[slot] = np.empty(size, like.dtype)
        return bufs[slot][:size].reshape(shape)

    def _param_state(self, key: str, p: np.ndarray) -> dict[str, Any]:
        st = self._state.get(key)
        if st is None:
            st = {name: 0 for name in self._STATE_INTS}
            st.update({name: np.zeros_like(p) for name in self._STATE_ARRAYS})
            self._state[key] = st
        return st

    def _densify(self, g: SparseRows, p: np.ndarray) -> np.ndarray:
        dense = self._buffer(2, p)
        dense.fill(0.0)
        dense[g.indices] = g.values
        return dense

    # -- public API -----------------------------------------------------------------------------------------
    @subnormals_flushed  # squared vanishing gradients are subnormal; on Intel CPUs each costs an assist
    def step(self, grads: Mapping[str, Grad], lr: float | None = None,
             lr_scales: Mapping[str, float] | None = None) -> None:
        """Update the parameters that have a gradient in ``grads``, in place.

        ``lr`` overrides the base learning rate for this step (pass a schedule's value); ``lr_scales``
        multiplies it for the parameters it names (discriminative learning rates: lower for the layers near
        the input when fine-tuning). All gradients are checked before any parameter changes; the gradients
        themselves are not modified.
        """
        lr = self.lr if lr is None else _check_real("lr", lr, low=0.0)
        if not isinstance(grads, Mapping):
            raise ValueError(f"grads: expected a dict of gradients, got {type(grads).__name__}")
        params = self.params
        scales = {} if lr_scales is None else lr_scales
        for key, scale in scales.items():
            if key not in params:
                raise ValueError(f"lr_scales: unknown parameter key {key!r}")
            _check_real(f"lr_scales[{key!r}]", scale, low=0.0)
        for key, g in grads.items():
            if key not in params:
                raise ValueError(f"grads: unknown parameter key {key!r}")
            _check_grad(key, params[key], g)
        base = lr
        for key, g in grads.items():
            p = params[key]
            lr = base * scales.get(key, 1.0)
            if isinstance(g, SparseRows):
                if self.lazy:
                    self._update_rows(key, p, g, lr)
                else:
                    self._update_dense(key, p, self._densify(g, p), lr)
            else:
                self._update_dense(key, p, g, lr)

    def _update_dense(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    def _update_rows(self, key: str, p: np.ndarray, g: SparseRows, lr: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """A copy of the optimizer's state as plain dicts of numbers, strings and NumPy arrays.

        ``{"optimizer": name, "hyperparams": {...}, "state": {param_key: {name: array or int}}}``; arrays
        are copies, so later steps do not change a saved state.
        """
        state = {
            key: {name: (int(v) if name in self._STATE_INTS else v.copy()) for name, v in st.items()}
            for key, st in self._state.items()
        }
        return {"optimizer": type(self).__name__, "hyperparams": self._hyperparams(), "state": state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()`` (hyperparameters and per-parameter state), checking it against params.

        Nothing changes unless the whole state is valid. Arrays are copied in the parameter's dtype.
        """
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"state_dict: expected a dict, got {type(state_dict).__name__}")
        name = state_dict.get("optimizer")
        if name != type(self).__name__:
            raise ValueError(f"state_dict: saved by optimizer {name!r}, loading into {type(self).__name__!r}")
        hp = state_dict.get("hyperparams")
        if not isinstance(hp, Mapping) or set(hp) != set(self._hyperparams()):
            raise ValueError(f"state_dict['hyperparams']: expected keys {sorted(self._hyperparams())}")
        saved = state_dict.get("state")
        if not isinstance(saved, Mapping):
            raise ValueError("state_dict['state']: expected a dict of per-parameter state")
        new_state: dict[str, dict[str, Any]] = {}
        for key, st in saved.items():
            if key not in self.params:
                raise ValueError(f"state_dict['state']: unknown parameter key {key!r}")
            p = self.params[key]
            want = set(self._STATE_ARRAYS) | set(self._STATE_INTS)
            if not isinstance(st, Mapping) or set(st) != want:
                raise ValueError(f"state_dict['state'][{key!r}]: expected keys {sorted(want)}")
            entry: dict[str, Any] = {}
            for field in self._STATE_INTS:
                entry[field] = _check_int(f"state_dict['state'][{key!r}][{field!r}]", st[field], 0)
            for field in self._STATE_ARRAYS:
                a = np.asarray(st[field])
                if a.shape != p.shape:
                    raise ValueError(
                        f"state_dict['state'][{key!r}][{field!r}]: expected shape {p.shape}, got {a.shape}"
                    )
                entry[field] = np.array(a, dtype=p.dtype, copy=True)
            new_state[key] = entry
        self._set_hyperparams(hp)  # validates every value before assigning any
        self._state = new_state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyperparams().items())
        return f"{type(self).__name__}({args})"


class SGD(_Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay (torch.optim.SGD).

    Parameters
    ----------
    params : dict of parameter arrays, updated in place
    lr : base learning rate (≥ 0)
    momentum : μ ≥ 0; 0 disables the buffer
    nesterov : Nesterov momentum (needs momentum > 0)
    weight_decay : λ ≥ 0, added to the gradient as λ p
    lazy : for SparseRows gradients, touch only their rows (True) or densify them (False)
    """

    _STATE_ARRAYS = ("momentum_buffer",)

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        lazy: bool = True,
    ) -> None:
        hyperparams = {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay}
        super().__init__(params, hyperparams | {"lazy": lazy})

    def _hyperparams(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
            "lazy": self.lazy,
        }

    def _set_hyperparams(self, hp: Mapping[str, Any]) -> None:
        lr = _check_real("lr", hp["lr"], low=0.0)
        momentum = _check_real("momentum", hp["momentum"], low=0.0)
        weight_decay = _check_real("weight_decay", hp["weight_decay"], low=0.0)
        nesterov, lazy = hp["nesterov"], hp["lazy"]
        if not isinstance(nesterov, (bool, np.bool_)):
            raise ValueError(f"nesterov: expected a bool, got {nesterov!r}")
        if not isinstance(lazy, (bool, np.bool_)):
            raise ValueError(f"lazy: expected a bool, got {lazy!r}")
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov: Nesterov momentum requires momentum > 0")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.nesterov, self.lazy = bool(nesterov), bool(lazy)

    def _update_dense(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        wd, mu = self.weight_decay, self.momentum
        if wd != 0.0:
            d = self._buffer(0, p)
            np.multiply(p, wd, out=d)
            np.add(g, d, out=d)  # g + λ p
            g = d
        if mu != 0.0:
            buf = self._param_state(key, p)["momentum_buffer"]
            buf *= mu
            buf += g  # b = μ b + g
            if self.nesterov:
                d = self._buffer(1, p)
                np.multiply(buf, mu, out=d)
                np.add(g, d, out=d)  # g + μ b
                g = d
            else:
                g = buf
        step = self._buffer(1, p)
        np.multiply(g, lr, out=step)
        p -= step

    def _update_rows(self, key: str, p: np.ndarray, g: SparseRows, lr: float) -> None:
        idx, dw = g.indices, g.values  # (R,), (R, E)
        if idx.size == 0:
            return
        wd, mu = self.weight_decay, self.momentum
        w = p[idx]  # (R, E) gathered copy
        if wd != 0.0:
            dw = dw + wd * w
        if mu != 0.0:
            buf = self._param_state(key, p)["momentum_buffer"]
            b = buf[idx]  # (R, E)
            b *= mu
            b += dw
            buf[idx] = b
            dw = dw + mu * b if self.nesterov else b
        w -= lr * dw
        p[idx] = w


class Adam(_Optimizer):
    """Adam with L2 weight decay added to the gradient (torch.optim.Adam); lazy rows for SparseRows.

    Parameters
    ----------
    params : dict of parameter arrays, updated in place
    lr : base learning rate (≥ 0)
    betas : (β₁, β₂), each in [0, 1)
    eps : ε > 0
    weight_decay : λ ≥ 0 (L2: g ← g + λ p)
    lazy : for SparseRows gradients, SparseAdam-style row updates (True) or the exact dense update (False)
    """

    _STATE_ARRAYS = ("exp_avg", "exp_avg_sq")
    _STATE_INTS = ("step",)
    _decoupled = False

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        lazy: bool = True,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "lazy": lazy})

    def _hyperparams(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "betas": self.betas,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
            "lazy": self.lazy,
        }

    def _set_hyperparams(self, hp: Mapping[str, Any]) -> None:
        lr = _check_real("lr", hp["lr"], low=0.0)
        betas = _check_betas(hp["betas"])
        eps = _check_real("eps", hp["eps"], low=0.0, low_inclusive=False)
        weight_decay = _check_real("weight_decay", hp["weight_decay"], low=0.0)
        lazy = hp["lazy"]
        if not isinstance(lazy, (bool, np.bool_)):
            raise ValueError(f"lazy: expected a bool, got {lazy!r}")
        self.lr, self.betas, self.eps, self.weight_decay, self.lazy = lr, betas, eps, weight_decay, bool(lazy)

    def _update_dense(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        st = self._param_state(key, p)
        st["step"] += 1
        t = st["step"]
        b1, b2 = self.betas
        wd = self.weight_decay
        if wd != 0.0:
            if self._decoupled:
                p *= 1 - lr * wd
            else:
                d = self._buffer(0, p)
                np.multiply(p, wd, out=d)
                np.add(g, d, out=d)  # g + λ p
                g = d
        m, v = st["exp_avg"], st["exp_avg_sq"]
        tmp = self._buffer(1, p)
        # m.lerp_(g, 1 - β₁): torch computes m + w (g - m) for w < 0.5, else g - (g - m)(1 - w)
        w = 1 - b1
        np.subtract(g, m, out=tmp)
        if w < 0.5:
            tmp *= w
            m += tmp
        else:
            tmp *= 1 - w
            np.subtract(g, tmp, out=m)
        # v = β₂ v + ((1 - β₂) g) g
        v *= b2
        np.multiply(g, 1 - b2, out=tmp)
        tmp *= g
        v += tmp
        bias_correction1 = 1 - b1**t
        bias_correction2 = 1 - b2**t
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5
        np.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += self.eps  # denom
        np.divide(m, tmp, out=tmp)
        tmp *= -step_size
        p += tmp

    def _update_rows(self, key: str, p: np.ndarray, g: SparseRows, lr: float) -> None:
        # torch.optim.SparseAdam's sequence of operations on the gathered rows, ROWS_PER_BLOCK at a time:
        # each block's temporaries stay in cache between its dozen passes (rows are independent).
        st = self._param_state(key, p)
        st["step"] += 1
        t = st["step"]
        b1, b2 = self.betas
        bias_correction1 = 1 - b1**t
        bias_correction2 = 1 - b2**t
        step_size = lr * math.sqrt(bias_correction2) / bias_correction1
        if _fused_adam_rows(self, p, st["exp_avg"], st["exp_avg_sq"], g, lr, step_size):
            return
        for start in range(0, g.indices.size, ROWS_PER_BLOCK):
            stop = start + ROWS_PER_BLOCK
            self._adam_rows(p, st["exp_avg"], st["exp_avg_sq"], g.indices[start:stop], g.values[start:stop],
                            lr, step_size)

    def _adam_rows(self, p, m, v, idx: np.ndarray, dw: np.ndarray, lr: float, step_size: float) -> None:
        """One block of rows idx (R,) with gradient dw (R, E), in scratch buffers."""
        b1, b2 = self.betas
        wd = self.weight_decay
        block = (idx.size, p.shape[1])
        w = np.take(p, idx, axis=0, out=self._buffer(3, p, block))  # (R, E) gathered rows
        if wd != 0.0:
            if self._decoupled:
                w *= 1 - lr * wd
            else:
                dw = dw + wd * w
        old = np.take(m, idx, axis=0, out=self._buffer(4, p, block))  # m_R
        numer = np.subtract(dw, old, out=self._buffer(5, p, block))
        numer *= 1 - b1
        numer += old  # m_R + (1 - β₁)(g - m_R)
        m[idx] = numer
        old = np.take(v, idx, axis=0, out=old)  # v_R
        denom = np.square(dw, out=self._buffer(6, p, block))
        denom -= old
        denom *= 1 - b2
        denom += old  # v_R + (1 - β₂)(g² - v_R)
        v[idx] = denom
        np.sqrt(denom, out=denom)
        denom += self.eps
        np.divide(numer, denom, out=numer)
        numer *= -step_size
        w += numer
        p[idx] = w


def _fused_adam_rows(adam: Adam, p: np.ndarray, m: np.ndarray, v: np.ndarray, g: SparseRows, lr: float,
                     step_size: float) -> bool:
    """``Adam._adam_rows`` over all of g's rows in one C pass per row (nn/_fused.c: the same operations and
    constants, no fused multiply-add, so the same bits); False, doing nothing, when the extension is off or
    the arrays are not the plain C-contiguous float32/float64 it takes."""
    if not fused.ACTIVE or p.dtype not in (np.float32, np.float64):
        return False
    arrays = (p, m, v, g.values)
    if not all(a.flags.c_contiguous and a.dtype == p.dtype and a.ndim == 2 for a in arrays):
        return False
    dtype = p.dtype.type
    b1, b2 = adam.betas
    wd = adam.weight_decay
    decay, wd_scale = (0, 0.0) if wd == 0.0 else (1, 1 - lr * wd) if adam._decoupled else (2, wd)
    # the constants as NumPy uses them: Python floats cast to the arrays' dtype
    consts = [float(dtype(c)) for c in (wd_scale, 1 - b1, 1 - b2, adam.eps, -step_size)]
    indices = np.ascontiguousarray(g.indices, dtype=np.int64)
    fused._fused.adam_rows(p, m, v, indices, g.values, decay, *consts, p.dtype == np.float64)
    return True


class AdamW(Adam):
    """Adam with decoupled weight decay, p ← p (1 − lr λ) before the Adam step (torch.optim.AdamW).

    Parameters as ``Adam``; ``weight_decay`` defaults to 0.01. In lazy mode the decay applies only to the
    rows of a SparseRows gradient.
    """

    _decoupled = True

    def __init__(
        self,
        params: dict[str, np.ndarray],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        lazy: bool = True,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, lazy=lazy)


# --------------------------------------------------------------------------------------------------------------
# gradient clipping


def clip_grad_norm(grads: Mapping[str, Grad], max_norm: float) -> float:
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``; return the norm.

    The norm is taken over every gradient together (a SparseRows counts its ``values``; its indices are
    unique, so this is the norm of the dense gradient). As ``torch.nn.utils.clip_grad_norm_``, every gradient
    is multiplied by ``max_norm / (norm + 1e-6)`` when that factor is below 1. The norm before clipping is
    returned. If it is not finite (NaN or inf), nothing is scaled and it is returned as is: the training loop
    decides (torch would multiply by NaN or 0 instead).
    """
    max_norm = _check_real("max_norm", max_norm, low=0.0)
    if not isinstance(grads, Mapping):
        raise ValueError(f"grads: expected a dict of gradients, got {type(grads).__name__}")
    arrays = []
    for key, g in grads.items():
        a = g.values if isinstance(g, SparseRows) else g
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            raise ValueError(f"grads[{key!r}]: expected a floating-point NumPy array or SparseRows")
        arrays.append(a)
    # Per-gradient norms first, then the norm of those (torch's order); float64 accumulation throughout.
    norms = np.array([math.sqrt(_sum_squares(a)) for a in arrays], dtype=np.float64)
    total = float(math.sqrt(np.dot(norms, norms))) if norms.size else 0.0
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for a in arrays:
            a *= coef
    return total


def _sum_squares(a: np.ndarray) -> float:
    flat = a.reshape(-1)
    if flat.dtype != np.float64:
        flat = flat.astype(np.float64)
    return float(np.dot(flat, flat))


# --------------------------------------------------------------------------------------------------------------
# learning-rate schedules: pure functions of the 0-based step


def constant(step: int, base_lr: float) -> float:
    """``base_lr`` at every step."""
    _check_int("step", step, 0)
    return _check_real("base_lr", base_lr, low=0.0)


def linear_warmup(step: int, base_lr: float, warmup_steps: int) -> float:
    """Ramp linearly to ``base_lr`` over ``warmup_steps`` steps, then hold it.

    ``base_lr · (step + 1) / warmup_steps`` for step < warmup_steps (so step 0 already moves), else ``base_lr``.
    """
    step = _check_int("step", step, 0)
    base_lr = _check_real("base_lr", base_lr, low=0.0)
    warmup_steps = _check_int("warmup_steps", warmup_steps, 0)
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    return base_lr


def _check_decay(
    step: int, base_lr: float, warmup_steps: int, total_steps: int, final_lr: float
) -> tuple[int, float, int, int, float]:
    step = _check_int("step", step, 0)
    base_lr = _check_real("base_lr", base_lr, low=0.0)
    warmup_steps = _check_int("warmup_steps", warmup_steps, 0)
    total_steps = _check_int("total_steps", total_steps, 0)
    final_lr = _check_real("final_lr", final_lr, low=0.0)
    if total_steps < warmup_steps:
        raise ValueError(f"total_steps: expected >= warmup_steps ({warmup_steps}), got {total_steps}")
    return step, base_lr, warmup_steps, total_steps, final_lr


def warmup_linear_decay(
    step: int, base_lr: float, warmup_steps: int, total_steps: int, final_lr: float = 0.0
) -> float:
    """Linear warmup (as ``linear_warmup``), then linear decay from ``base_lr`` at ``warmup_steps`` to
    ``final_lr`` at ``total_steps``; ``final_lr`` from then on."""
    step, base_lr, warmup_steps, total_steps, final_lr = _check_decay(
        step, base_lr, warmup_steps, total_steps, final_lr
    )
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return final_lr
    frac = (step - warmup_steps) / (total_steps - warmup_steps)  # in [0, 1)
    return base_lr + (final_lr - base_lr) * frac


def warmup_cosine_decay(
    step: int, base_lr: float, warmup_steps: int, total_steps: int, final_lr: float = 0.0
) -> float:
    """Linear warmup, then half a cosine from ``base_lr`` at ``warmup_steps`` to ``final_lr`` at
    ``total_steps``; ``final_lr`` from then on."""
    step, base_lr, warmup_steps, total_steps, final_lr = _check_decay(
        step, base_lr, warmup_steps, total_steps, final_lr
    )
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return final_lr
    frac = (step - warmup_steps) / (total_steps - warmup_steps)  # in [0, 1)
    return final_lr + 0.5 * (1.0 + math.cos(math.pi * frac)) * (base_lr - final_lr)


def step_decay(step: int, base_lr: float, step_size: int, gamma: float) -> float:
    """``base_lr · gamma^(step // step_size)`` (torch.optim.lr_scheduler.StepLR)."""
    step = _check_int("step", step, 0)
    base_lr = _check_real("base_lr", base_lr, low=0.0)
    step_size = _check_int("step_size", step_size, 1)
    gamma = _check_real("gamma", gamma, low=0.0)
    return base_lr * gamma ** (step // step_size)
