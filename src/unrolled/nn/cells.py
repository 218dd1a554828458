"""The cell registry: every recurrent cell the engine has, in one table.

Each entry says what the rest of the package needs to know about a cell: its name (what configs,
checkpoints and the ``--cell`` option say), its title, its gate blocks in PyTorch's row order, the gates
``explain`` reports and their readable names, and its step kernels — the NumPy reference kernels and the
kernels the time loop runs (the C ones of :mod:`unrolled.nn.fused` where the extension knows the kernel,
the NumPy ones otherwise). ``RecurrentConfig``, the command line, ``walkthrough``, ``explain`` and the trace
schema read this table.

Adding a cell: write its kernel (see ``CellKernel`` in :mod:`unrolled.nn.time_loop`, and ``rnn.py`` /
``gru.py`` / ``lstm.py`` for three), add one ``Cell`` here, and it is trainable, checkpointable and
explainable; a C kernel is optional. The walkthrough narrates the cells it has text for, and the plain
reference (nn/reference.py) wants the new cell written out too: docs/architecture.md has the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from unrolled.nn import gru, lstm, rnn
from unrolled.nn.time_loop import CellKernel


@dataclass(frozen=True)
class Cell:
    name: str  # "rnn", "gru", "lstm"
    title: str  # for people: "Elman RNN"
    gates: tuple[str, ...]  # the G blocks of weight_ih / weight_hh rows, in PyTorch's order
    kernels: dict[str, CellKernel]  # nonlinearity -> the kernel the time loop runs
    numpy_kernels: dict[str, CellKernel]  # nonlinearity -> the NumPy reference kernel
    # Saved activations that explain reports as gate traces: kernel.saved_names entry -> readable name.
    explained_gates: dict[str, str] = field(default_factory=dict)

    @property
    def nonlinearities(self) -> tuple[str, ...]:
        return tuple(self.kernels)

    @property
    def num_gates(self) -> int:
        return len(self.gates)

    def kernel(self, nonlinearity: str = "tanh", *, fused: bool = True) -> CellKernel:
        """The step kernel for ``nonlinearity``; ``fused=False`` gives the NumPy reference kernel."""
        kernels = self.kernels if fused else self.numpy_kernels
        if nonlinearity not in kernels:
            if nonlinearity not in NONLINEARITIES:
                raise ValueError(
                    f"nonlinearity: expected {' or '.join(map(repr, NONLINEARITIES))}, got {nonlinearity!r}"
                )
            choosers = " and the ".join(c.title for c in CELLS.values() if len(c.kernels) > 1)
            raise ValueError(f"nonlinearity: only the {choosers} takes one, not {self.name!r}")
        return kernels[nonlinearity]


CELLS: dict[str, Cell] = {
    cell.name: cell
    for cell in (
        Cell("rnn", "Elman RNN", ("h",), {"tanh": rnn.RNN_TANH, "relu": rnn.RNN_RELU},
             {"tanh": rnn.RNN_TANH_NUMPY, "relu": rnn.RNN_RELU_NUMPY}),
        Cell("gru", "GRU", ("r", "z", "n"), {"tanh": gru.GRU}, {"tanh": gru.GRU_NUMPY},
             {"r": "reset", "z": "update"}),
        Cell("lstm", "LSTM", ("i", "f", "g", "o"), {"tanh": lstm.LSTM}, {"tanh": lstm.LSTM_NUMPY},
             {"i": "input", "f": "forget", "o": "output"}),
    )
}
CELL_NAMES = tuple(CELLS)  # the --cell choices, in this order
NONLINEARITIES = tuple(dict.fromkeys(n for cell in CELLS.values() for n in cell.nonlinearities))
GATE_TRACE_NAMES = tuple(dict.fromkeys(name for cell in CELLS.values() for name in cell.explained_gates.values()))


def get_cell(name: str) -> Cell:
    """The registry entry of ``name``; a ValueError lists the cells there are."""
    if name not in CELLS:
        raise ValueError(f"cell: expected one of {', '.join(CELLS)}, got {name!r}")
    return CELLS[name]


__all__ = ["CELLS", "CELL_NAMES", "Cell", "GATE_TRACE_NAMES", "NONLINEARITIES", "get_cell"]
