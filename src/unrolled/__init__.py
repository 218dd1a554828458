"""unrolled: recurrent neural networks you can see through.

The Python API is four scikit-learn-style estimators and one function::

    import unrolled

    model = unrolled.RNNClassifier(cell="gru", hidden_size=64).fit(texts, labels)   # texts -> labels
    model.save("sentiment")
    unrolled.load("sentiment").predict(["I love this"])
    unrolled.load("sst2-best").predict(["I love this"])                            # a bundled model

    unrolled.RNNForecaster(window=24, horizon=12).fit(series)   # a numeric series -> its next values
    unrolled.RNNLanguageModel(level="char").fit(text)           # a text -> more of it (generate)
    unrolled.RNNTranslator().fit(german, english)               # sentences -> their translations

:func:`load` reads any checkpoint directory (or bundled model name) and returns the estimator of its kind.
The estimators are imported on first use, so ``import unrolled`` stays cheap (it does not import NumPy).

The engine lives in :mod:`unrolled.nn` (Elman RNN, GRU, LSTM; layers, directions, masks; explicit
forward/backward pairs), the optimizers in :mod:`unrolled.optim`, and the networks built from them in
:mod:`unrolled.models`.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (which would double the import time)

from unrolled._lazy import lazy_exports

__version__ = "0.1.0"

__all__ = ["RNNClassifier", "RNNForecaster", "RNNLanguageModel", "RNNSpeechRecognizer", "RNNTranslator", "__version__", "load"]

# the estimators: public name -> the module that defines it, imported on first access (PEP 562)
_LAZY = {
    "RNNClassifier": "models.classifier",
    "RNNForecaster": "models.forecaster",
    "RNNLanguageModel": "models.language_model",
    "RNNTranslator": "models.translator",
    "RNNSpeechRecognizer": "models.speech",
}
# checkpoint kind (config.json "kind") -> the estimator that reads it
_BY_KIND = {"classifier": "RNNClassifier", "forecaster": "RNNForecaster", "language_model": "RNNLanguageModel",
            "translator": "RNNTranslator", "speech_recognizer": "RNNSpeechRecognizer"}

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports these on first use
    import os

    from unrolled.models._estimator import Estimator
    from unrolled.models.classifier import RNNClassifier
    from unrolled.models.forecaster import RNNForecaster
    from unrolled.models.language_model import RNNLanguageModel
    from unrolled.models.speech import RNNSpeechRecognizer
    from unrolled.models.translator import RNNTranslator


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


def load(path: "str | os.PathLike[str]") -> "Estimator":
    """The estimator saved in checkpoint directory ``path`` (or the bundled model of that name, e.g.
    ``"sst2-best"``), of whichever kind config.json names: an :class:`RNNClassifier`, :class:`RNNForecaster`
    or :class:`RNNLanguageModel`.

    Raises
    ------
    unrolled.checkpoint.CheckpointError
        One line naming the file: no such directory, not a checkpoint, a kind this version does not know, or
        damaged files.
    ValueError
        A config.json that does not describe its estimator (CheckpointError is a ValueError too).
    """
    from unrolled.checkpoint import CheckpointError, checkpoint_kind
    from unrolled.pretrained import resolve

    directory = resolve(path)
    kind = checkpoint_kind(directory)
    name = _BY_KIND.get(kind)
    if name is None:  # a kind unrolled.checkpoint knows but no estimator reads
        config = directory / "config.json"
        raise CheckpointError(f"{config}: kind {kind!r} has no estimator in this version of unrolled "
                              f"({', '.join(_BY_KIND)})", path=config, field="kind")
    return __getattr__(name).load(directory)
