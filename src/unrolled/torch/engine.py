"""The torch training engine: ``unrolled train --engine torch [--device cpu|cuda|cuda:N]``.

The loop stays :func:`unrolled.train.fit` (batches, schedule, evaluation, early stopping, best weights,
callbacks); one step here is the twin's forward pass on the batch's NumPy inputs (moved to the device), autograd,
gradient clipping by global norm and torch's optimizer, with the NumPy engine's exact rules so both engines
follow the same loss curve from the same weights and batches:

- ``torch.optim.Adam``/``AdamW``/``SGD`` for the dense parameters (unrolled's optimizers are torch's equations
  in torch's order of operations);
- the embeddings the NumPy engine updates lazily (``SparseRows``: only the rows a batch used, SparseAdam-style
  moments) are updated the same way here, from the rows of the batch's ids (padding row excluded);
- clipping as ``unrolled.optim.clip_grad_norm`` (global norm in float64, factor ``max_norm / (norm + 1e-6)``).

Distributed: the twin is wrapped in ``DistributedDataParallel`` (gloo on the CPU, nccl on CUDA); each rank's
loss is scaled by ``world · share`` because DDP averages the ranks' gradients, and the lazy rows are the union of
the ranks' rows. The weights come back into the model's NumPy arrays (``sync``) before each evaluation and at
the end, so evaluation, checkpoints, ``predict`` and ``explain`` stay the NumPy engine's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from unrolled.torch import load_into, module_for

__all__ = ["LOSSES", "TorchStepper", "resolve_device"]


def resolve_device(device: str | None) -> torch.device:
    """'cpu', 'cuda' or 'cuda:N' -> a torch.device; ValueError (one line) for one that is not there."""
    name = device or "cpu"
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device: {name!r} is not a device torch knows (expected cpu, cuda or cuda:N)") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {name!r} but torch sees no CUDA GPU on this machine "
                             "(torch.cuda.is_available() is False); use --device cpu")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device: {name!r} but this machine has {count} CUDA GPU(s) (cuda:0 … cuda:{count - 1})")
    elif resolved.type != "cpu":
        raise ValueError(f"device: {name!r}: the torch engine runs on cpu or cuda")
    return resolved


# --- the tasks' losses: (model, tensors) -> (mean loss, {embedding name: the ids that used its rows}) ----------


class _ClassifierLoss:
    def __call__(self, model, t):
        logits = model(t["ids"], t["mask"])
        return F.cross_entropy(logits, t["targets"]), {"embedding.weight": t["ids"]}


class _LanguageModelLoss:
    """Truncated BPTT over one stream: each window starts from the previous window's (detached) state."""

    def __init__(self) -> None:
        self.state = None

    def start_epoch(self) -> None:
        self.state = None  # each epoch starts the streams from zeros, as the NumPy engine

    def __call__(self, model, t):
        logits, state = model(t["x"], self.state)
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t["y"].reshape(-1))
        return loss, {"embedding.weight": t["x"]}


class _ForecasterLoss:
    def __call__(self, model, t):
        return F.mse_loss(model(t["x"]), t["y"]), {}


class _SpeechLoss:
    def __call__(self, model, t):
        logits = model(t["x"], t["mask"])
        if "target_lengths" not in t:
            return F.cross_entropy(logits, t["targets"]), {}
        log_probs = logits.log_softmax(dim=2).transpose(0, 1)  # (T, N, C), as ctc_loss wants
        loss = F.ctc_loss(log_probs, t["targets"], t["mask"].sum(dim=1), t["target_lengths"], blank=0,
                          reduction="mean", zero_infinity=False)
        return loss, {}


class _TranslatorLoss:
    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = label_smoothing

    def __call__(self, model, t):
        logits, _ = model(t["src"], t["src_mask"], t["tgt_in"])
        targets = torch.where(t["tgt_mask"], t["tgt_out"], torch.full_like(t["tgt_out"], -100))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                               label_smoothing=self.label_smoothing)
        return loss, {"encoder.embedding.weight": t["src"], "decoder.embedding.weight": t["tgt_in"]}


LOSSES = {
    "classifier": _ClassifierLoss,
    "language_model": _LanguageModelLoss,
    "forecaster": _ForecasterLoss,
    "speech": _SpeechLoss,
    "translator": _TranslatorLoss,
}


# --- the step ---------------------------------------------------------------------------------------------------


