"""unrolled on PyTorch (the ``[torch]`` extra): an exact ``torch.nn.Module`` twin of any unrolled model, weights
back from torch into an unrolled checkpoint, and the torch training engine (``unrolled train --engine torch``).

    import unrolled, unrolled.torch
    model = unrolled.load("sst2-best")
    net = unrolled.torch.to_torch(model)               # TorchClassifier, same tensors, same outputs
    ...                                                # train it on a GPU, wrap it in DDP, export it
    unrolled.torch.from_torch(net, like=model).save("tuned")   # an unrolled checkpoint again

The twins (:mod:`unrolled.torch.modules`, :mod:`unrolled.torch.translator`) keep unrolled's parameter names,
so ``net.state_dict()`` and ``model.params_`` have the same keys and shapes. Nothing in unrolled imports this
package unless asked: PyTorch is never needed to train or predict.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as error:  # one line that says what to install
    raise ImportError(f"unrolled.torch needs PyTorch: pip install 'unrolled[torch]' ({error})") from None

from unrolled.models.classifier_net import ClassifierNetConfig
from unrolled.models.forecaster_net import ForecasterNetConfig
from unrolled.models.lm_net import LMNetConfig
from unrolled.models.speech_net import SpeechNetConfig
from unrolled.models.translator_net import TranslatorNetConfig
from unrolled.torch.modules import TorchClassifier, TorchForecaster, TorchLanguageModel, TorchSpeechNet
from unrolled.torch.translator import TorchTranslator

__all__ = [
    "TorchClassifier", "TorchForecaster", "TorchLanguageModel", "TorchSpeechNet", "TorchTranslator",
    "from_torch", "load_into", "module_for", "to_torch",
]

_MODULES: dict[type, type[nn.Module]] = {
    ClassifierNetConfig: TorchClassifier,
    LMNetConfig: TorchLanguageModel,
    ForecasterNetConfig: TorchForecaster,
    SpeechNetConfig: TorchSpeechNet,
    TranslatorNetConfig: TorchTranslator,
}
_SPARSE = (ClassifierNetConfig, LMNetConfig, TranslatorNetConfig)  # the networks with embeddings


def module_for(net_config: Any, *, sparse_embeddings: bool = False) -> nn.Module:
    """The twin of a network config (``model.net_config_``), with torch's initial weights."""
    module_class = _MODULES.get(type(net_config))
    if module_class is None:
        raise ValueError(f"no PyTorch twin for {type(net_config).__name__}")
    if isinstance(net_config, _SPARSE):
        return module_class(net_config, sparse_embeddings=sparse_embeddings)
    return module_class(net_config)


def to_torch(model: Any, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None,
             sparse_embeddings: bool = False) -> nn.Module:
    """The twin of a fitted unrolled model (or a checkpoint directory / bundled model name) holding its weights.

    ``dtype`` defaults to the model's (float32; float64 for a model trained in float64); ``device`` to the CPU.
    The module comes in eval mode (dropout off), so its outputs are the model's predictions; call ``.train()``
    to fine-tune it.
    """
    if isinstance(model, (str, Path)):
        from unrolled import load

        model = load(model)
    model._check_fitted()
    params = model.params_
    module = module_for(model.net_config_, sparse_embeddings=sparse_embeddings)
    if dtype is None:
        dtype = getattr(torch, np.dtype(next(iter(params.values())).dtype).name)
    module.to(dtype)
    # C-order and writable (a predicting model's first-layer arrays are read-only: torch warns on those)
    module.load_state_dict({name: torch.from_numpy(np.require(value, requirements=("C", "W")))
                            for name, value in params.items()})
    module.eval()
    return module.to(device) if device is not None else module


def load_into(params: dict[str, np.ndarray], module: nn.Module) -> None:
    """Copy a twin's weights into unrolled's parameter arrays, in place (each keeps its dtype); an array that is
    read-only (a predicting classifier's first layer: see unrolled.nn.projection_table) is replaced in
    ``params`` by a new one instead, so that the model's projection tables are built again.

    Raises ValueError naming the first tensor that is missing, extra or of another shape.
    """
    state = module.state_dict()
    missing = [name for name in params if name not in state]
    extra = [name for name in state if name not in params]
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        raise ValueError(f"the torch module does not match the model's parameters ({what})")
    for name, array in params.items():
        value = state[name].detach().to("cpu")
        if tuple(value.shape) != array.shape:
            raise ValueError(f"{name}: the torch module has shape {tuple(value.shape)}, the model {array.shape}")
        if array.flags.writeable:
            array[...] = value.numpy().astype(array.dtype, copy=False)
        else:
            params[name] = value.numpy().astype(array.dtype, copy=True)


def from_torch(module: nn.Module, like: Any) -> Any:
    """A copy of the fitted unrolled model ``like`` (vocabulary, labels, scaling, config) holding the twin's
    weights; ``.save(path)`` writes it as an unrolled checkpoint."""
    like._check_fitted()
    model = copy.deepcopy(like)
    load_into(model.params_, module)
    return model
