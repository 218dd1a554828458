import numpy as np
import pytest

from tests.gradcheck import numerical_gradient, rel_error
from unrolled.nn.attention import (
    SCORES,
    attention_backward,
    attention_forward,
    attention_param_shapes,
    init_attention_params,
)

N, S, A = 3, 5, 6
# row 0: all real; row 1: padded at both ends; row 2: a single real position
MASK = np.array(
    [
        [True, True, True, True, True],
        [False, True, True, True, False],
        [False, False, True, False, False],
    ]
)


def _sizes(score):
    return (4, 4) if score == "dot" else (3, 4)  # (Q, K)


def _data(score, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    q_size, k_size = _sizes(score)
    query = rng.standard_normal((N, q_size)).astype(dtype)
    keys = rng.standard_normal((N, S, k_size)).astype(dtype)
    params = {
        name: (rng.standard_normal(shape) * 0.8).astype(dtype)
        for name, shape in attention_param_shapes(score, q_size, k_size, A).items()
    }
    dcontext = rng.standard_normal((N, k_size)).astype(dtype)
    dweights = rng.standard_normal((N, S)).astype(dtype)
    return query, keys, params, dcontext, dweights


# --- finite differences ---


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize("use_dweights", [False, True])
def test_gradcheck_query_keys_params(score, use_mask, use_dweights):
    query, keys, params, dcontext, dweights = _data(score)
    mask = MASK if use_mask else None
    dweights = dweights if use_dweights else None

    def f():  # f = Σ dcontext ⊙ c (+ Σ dweights ⊙ α), so df/dc = dcontext and df/dα = dweights
        context, weights, _ = attention_forward(query, keys, params, mask=mask, score=score)
        value = float(np.sum(dcontext * context))
        return value + (float(np.sum(dweights * weights)) if dweights is not None else 0.0)

    _, _, cache = attention_forward(query, keys, params, mask=mask, score=score)
    dquery, dkeys, grads = attention_backward(dcontext, cache, dweights=dweights)
    assert dquery.shape == query.shape and dkeys.shape == keys.shape and set(grads) == set(params)
    assert rel_error(dquery, numerical_gradient(f, query)) <= 1e-7
    assert rel_error(dkeys, numerical_gradient(f, keys)) <= 1e-7
    for name in params:
        assert grads[name].shape == params[name].shape
        assert rel_error(grads[name], numerical_gradient(f, params[name])) <= 1e-7, name


def test_gradcheck_catches_a_broken_backward():
    """The finite-difference check above can fail: drop one term of the backward and it does."""
    query, keys, params, dcontext, _ = _data("additive")

    def f():
        return float(np.sum(dcontext * attention_forward(query, keys, params, mask=MASK)[0]))

    _, _, cache = attention_forward(query, keys, params, mask=MASK)
    _, dkeys, grads = attention_backward(dcontext, cache)
    numeric = numerical_gradient(f, keys)
    assert rel_error(dkeys, numeric) <= 1e-7
    without_context_path = dkeys - cache.weights[:, :, None] * dcontext[:, None, :]
    assert rel_error(without_context_path, numeric) > 1e-2
    numeric_v = numerical_gradient(f, params["v.weight"])
    assert rel_error(grads["v.weight"], numeric_v) <= 1e-7
    assert rel_error(-grads["v.weight"], numeric_v) > 0.5


# --- masks ---


@pytest.mark.parametrize("score", SCORES)
def test_masked_positions_get_zero_weight_and_zero_key_gradient(score):
    query, keys, params, dcontext, dweights = _data(score, seed=1)
    dweights[~MASK] = 1e3  # a large extra gradient exactly where it must not reach
    context, weights, cache = attention_forward(query, keys, params, mask=MASK, score=score)
    np.testing.assert_array_equal(weights[~MASK], 0.0)
    assert (weights[MASK] > 0).all()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-15)
    dquery, dkeys, grads = attention_backward(dcontext, cache, dweights=dweights)
    np.testing.assert_array_equal(dkeys[~MASK], 0.0)

    # the dweights at masked positions changed nothing: same gradients as with them zeroed
    clean = np.where(MASK, dweights, 0.0)
    dquery0, dkeys0, grads0 = attention_backward(dcontext, cache, dweights=clean)
    np.testing.assert_array_equal(dquery, dquery0)
    np.testing.assert_array_equal(dkeys, dkeys0)
    for name in grads:
        np.testing.assert_array_equal(grads[name], grads0[name])

    # and the keys at masked positions change no output, however large
    moved = keys.copy()
    moved[~MASK] = 1e3
    context2, weights2, _ = attention_forward(query, moved, params, mask=MASK, score=score)
    np.testing.assert_array_equal(weights2, weights)
    np.testing.assert_array_equal(context2, context)


