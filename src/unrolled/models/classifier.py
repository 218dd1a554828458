"""``RNNClassifier``: text classification with a recurrent network, in scikit-learn's style.

    texts -> tokens -> ids -> embedding -> recurrent layer -> final state(s) -> linear -> softmax

``__init__`` only stores its arguments (so ``get_params``/``set_params``/``sklearn.base.clone`` work);
``fit`` validates, builds the vocabulary and the label map, trains with :func:`unrolled.train.fit`, and
sets the learned attributes, which end in ``_``. Works inside ``cross_val_score`` and ``Pipeline``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from unrolled.checkpoint import Checkpoint
from unrolled.data.batching import length_bucketed_batches, pad_batch
from unrolled.data.readers import LabelMap
from unrolled.models import _restore as restore
from unrolled.models._estimator import Estimator, NotFittedError
from unrolled.models.classifier_net import (
    ClassifierNetConfig,
    classifier_backward,
    classifier_forward,
    init_classifier_params,
    projection_tables,
    projections_apply,
    tables_match,
)
from unrolled.nn._validation import check_positive_int, check_positive_number, check_probability
from unrolled.nn.losses import softmax
from unrolled.text.tokenize import tokenize
from unrolled.text.vocab import Vocab

# Training's modules (unrolled.train and the optimizers, unrolled.distributed, unrolled.memory,
# unrolled.models.transfer, unrolled.metrics) are imported in the methods that use them: a process that loads
# a model and predicts (``unrolled predict``) does not import them.
if TYPE_CHECKING:
    from unrolled.distributed import Distributed
    from unrolled.metrics import ClassificationReport
    from unrolled.train import TrainConfig, TrainHistory

__all__ = ["RNNClassifier", "NotFittedError"]

KIND = "classifier"
PREDICT_BATCH = 256
LONG_TEXT = 10_000  # tokens; fit warns about a longer training text when max_len is None


def _as_texts(name: str, texts: object) -> list[str]:
    if isinstance(texts, str):
        raise ValueError(f"{name}: expected a list of texts, got a single string (wrap it in a list)")
    try:
        texts = list(texts)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name}: expected a list of texts, got {type(texts).__name__}") from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{i}]: expected a string, got {type(text).__name__}")
    return texts


class RNNClassifier(Estimator):
    """A recurrent text classifier.

    Parameters
    ----------
    cell : "rnn" (Elman, tanh), "gru" or "lstm"
    embedding_dim, hidden_size, num_layers, bidirectional : the network's shape
    dropout : on word vectors, between recurrent layers and on the pooled features, in training
    word_dropout : in training, replace each token by ``<unk>`` with this probability (the model learns to
        read around words it does not know; the rows of rare words get no say over the decision alone)
    embeddings : path of a GloVe / word2vec text file (optionally gzip) whose vectors initialise the
        embedding rows of the words they cover (see ``embedding_coverage_``); its dimension must equal
        ``embedding_dim``. None: PyTorch's N(0, 1) initialisation
    freeze_embeddings : keep the embedding rows fixed in training (useful with ``embeddings``)
    init_from : path of a word-level :class:`unrolled.RNNLanguageModel` checkpoint to fine-tune from: its
        vocabulary, ``embedding.weight`` and ``rnn.*`` tensors are carried over and only the head starts new
        (:mod:`unrolled.models.transfer`); cell, embedding_dim, hidden_size and num_layers must be the language
        model's, and min_freq/max_vocab/embeddings are not used (the vocabulary is the language model's)
    init_from_backward : with ``init_from``, for a bidirectional one-layer classifier: a backward language
        model (``RNNLanguageModel(direction="backward")``) whose recurrent layer starts the right-to-left
        direction (``rnn.*_reverse``), the forward one's the left-to-right direction; the two must share one
        vocabulary and embedding (train the backward one with ``init_from`` the forward one and
        ``freeze_embeddings``)
    layer_lr_decay : discriminative learning rates: the head trains at ``lr``, each group below it (the
        recurrent layers from the top, then the embedding) at 1/``layer_lr_decay`` of the one above (ULMFiT:
        2.6); None: one learning rate
    gradual_unfreeze : epoch 1 trains the head only, each later epoch one group more (top down) until
        everything trains
    pooling : how the outputs over time become one vector: "last" (the final state, as the seed draws it),
        "max" or "mean" over the real steps
    epochs, batch_size, lr, optimizer, weight_decay, clip_norm, schedule, warmup_steps, patience : training
        (see :class:`unrolled.train.TrainConfig`); early stopping needs ``validation`` in ``fit``
    min_freq, max_vocab : vocabulary (words seen fewer than ``min_freq`` times become ``<unk>``)
    lowercase : tokenizer option
    max_len : keep at most this many tokens of a text (None keeps all)
    random_state : int seed; the same seed and data give identical weights

    Attributes (after fit)
    ----------------------
    classes_ : (C,) the labels, in index order
    vocab_ : Vocab
    net_config_ : ClassifierNetConfig
    params_ : dict of arrays under PyTorch names
    history_ : TrainHistory
    embedding_coverage_ : EmbeddingCoverage of the ``embeddings`` file over the vocabulary (None without one)
    pretrained_ : what ``init_from`` started from (path, network, vocabulary size, validation loss, corpus and
        command of the language model; under "backward" the same of ``init_from_backward``), or None
    """

    def __init__(
        self,
        *,
        cell: str = "gru",
        embedding_dim: int = 64,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        word_dropout: float = 0.0,
        embeddings: str | None = None,
        freeze_embeddings: bool = False,
        init_from: str | None = None,
        init_from_backward: str | None = None,
        layer_lr_decay: float | None = None,
        gradual_unfreeze: bool = False,
        pooling: str = "last",
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 2e-3,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        clip_norm: float | None = 5.0,
        schedule: str = "constant",
        warmup_steps: int = 0,
        patience: int | None = 3,
        min_freq: int = 1,
        max_vocab: int | None = None,
        lowercase: bool = True,
        max_len: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.word_dropout = word_dropout
        self.embeddings = embeddings
        self.freeze_embeddings = freeze_embeddings
        self.init_from = init_from
        self.init_from_backward = init_from_backward
        self.layer_lr_decay = layer_lr_decay
        self.gradual_unfreeze = gradual_unfreeze
        self.pooling = pooling
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.patience = patience
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.lowercase = lowercase
        self.max_len = max_len
        self.random_state = random_state

    # --- scikit-learn protocol (tags built by Estimator.__sklearn_tags__) ------------------------------

    KIND = KIND
    _CONFIG_NAME = "classifier"
    _FIT_CALL = "fit(texts, labels)"
    _estimator_type = "classifier"
    _SKLEARN_TARGET_REQUIRED = True
    _SKLEARN_INPUT_TAGS = {"one_d_array": True, "two_d_array": False, "string": True}  # a list of texts

    # --- training ------------------------------------------------------------------------------------

    def _train_config(self) -> TrainConfig:
        from unrolled.train import TrainConfig

        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
            weight_decay=self.weight_decay, clip_norm=self.clip_norm, schedule=self.schedule,
            warmup_steps=self.warmup_steps, patience=self.patience, seed=self.random_state,
        )

    def _encode(self, texts: list[str]) -> list[list[int]]:
        """Texts -> id lists (at most max_len ids; a text with no token becomes one <unk>)."""
        return self._encode_tokens([tokenize(text, lowercase=self.lowercase) for text in texts])

    def _encode_tokens(self, token_lists: list[list[str]]) -> list[list[int]]:
        vocab, max_len = self.vocab_, self.max_len
        return [vocab.encode(tokens)[:max_len] or [Vocab.UNK_ID] for tokens in token_lists]

    def _longest_text(self, token_lists: list[list[str]]) -> dict[str, Any]:
        """The steps of the longest training text (after max_len), for the memory check; without max_len, a
        warning when it is over LONG_TEXT tokens (time and memory grow with the longest text of a batch)."""
        longest = int(np.argmax([len(tokens) for tokens in token_lists]))
        tokens = len(token_lists[longest])
        if self.max_len is None and tokens > LONG_TEXT:
            warnings.warn(f"X[{longest}]: {tokens:,} tokens, and max_len is None: training time and memory grow "
                          f"with the longest text of a batch; set max_len (e.g. {LONG_TEXT:,}) to cap the texts",
                          RuntimeWarning, stacklevel=3)
        return {"steps": max(1, min(tokens, self.max_len or tokens)),
                "length": (f"the longest text ({tokens:,} tokens)", "set max_len")}

    def _load_embeddings(self, token_lists: list[list[str]]) -> None:
        """Overwrite the embedding rows of the words the ``embeddings`` file has; record the coverage."""
        from collections import Counter

        from unrolled.text.embeddings import embedding_matrix, read_word_vectors

        vectors, file_dim = read_word_vectors(self.embeddings, words=set(self.vocab_.tokens))
        if vectors and file_dim != self.embedding_dim:
            raise ValueError(f"{self.embeddings}: word vectors of dimension {file_dim}, but embedding_dim is "
                             f"{self.embedding_dim}; leave embedding_dim to the file or give the same")
        counts = Counter(token for tokens in token_lists for token in tokens)
        table = self.params_["embedding.weight"]
        matrix, self.embedding_coverage_ = embedding_matrix(
            self.vocab_, vectors, self.embedding_dim, init=table, counts=counts
        )
        table[...] = matrix

    def fit(
        self,
        X: Sequence[str],
        y: Sequence[object],
        *,
        validation: tuple[Sequence[str], Sequence[object]] | None = None,
        callbacks: Sequence[object] = (),
        engine: str = "numpy",
        device: str | None = None,
        distributed: Distributed | None = None,
    ) -> RNNClassifier:
        """Train on texts ``X`` with labels ``y``; ``validation=(texts, labels)`` drives early stopping and
        keeps the best epoch's weights. Returns self.

        engine: "numpy", or "torch" on ``device`` (cpu, cuda, cuda:N; PyTorch's autograd and optimizers on the
        model's twin, the same checkpoint); distributed: an :class:`unrolled.distributed.Distributed` group
        (``torchrun``) to train data-parallel, each process on its rows of every batch."""
        from unrolled.memory import check_training_memory
        from unrolled.models import transfer
        from unrolled.train import TaskState, TorchTask, check_engine

        texts = _as_texts("X", X)
        labels = [str(v).strip() for v in y]  # as LabelMap reads them
        if len(texts) != len(labels):
            raise ValueError(f"y: expected {len(texts)} labels (one per text), got {len(labels)}")
        if not texts:
            raise ValueError("X: no training texts")
        train_config = self._train_config()
        check_engine(engine, device)
        if distributed is not None:
            distributed.check_size(len(texts))
        check_positive_int("max_len", self.max_len, allow_none=True)
        check_probability("word_dropout", self.word_dropout)
        if self.freeze_embeddings and self.embeddings is None and self.init_from is None:
            raise ValueError("freeze_embeddings: there are no pretrained embeddings to freeze (set embeddings or "
                             "init_from)")
        self._check_fine_tuning(engine)
        started = time.perf_counter()

        lm, lm_backward = self._pretrained_language_models()
        token_lists = [tokenize(t, lowercase=self.lowercase) for t in texts]
        self.vocab_ = lm.vocab_ if lm is not None else Vocab.build(token_lists, min_freq=self.min_freq,
                                                                    max_size=self.max_vocab)
        self.label_map_ = LabelMap.fit(labels)
        if len(self.label_map_) < 2:
            raise ValueError(f"y: only one class ({self.label_map_.names[0]!r}); a classifier needs at least two")
        originals = {str(v).strip(): v for v in y}
        self.classes_ = np.array([originals[name] for name in self.label_map_.names])
        self.net_config_ = ClassifierNetConfig(
            vocab_size=len(self.vocab_), embedding_dim=self.embedding_dim, hidden_size=self.hidden_size,
            num_classes=len(self.classes_), cell=self.cell, num_layers=self.num_layers,
            bidirectional=self.bidirectional, dropout=self.dropout, padding_idx=self.vocab_.id_of(Vocab.PAD),
            pooling=self.pooling,
        )
        check_training_memory(self.net_config_, batch_size=min(self.batch_size, len(texts)), device=device,
                              **self._longest_text(token_lists))
        self.params_ = init_classifier_params(self.net_config_, np.random.default_rng([self.random_state, 1]))
        self.__dict__.pop("_tables", None)  # the projection tables of the arrays before
        self.embedding_coverage_ = None
        if self.embeddings is not None:
            self._load_embeddings(token_lists)
        self.pretrained_ = None
        if lm is not None:
            self.params_.update(transfer.carried_tensors(lm, lm_backward))
            self.params_["embedding.weight"][self.net_config_.padding_idx] = 0.0  # padding reads as nothing
            self.pretrained_ = transfer.pretraining_record(lm, self.init_from)
            if lm_backward is not None:
                self.pretrained_["backward"] = transfer.pretraining_record(lm_backward, self.init_from_backward)
            del lm, lm_backward

        train_ids = self._encode_tokens(token_lists)
        del token_lists
        train_targets = self.label_map_.encode(labels)
        lengths = [len(ids) for ids in train_ids]
        pad_id = self.vocab_.id_of(Vocab.PAD)

        def batch_inputs(batch: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
            ids, mask = pad_batch([train_ids[i] for i in batch], pad_id=pad_id)
            if self.word_dropout > 0.0:
                ids[(rng.random(ids.shape) < self.word_dropout) & mask] = Vocab.UNK_ID
            return {"ids": ids, "mask": mask, "targets": train_targets[batch]}

        groups = transfer.layer_groups(list(self.params_))  # the head first, the embedding last
        epoch = 0  # the epoch in progress, for gradual unfreezing (make_batches starts each one)

        def make_batches(rng: np.random.Generator) -> list[np.ndarray]:
            nonlocal epoch
            epoch += 1
            return length_bucketed_batches(lengths, train_config.batch_size, shuffle=True, rng=rng)

        def batch_loss(batch: np.ndarray, rng: np.random.Generator):
            b = batch_inputs(batch, rng)
            _, loss, cache = classifier_forward(
                self.params_, self.net_config_, b["ids"], mask=b["mask"], targets=b["targets"], training=True, rng=rng
            )
            grads = classifier_backward(cache)
            if self.freeze_embeddings:
                del grads["embedding.weight"]
            if self.gradual_unfreeze:
                trainable = transfer.trainable_in_epoch(groups, epoch)
                grads = {name: grad for name, grad in grads.items() if name in trainable}
            return loss, grads

        def set_epoch(saved: dict[str, object]) -> None:
            nonlocal epoch
            epoch = int(saved["epoch"])

        evaluate = None
        if validation is not None:
            dev_texts = _as_texts("validation texts", validation[0])
            dev_targets = self.label_map_.encode([str(v) for v in validation[1]])
            if len(dev_texts) != len(dev_targets):
                raise ValueError("validation: expected as many labels as texts")
            dev_ids = self._encode(dev_texts)

            def evaluate() -> float:
                return float(np.mean(self._proba_of_ids(dev_ids).argmax(axis=1) == dev_targets))

        frozen = ("embedding.weight",) if self.freeze_embeddings else ()
        schedules: dict[str, Any] = {}
        if self.layer_lr_decay is not None:
            schedules["lr_scales"] = transfer.discriminative_lr_scales(groups, self.layer_lr_decay)
        if self.gradual_unfreeze:  # a resumed run must know the epoch it is in
            schedules["task_state"] = TaskState(lambda: {"epoch": epoch}, set_epoch)
        self.history_: TrainHistory = self._train_loop(
            make_batches, batch_loss, train_config, evaluate=evaluate, callbacks=callbacks, engine=engine,
            device=device, distributed=distributed,
            torch_task=TorchTask(self.net_config_, batch_inputs, "classifier", frozen=frozen), **schedules,
        )
        self.training_seconds_ = time.perf_counter() - started + self.seconds_before_resume_
        return self

    def _check_fine_tuning(self, engine: str) -> None:
        """init_from, layer_lr_decay and gradual_unfreeze, and what they rule out."""
        check_positive_number("layer_lr_decay", self.layer_lr_decay, allow_none=True)
        if not isinstance(self.gradual_unfreeze, bool):
            raise ValueError(f"gradual_unfreeze: expected a bool, got {self.gradual_unfreeze!r}")
        if engine != "numpy" and (self.layer_lr_decay is not None or self.gradual_unfreeze):
            raise ValueError("layer_lr_decay, gradual_unfreeze: the NumPy engine's schedules (engine='numpy')")
        if self.init_from is None:
            if self.init_from_backward is not None:
                raise ValueError("init_from_backward: needs init_from, the forward language model (the two start "
                                 "the two directions of one bidirectional classifier)")
            return
        if self.embeddings is not None:
            raise ValueError("embeddings: init_from already gives the word vectors (the language model's); "
                             "use one or the other")
        taken = {"max_vocab": (self.max_vocab, None), "min_freq": (self.min_freq, 1)}
        for name, (value, default) in taken.items():
            if value != default:
                raise ValueError(f"{name}: the vocabulary is the language model's (init_from), so {name} "
                                 f"{value!r} would be ignored; leave it at {default!r}")
        if not self.lowercase:
            raise ValueError("lowercase: a word-level language model reads lower-cased words, so the classifier "
                             "it starts must too (lowercase True)")

    def _pretrained_language_models(self):
        """The language models of init_from and init_from_backward, checked against this classifier's network
        and each other (None for each not given)."""
        if self.init_from is None:
            return None, None
        from unrolled.models import transfer

        network = dict(cell=self.cell, embedding_dim=self.embedding_dim, hidden_size=self.hidden_size,
                       num_layers=self.num_layers)
        lm = transfer.load_language_model(self.init_from)
        transfer.check_same_network(lm, self.init_from, **network)
        lm_backward = None
        if self.init_from_backward is not None:
            lm_backward = transfer.load_language_model(self.init_from_backward, "init_from_backward")
            transfer.check_same_network(lm_backward, self.init_from_backward, **network, option="init_from_backward")
        transfer.check_directions(lm, self.init_from, lm_backward, self.init_from_backward,
                                  bidirectional=self.bidirectional, num_layers=self.num_layers)
        if lm_backward is not None:
            transfer.check_shared_embedding(lm, self.init_from, lm_backward, self.init_from_backward)
        return lm, lm_backward

    # --- inference -----------------------------------------------------------------------------------

    def _projections(self):
        """The first layer's projection tables (classifier_net.projection_tables): kept from one prediction to
        the next, built again when ``params_`` holds other arrays; None while training runs (its arrays change
        in place) and where this build has no use for them."""
        if getattr(self, "_training", False):
            return None
        tables = getattr(self, "_tables", None)
        if tables is None or not tables_match(self.params_, self.net_config_, tables):
            tables = self._tables = projection_tables(self.params_, self.net_config_)  # None: no use for them
        return tables

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (and deep-copied) without the projection tables: rows to compute again, not state."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_tables", "_training")}

    def _proba_of_ids(self, encoded: list[list[int]]) -> np.ndarray:
        """(N, C) probabilities, computed in length-sorted batches and put back in input order."""
        probs = np.empty((len(encoded), self.net_config_.num_classes), dtype=np.float64)
        pad_id = self.vocab_.id_of(Vocab.PAD)
        lengths = [len(ids) for ids in encoded]
        for batch in length_bucketed_batches(lengths, PREDICT_BATCH, shuffle=False):
            ids, mask = pad_batch([encoded[i] for i in batch], pad_id=pad_id)
            # tables only for a batch that reads them (they make the arrays they read read-only)
            projections = self._projections() if projections_apply(self.net_config_, ids, mask) else None
            logits, _, _ = classifier_forward(self.params_, self.net_config_, ids, mask=mask, keep_cache=False,
                                              projections=projections)
            probs[batch] = softmax(logits.astype(np.float64))
        return probs

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """(N, C) class probabilities, columns in the order of ``classes_``."""
        self._check_fitted()
        texts = _as_texts("X", X)
        if not texts:
            return np.empty((0, len(self.classes_)))
        return self._proba_of_ids(self._encode(texts))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """(N,) the most probable label of each text."""
        self._check_fitted()
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X: Sequence[str], y: Sequence[object]) -> float:
        """Accuracy (higher is better, as scikit-learn expects)."""
        return float(np.mean(self.predict(X).astype(str) == np.array([str(v) for v in y])))

    def evaluate(self, X: Sequence[str], y: Sequence[object], *, path: str | None = None,
                 lines: Sequence[int] | None = None) -> ClassificationReport:
        """Accuracy, per-class precision/recall/F1 and the confusion matrix (labels must be known)."""
        from unrolled.metrics import classification_report

        self._check_fitted()
        targets = self.label_map_.encode([str(v) for v in y], path=path, lines=lines)
        predicted = self.predict_proba(X).argmax(axis=1)
        return classification_report(targets, predicted, self.label_map_.names)

    def cut_vocabulary(self, size: int) -> RNNClassifier:
        """A copy that keeps the first ``size`` tokens of the vocabulary (<pad>, <unk> and then the most
        frequent) with their embedding rows; every other token then reads as <unk>. It shrinks a model
        fine-tuned from a large language model's vocabulary to a file-size budget: a text whose tokens are
        all kept gets the same probabilities as before, bit for bit. Recorded in config.json when saved
        (``training.vocabulary_cut``)."""
        self._check_fitted()
        vocab_size = len(self.vocab_)
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 2 <= size <= vocab_size:
            raise ValueError(f"size: expected an integer from 2 to {vocab_size} (the vocabulary's size, <pad> and "
                             f"<unk> included), got {size!r}")
        size = int(size)
        cut = copy.copy(self)
        cut.vocab_ = Vocab(self.vocab_.tokens[:size], min_freq=self.vocab_.min_freq, max_size=size)
        cut.params_ = {**self.params_, "embedding.weight": self.params_["embedding.weight"][:size].copy()}
        cut.net_config_ = dataclasses.replace(self.net_config_, vocab_size=size)
        earlier = getattr(self, "vocabulary_cut_", None)
        cut.vocabulary_cut_ = {"kept": size, "of": vocab_size if earlier is None else earlier["of"]}
        return cut

    # --- checkpoints (save and load: Estimator) -------------------------------------------------------

    def _config_fields(self) -> dict[str, Any]:
        return {"labels": self.label_map_.to_json(),
                "classes": [c.item() if hasattr(c, "item") else c for c in self.classes_]}

    def _training_record(self) -> dict[str, Any]:
        coverage = getattr(self, "embedding_coverage_", None)
        record = {**super()._training_record(),
                  "embedding_coverage": coverage.to_json() if coverage is not None else None}
        if getattr(self, "vocabulary_cut_", None) is not None:  # only cut_vocabulary's copies
            record["vocabulary_cut"] = self.vocabulary_cut_
        return record

    def _restore_config(self, config: dict[str, Any]) -> None:
        self.net_config_ = restore.net_config(ClassifierNetConfig, config)
        check_positive_int("estimator.max_len", self.max_len, allow_none=True)
        self.label_map_ = LabelMap.from_json(restore.field(config, "labels"), source="labels")
        names, num_classes = self.label_map_.names, self.net_config_.num_classes
        if len(names) != num_classes:
            raise ValueError(f"labels: {len(names)} names ({', '.join(map(repr, names))}), but the network has "
                             f"model.num_classes {num_classes}")
        self.classes_ = np.array(_restored_classes(restore.field(config, "classes"), names))
        training = config["training"]  # an object (restore.training_record has checked it)
        self.pretrained_ = restore.saved_record(training, "pretrained_from")
        self.vocabulary_cut_ = restore.saved_record(training, "vocabulary_cut")
        display = config.get("label_names") or {}
        if not isinstance(display, dict) or not all(isinstance(v, str) for v in display.values()):
            raise ValueError(f"label_names: expected an object of label -> display name strings, got "
                             f"{restore.json_value(display)}")

    def _restore_checkpoint(self, checkpoint: Checkpoint, path: Path) -> None:
        self.vocab_ = restore.load_vocab(checkpoint.vocab, path / "vocab.json", "a classifier")
        if len(self.vocab_) != self.net_config_.vocab_size:
            raise ValueError(
                f"{path / 'vocab.json'}: {len(self.vocab_)} tokens, but the model has "
                f"vocab_size {self.net_config_.vocab_size}"
            )
        padding = self.net_config_.padding_idx
        if padding is not None and padding != self.vocab_.id_of(Vocab.PAD):
            raise ValueError(f"{path / 'config.json'}: model.padding_idx {padding} is not the id of "
                             f"{Vocab.PAD} in vocab.json ({self.vocab_.id_of(Vocab.PAD)})")


def _restored_classes(classes: object, names: Sequence[str]) -> list[object]:
    """config.json's "classes": one JSON string, number or boolean per label name, in the same order (the
    labels as fit was given them, so ``str(c).strip()`` is the name)."""
    if not isinstance(classes, list):
        raise ValueError(f"classes: expected an array of {len(names)} labels, got {restore.json_value(classes)}")
    if len(classes) != len(names):
        raise ValueError(f"classes: {len(classes)} label{'s' if len(classes) != 1 else ''}, but labels.names has "
                         f"{len(names)}")
    for i, (value, name) in enumerate(zip(classes, names)):
        if not isinstance(value, (str, int, float)) or str(value).strip() != name:
            raise ValueError(f"classes[{i}]: {restore.json_value(value)} does not match labels.names[{i}] {name!r}")
    return classes
