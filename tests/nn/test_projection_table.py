"""Projection tables (nn/projection_table.py): each word's first-layer input projection kept for inference,
the same bits as the time loop's own product wherever a table is used, and never stale.

The bit-for-bit tests set ``fused.PROJECT_ROWS_MAX`` to 32 on every build that has the C extension, so that
the time loop computes a few rows' projection with ``project_rows`` there as well (what the AVX-512 build does
on its own), and they run on any CPU; where a table would not give the loop's values, it is not used.
"""

from __future__ import annotations

import numpy as np
import pytest

from unrolled.models.classifier_net import (
    ClassifierNetConfig,
    classifier_forward,
    init_classifier_params,
    projection_tables,
    tables_match,
)
from unrolled.nn import fused
from unrolled.nn.projection_table import ProjectionTable, tables_available
from unrolled.nn.recurrent_layer import recurrent_forward
from unrolled.nn.time_loop import input_projection_in_c, sequence_forward

needs_fused = pytest.mark.skipif(not fused.ACTIVE, reason="the C extension unrolled.nn._fused is not built")


@pytest.fixture
def few_rows_in_c(monkeypatch):
    """The time loop projects up to 32 rows in C on this build, as the AVX-512 build does by default."""
    monkeypatch.setattr(fused, "PROJECT_ROWS_MAX", 32)


def _arrays(dtype, v=30, e=6, gh=20, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((v, e)).astype(dtype), rng.standard_normal((gh, e)).astype(dtype),
            rng.standard_normal(gh).astype(dtype))


@needs_fused
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
def test_a_row_is_the_words_embedding_times_the_input_weights_plus_the_bias(dtype, tol):
    embedding, weight, bias = _arrays(dtype)
    table = ProjectionTable(embedding, weight, bias)
    ids = np.array([[3, 7, 3], [0, 29, 7]])
    rows = table.rows(ids)
    assert rows.shape == (2, 3, 20) and rows.dtype == dtype
    exact = embedding.astype(np.float64)[ids] @ weight.astype(np.float64).T + bias
    assert np.abs(rows - exact).max() <= tol * np.abs(exact).max()


@needs_fused
def test_each_word_is_projected_once_and_its_row_kept_bit_for_bit():
    embedding, weight, bias = _arrays(np.float32)
    table = ProjectionTable(embedding, weight, bias)
    first = table.rows(np.array([5, 1, 5]))
    assert table.words == 2
    again = table.rows(np.array([1, 5]))
    assert table.words == 2 and np.array_equal(again, first[[1, 0]])
    everything = table.rows(np.arange(30)[::-1])  # the table grows past its first 16 rows, rows kept
    assert table.words == 30
    alone = np.concatenate([fused.project_rows(embedding[w : w + 1], weight, bias) for w in range(30)])
    assert np.array_equal(everything, alone[::-1])  # each row what project_rows gives the word alone
    assert np.array_equal(table.rows(np.array([5, 1])), first[[0, 1]])


@needs_fused
def test_threads_reading_new_words_at_once_each_get_their_own_rows():
    """project_rows runs without the GIL: rows added from several threads at once must not land on each
    other's places."""
    from concurrent.futures import ThreadPoolExecutor

    embedding, weight, bias = _arrays(np.float32, v=4000, e=64, gh=256)
    alone = fused.project_rows(embedding, weight, bias)
    for trial in range(3):
        table = ProjectionTable(embedding, weight, bias)
        order = np.random.default_rng(trial).permutation(4000).reshape(40, 100)
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(table.rows, order))
        assert table.words == 4000
        assert all(np.array_equal(rows, alone[ids]) for rows, ids in zip(got, order))
        assert np.array_equal(table.rows(np.arange(4000)), alone)


@needs_fused
def test_the_table_makes_its_arrays_read_only_and_knows_them_by_identity():
    embedding, weight, bias = _arrays(np.float32)
    table = ProjectionTable(embedding, weight, bias)
    for array in (embedding, weight, bias):
        with pytest.raises(ValueError, match="read-only"):  # a stale row would be a wrong prediction
            array[0] = 1.0
    assert table.made_from(embedding, weight, bias)
    assert not table.made_from(embedding.copy(), weight, bias)  # the same values, another array


def _net(cell, layers, bidirectional, pooling, dtype, seed=0):
    config = ClassifierNetConfig(vocab_size=12, embedding_dim=5, hidden_size=6, num_classes=3, cell=cell,
                                 num_layers=layers, bidirectional=bidirectional, pooling=pooling, padding_idx=0)
    return config, init_classifier_params(config, np.random.default_rng(seed), dtype=dtype)


