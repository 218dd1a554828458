"""How much memory training needs, checked before it allocates any: a ``hidden_size`` of 200,000 or a
vocabulary of ten million words fails at once with one line saying what to lower, not after minutes of
swapping or with the kernel's out-of-memory kill.

    parameters   P · itemsize · 5     weights, gradients, Adam's two moments and the best epoch's copy
    activations  B · T · H · L · D · (G + 1) · itemsize · 2
                                      what backpropagation through time keeps for a batch of B sequences of
                                      T steps: every step's G gate values and its state, for each of L layers
                                      and D directions, and as much again for their gradients
                 + B · T · (E + O) · itemsize · 2
                                      the word vectors (E) and the outputs (O: the vocabulary of a language
                                      model's or translator's next-token logits, per step)

It is an estimate (a little under the peak, which also holds temporary arrays), so only a run that cannot
fit is refused. :func:`available_bytes` reads what the machine has free (``MemAvailable``, and a cgroup's
limit where one is lower); ``UNROLLED_MEMORY_LIMIT`` (bytes) sets it instead, e.g. to test the check.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MEMORY_LIMIT_ENV", "available_bytes", "check_training_memory", "format_bytes", "training_bytes"]

MEMORY_LIMIT_ENV = "UNROLLED_MEMORY_LIMIT"
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # gate activations a cell keeps per step and unit
OPTIMIZER_COPIES = 5  # weights, gradients, 2 Adam moments, best weights
CLOSE = 0.9  # a second size that would save this share of what the first saves is named too


def available_bytes() -> int | None:
    """Bytes that training may use: ``UNROLLED_MEMORY_LIMIT`` when set, else the memory the system has
    available (``MemAvailable`` of /proc/meminfo, lowered to a cgroup v2 limit's headroom, else
    ``os.sysconf``); None when it cannot be told (no check is made then)."""
    override = os.environ.get(MEMORY_LIMIT_ENV)
    if override is not None:
        try:
            value = int(float(override))
        except ValueError:
            raise ValueError(f"{MEMORY_LIMIT_ENV}: expected a number of bytes, got {override!r}") from None
        if value <= 0:
            raise ValueError(f"{MEMORY_LIMIT_ENV}: expected a positive number of bytes, got {override!r}")
        return value
    found = _meminfo_available()
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            found = None
    cgroup = _cgroup_headroom()
    if cgroup is not None:
        found = cgroup if found is None else min(found, cgroup)
    return found


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    """memory.max − (memory.current − inactive file cache) of this process's cgroup (v2), or None without a
    limit: the cache of files read is counted in memory.current but given back under pressure."""
    try:
        root = Path("/sys/fs/cgroup")
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int((root / "memory.current").read_text().strip())
        try:
            stat = dict(line.split() for line in (root / "memory.stat").read_text().splitlines())
            used -= int(stat.get("inactive_file", 0))
        except (OSError, ValueError):
            pass
        return max(0, int(limit) - max(used, 0))
    except (OSError, ValueError):
        return None


def format_bytes(n: float) -> str:
    """1234567 -> '1.2 MiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def training_bytes(net_config: Any, *, batch_size: int, steps: int, target_steps: int | None = None,
                   itemsize: int = 4) -> int:
    """The estimate of the module docstring for one task's network config (a ClassifierNetConfig,
    LMNetConfig, ForecasterNetConfig, TranslatorNetConfig or SpeechNetConfig), a batch of ``batch_size``
    sequences of ``steps`` steps (a translator's source; ``target_steps`` its output) and ``itemsize``-byte
    floats."""
    parameters = sum(math.prod(shape) for shape in net_config.param_shapes().values())
    target_steps = target_steps or steps
    activations = 0
    for rec, length in _recurrent_layers(net_config, steps, target_steps):
        activations += (batch_size * length * rec.hidden_size * rec.num_layers * rec.num_directions
                        * (GATES.get(rec.cell, 4) + 1))
    embedding = getattr(net_config, "embedding_dim", 0)
    if hasattr(net_config, "target_vocab_size"):  # a translator: both sides' vectors, the target's logits
        activations += batch_size * (steps * embedding + target_steps * (embedding + net_config.target_vocab_size))
    else:  # a language model has next-token logits at every step; the other tasks one small output
        logits = net_config.vocab_size if _is_language_model(net_config) else 0
        activations += batch_size * steps * (embedding + logits)
    return (parameters * OPTIMIZER_COPIES + activations * 2) * itemsize


