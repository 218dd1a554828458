"""``RNNLanguageModel``: a character- or word-level recurrent language model that trains on one text and
generates more of it, in scikit-learn's style.

    text -> tokens (characters, or words by unrolled's tokenizer) -> ids -> B parallel streams
    -> windows of ``bptt`` steps -> embedding -> recurrent layer -> next-token logits at every step

Split: the LAST ``validation_fraction`` of the tokens is the validation part (nanoGPT's 90/10 split); the
vocabulary is built from the training part only, so validation tokens it lacks are read as ``<unk>``.

Vocabulary: a :class:`Vocab` at both levels (``<pad>`` id 0, never seen in the stream; ``<unk>`` id 1).
Character level: then the training part's characters in sorted (code-point) order. Word level:
``tokenize`` (lower-cased), then :meth:`Vocab.build` with ``min_freq``. At generation, a prompt character or
word outside the vocabulary is read as ``<unk>`` (``generate(unknown="error")`` refuses it instead, as the
``unrolled generate`` command does), and ``<pad>`` and ``<unk>`` are never generated.

Training is truncated BPTT over one continuous stream (as PyTorch's word_language_model): the windows of
:func:`stream_windows` are visited in order, never shuffled, and the final state of each window is the
initial state of the next, with the gradient cut there; the state is reset to zeros at every epoch's start.
After each epoch the validation loss (mean nats per token, the state carried through the whole validation
part) is measured and the best epoch's weights are kept.

``__init__`` only stores its arguments; ``fit`` validates, trains with :func:`unrolled.train.fit` and sets
the learned attributes, which end in ``_``. The library never prints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from unrolled.checkpoint import Checkpoint
from unrolled.data.stream import stream_windows
from unrolled.memory import check_training_memory
from unrolled.models import _restore as restore
from unrolled.models._estimator import Estimator, NotFittedError
from unrolled.models.lm_net import LMNetConfig, init_lm_params, lm_backward, lm_forward
from unrolled.models.transfer import pretraining_record
from unrolled.nn._validation import check_choice, check_nonnegative_int, check_positive_int, check_probability
from unrolled.nn.fused import cache_line_copy
from unrolled.nn.sampled_softmax import log_uniform_candidates
from unrolled.sampling import check_sampling_options, sample_next
from unrolled.text.tokenize import tokenize
from unrolled.text.vocab import Vocab
from unrolled.train import TaskState, TorchTask, TrainConfig, TrainHistory, check_engine

__all__ = ["RNNLanguageModel", "NotFittedError"]

KIND = "language_model"
LEVELS = ("char", "word")
MAX_LENGTH = 1_000_000  # the most tokens one generate call produces
SPECIAL_TOKENS = (Vocab.PAD, Vocab.UNK)  # never generated
SOFTMAXES = ("full", "sampled")
DIRECTIONS = ("forward", "backward")  # reading order: left to right (the next token), right to left (the one before)
EVAL_WINDOW = 256  # steps per forward call when measuring a loss (the state is carried, so any size is exact)


def _check_text(name: str, text: object) -> str:
    if not isinstance(text, str):
        raise ValueError(f"{name}: expected a str, got {type(text).__name__}")
    if not text:
        raise ValueError(f"{name}: empty")
    nul = text.find("\x00")
    if nul >= 0:
        raise ValueError(f"{name}: contains a NUL character at position {nul}; this looks like binary data, not text")
    return text


class RNNLanguageModel(Estimator):
    """A recurrent language model over characters or words.

    Parameters
    ----------
    level : "char" or "word" (unrolled's tokenizer, lower-cased)
    cell, embedding_dim, hidden_size, num_layers, dropout, tie_weights : the network (see :class:`LMNetConfig`)
    bptt : T, the steps of one truncated-BPTT window
    batch_size : B, the number of parallel streams the training text is cut into
    epochs, lr, clip_norm : training (see :class:`unrolled.train.TrainConfig`); no early stopping: every
        epoch runs and the best one's weights are kept
    validation_fraction : the last part of the tokens, held out (0 = none: the last weights are kept)
    min_freq : word level only; rarer words become ``<unk>``
    max_vocab : word level only; keep at most this many tokens, ``<pad>`` and ``<unk>`` included (the most
        frequent; None: no cap)
    softmax : "full" (the exact softmax over the vocabulary) or "sampled" (training only: the loss estimated
        from each target and ``num_sampled`` candidate words drawn per batch, :mod:`unrolled.nn.sampled_softmax`,
        what makes a word-level model over tens of thousands of words affordable; the validation loss, scores
        and generation keep the full softmax)
    num_sampled : K, the candidates per batch of the sampled softmax
    max_steps : stop after this many optimizer steps (None: no limit; 0 trains nothing, so the model keeps
        its initial weights, whose loss is about ln V)
    init_from : path (or bundled name) of a language model to go on training from, on this text: its
        vocabulary (a token it lacks reads as ``<unk>``) and weights; the network options must be its own, and
        min_freq and max_vocab its own or left unset. ULMFiT's second stage: a language model pretrained on a
        large corpus, fine-tuned on the target task's text before a classifier fine-tunes from it
    direction : "forward" (read left to right, predict the next token) or "backward" (read the text right to
        left and predict the token before: what the backward direction of a bidirectional classifier is
        fine-tuned from, ``RNNClassifier(init_from_backward=…)``; such a model scores text but does not
        generate or explain). The validation part is the text's last part in either direction
    freeze_embeddings : keep the embedding (of ``init_from``) fixed in training; a backward model trained from
        a forward one this way shares its embedding, so one bidirectional classifier can start from both
    random_state : int seed; the same seed and text give identical weights

    Attributes (after fit)
    ----------------------
    vocab_ : Vocab
    start_token_ : str, the training text's first token in the vocabulary (where an empty prompt starts)
    net_config_ : LMNetConfig
    params_ : dict of arrays under PyTorch names
    history_ : TrainHistory (no epochs when max_steps=0)
    val_loss_ : float or None, the validation loss of the kept weights, in nats per token
    pretrained_ : what ``init_from`` started from (path, network, vocabulary size, validation loss, corpus and
        command; saved as config.json's ``training.pretrained_from``), or None
    """

    def __init__(
        self,
        *,
        level: str = "char",
        cell: str = "lstm",
        embedding_dim: int = 64,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        tie_weights: bool = False,
        bptt: int = 64,
        batch_size: int = 32,
        epochs: int = 1,
        lr: float = 2e-3,
        clip_norm: float | None = 1.0,
        validation_fraction: float = 0.1,
        min_freq: int = 1,
        max_vocab: int | None = None,
        softmax: str = "full",
        num_sampled: int = 1024,
        max_steps: int | None = None,
        random_state: int = 0,
        init_from: str | None = None,
        direction: str = "forward",
        freeze_embeddings: bool = False,
    ) -> None:
        self.level = level
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.tie_weights = tie_weights
        self.bptt = bptt
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr = lr
        self.clip_norm = clip_norm
        self.validation_fraction = validation_fraction
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.softmax = softmax
        self.num_sampled = num_sampled
        self.max_steps = max_steps
        self.random_state = random_state
        self.init_from = init_from
        self.direction = direction
        self.freeze_embeddings = freeze_embeddings

    # --- scikit-learn protocol (tags built by Estimator.__sklearn_tags__) ------------------------------

    KIND = KIND
    _BEST_METRIC = "val_loss_"
    _CONFIG_NAME = "language model"
    _FIT_CALL = "fit(text)"
    _SKLEARN_INPUT_TAGS = {"two_d_array": False, "string": True}  # one text

    # --- tokens --------------------------------------------------------------------------------------

    def _tokens(self, text: str) -> list[str]:
        return list(text) if self.level == "char" else tokenize(text)

    def _ids(self, tokens: list[str]) -> np.ndarray:
        return np.array(self.vocab_.encode(tokens), dtype=np.int64)

    def _in_reading_order(self, tokens: list[str]) -> list[str]:
        """The tokens in the order the model reads them: as written (forward) or reversed (backward)."""
        return tokens[::-1] if self.direction == "backward" else tokens

    def _check_forward(self, what: str) -> None:
        if self.direction != "forward":
            raise ValueError(f"{what}: this language model reads right to left (direction {self.direction!r}): it "
                             "predicts the token before, not the next one; use a forward model")

    # --- training ------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level: expected one of {', '.join(LEVELS)}, got {self.level!r}")
        check_positive_int("bptt", self.bptt)
        check_probability("validation_fraction", self.validation_fraction, noun="a number")
        check_nonnegative_int("max_steps", self.max_steps, allow_none=True)
        check_choice("softmax", self.softmax, SOFTMAXES)
        check_positive_int("num_sampled", self.num_sampled)
        check_positive_int("max_vocab", self.max_vocab, allow_none=True)
        if self.level == "char" and self.max_vocab is not None:
            raise ValueError("max_vocab: only for level='word' (the character level keeps every character)")
        if self.max_vocab is not None and self.max_vocab < 3:
            raise ValueError(f"max_vocab: expected at least 3 (<pad>, <unk> and one word), got {self.max_vocab}")
        check_choice("direction", self.direction, DIRECTIONS)
        if not isinstance(self.freeze_embeddings, bool):
            raise ValueError(f"freeze_embeddings: expected a bool, got {self.freeze_embeddings!r}")
        if self.freeze_embeddings and self.init_from is None:
            raise ValueError("freeze_embeddings: there is no pretrained embedding to freeze (set init_from)")
        if self.freeze_embeddings and self.tie_weights:
            raise ValueError("freeze_embeddings: with tie_weights the output layer is the embedding, so it would "
                             "not train either; untie them or leave the embedding free")

    def fit(self, text: str, *, callbacks: Sequence[object] = (), engine: str = "numpy", device: str | None = None,
            distributed=None) -> RNNLanguageModel:
        """Train on ``text`` (its last ``validation_fraction`` held out for validation). Returns self.
        ``engine``, ``device``, ``distributed``: the torch engine and data-parallel training, as
        :meth:`unrolled.RNNClassifier.fit`."""
        text = _check_text("text", text)
        self._check_params()
        check_engine(engine, device)
        if engine != "numpy" and self.softmax == "sampled":
            raise ValueError("softmax: 'sampled' is the NumPy engine's; the torch engine trains the full softmax")
        if distributed is not None:
            distributed.check_size(self.batch_size, "streams (batch_size)")
        train_config = TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, clip_norm=self.clip_norm, patience=None,
            seed=self.random_state,
        )
        tokens = self._tokens(text)
        n_val = int(len(tokens) * self.validation_fraction)
        n_train = len(tokens) - n_val
        if n_train < 2 * self.batch_size:
            raise ValueError(
                f"text: the training part has {n_train} {self.level} tokens, too short for batch_size "
                f"{self.batch_size} (at least {2 * self.batch_size} needed: two per stream); give more text "
                "or lower batch_size"
            )
        if self.validation_fraction > 0 and n_val < 2:
            raise ValueError(f"text: validation_fraction {self.validation_fraction} of {len(tokens)} tokens leaves "
                             f"{n_val} for validation (at least 2 needed); give more text or raise validation_fraction")
        started = time.perf_counter()

        train_tokens = self._in_reading_order(tokens[:n_train])
        base = self._starting_model()
        if base is not None:
            self.vocab_ = base.vocab_
        elif self.level == "char":
            self.vocab_ = Vocab([Vocab.PAD, Vocab.UNK, *sorted(set(train_tokens))])
        else:
            self.vocab_ = Vocab.build([train_tokens], min_freq=self.min_freq, max_size=self.max_vocab)
        if len(self.vocab_) == len(SPECIAL_TOKENS):
            raise ValueError(f"min_freq: no {self.level} of the training text occurs {self.min_freq} times, so the "
                             "vocabulary would hold only <pad> and <unk>; lower min_freq")
        self.start_token_ = next((token for token in train_tokens if token in self.vocab_), None)  # generated as is
        if self.start_token_ is None:  # (init_from's vocabulary; one built from the text holds them all)
            raise ValueError(f"text: none of its {self.level}s is in the vocabulary of init_from {self.init_from}")
        self.net_config_ = LMNetConfig(
            vocab_size=len(self.vocab_), embedding_dim=self.embedding_dim, hidden_size=self.hidden_size,
            cell=self.cell, num_layers=self.num_layers, dropout=self.dropout, tie_weights=self.tie_weights,
        )
        check_training_memory(self.net_config_, batch_size=self.batch_size, steps=self.bptt, device=device,
                              vocabulary="raise min_freq or lower max_vocab" if self.level == "word" else
                              "model words (level word) or a text with fewer distinct characters",
                              length=(f"bptt {self.bptt}", "lower bptt"))
        self.pretrained_ = None
        if base is None:
            self.params_ = init_lm_params(self.net_config_, np.random.default_rng([self.random_state, 1]))
        else:  # the same network (checked), so the same names and shapes
            self.params_ = {name: cache_line_copy(base.params_[name]) for name in self.net_config_.param_shapes()}
            self.pretrained_ = pretraining_record(base, self.init_from)
            del base
        windows = stream_windows(self._ids(train_tokens), self.batch_size, self.bptt)
        val_ids = self._ids(self._in_reading_order(tokens[n_train:]))

        steps_left = self.epochs * len(windows) if self.max_steps is None else self.max_steps
        epochs = min(self.epochs, math.ceil(steps_left / len(windows)))  # the epochs that get a step
        state = None  # the carried state: the final state of the last window trained on

        def make_batches(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
            nonlocal state, steps_left
            state = None  # each epoch starts the streams from zeros
            batches = windows[: min(len(windows), steps_left)]  # in order: row b of window k+1 continues row b of k
            steps_left -= len(batches)
            return batches

        def batch_inputs(batch: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {"x": batch[0], "y": batch[1]}

        def batch_loss(batch: tuple[np.ndarray, np.ndarray], rng: np.random.Generator):
            nonlocal state
            x, y = batch  # (B, T) each
            candidates = (log_uniform_candidates(rng, len(self.vocab_), self.num_sampled)
                          if self.softmax == "sampled" else None)
            _, loss, state, cache = lm_forward(
                self.params_, self.net_config_, x, targets=y, state0=state, training=True, rng=rng,
                candidates=candidates,
            )
            grads, _ = lm_backward(cache)  # truncated BPTT: no gradient flows into the previous window
            if self.freeze_embeddings:
                del grads["embedding.weight"]
            return loss, grads

        def get_task_state() -> dict[str, object]:  # for resuming: what outlives a step besides the weights
            h, c = (state if isinstance(state, tuple) else (state, None))
            return {"steps_left": steps_left, "h": h, "c": c}

        def set_task_state(saved: dict[str, object]) -> None:
            nonlocal state, steps_left
            steps_left = int(saved["steps_left"])
            state = saved["h"] if saved["c"] is None else (saved["h"], saved["c"])

        evaluate = (lambda: self._stream_loss(val_ids)) if n_val else None
        if epochs > 0:
            self.history_: TrainHistory = self._train_loop(
                make_batches, batch_loss, replace(train_config, epochs=epochs), evaluate=evaluate,
                higher_is_better=False, callbacks=callbacks, engine=engine, device=device, distributed=distributed,
                torch_task=TorchTask(self.net_config_, batch_inputs, "language_model",
                                     frozen=("embedding.weight",) if self.freeze_embeddings else ()),
                task_state=TaskState(get_task_state, set_task_state),
            )
            self.val_loss_ = self.history_.best_metric
        else:
            self.history_ = TrainHistory()
            self.val_loss_ = evaluate() if evaluate is not None else None
        self.training_seconds_ = time.perf_counter() - started + self.seconds_before_resume_
        return self

    def _starting_model(self) -> RNNLanguageModel | None:
        """The language model of init_from, checked against this one's options (None without one)."""
        if self.init_from is None:
            return None
        try:
            base = RNNLanguageModel.load(self.init_from)
        except ValueError as error:  # CheckpointError included: the message names the file
            raise ValueError(f"init_from: {error}") from None
        network = ("level", "cell", "embedding_dim", "hidden_size", "num_layers", "tie_weights")
        differ = [f"{name} {getattr(self, name)!r} (its own: {getattr(base, name)!r})" for name in network
                  if getattr(self, name) != getattr(base, name)]
        differ += [f"{name} {getattr(self, name)!r} (its own: {getattr(base, name)!r}; the vocabulary is "
                   "init_from's)" for name, unset in (("min_freq", 1), ("max_vocab", None))
                   if getattr(self, name) not in (unset, getattr(base, name))]
        if differ:
            raise ValueError(f"init_from: {self.init_from} is another language model than this one: "
                             f"{'; '.join(differ)}; give its options")
        return base

    # --- evaluation ----------------------------------------------------------------------------------

    def _stream_loss(self, ids: np.ndarray) -> float:
        """Mean nats per predicted token over one stream ids (len,), the state carried from window to window."""
        state, total = None, 0.0
        for start in range(0, len(ids) - 1, EVAL_WINDOW):
            x = ids[start : start + EVAL_WINDOW][None]  # (1, T)
            y = ids[start + 1 : start + 1 + x.shape[1]][None]
            x = x[:, : y.shape[1]]
            _, loss, state, _ = lm_forward(self.params_, self.net_config_, x, targets=y, state0=state)
            total += float(loss) * y.shape[1]
        return total / (len(ids) - 1)

    def evaluate_loss(self, text: str) -> float:
        """Mean nats per token of predicting each token of ``text`` from the ones before it (the first token is
        only read; a backward model: from the ones after it, the last token only read); tokens outside the
        vocabulary are read, and scored, as ``<unk>``."""
        self._check_fitted()
        ids = self._ids(self._in_reading_order(self._tokens(_check_text("text", text))))
        if len(ids) < 2:
            raise ValueError(f"text: {len(ids)} {self.level} token; at least 2 are needed to score a prediction")
        return self._stream_loss(ids)

    def score(self, text: str) -> float:
        """Minus the mean cross-entropy per token of ``text``, ``-evaluate_loss(text)`` (nats; higher is
        better, as scikit-learn expects; 0 would be certainty about every next token)."""
        return -self.evaluate_loss(text)

    @property
    def bits_per_char(self) -> float:
        """The validation loss in bits per character (``val_loss_ / ln 2``); character level only."""
        self._check_fitted()
        if self.level != "char":
            raise ValueError(f"bits_per_char: only for level='char' (this model's level is {self.level!r})")
        if self.val_loss_ is None:
            raise ValueError("bits_per_char: no validation loss (the model was fitted with validation_fraction=0)")
        return self.val_loss_ / math.log(2)

    # --- generation ----------------------------------------------------------------------------------

    def generate(
        self,
        prompt: str = "",
        length: int = 200,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        unknown: str = "unk",
    ) -> Iterator[str]:
        """Stream ``length`` tokens that continue ``prompt``, each yielded as text as soon as it is drawn.

        The prompt is read in one forward pass from the zero state; each next token is drawn with
        :func:`unrolled.sampling.sample_next` (temperature 0 = greedy) and fed back one step at a time.
        The special tokens ``<pad>`` and ``<unk>`` are never drawn (masked out of every distribution). A
        prompt token outside the vocabulary is read as ``<unk>`` (``unknown="unk"``, the default) or refused
        with a ValueError naming it (``unknown="error"``, as ``unrolled generate`` does). An empty prompt
        starts as the training text did: the first token is the training text's first token in the vocabulary
        (``start_token_``), and the rest are drawn after it. Word level yields each word with a space before
        it, so ``prompt + "".join(...)`` reads as text (no space before the first word of an empty prompt).

        The same ``seed`` gives the same text; ``seed=None`` draws fresh randomness. Arguments are checked
        at the call, before the first token. A backward model (``direction="backward"``) is refused.
        """
        self._check_fitted()
        self._check_forward("generate")
        if not isinstance(prompt, str):
            raise ValueError(f"prompt: expected a str, got {type(prompt).__name__}")
        if "\x00" in prompt:
            raise ValueError("prompt: contains a NUL character; expected text")
        if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or not 0 <= length <= MAX_LENGTH:
            raise ValueError(f"length: expected an integer from 0 to {MAX_LENGTH:,}, got {length!r}")
        check_sampling_options(temperature=temperature, top_k=top_k, top_p=top_p)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed: expected an integer >= 0 or None, got {seed!r}")
        if unknown not in ("unk", "error"):
            raise ValueError(f"unknown: expected 'unk' or 'error', got {unknown!r}")
        tokens = self._tokens(prompt)
        if unknown == "error":
            outside = next((i for i, token in enumerate(tokens) if token not in self.vocab_), None)
            if outside is not None:
                raise ValueError(f"prompt: {tokens[outside]!r} ({self.level} {outside + 1}) is not in the model's "
                                 f"vocabulary of {len(self.vocab_) - 2:,} {self.level}s")
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p,
                       exclude=[self.vocab_.id_of(token) for token in SPECIAL_TOKENS])
        return self._generate(tokens, int(length), options, np.random.default_rng(seed))

    def _generate(self, prompt: list[str], length: int, options: dict[str, Any],
                  rng: np.random.Generator) -> Iterator[str]:
        space = " " if self.level == "word" else ""
        if not prompt:
            if length == 0:
                return
            prompt = [self.start_token_]
            yield self.start_token_  # the text's first token: no space before it
            length -= 1
        logits, _, state, _ = lm_forward(self.params_, self.net_config_, self._ids(prompt)[None])  # (1, P, V)
        for i in range(length):
            token_id = sample_next(logits[0, -1], rng=rng, **options)
            yield space + self.vocab_.tokens[token_id]
            if i + 1 < length:
                logits, _, state, _ = lm_forward(
                    self.params_, self.net_config_, np.array([[token_id]]), state0=state
                )  # (1, 1, V)

    # --- checkpoints (save and load: Estimator) -------------------------------------------------------

    def _config_fields(self) -> dict[str, Any]:
        return {"start_token": self.start_token_, "val_loss": self.val_loss_}

    def _restore_config(self, config: dict[str, Any]) -> None:
        self.net_config_ = restore.net_config(LMNetConfig, config)
        self.pretrained_ = restore.saved_record(config["training"], "pretrained_from")
        if self.level not in LEVELS:
            raise ValueError(f"estimator.level: expected one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"estimator.direction: expected one of {', '.join(DIRECTIONS)}, got {self.direction!r}")
        start = restore.field(config, "start_token")
        if not isinstance(start, str) or not start:
            raise ValueError(f"start_token: expected a non-empty string, got {restore.json_value(start)}")
        self.start_token_ = start
        self.val_loss_ = restore.field(config, "val_loss")
        if self.val_loss_ is not None and (isinstance(self.val_loss_, bool)
                                           or not isinstance(self.val_loss_, (int, float))):
            raise ValueError(f"val_loss: expected a number or null, got {restore.json_value(self.val_loss_)}")

    def _restore_checkpoint(self, checkpoint: Checkpoint, path: Path) -> None:
        vocab_source = str(path / "vocab.json")
        self.vocab_ = restore.load_vocab(checkpoint.vocab, vocab_source, "a language model")
        if len(self.vocab_) != self.net_config_.vocab_size:
            raise ValueError(f"{vocab_source}: {len(self.vocab_)} tokens, but the model has vocab_size "
                             f"{self.net_config_.vocab_size}")
        if self.start_token_ in SPECIAL_TOKENS:
            raise ValueError(f"{path / 'config.json'}: start_token {self.start_token_!r} is a special token; "
                             "generation never starts from one")
        if self.start_token_ not in self.vocab_:  # saved by an older unrolled: the text's first token, maybe rare
            self.start_token_ = next((t for t in self.vocab_.tokens if t not in SPECIAL_TOKENS), None)
            if self.start_token_ is None:
                raise ValueError(f"{path / 'vocab.json'}: no token besides the specials; nothing to generate")
