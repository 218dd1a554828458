"""The cell registry (nn/cells.py): one entry makes a cell trainable, checkpointable and explainable."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from unrolled.nn import cells, gru
from unrolled.nn.recurrent_layer import RecurrentConfig


@pytest.fixture
def new_cell(monkeypatch):
    """A cell the package has never heard of: the GRU's NumPy kernel under another name, registered."""
    kernel = dataclasses.replace(gru.GRU_NUMPY, name="gru_copy")
    entry = cells.Cell("gru_copy", "GRU copy", ("r", "z", "n"), {"tanh": kernel}, {"tanh": kernel},
                       {"z": "update"})
    monkeypatch.setitem(cells.CELLS, "gru_copy", entry)
    return entry


def test_a_registered_cell_trains_saves_loads_and_explains(new_cell, tmp_path):
    from unrolled.explain import explain
    from unrolled.models.classifier import RNNClassifier

    texts = ["good film", "great fun", "bad film", "dull mess"] * 2
    labels = ["pos", "pos", "neg", "neg"] * 2
    model = RNNClassifier(cell="gru_copy", embedding_dim=4, hidden_size=5, epochs=3, batch_size=4).fit(texts, labels)
    reference = RNNClassifier(cell="gru", embedding_dim=4, hidden_size=5, epochs=3, batch_size=4).fit(texts, labels)
    # the same math as the GRU's NumPy kernels, so the same model up to the fused kernels' last bits
    np.testing.assert_allclose(model.predict_proba(texts), reference.predict_proba(texts), rtol=1e-4, atol=1e-6)
    model.save(tmp_path / "m")
    loaded = RNNClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    trace = explain(loaded, "good film")
    assert trace.model["cell"] == "gru_copy" and set(trace.gates) == {"update"}


def test_registry_lookups_and_errors(new_cell):
    assert RecurrentConfig("gru_copy", 3, 4).kernel is new_cell.kernel()
    assert cells.get_cell("lstm").num_gates == 4 and cells.CELLS["rnn"].nonlinearities == ("tanh", "relu")
    with pytest.raises(ValueError, match="cell: expected one of rnn, gru, lstm, gru_copy, got 'nope'"):
        cells.get_cell("nope")
    with pytest.raises(ValueError, match="nonlinearity: only the Elman RNN takes one, not 'gru_copy'"):
        RecurrentConfig("gru_copy", 3, 4, nonlinearity="relu")
    with pytest.raises(ValueError, match="nonlinearity: expected 'tanh' or 'relu', got 'sigmoid'"):
        RecurrentConfig("rnn", 3, 4, nonlinearity="sigmoid")
