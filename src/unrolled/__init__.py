"""unrolled: recurrent neural networks you can see through.

The engine lives in :mod:`unrolled.nn` (Elman RNN, GRU, LSTM; layers, directions, masks; explicit
forward/backward pairs), the optimizers in :mod:`unrolled.optim`, and the networks built from them in
:mod:`unrolled.models`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
