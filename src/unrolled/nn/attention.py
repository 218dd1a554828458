"""Attention over encoder states: scores, a softmax over the real source positions, a context.

    q (N, Q) the decoder state of one step (the query), or (N, T, Q) the states of T steps at once (teacher
    forcing: every query is known before attention runs); e (N, S, K) the encoder states (the keys, which
    are also the values), mask (N, S) True at real source positions (None: all real), A the attention size.
    The equations below are for one query; with T queries each runs them independently over the same keys,
    and a key's gradient is the sum over the queries.

Scores, one per source position s:

    additive (Bahdanau):  u_s = tanh(q W_qᵀ + e_s W_kᵀ)   (A,)      score_s = u_s vᵀ
                          params {"query.weight": W_q (A, Q), "key.weight": W_k (A, K), "v.weight": v (1, A)}
    general (Luong):      score_s = q W e_sᵀ                       params {"weight": W (Q, K)}
    dot (Luong):          score_s = q · e_s        (Q == K)        no params

Weights and context, with m = max of the scores over the real positions (a stable softmax):

    α_s = mask_s exp(score_s − m) / Σ_r mask_r exp(score_r − m)     (exactly 0 at masked positions)
    c   = Σ_s α_s e_s                                              (N, K)

Backward, from dc (N, K) and an optional extra gradient dα' on the weights (a loss on the attention itself):

    dα_s     = e_s · dc + dα'_s
    dscore_s = α_s (dα_s − Σ_r α_r dα_r)                           (0 at masked positions, since α_s = 0)
    de_s     = α_s dc + (the score's gradient with respect to e_s, times dscore_s)
    additive: dp_s = dscore_s v ⊙ (1 − u_s²)   dq = (Σ_s dp_s) W_q   de_s += dp_s W_k
              dW_q = (Σ_s dp_s)ᵀ q   dW_k = Σ_s dp_sᵀ e_s   dv = Σ_s dscore_s u_s
    general:  g = q W (N, K)   dq = (Σ_s dscore_s e_s) Wᵀ   de_s += dscore_s g   dW = qᵀ (Σ_s dscore_s e_s)
    dot:      dq = Σ_s dscore_s e_s                          de_s += dscore_s q

The parameter names are those of a torch module with bias-free ``nn.Linear`` submodules ``query`` (Q → A),
``key`` (K → A) and ``v`` (A → 1), or with one ``weight`` Parameter (Q, K), so its ``load_state_dict`` takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from unrolled.nn._validation import check_choice, check_float_array, check_mask, check_positive_int

__all__ = [
    "SCORES",
    "AttentionCache",
    "attention_param_shapes",
    "init_attention_params",
    "attention_forward",
    "attention_backward",
]

SCORES = ("additive", "general", "dot")
_PARAM_NAMES = {"additive": ("query.weight", "key.weight", "v.weight"), "general": ("weight",), "dot": ()}


def attention_param_shapes(
    score: str, query_size: int, key_size: int, attention_size: int | None = None
) -> dict[str, tuple[int, ...]]:
    """The parameters' names and shapes, in state-dict order: {} for ``dot``."""
    check_choice("score", score, SCORES)
    check_positive_int("query_size", query_size)
    check_positive_int("key_size", key_size)
    if score == "additive":
        check_positive_int("attention_size", attention_size)
        return {
            "query.weight": (attention_size, query_size),
            "key.weight": (attention_size, key_size),
            "v.weight": (1, attention_size),
        }
    if score == "general":
        return {"weight": (query_size, key_size)}
    if query_size != key_size:
        raise ValueError(f"key_size: the dot score needs key_size == query_size ({query_size}), got {key_size}")
    return {}


def init_attention_params(
    score: str,
    query_size: int,
    key_size: int,
    attention_size: int | None,
    rng: np.random.Generator,
    dtype: np.dtype | type = np.float32,
) -> dict[str, np.ndarray]:
    """PyTorch-default-like initialisation: each weight ~ U(−1/√fan_in, 1/√fan_in), in state-dict order.

    The fan-in is the input size of the ``nn.Linear`` the weight belongs to: Q for ``query.weight``, K for
    ``key.weight``, A for ``v.weight``, and K for the general score's ``weight`` (W e_sᵀ is a K → Q linear map
    applied to the encoder states). ``attention_size`` is used by the additive score only (None otherwise).
    """
    shapes = attention_param_shapes(score, query_size, key_size, attention_size)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    params = {}
    for name, shape in shapes.items():
        bound = 1.0 / np.sqrt(shape[1])
        params[name] = rng.uniform(-bound, bound, shape).astype(dtype)
    return params