BATCHES = {  # ids (N, T), 0 the padding
    "one sentence": np.array([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3]]),
    "padded rows": np.array([[3, 1, 4, 1, 5], [9, 2, 0, 0, 0], [6, 5, 3, 5, 0]]),
    "32 tokens": np.arange(32).reshape(4, 8) % 11 + 1,
    "more than 32": np.arange(36).reshape(4, 9) % 11 + 1,  # the loop's product is BLAS's: no table used
    "5 rows": np.arange(15).reshape(5, 3) % 11 + 1,
}


@needs_fused
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers,bidirectional,pooling", [(1, False, "last"), (2, True, "max"), (1, True, "mean")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_with_tables_are_bit_for_bit_those_without(few_rows_in_c, cell, layers, bidirectional, pooling,
                                                          dtype):
    config, params = _net(cell, layers, bidirectional, pooling, dtype)
    plain = {name: classifier_forward(params, config, ids, mask=ids != 0, keep_cache=False)[0]
             for name, ids in BATCHES.items()}
    tables = projection_tables(params, config)
    assert len(tables) == (2 if bidirectional else 1)
    seen: set[int] = set()
    for name, ids in BATCHES.items():
        mask = ids != 0
        logits = classifier_forward(params, config, ids, mask=mask, keep_cache=False, projections=tables)[0]
        assert np.array_equal(logits, plain[name]), name
        used = input_projection_in_c(config.recurrent.kernel, ids.shape[1], ids.shape[0], 6, mask.T)
        assert used == (name != "more than 32"), name  # 5 rows of 3 steps: unpadded, the loop is C's
        seen |= set(ids.ravel().tolist()) if used else set()
        assert all(table.words == len(seen) for table in tables), name  # the rows of the batches it covered
    training = classifier_forward(params, config, BATCHES["padded rows"], mask=BATCHES["padded rows"] != 0)[0]
    assert np.array_equal(training, plain["padded rows"])  # and the cached forward pass's logits too


@needs_fused
def test_a_batch_the_tables_do_not_cover_reads_no_row(few_rows_in_c):
    config, params = _net("gru", 1, False, "last", np.float32)
    tables = projection_tables(params, config)
    classifier_forward(params, config, BATCHES["more than 32"], keep_cache=False, projections=tables)
    assert tables[0].words == 0
    classifier_forward(params, config, BATCHES["one sentence"], keep_cache=False, projections=tables)
    assert tables[0].words == len(set(BATCHES["one sentence"].ravel()))


@needs_fused
def test_tables_know_which_params_they_were_built_from(few_rows_in_c):
    config, params = _net("lstm", 1, True, "last", np.float32)
    tables = projection_tables(params, config)
    assert tables_match(params, config, tables)
    other = {**params, "rnn.weight_ih_l0_reverse": params["rnn.weight_ih_l0_reverse"].copy()}
    assert not tables_match(other, config, tables)


def test_no_tables_where_the_loop_projects_with_blas(monkeypatch):
    monkeypatch.setattr(fused, "PROJECT_ROWS_MAX", 0)
    config, params = _net("rnn", 1, False, "last", np.float32)
    assert not tables_available(np.float32) and projection_tables(params, config) is None
    assert params["embedding.weight"].flags.writeable


@needs_fused
def test_a_given_input_projection_is_for_inference_only(few_rows_in_c):
    config, params = _net("gru", 1, False, "last", np.float32)
    tables = projection_tables(params, config)
    ids = BATCHES["padded rows"]
    with pytest.raises(ValueError, match="projections: for inference"):
        classifier_forward(params, config, ids, mask=ids != 0, projections=tables)
    with pytest.raises(ValueError, match="projections: for inference"):
        classifier_forward(params, config, ids, mask=ids != 0, keep_cache=False, training=True, projections=tables)
    xw = tables[0].rows(ids.T)
    rec = config.recurrent
    with pytest.raises(ValueError, match="input_projections: for inference"):
        recurrent_forward(None, params, rec, prefix="rnn.", input_projections=(xw,))
    state0 = (np.zeros((3, 6), np.float32),)
    layer = rec.direction_params(params, 0, 0, "rnn.")
    with pytest.raises(ValueError, match="xw: an input projection is given only"):
        sequence_forward(rec.kernel, None, state0, layer, xw=xw)  # keep_cache: training's path
    long = tables[0].rows(BATCHES["more than 32"].T)
    with pytest.raises(ValueError, match="xw: an input projection is given only"):
        sequence_forward(rec.kernel, None, (np.zeros((4, 6), np.float32),), layer, xw=long, keep_cache=False)