def _recurrent_layers(net_config: Any, steps: int, target_steps: int) -> list[tuple[Any, int]]:
    """The recurrent layers of a network config, each with the steps it runs over."""
    if hasattr(net_config, "encoder") and hasattr(net_config, "decoder"):  # a translator
        return [(net_config.encoder, steps), (net_config.decoder.recurrent, target_steps)]
    return [(net_config.recurrent, steps)]


def _is_language_model(net_config: Any) -> bool:
    return hasattr(net_config, "vocab_size") and not hasattr(net_config, "num_classes")


# sizes a message can name, with what lowers them
_SIZES = {
    "hidden_size": "lower hidden_size",
    "embedding_dim": "lower embedding_dim",
    "num_layers": "lower num_layers",
}
_VOCABULARIES = {"vocab_size": 2, "source_vocab_size": 2, "target_vocab_size": 4}  # the smallest each can be


def check_training_memory(net_config: Any, *, batch_size: int, steps: int, target_steps: int | None = None,
                          itemsize: int = 4, device: str | None = None,
                          vocabulary: str = "lower max_vocab or raise min_freq",
                          length: tuple[str, str] | None = None) -> None:
    """Raise ValueError, one line naming the size to lower, when :func:`training_bytes` exceeds
    :func:`available_bytes` (training on a GPU, ``device`` "cuda…", keeps only the weights and their best
    copy in this machine's memory). ``vocabulary``: how to shrink the vocabulary, for the message;
    ``length``: what the ``steps`` are and how to shorten them, e.g. ("the longest text (12,000 tokens)",
    "set max_len")."""
    available = available_bytes()
    if available is None:
        return
    on_gpu = device is not None and str(device).startswith("cuda")

    def estimate(config: Any = net_config, batch: int = batch_size, length_: int = steps) -> int:
        if on_gpu:
            return 2 * itemsize * sum(math.prod(shape) for shape in config.param_shapes().values())
        return training_bytes(config, batch_size=batch, steps=length_, target_steps=target_steps,
                              itemsize=itemsize)

    needed = estimate()
    if needed <= available:
        return
    # Name the size whose smallest value would save the most: (saving, what it is, how to lower it).
    candidates = [(needed - estimate(batch=1), f"batch_size {batch_size}", "lower batch_size")]
    fields = {f.name for f in dataclasses.fields(net_config)}
    tied = getattr(net_config, "tie_weights", False)
    for name, remedy in _SIZES.items():
        if name in fields:
            changes = {"hidden_size": 1, "embedding_dim": 1} if tied and name != "num_layers" else {name: 1}
            smaller = _replaced(net_config, changes)
            if smaller is not None:
                candidates.append((needed - estimate(smaller), f"{name} {getattr(net_config, name)}", remedy))
    vocabularies = {name: least for name, least in _VOCABULARIES.items() if name in fields}
    smaller = _replaced(net_config, vocabularies) if vocabularies else None
    if smaller is not None:
        sizes = " + ".join(f"{getattr(net_config, name):,}" for name in vocabularies)
        candidates.append((needed - estimate(smaller), f"a vocabulary of {sizes} tokens", vocabulary))
    if length is not None:
        candidates.append((needed - estimate(length_=1), length[0], length[1]))
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)
    (best, what, remedy), (second, other, other_remedy) = candidates[0], candidates[1]
    if second >= CLOSE * best:  # a product of two sizes (vocabulary x embedding_dim): either lowers it
        what, remedy = f"{what} and {other}", f"{remedy}, or {other_remedy}"
    holds = "the weights and their best copy" if on_gpu else "weights, gradients, Adam's moments, activations"
    where = f" ({MEMORY_LIMIT_ENV})" if os.environ.get(MEMORY_LIMIT_ENV) is not None else \
        f" (set {MEMORY_LIMIT_ENV} to a number of bytes if this machine frees more)"
    raise ValueError(f"{what}: training needs about {format_bytes(needed)} ({holds}), {format_bytes(available)} "
                     f"available{where}; {remedy}")


def _replaced(config: Any, changes: Mapping[str, int]) -> Any:
    """``config`` with some sizes changed, or None if the config refuses that combination."""
    try:
        return dataclasses.replace(config, **changes)
    except (TypeError, ValueError):
        return None