@dataclass(frozen=True, eq=False)
class AttentionCache:
    score: str  # "additive", "general" or "dot"
    query: np.ndarray  # (N, Q) or (N, T, Q) q, as given
    keys: np.ndarray  # (N, S, K) e, as given
    params: dict[str, np.ndarray]  # the parameters by name (a shallow copy of the dict given), {} for dot
    weights: np.ndarray  # (N, S) or (N, T, S) α, 0 at masked positions
    hidden: np.ndarray | None  # additive: (N, T, S, A) u = tanh(q W_qᵀ + e W_kᵀ) (T = 1 for one query); else None
    projected_query: np.ndarray | None  # general: (N, T, K) g = q W (T = 1 for one query); else None


def _check_params(score: str, params: object, query_size: int, key_size: int) -> dict:
    """The params as a dict, checked against the score's names and shapes (one dtype among them)."""
    if score == "dot":
        if query_size != key_size:
            raise ValueError(
                f"keys: the dot score needs the key size to equal the query size ({query_size}), got {key_size}"
            )
        if params is None:
            return {}
    if not isinstance(params, Mapping):
        raise ValueError(f"params: expected a dict of arrays, got {type(params).__name__}")
    names = _PARAM_NAMES[score]
    if set(params) != set(names):
        want, got = ", ".join(names) or "none", ", ".join(map(str, params)) or "none"
        raise ValueError(f"params: expected the keys {want} for the {score} score, got {got}")
    if score == "additive":
        weight_q = check_float_array("query.weight", params["query.weight"], (None, query_size))
        size = weight_q.shape[0]
        check_float_array("key.weight", params["key.weight"], (size, key_size), dtype=weight_q.dtype)
        check_float_array("v.weight", params["v.weight"], (1, size), dtype=weight_q.dtype)
    elif score == "general":
        check_float_array("weight", params["weight"], (query_size, key_size))
    return dict(params)


def _check_dtype(name: str, a: np.ndarray, dtype: np.dtype, anchor: str) -> None:
    if a.dtype != dtype:
        raise ValueError(f"{name}: expected dtype {dtype} (as the {anchor}), got {a.dtype}")


def attention_forward(
    query: np.ndarray,
    keys: np.ndarray,
    params: Mapping[str, np.ndarray] | None,
    *,
    mask: np.ndarray | None = None,
    score: str = "additive",
) -> tuple[np.ndarray, np.ndarray, AttentionCache]:
    """Context and attention weights for one decoder step.

    Parameters
    ----------
    query : (N, Q) float array, the decoder state; or (N, T, Q), T queries over the same keys
    keys : (N, S, K) float array, the encoder states (also the values)
    params : the score's parameters (see the module docstring), all of one dtype, which query and keys must
        share; None or {} for ``dot`` (keys then share query's dtype)
    mask : (N, S) bool, True at real source positions; None: all real. Every row needs a real position.
    score : "additive", "general" or "dot"

    Returns
    -------
    context : (N, K) c = Σ_s α_s e_s; (N, T, K) for T queries
    weights : (N, S) α, exactly 0 at masked positions; (N, T, S) for T queries
    cache : AttentionCache
    """
    check_choice("score", score, SCORES)
    one_step = not (isinstance(query, np.ndarray) and query.ndim == 3)
    check_float_array("query", query, (None, None) if one_step else (None, None, None))
    n, query_size = query.shape[0], query.shape[-1]
    check_float_array("keys", keys, (n, None, None))
    s_len, key_size = keys.shape[1:]
    params = _check_params(score, params, query_size, key_size)
    if params:  # one dtype throughout, the parameters' (as linear_forward does)
        dtype = next(iter(params.values())).dtype
        _check_dtype("query", query, dtype, "parameters")
        _check_dtype("keys", keys, dtype, "parameters")
    else:
        _check_dtype("keys", keys, query.dtype, "query")
    if mask is not None:
        check_mask("mask", mask, (n, s_len))
        empty = ~mask.any(axis=1)
        if empty.any():
            raise ValueError(f"mask: row {int(np.argmax(empty))} has no real source position")
    elif s_len == 0 and n > 0:
        raise ValueError("keys: expected at least one source position, got S = 0")

    q3 = query[:, None, :] if one_step else query  # (N, T, Q): every query of the batch at once
    hidden = projected_query = None
    if score == "additive":
        weight_q, weight_k, v = params["query.weight"], params["key.weight"], params["v.weight"]
        size = weight_q.shape[0]
        projected_keys = (keys.reshape(-1, key_size) @ weight_k.T).reshape(n, s_len, size)  # one GEMM
        projected = (q3.reshape(-1, query_size) @ weight_q.T).reshape(n, -1, 1, size)  # (N, T, 1, A)
        hidden = np.tanh(projected + projected_keys[:, None, :, :])  # (N, T, S, A) u
        scores = hidden @ v[0]  # (N, T, S)
    elif score == "general":
        projected_query = q3 @ params["weight"]  # (N, T, K) g = q W
        scores = projected_query @ keys.transpose(0, 2, 1)  # (N, T, S)
    else:
        scores = q3 @ keys.transpose(0, 2, 1)  # (N, T, S)

    if mask is None:
        shifted = scores - scores.max(axis=2, keepdims=True)
    else:
        real = mask[:, None, :]  # (N, 1, S), the same for every query
        top = np.where(real, scores, -np.inf).max(axis=2, keepdims=True)  # finite: each row has a real s
        shifted = np.where(real, scores - top, -np.inf)  # exp(−inf) = 0 exactly at masked positions
    weights = np.exp(shifted)
    weights /= weights.sum(axis=2, keepdims=True)  # (N, T, S) α
    context = weights @ keys  # (N, T, K)
    if one_step:
        context, weights = context[:, 0], weights[:, 0]
    cache = AttentionCache(score, query, keys, params, weights, hidden, projected_query)
    return context, weights, cache


