"""Data-parallel training over ``torch.distributed``, for both engines.

``torchrun --nproc_per_node=N -m unrolled train …`` starts N processes with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address in their environment; :func:`from_environment` reads them and
:meth:`Distributed.start` joins the process group (gloo on the CPU, nccl for CUDA devices). Multi-node runs are
torchrun's business (``--nnodes``, ``--rdzv-endpoint``): unrolled only sees a larger world.

How a global batch is split (what ``DistributedSampler`` does per epoch, done per batch): every rank builds the
same epoch of batches from the same seed, then takes rows ``rank, rank + W, rank + 2W, …`` of each batch. The
union over ranks is the global batch, so W processes with batch B train as one process with batch B (exactly, up
to the rounding of split sums, when training draws no noise: a single process draws dropout and augmentation from
the batch-order stream, a distributed run from a per-rank one, so with noise the runs differ from epoch 2):

- the NumPy engine all-reduces its hand-written gradients, each rank's weighted by its share of the batch's loss
  terms (rows, or target tokens for the translator), so the sum is the gradient of the global mean loss; the
  embeddings' sparse rows are all-gathered and summed row by row;
- the torch engine wraps the twin in ``DistributedDataParallel`` and scales each rank's loss by
  ``W · share``, since DDP averages gradients over ranks.

A rank whose share of a small last batch is empty computes on one row with weight 0 (its contribution is
zeros), so every rank takes part in every collective; a global batch smaller than the world is refused.
Randomness: the batch order comes from the shared seed, the noise (dropout, augmentation) from a per-rank
stream. Evaluation runs on the whole dev set in every rank (no padded duplicates) and every rank takes rank
0's metric, so early stopping agrees even where BLAS rounding differs between machines. Only rank 0 prints and
writes checkpoints (the CLI's part).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unrolled.nn.embedding import SparseRows

__all__ = ["Distributed", "DistributedError", "from_environment", "leave"]

_joined = False  # this process's group was started by Distributed.start (and is unrolled's to end)


class DistributedError(RuntimeError):
    """The process group cannot start, or another rank went away; one line for the user."""


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise DistributedError(f"{name}={value!r}: expected an integer (set by torchrun)") from None


def from_environment() -> Distributed | None:
    """The torchrun world this process belongs to, or None for a single process (no WORLD_SIZE, or 1)."""
    if "WORLD_SIZE" not in os.environ or _env_int("WORLD_SIZE") <= 1:
        return None
    rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
    local = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    if not 0 <= rank < world:
        raise DistributedError(f"RANK={rank}: expected 0 <= RANK < WORLD_SIZE={world}")
    return Distributed(rank=rank, world_size=world, local_rank=local)


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int = 0
    timeout_seconds: float = 600.0  # how long a collective waits for a rank that stopped answering

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --- the process group ----------------------------------------------------------------------------------

    def start(self, device: str | None = None) -> None:
        """Join the process group (``env://`` rendezvous, as torchrun sets it up); a no-op if joined.

        CUDA runs get nccl for the model's tensors and gloo for the loop's few CPU numbers."""
        global _joined
        try:
            import torch.distributed as dist
        except ImportError:
            raise DistributedError("data-parallel training needs torch: pip install 'unrolled[torch]'") from None
        if dist.is_initialized():
            return
        backend = "cpu:gloo,cuda:nccl" if device is not None and str(device).startswith("cuda") else "gloo"
        try:
            dist.init_process_group(backend, rank=self.rank, world_size=self.world_size,
                                    timeout=datetime.timedelta(seconds=self.timeout_seconds))
        except (RuntimeError, ValueError) as error:
            raise DistributedError(f"cannot join the {backend} process group as rank {self.rank} of "
                                   f"{self.world_size} ({error})") from None
        _joined = True

    def stop(self) -> None:
        leave()

    # --- splitting batches ------------------------------------------------------------------------------------

    def check_batch_size(self, batch_size: int) -> None:
        """Refuse a global batch smaller than the world: some rank would never have a row of its own."""
        if batch_size < self.world_size:
            raise ValueError(f"batch_size: {batch_size} rows per global batch for {self.world_size} processes "
                             f"(each process takes every {self.world_size}th row): use a batch of at least "
                             f"{self.world_size} or fewer processes")

    def check_size(self, examples: int, what: str = "training examples") -> None:
        """Refuse a world larger than the data: some rank would never see an example."""
        if examples < self.world_size:
            raise ValueError(f"{self.world_size} processes but only {examples} {what}: "
                             f"use at most {examples} processes (torchrun --nproc_per_node)")

    def shard(self, batch: Any, example_weights: np.ndarray | None = None) -> tuple[Any, float]:
        """This rank's rows of a batch and their share of its loss terms.

        batch: an index array (N,) or a tuple of arrays with N rows (a language model's (x, y) window);
        example_weights: loss terms per example index (rows count 1 each when None).
        """
        rows = batch[0] if isinstance(batch, tuple) else batch
        n = len(rows)
        take = np.arange(self.rank, n, self.world_size)
        share = 0.0
        if take.size == 0:
            take = np.arange(1)  # one row with weight 0: the rank still joins the collectives
        elif example_weights is None:
            share = take.size / n
        else:
            share = float(example_weights[rows[take]].sum() / example_weights[rows].sum())
        if isinstance(batch, tuple):
            return tuple(part[take] for part in batch), share
        return batch[take], share

    # --- collectives ------------------------------------------------------------------------------------------

    def _lost(self, error: Exception) -> DistributedError:
        return DistributedError(f"lost contact with another training process ({' '.join(str(error).split())}); "
                                "the job stops (that rank's own error, if it had one, is above)")

    def from_rank_0(self, value: float) -> float:
        """Rank 0's value of a number, in every rank (the dev metric: one decision for early stopping)."""
        return self.all_sum([value if self.rank == 0 else 0.0])[0]

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Sums of a few numbers over the ranks (float64)."""
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(list(values), dtype=torch.float64)
        try:
            dist.all_reduce(tensor)
        except RuntimeError as error:
            raise self._lost(error) from None
        return tensor.tolist()

    def reduce_gradients(self, loss: float, grads: Mapping[str, np.ndarray | SparseRows],
                         share: float) -> tuple[float, dict[str, np.ndarray | SparseRows]]:
        """The global mean loss and gradients from each rank's (mean loss, gradients, share).

        Two collectives per step, whatever the model: one all-reduce of a flat buffer holding every dense
        gradient (scaled by the share), the loss and each rank's count of sparse rows; then, for models with
        embeddings, one all-gather of every rank's sparse rows (indices and values packed as bytes).
        """
        import torch
        import torch.distributed as dist

        names = sorted(grads)  # the same order in every rank
        dense = [name for name in names if not isinstance(grads[name], SparseRows)]
        sparse = [name for name in names if isinstance(grads[name], SparseRows)]
        dtype = np.result_type(*[grads[n].values if n in sparse else grads[n] for n in names])
        world = self.world_size
        sizes = [grads[name].size for name in dense]
        flat = np.zeros(sum(sizes) + 1 + world * len(sparse), dtype=dtype)
        offset = 0
        for name, size in zip(dense, sizes):
            if share > 0:  # a rank with no rows of its own adds zeros (not 0 · its dummy row, which may be inf)
                np.multiply(grads[name].reshape(-1), share, out=flat[offset : offset + size])
            offset += size
        flat[offset] = loss * share if share > 0 else 0.0
        counts = flat[offset + 1 :].reshape(len(sparse), world)
        for j, name in enumerate(sparse):
            counts[j, self.rank] = grads[name].indices.size if share > 0 else 0  # no rows of its own: none
        try:
            dist.all_reduce(torch.from_numpy(flat))  # in place, through the shared memory
            out: dict[str, np.ndarray | SparseRows] = {}
            offset = 0
            for name, size in zip(dense, sizes):
                out[name] = flat[offset : offset + size].reshape(grads[name].shape)
                offset += size
            if sparse:
                out.update(self._sum_rows({name: grads[name] for name in sparse}, counts.astype(np.int64), share))
        except RuntimeError as error:
            raise self._lost(error) from None
        return float(flat[offset]), out

    def _sum_rows(self, grads: dict[str, SparseRows], counts: np.ndarray, share: float) -> dict[str, SparseRows]:
        """All-gather every rank's rows and add them up: the rows any rank used, unique and ascending.

        counts (P, W): rows of sparse parameter p in rank r. Each rank packs, per parameter, ``max_r counts``
        slots of int64 indices and of values, so every rank's buffer has the same size."""
        import torch
        import torch.distributed as dist

        widths = counts.max(axis=1)
        parts = []
        for (name, grad), width, count in zip(grads.items(), widths, counts[:, self.rank]):
            indices = np.zeros(width, np.int64)
            indices[:count] = grad.indices[:count]
            values = np.zeros((width, grad.values.shape[1]), grad.values.dtype)
            if count:
                np.multiply(grad.values[:count], share, out=values[:count])
            parts += [indices.view(np.uint8), values.reshape(-1).view(np.uint8)]
        mine = torch.from_numpy(np.concatenate(parts))
        gathered = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(gathered, mine)
        out = {}
        offset = 0
        for j, (name, grad) in enumerate(grads.items()):
            width, dim, dtype = widths[j], grad.values.shape[1], grad.values.dtype
            index_bytes, value_bytes = width * 8, width * dim * dtype.itemsize
            idx, vals = [], []
            for rank, buffer in enumerate(gathered):
                raw = buffer.numpy()
                n = counts[j, rank]
                idx.append(raw[offset : offset + index_bytes].view(np.int64)[:n])
                vals.append(raw[offset + index_bytes : offset + index_bytes + value_bytes].view(dtype)
                            .reshape(width, dim)[:n])
            offset += index_bytes + value_bytes
            rows, where = np.unique(np.concatenate(idx), return_inverse=True)
            summed = np.zeros((rows.size, dim), dtype=dtype)
            np.add.at(summed, where, np.concatenate(vals))  # rank order: the same sum in every rank
            out[name] = SparseRows(rows.astype(np.int64), summed, grad.num_rows)
        return out


def leave() -> None:
    """End the process group if :meth:`Distributed.start` began it (never one its caller started)."""
    global _joined
    if _joined:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        _joined = False