class TorchStepper:
    """One training step of the torch engine (see the module docstring); ``params`` are the model's arrays."""

    def __init__(self, params: dict[str, np.ndarray], task, config, *, device: str | None = None,
                 distributed=None) -> None:
        self.params, self.task, self.config, self.distributed = params, task, config, distributed
        self.device = resolve_device(device)
        if distributed is not None and self.device.type == "cuda":
            if self.device.index is not None:
                raise ValueError(f"device: {device!r} would put every process on one GPU; under torchrun give "
                                 "'cuda' (each process takes cuda:LOCAL_RANK)")
            self.device = torch.device("cuda", distributed.local_rank)  # one GPU per process on each machine
            torch.cuda.set_device(self.device)
        dtype = getattr(torch, np.dtype(next(iter(params.values())).dtype).name)
        torch.manual_seed(config.seed if distributed is None else config.seed + distributed.rank)  # dropout
        module = module_for(task.net_config).to(dtype)
        module.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in params.items()})
        self.module = module.to(self.device)
        named = dict(self.module.named_parameters())
        for name in task.frozen:
            named[name].requires_grad_(False)
        self.loss = LOSSES[task.loss](**task.options)
        # The NumPy engine's lazy rows: the embeddings it gives SparseRows gradients (a tied one is dense).
        lazy = {"classifier": ("embedding.weight",),
                "language_model": () if getattr(task.net_config, "tie_weights", False) else ("embedding.weight",),
                "translator": ("encoder.embedding.weight", "decoder.embedding.weight")}.get(task.loss, ())
        self.rows = {name: named[name] for name in lazy if named[name].requires_grad}
        self.padding = {name: self.module.get_submodule(name.rsplit(".", 1)[0]).padding_idx for name in self.rows}
        self.trainable = [p for p in self.module.parameters() if p.requires_grad]
        dense = [p for name, p in named.items() if p.requires_grad and name not in self.rows]
        self.optimizer = self._optimizer(dense) if dense else None
        self.row_state: dict[str, dict[str, Any]] = {name: {"step": 0} for name in self.rows}
        self.model = self.module
        if distributed is not None:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index or 0] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.module, device_ids=ids)

    def _optimizer(self, dense):
        c = self.config
        if c.optimizer == "adam":
            return torch.optim.Adam(dense, lr=c.lr, weight_decay=c.weight_decay)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(dense, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.SGD(dense, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)

    def start_epoch(self) -> None:
        if hasattr(self.loss, "start_epoch"):
            self.loss.start_epoch()

    def _tensors(self, inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        out = {}
        for name, value in inputs.items():
            value = np.ascontiguousarray(value)
            if value.dtype.kind in "iu":
                value = value.astype(np.int64, copy=False)
            out[name] = torch.from_numpy(value).to(self.device, non_blocking=True)
        return out

    def step(self, batch: object, share: float, rng: np.random.Generator, lr: float) -> float:
        tensors = self._tensors(self.task.inputs(batch, rng))
        for p in self.trainable:
            p.grad = None
        loss, used = self.loss(self.model, tensors)
        world = 1 if self.distributed is None else self.distributed.world_size
        (loss * (share * world)).backward()
        mean_loss, rows = self._loss_and_rows(loss, used, share)
        if not math.isfinite(mean_loss):
            return mean_loss
        if self.config.clip_norm is not None:
            self._clip(self.config.clip_norm)
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
        with torch.no_grad():
            for name, parameter in self.rows.items():
                self._update_rows(name, parameter, rows[name], lr)
        return mean_loss

    def _loss_and_rows(self, loss: torch.Tensor, used: dict[str, torch.Tensor], share: float):
        """The global mean loss, and per lazy embedding the rows the batch used over all ranks (ascending,
        without the padding row): one all-reduce of [loss · share, one row mask per embedding] when
        distributed (DDP has already reduced the gradients)."""
        sizes = [self.rows[name].shape[0] for name in self.rows]
        flat = torch.zeros(1 + sum(sizes), dtype=torch.float64, device=self.device)
        flat[0] = loss.detach() * share
        offset = 1
        for name, size in zip(self.rows, sizes):
            mask = flat[offset : offset + size]
            if share > 0:  # a rank with no rows of its own in this batch adds none
                mask[used[name].reshape(-1)] = 1.0
            if self.padding[name] is not None:
                mask[self.padding[name]] = 0.0
            offset += size
        if self.distributed is not None:
            import torch.distributed as dist

            try:
                dist.all_reduce(flat)
            except RuntimeError as error:
                raise self.distributed._lost(error) from None
        rows, offset = {}, 1
        for name, size in zip(self.rows, sizes):
            rows[name] = torch.nonzero(flat[offset : offset + size], as_tuple=True)[0]
            offset += size
        return float(flat[0]), rows

    def _clip(self, max_norm: float) -> None:
        grads = [p.grad for p in self.trainable if p.grad is not None]
        norms = torch.stack([torch.linalg.vector_norm(g.double()) for g in grads])
        total = float(torch.linalg.vector_norm(norms))
        if not math.isfinite(total):
            return
        coef = max_norm / (total + 1e-6)
        if coef < 1.0:
            for g in grads:
                g.mul_(coef)

    def _update_rows(self, name: str, p: torch.Tensor, idx: torch.Tensor, lr: float) -> None:
        """unrolled.optim's lazy row updates (SparseAdam for Adam/AdamW, row-wise SGD) on the rows idx."""
        c, st = self.config, self.row_state[name]
        dw = p.grad[idx]
        w = p[idx]
        wd = c.weight_decay
        if c.optimizer == "sgd":
            if idx.numel() == 0:
                return
            if wd != 0.0:
                dw = dw + wd * w
            if c.momentum != 0.0:
                buf = st.setdefault("momentum_buffer", torch.zeros_like(p))
                b = buf[idx] * c.momentum + dw
                buf[idx] = b
                dw = b
            p[idx] = w - lr * dw
            return
        st["step"] += 1
        t = st["step"]
        b1, b2 = 0.9, 0.999
        m = st.setdefault("exp_avg", torch.zeros_like(p))
        v = st.setdefault("exp_avg_sq", torch.zeros_like(p))
        step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        if wd != 0.0:
            if c.optimizer == "adamw":
                w = w * (1 - lr * wd)
            else:
                dw = dw + wd * w
        old = m[idx]
        numer = (dw - old) * (1 - b1) + old
        m[idx] = numer
        old = v[idx]
        denom = (dw * dw - old) * (1 - b2) + old
        v[idx] = denom
        p[idx] = w + (numer / (denom.sqrt() + 1e-8)) * -step_size

    def sync(self) -> None:
        """The twin's weights into the model's NumPy arrays."""
        load_into(self.params, self.module)