def attention_backward(
    dcontext: np.ndarray, cache: AttentionCache, *, dweights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Gradients of the query, the keys (through the scores and the context sum) and the parameters.

    Parameters
    ----------
    dcontext : (N, K) upstream gradient of the context ((N, T, K) for T queries)
    cache : AttentionCache from ``attention_forward``
    dweights : (N, S) or (N, T, S), optional extra upstream gradient of the weights α (e.g. a loss on the attention)

    Returns
    -------
    dquery : (N, Q), or (N, T, Q)
    dkeys : (N, S, K); at masked positions only the context's part, α_s dc = 0
    grads : the params' names → gradients of their shapes ({} for ``dot``)
    """
    query, keys, weights = cache.query, cache.keys, cache.weights
    one_step = query.ndim == 2
    n, s_len, key_size = keys.shape
    check_float_array("dcontext", dcontext, query.shape[:-1] + (key_size,), dtype=query.dtype, finite=False)
    if one_step:  # one query per row: the (N, T = 1, ·) case
        query, weights, dcontext = query[:, None], weights[:, None], dcontext[:, None]
    query_size = query.shape[2]
    dalpha = dcontext @ keys.transpose(0, 2, 1)  # (N, T, S) e_s · dc
    if dweights is not None:
        check_float_array("dweights", dweights, cache.weights.shape, dtype=query.dtype, finite=False)
        dalpha += dweights[:, None] if one_step else dweights
    dscores = weights * (dalpha - (weights * dalpha).sum(axis=2, keepdims=True))  # (N, T, S), 0 where α = 0
    dkeys = weights.transpose(0, 2, 1) @ dcontext  # (N, S, K) through the context sums

    if cache.score == "additive":
        weight_q, weight_k, v = cache.params["query.weight"], cache.params["key.weight"], cache.params["v.weight"]
        hidden = cache.hidden  # (N, T, S, A)
        size = hidden.shape[3]
        dpre = dscores[..., None] * v[0]  # (N, T, S, A) through u vᵀ
        dpre *= 1.0 - hidden * hidden  # through tanh
        dquery_proj = dpre.sum(axis=2)  # (N, T, A): q_t W_qᵀ is shared by every s
        dkey_proj = dpre.sum(axis=1)  # (N, S, A): e_s W_kᵀ is shared by every t
        dkeys += (dkey_proj.reshape(-1, size) @ weight_k).reshape(n, s_len, key_size)
        dquery = dquery_proj @ weight_q
        grads = {
            "query.weight": dquery_proj.reshape(-1, size).T @ query.reshape(-1, query_size),
            "key.weight": dkey_proj.reshape(-1, size).T @ keys.reshape(-1, key_size),
            "v.weight": dscores.reshape(1, -1) @ hidden.reshape(-1, size),  # (1, A)
        }
    elif cache.score == "general":
        dprojected = dscores @ keys  # (N, T, K) Σ_s dscore_s e_s
        dkeys += dscores.transpose(0, 2, 1) @ cache.projected_query
        dquery = dprojected @ cache.params["weight"].T
        grads = {"weight": query.reshape(-1, query_size).T @ dprojected.reshape(-1, key_size)}
    else:
        dquery = dscores @ keys  # (N, T, K = Q)
        dkeys += dscores.transpose(0, 2, 1) @ query
        grads = {}
    return (dquery[:, 0] if one_step else dquery), dkeys, grads