@pytest.mark.parametrize("score", SCORES)
def test_a_single_real_position_takes_all_the_weight(score):
    query, keys, params, dcontext, _ = _data(score, seed=2)
    context, weights, cache = attention_forward(query, keys, params, mask=MASK, score=score)
    np.testing.assert_array_equal(weights[2], [0.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(context[2], keys[2, 2])
    dquery, dkeys, grads = attention_backward(dcontext, cache)
    # one real position: the softmax is constant, so nothing flows through the scores
    np.testing.assert_array_equal(dquery[2], 0.0)
    np.testing.assert_array_equal(dkeys[2, 2], dcontext[2])


def test_all_true_mask_equals_no_mask():
    for score in SCORES:
        query, keys, params, dcontext, dweights = _data(score, seed=3)
        out_none = attention_forward(query, keys, params, score=score)
        out_true = attention_forward(query, keys, params, mask=np.ones((N, S), bool), score=score)
        np.testing.assert_allclose(out_true[0], out_none[0], rtol=1e-14)
        np.testing.assert_allclose(out_true[1], out_none[1], rtol=1e-14)
        g_none = attention_backward(dcontext, out_none[2], dweights=dweights)
        g_true = attention_backward(dcontext, out_true[2], dweights=dweights)
        np.testing.assert_allclose(g_true[0], g_none[0], rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(g_true[1], g_none[1], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("row", [0, 2])
def test_a_row_without_a_real_position_raises_naming_it(row):
    query, keys, params, _, _ = _data("general")
    mask = MASK.copy()
    mask[row] = False
    with pytest.raises(ValueError, match=f"^mask: row {row} has no real source position$"):
        attention_forward(query, keys, params, mask=mask, score="general")


def test_no_source_position_raises():
    query, _, params, _, _ = _data("dot")
    with pytest.raises(ValueError, match="^keys: expected at least one source position"):
        attention_forward(query, np.zeros((N, 0, 4)), params, score="dot")


# --- values ---


def test_dot_example_by_hand():
    query = np.array([[1.0, 0.0]])
    keys = np.array([[[0.0, 1.0], [np.log(3.0), 0.0], [5.0, 5.0]]])
    mask = np.array([[True, True, False]])
    context, weights, _ = attention_forward(query, keys, None, mask=mask, score="dot")
    # scores 0 and ln 3 over the real positions: α = [1/4, 3/4, 0]
    np.testing.assert_allclose(weights, [[0.25, 0.75, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(context, [[0.75 * np.log(3.0), 0.25]], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_subtracts_the_max_over_the_real_positions(dtype):
    # real scores ≈ −800 (exp underflows to 0 unless shifted by their own max); the masked one is +800
    query = np.array([[1.0, 0.0]], dtype=dtype)
    keys = np.array([[[-800.0, 0.0], [-801.0, 0.0], [800.0, 0.0]]], dtype=dtype)
    mask = np.array([[True, True, False]])
    with np.errstate(over="raise", under="ignore", invalid="raise", divide="raise"):
        context, weights, cache = attention_forward(query, keys, None, mask=mask, score="dot")
        dquery, dkeys, _ = attention_backward(np.ones((1, 2), dtype=dtype), cache)
    p = 1.0 / (1.0 + np.exp(-1.0))
    np.testing.assert_allclose(weights, [[p, 1.0 - p, 0.0]], rtol=1e-6)
    assert np.isfinite(context).all() and np.isfinite(dquery).all() and np.isfinite(dkeys).all()
    assert weights.dtype == dtype


@pytest.mark.parametrize("score", SCORES)
def test_float32_runs_keeps_dtype_and_matches_float64(score):
    data64 = _data(score, seed=4)
    query, keys, params, dcontext, dweights = data64
    cast = lambda a: a.astype(np.float32)  # noqa: E731
    q32, k32, dc32, dw32 = map(cast, (query, keys, dcontext, dweights))
    p32 = {name: cast(value) for name, value in params.items()}
    c32, w32, cache32 = attention_forward(q32, k32, p32, mask=MASK, score=score)
    dq32, dk32, g32 = attention_backward(dc32, cache32, dweights=dw32)
    assert all(a.dtype == np.float32 for a in (c32, w32, dq32, dk32, *g32.values()))

    q = q32.astype(np.float64)
    k = k32.astype(np.float64)
    p = {name: value.astype(np.float64) for name, value in p32.items()}
    c64, w64, cache64 = attention_forward(q, k, p, mask=MASK, score=score)
    dq64, dk64, g64 = attention_backward(dc32.astype(np.float64), cache64, dweights=dw32.astype(np.float64))
    assert rel_error(c32, c64) <= 1e-5 and rel_error(w32, w64) <= 1e-5
    assert rel_error(dq32, dq64) <= 1e-5 and rel_error(dk32, dk64) <= 1e-5
    for name in g64:
        assert rel_error(g32[name], g64[name]) <= 1e-5


def test_backward_does_not_mutate_arguments():
    query, keys, params, dcontext, dweights = _data("additive", seed=5)
    _, _, cache = attention_forward(query, keys, params, mask=MASK)
    arrays = [query, keys, dcontext, dweights, cache.weights, cache.hidden, *params.values()]
    copies = [a.copy() for a in arrays]
    attention_backward(dcontext, cache, dweights=dweights)
    attention_backward(dcontext, cache, dweights=dweights)
    for before, after in zip(copies, arrays):
        np.testing.assert_array_equal(before, after)


# --- initialisation ---


def test_init_names_shapes_bounds_and_determinism():
    rng = np.random.default_rng(6)
    params = init_attention_params("additive", 8, 16, 32, rng)
    assert list(params) == ["query.weight", "key.weight", "v.weight"]
    assert [p.shape for p in params.values()] == [(32, 8), (32, 16), (1, 32)]
    assert all(p.dtype == np.float32 for p in params.values())
    for p, fan_in in zip(params.values(), (8, 16, 32)):
        assert np.abs(p).max() <= 1 / np.sqrt(fan_in) and np.abs(p).max() > 0.8 / np.sqrt(fan_in)
    again = init_attention_params("additive", 8, 16, 32, np.random.default_rng(6))
    for name in params:
        np.testing.assert_array_equal(params[name], again[name])

    general = init_attention_params("general", 8, 16, None, rng, dtype=np.float64)
    assert list(general) == ["weight"] and general["weight"].shape == (8, 16)
    assert general["weight"].dtype == np.float64 and np.abs(general["weight"]).max() <= 0.25
    assert init_attention_params("dot", 8, 8, None, rng) == {}


def test_init_bad_arguments_raise():
    rng = np.random.default_rng(7)
    with pytest.raises(ValueError, match="^score: expected one of additive, general, dot, got 'cosine'$"):
        init_attention_params("cosine", 4, 4, 4, rng)
    with pytest.raises(ValueError, match="^attention_size:"):
        init_attention_params("additive", 4, 4, None, rng)
    with pytest.raises(ValueError, match="^query_size:"):
        init_attention_params("general", 0, 4, None, rng)
    with pytest.raises(ValueError, match="^key_size:"):
        init_attention_params("dot", 4, 5, None, rng)
    with pytest.raises(ValueError, match="^rng:"):
        init_attention_params("dot", 4, 4, None, 0)


# --- argument checks ---


def _raises(pattern, *args, **kwargs):
    with pytest.raises(ValueError, match=pattern) as info:
        attention_forward(*args, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_arguments_raise_one_line_errors_naming_the_argument():
    query, keys, params, dcontext, dweights = _data("additive")
    q32, k32 = query.astype(np.float32), keys.astype(np.float32)
    _raises("^score:", query, keys, params, score="bahdanau")
    _raises("^query:", query[0], keys, params)
    _raises(r"^query: expected dtype float64 \(as the parameters\)", q32, k32, params)
    _raises("^keys:", query, keys[:2], params)
    _raises(r"^keys: expected dtype float64 \(as the parameters\)", query, k32, params)
    wrong_names = {"weight": params["v.weight"]}
    _raises("^params: expected the keys query.weight, key.weight, v.weight for the additive", query, keys, wrong_names)
    _raises("^params:", query, keys, None)
    _raises("^key.weight:", query, keys, {**params, "key.weight": params["key.weight"][:, :3]})
    _raises("^v.weight:", query, keys, {**params, "v.weight": params["v.weight"][:, :3]})
    # the parameters set the dtype (query.weight first), as the weight does in linear_forward
    mixed = {**params, "query.weight": params["query.weight"].astype(np.float32)}
    _raises("^key.weight: expected dtype float32", query, keys, mixed)
    _raises("^mask:", query, keys, params, mask=MASK.astype(int))
    _raises("^mask:", query, keys, params, mask=MASK[:, :4])
    gq, gk, gp, _, _ = _data("general")
    _raises("^weight:", gq, gk, {"weight": gp["weight"].T}, score="general")
    _raises("^keys: the dot score needs", gq, gk, None, score="dot")
    dq, dk, _, _, _ = _data("dot")
    _raises("^params: expected the keys none for the dot score, got weight", dq, dk, gp, score="dot")
    _raises(r"^keys: expected dtype float64 \(as the query\)", dq, dk.astype(np.float32), None, score="dot")

    _, _, cache = attention_forward(query, keys, params, mask=MASK)
    with pytest.raises(ValueError, match="^dcontext:"):
        attention_backward(dcontext[:, :3], cache)
    with pytest.raises(ValueError, match="^dcontext:"):
        attention_backward(dcontext.astype(np.float32), cache)
    with pytest.raises(ValueError, match="^dweights:"):
        attention_backward(dcontext, cache, dweights=dweights[:, :4])


# --- PyTorch: the same equations with autograd ---


def _torch_attention(torch, score, q_size, k_size):
    """A torch module for the module docstring's equations, with the engine's parameter names."""
    nn = torch.nn

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            if score == "additive":
                self.query = nn.Linear(q_size, A, bias=False)
                self.key = nn.Linear(k_size, A, bias=False)
                self.v = nn.Linear(A, 1, bias=False)
            elif score == "general":
                self.weight = nn.Parameter(torch.empty(q_size, k_size))

        def forward(self, q, e, mask):
            if score == "additive":
                scores = self.v(torch.tanh(self.query(q)[:, None, :] + self.key(e)))[..., 0]
            elif score == "general":
                scores = torch.einsum("nq,qk,nsk->ns", q, self.weight, e)
            else:
                scores = torch.einsum("nk,nsk->ns", q, e)
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=1)
            return torch.einsum("ns,nsk->nk", weights, e), weights

    return Attention().double()


def _compare_with_torch(torch, score, query, keys, params, dcontext, dweights, mask, *, perturb=None):
    """Max |engine − torch| over the context, the weights and every gradient.

    ``perturb``: the name of one input ("query", "keys") or parameter that the torch side sees scaled by
    1 + 1e-6, to show that the comparison notices.
    """
    t_inputs = {"query": query.copy(), "keys": keys.copy(), **{name: value.copy() for name, value in params.items()}}
    if perturb is not None:
        t_inputs[perturb] *= 1.0 + 1e-6
    module = _torch_attention(torch, score, query.shape[1], keys.shape[2])
    module.load_state_dict({name: torch.from_numpy(t_inputs[name]) for name in params}, strict=True)
    t_query = torch.tensor(t_inputs["query"], requires_grad=True)
    t_keys = torch.tensor(t_inputs["keys"], requires_grad=True)
    t_context, t_weights = module(t_query, t_keys, None if mask is None else torch.from_numpy(mask))
    (torch.sum(t_context * torch.from_numpy(dcontext)) + torch.sum(t_weights * torch.from_numpy(dweights))).backward()

    context, weights, cache = attention_forward(query, keys, params, mask=mask, score=score)
    dquery, dkeys, grads = attention_backward(dcontext, cache, dweights=dweights)
    named = dict(module.named_parameters())
    pairs = [(context, t_context), (weights, t_weights), (dquery, t_query.grad), (dkeys, t_keys.grad)]
    pairs += [(grads[name], named[name].grad) for name in params]
    return max(float(np.max(np.abs(a - b.detach().numpy()))) for a, b in pairs)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("use_mask", [False, True])
def test_matches_torch_autograd(score, use_mask):
    torch = pytest.importorskip("torch")
    query, keys, params, dcontext, dweights = _data(score, seed=8)
    mask = MASK if use_mask else None
    assert _compare_with_torch(torch, score, query, keys, params, dcontext, dweights, mask) <= 1e-12


@pytest.mark.parametrize("score", SCORES)
def test_torch_comparison_catches_a_perturbed_input_or_parameter(score):
    """The comparison above can fail: one input or parameter scaled by 1 + 1e-6 on the torch side shows up."""
    torch = pytest.importorskip("torch")
    query, keys, params, dcontext, dweights = _data(score, seed=8)
    assert _compare_with_torch(torch, score, query, keys, params, dcontext, dweights, MASK) <= 1e-12
    for name in ["query", "keys", *params]:
        diff = _compare_with_torch(torch, score, query, keys, params, dcontext, dweights, MASK, perturb=name)
        assert diff > 1e-9, name


def test_init_loads_into_torch_modules_strictly():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    for score in SCORES:
        q_size, k_size = _sizes(score)
        params = init_attention_params(score, q_size, k_size, A, rng, dtype=np.float64)
        module = _torch_attention(torch, score, q_size, k_size)
        assert list(module.state_dict()) == list(params)
        module.load_state_dict({name: torch.from_numpy(value) for name, value in params.items()}, strict=True)


# --- T queries at once (teacher forcing) ---

T = 4


def _multi_query(score, seed=3):
    rng = np.random.default_rng(seed)
    query, keys, params, _, _ = _data(score, seed)
    queries = rng.standard_normal((N, T, query.shape[1]))
    return queries, keys, params, rng.standard_normal((N, T, keys.shape[2])), rng.standard_normal((N, T, S))


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("use_mask", [False, True])
def test_gradcheck_t_queries(score, use_mask):
    queries, keys, params, dcontext, dweights = _multi_query(score)
    mask = MASK if use_mask else None

    def f():
        context, weights, _ = attention_forward(queries, keys, params, mask=mask, score=score)
        return float(np.sum(dcontext * context) + np.sum(dweights * weights))

    context, weights, cache = attention_forward(queries, keys, params, mask=mask, score=score)
    assert context.shape == (N, T, keys.shape[2]) and weights.shape == (N, T, S)
    dquery, dkeys, grads = attention_backward(dcontext, cache, dweights=dweights)
    assert dquery.shape == queries.shape
    assert rel_error(dquery, numerical_gradient(f, queries)) <= 1e-7
    assert rel_error(dkeys, numerical_gradient(f, keys)) <= 1e-7
    for name in params:
        assert rel_error(grads[name], numerical_gradient(f, params[name])) <= 1e-7, name


@pytest.mark.parametrize("score", SCORES)
def test_t_queries_equal_t_single_queries(score):
    """T queries at once give each step's one-query results; the key and parameter gradients are the sums."""
    queries, keys, params, dcontext, dweights = _multi_query(score)
    context, weights, cache = attention_forward(queries, keys, params, mask=MASK, score=score)
    dquery, dkeys, grads = attention_backward(dcontext, cache, dweights=dweights)
    dkeys_sum = np.zeros_like(keys)
    grads_sum = {name: np.zeros_like(value) for name, value in params.items()}
    for t in range(T):
        c_t, w_t, cache_t = attention_forward(queries[:, t], keys, params, mask=MASK, score=score)
        np.testing.assert_allclose(c_t, context[:, t], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(w_t, weights[:, t], rtol=1e-12, atol=1e-13)
        dq_t, dk_t, g_t = attention_backward(dcontext[:, t], cache_t, dweights=dweights[:, t])
        np.testing.assert_allclose(dq_t, dquery[:, t], rtol=1e-10, atol=1e-12)
        dkeys_sum += dk_t
        for name in g_t:
            grads_sum[name] += g_t[name]
    np.testing.assert_allclose(dkeys, dkeys_sum, rtol=1e-10, atol=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], grads_sum[name], rtol=1e-10, atol=1e-12)
