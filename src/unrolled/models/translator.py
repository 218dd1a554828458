"""``RNNTranslator``: sentence translation with an attention encoder–decoder, in scikit-learn's style.

    source text -> tokens (unrolled's tokenizer, lower-cased) -> ids -> bidirectional encoder -> bridge
    -> attention decoder (teacher forcing in training; greedy or beam search to translate) -> target tokens
    -> detokenized text

Vocabularies: one per side, from the training pairs, keeping tokens seen ``min_freq`` times (rarer ones
read as ``<unk>``). The target vocabulary adds ``<s>`` (id 2, the first decoder input) and ``</s>`` (id 3,
the end of every reference). An output ``<unk>`` is replaced by the source token the step attended most
(``replace_unk``, Luong et al. 2015), which carries names and numbers over.

Training: length-bucketed batches (similar source lengths), Adam, gradient clipping, label-smoothed token
cross-entropy; after each epoch the dev BLEU of greedy translations is measured and the best epoch's
weights are kept. ``__init__`` only stores its arguments; learned attributes end in ``_``. The library
never prints.
"""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from unrolled.checkpoint import Checkpoint
from unrolled.data.batching import length_bucketed_batches, pad_batch
from unrolled.memory import check_training_memory
from unrolled.models import _restore as restore
from unrolled.models._estimator import Estimator, NotFittedError
from unrolled.models.decoding import Hypothesis, beam_search, greedy_decode, max_lengths
from unrolled.models.translator_net import (
    TranslatorNetConfig,
    encode,
    init_translator_params,
    translator_backward,
    translator_forward,
)
from unrolled.nn.decoder import decoder_step_forward
from unrolled.nn.losses import softmax
from unrolled.nn.recurrent_layer import sub_params
from unrolled.nn._validation import (
    check_nonnegative_int,
    check_nonnegative_number,
    check_positive_int,
    check_probability,
)
from unrolled.text.bleu import BleuScore, corpus_bleu, sacrebleu_score
from unrolled.text.tokenize import tokenize
from unrolled.text.vocab import Vocab
from unrolled.train import TaskState, TorchTask, TrainConfig, TrainHistory, check_engine

__all__ = ["RNNTranslator", "NotFittedError", "detokenize", "train_sentencepiece", "TranslationVocab", "Translation",
           "TranslationScores"]

KIND = "translator"
BOS, EOS = "<s>", "</s>"
BOS_ID, EOS_ID = 2, 3
EVAL_BATCH = 100  # sentences per decoding batch
MAX_SOURCE_TOKENS = 1_000  # the longest sentence translated (decoding is S × output length work)

_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}]|'s|n't|'re|'ve|'ll|'d|'m)(?= |$)")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def detokenize(tokens: Sequence[str]) -> str:
    """Tokens back to text: spaces between words, none before closing punctuation and clitics
    (``a man .`` -> ``a man.``), the first letter upper-cased."""
    text = " ".join(tokens)
    text = _NO_SPACE_BEFORE.sub(r"\1", text)
    text = _NO_SPACE_AFTER.sub(r"\1", text)
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class TranslationVocab:
    """The two vocabularies, saved together in vocab.json as {"source": …, "target": …}; with subwords also
    the sentencepiece model (base64 of its serialized proto, not code) under "sentencepiece", and then one
    joint vocabulary: the model's pieces, ids as sentencepiece numbers them."""

    source: Vocab
    target: Vocab
    sentencepiece: bytes | None = None  # the serialized sentencepiece model; None: word level

    def to_json(self) -> dict[str, Any]:
        obj = {"source": self.source.to_json(), "target": self.target.to_json()}
        if self.sentencepiece is not None:
            obj["sentencepiece"] = base64.b64encode(self.sentencepiece).decode("ascii")
        return obj

    @classmethod
    def from_json(cls, obj: Any, source: str) -> TranslationVocab:
        if not isinstance(obj, dict) or not {"source", "target"} <= set(obj) <= {"source", "target", "sentencepiece"}:
            raise ValueError(f"{source}: expected an object with the keys source and target (and sentencepiece)")
        model = None
        if "sentencepiece" in obj:
            try:
                model = base64.b64decode(obj["sentencepiece"], validate=True)
            except (TypeError, ValueError):
                raise ValueError(f"{source}: sentencepiece: expected the base64 of a sentencepiece model") from None
        vocab = cls(Vocab.from_json(obj["source"], source=f"{source} source"),
                    Vocab.from_json(obj["target"], source=f"{source} target"), model)
        specials = vocab.target.tokens[BOS_ID : EOS_ID + 1]
        if specials != (BOS, EOS):
            raise ValueError(f"{source}: the target vocabulary needs {BOS} at id {BOS_ID} and {EOS} at id {EOS_ID}")
        if model is not None:
            pieces = vocab.pieces(source)
            if list(vocab.target.tokens) != pieces or list(vocab.source.tokens) != pieces:
                raise ValueError(f"{source}: the vocabularies are not the sentencepiece model's pieces")
        return vocab

    @cached_property
    def _processor(self):
        return _sentencepiece().SentencePieceProcessor(model_proto=self.sentencepiece)

    def pieces(self, source: str = "vocab.json") -> list[str]:
        """The sentencepiece model's pieces, in id order."""
        try:
            processor = self._processor
        except RuntimeError as error:  # sentencepiece's error for a damaged model
            raise ValueError(f"{source}: sentencepiece: not a sentencepiece model ({error})") from None
        return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]

    def split(self, text: str) -> list[str]:
        """A sentence as the model's tokens: words (unrolled's tokenizer, lower-cased), or the sentencepiece
        pieces of those words."""
        return self.encode_words(tokenize(text))

    def encode_words(self, words: list[str]) -> list[str]:
        """Tokenized words as the model's tokens: the words themselves, or their sentencepiece pieces."""
        if self.sentencepiece is None:
            return words
        return self._processor.encode(" ".join(words), out_type=str)

    def words(self, tokens: list[str]) -> list[str]:
        """The model's output tokens as words (pieces joined back into words)."""
        return tokens if self.sentencepiece is None else self._processor.decode(tokens).split()


def _sentencepiece():
    try:
        import sentencepiece
    except ImportError:
        raise ImportError("subwords need sentencepiece: pip install 'unrolled[translate]'") from None
    return sentencepiece


def train_sentencepiece(word_lists: Sequence[list[str]], size: int) -> bytes:
    """A unigram sentencepiece model of ``size`` pieces over tokenized sentences (unrolled's tokenizer,
    lower-cased; each joined by spaces), with ``<pad>``, ``<unk>``, ``<s>``, ``</s>`` at ids 0–3 (the ids unrolled's
    vocabularies use). Deterministic: one thread, the texts in order."""
    spm = _sentencepiece()
    model = io.BytesIO()
    lines = (" ".join(words) for words in word_lists)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=lines, model_writer=model, vocab_size=size, model_type="unigram",
            character_coverage=1.0, pad_id=0, unk_id=1, bos_id=2, eos_id=3, num_threads=1, minloglevel=2,
            input_sentence_size=0, shuffle_input_sentence=False,
        )
    except RuntimeError as error:  # e.g. a vocabulary larger than the text allows
        raise ValueError(f"subwords: sentencepiece could not build {size} pieces: {' '.join(str(error).split())}") from None
    return model.getvalue()


@dataclass(frozen=True)
class TranslationScores:
    """What :meth:`RNNTranslator.evaluate` measures of one set of translations."""

    bleu: BleuScore  # tokenized, lower-cased
    sacrebleu: float | None  # 13a, case-insensitive; None without sacreBLEU
    translations: list[str]  # the detokenized output, in input order


@dataclass(frozen=True)
class Translation:
    """One sentence's translation, with what the decoder saw: per output token (``</s>`` last, when it ended
    with one) its probability, the top alternatives and the attention over the source tokens."""

    source_tokens: list[str]  # the model's tokens (words, or sentencepiece pieces)
    tokens: list[str]  # the output tokens (words or pieces), <unk> replaced when replace_unk
    text: str
    log_prob: float
    probabilities: list[float]  # p(token_t | …) per output step (the last: </s>)
    alternatives: list[list[tuple[str, float]]]  # per step, the top-k tokens and their probabilities
    attention: np.ndarray  # (steps, S) α per output step

    @property
    def steps(self) -> list[str]:
        """The output token of each decoder step: the tokens, then ``</s>`` when the translation ended with it."""
        return self.tokens + ["</s>"] if len(self.probabilities) > len(self.tokens) else list(self.tokens)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: the source tokens, the translation, its log-probability and, per step, the token, its
        probability, the top alternatives and the attention over the source tokens."""
        return {
            "source_tokens": list(self.source_tokens), "translation": self.text, "log_prob": float(self.log_prob),
            "steps": [{"token": token, "probability": float(p),
                       "top": [{"token": t, "probability": float(q)} for t, q in alternatives],
                       "attention": [float(a) for a in row]}
                      for token, p, alternatives, row in zip(self.steps, self.probabilities, self.alternatives,
                                                             self.attention)],
        }


def _check_source_length(name: str, tokens: list[str]) -> None:
    if len(tokens) > MAX_SOURCE_TOKENS:
        raise ValueError(f"{name}: {len(tokens):,} tokens; a translator reads sentences of at most "
                         f"{MAX_SOURCE_TOKENS:,} (split the text into sentences)")


def _check_texts(name: str, texts: object) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"{name}: expected a list of str, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{i}]: expected a str, got {type(text).__name__}")
    return list(texts)


class RNNTranslator(Estimator):
    """An attention encoder–decoder translator.

    Parameters
    ----------
    cell, embedding_dim, hidden_size, num_layers, dropout : the network (see :class:`TranslatorNetConfig`);
        ``hidden_size`` is each encoder direction's and the decoder's
    attention : the attention score, "general" (Luong) or "additive" (Bahdanau); ("dot" needs a decoder as
        wide as the encoder states, 2·hidden_size here, so it is refused)
    input_feeding : feed the last attentional state into the next step (Luong); slower to train
    min_freq : word level: tokens seen fewer times in the training pairs read as ``<unk>``
    subwords : None (words), or the size of one sentencepiece unigram vocabulary learnt from both sides'
        training sentences (needs sentencepiece); min_freq is then unused
    batch_size, epochs, lr, clip_norm, patience : training (see :class:`unrolled.train.TrainConfig`)
    label_smoothing : ε of the token loss
    max_steps : stop after this many optimizer steps (None: no limit)
    random_state : int seed; the same seed and data give identical weights

    Attributes (after fit)
    ----------------------
    vocab_ : TranslationVocab
    net_config_ : TranslatorNetConfig
    params_ : dict of arrays under PyTorch-style names
    history_ : TrainHistory (dev metric: BLEU of greedy translations)
    dev_bleu_ : float or None
    """

    def __init__(
        self,
        *,
        cell: str = "gru",
        embedding_dim: int = 256,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.3,
        attention: str = "general",
        input_feeding: bool = False,
        min_freq: int = 2,
        subwords: int | None = None,
        batch_size: int = 64,
        epochs: int = 10,
        lr: float = 1e-3,
        clip_norm: float | None = 1.0,
        patience: int | None = None,
        label_smoothing: float = 0.1,
        max_steps: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.cell = cell
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.attention = attention
        self.input_feeding = input_feeding
        self.min_freq = min_freq
        self.subwords = subwords
        self.batch_size = batch_size
        self.epochs = epochs
        self.lr = lr
        self.clip_norm = clip_norm
        self.patience = patience
        self.label_smoothing = label_smoothing
        self.max_steps = max_steps
        self.random_state = random_state

    KIND = KIND
    _BEST_METRIC = "dev_bleu_"
    _CONFIG_NAME = "translator"
    _FIT_CALL = "fit(sources, targets)"
    _SKLEARN_TARGET_REQUIRED = True
    _SKLEARN_INPUT_TAGS = {"two_d_array": False, "string": True}

    # --- tokens ------------------------------------------------------------------------------------------

    def _source_ids(self, tokens: list[str]) -> list[int]:
        return self.vocab_.source.encode(tokens) if tokens else [Vocab.UNK_ID]

    # --- training ----------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        check_positive_int("min_freq", self.min_freq)
        check_positive_int("subwords", self.subwords, allow_none=True)
        check_probability("label_smoothing", self.label_smoothing, upper_open=False)
        check_nonnegative_int("max_steps", self.max_steps, allow_none=True)

    def fit(self, sources: Sequence[str], targets: Sequence[str], *,
            validation: tuple[Sequence[str], Sequence[str]] | None = None,
            callbacks: Sequence[object] = (), engine: str = "numpy", device: str | None = None,
            distributed=None) -> RNNTranslator:
        """Train on the aligned ``sources`` and ``targets``; ``validation`` = (sources, targets) picks the
        best epoch by BLEU of greedy translations. Returns self. ``engine``, ``device``, ``distributed``: the
        torch engine and data-parallel training (each process's share weighted by its target tokens), as
        :meth:`unrolled.RNNClassifier.fit`."""
        check_engine(engine, device)
        sources, targets = _check_texts("sources", sources), _check_texts("targets", targets)
        if len(sources) != len(targets):
            raise ValueError(f"targets: expected one per source ({len(sources)}), got {len(targets)}")
        if not sources:
            raise ValueError("sources: no training pairs")
        if distributed is not None:
            distributed.check_size(len(sources), "training pairs")
        if validation is not None:
            dev_sources, dev_targets = (_check_texts("validation sources", validation[0]),
                                        _check_texts("validation targets", validation[1]))
            if len(dev_sources) != len(dev_targets) or not dev_sources:
                raise ValueError(f"validation: expected as many targets as sources (at least one), got "
                                 f"{len(dev_sources)} and {len(dev_targets)}")
        self._check_params()
        train_config = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                   clip_norm=self.clip_norm, patience=self.patience, seed=self.random_state)
        started = time.perf_counter()
        source_tokens = [tokenize(text) for text in sources]  # words; pieces of them with subwords
        target_tokens = [tokenize(text) for text in targets]
        for name, token_lists in (("sources", source_tokens), ("targets", target_tokens)):
            for i, tokens in enumerate(token_lists):
                if not tokens:
                    raise ValueError(f"{name}[{i}]: no tokens (an empty or blank sentence)")
        if self.subwords is None:
            source_vocab = Vocab.build(source_tokens, min_freq=self.min_freq)
            built = Vocab.build(target_tokens, min_freq=self.min_freq)
            target_vocab = Vocab([Vocab.PAD, Vocab.UNK, BOS, EOS,
                                  *(t for t in built.tokens[2:] if t not in (BOS, EOS))], min_freq=self.min_freq)
            self.vocab_ = TranslationVocab(source_vocab, target_vocab)
        else:
            model = train_sentencepiece(source_tokens + target_tokens, self.subwords)
            joint = TranslationVocab(Vocab([Vocab.PAD, Vocab.UNK]), Vocab([Vocab.PAD, Vocab.UNK]), model)
            pieces = Vocab(joint.pieces())
            self.vocab_ = TranslationVocab(pieces, pieces, model)
            source_tokens = [self.vocab_.encode_words(words) for words in source_tokens]
            target_tokens = [self.vocab_.encode_words(words) for words in target_tokens]
            source_vocab = target_vocab = pieces
        self.net_config_ = TranslatorNetConfig(
            len(source_vocab), len(target_vocab), embedding_dim=self.embedding_dim, hidden_size=self.hidden_size,
            cell=self.cell, num_layers=self.num_layers, dropout=self.dropout, score=self.attention,
            input_feeding=self.input_feeding,
        )
        longest = max(map(len, source_tokens))
        check_training_memory(self.net_config_, batch_size=min(self.batch_size, len(sources)), steps=longest,
                              target_steps=max(map(len, target_tokens)) + 1, device=device,
                              vocabulary="raise min_freq or use subwords",
                              length=(f"the longest sentence ({longest:,} tokens)", "leave the longest pairs out"))
        self.params_ = init_translator_params(self.net_config_, np.random.default_rng([self.random_state, 1]))
        src_ids = [np.array(source_vocab.encode(t), np.int64) for t in source_tokens]
        tgt_ids = [np.array(target_vocab.encode(t), np.int64) for t in target_tokens]
        lengths = [len(s) for s in src_ids]
        steps_left = [self.max_steps if self.max_steps is not None else -1]
        self.tokens_seen_ = 0

        def make_batches(rng: np.random.Generator) -> list[np.ndarray]:
            batches = length_bucketed_batches(lengths, self.batch_size, shuffle=True, rng=rng)
            if steps_left[0] >= 0:
                batches, steps_left[0] = batches[: steps_left[0]], max(0, steps_left[0] - len(batches))
            return batches

        def batch_inputs(batch: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
            src, src_mask, tgt_in, tgt_out, tgt_mask = self._training_batch([src_ids[i] for i in batch],
                                                                            [tgt_ids[i] for i in batch])
            self.tokens_seen_ += int(tgt_mask.sum()) + int(src_mask.sum())
            return {"src": src, "src_mask": src_mask, "tgt_in": tgt_in, "tgt_out": tgt_out, "tgt_mask": tgt_mask}

        def batch_loss(batch: np.ndarray, rng: np.random.Generator):
            b = batch_inputs(batch, rng)
            loss, _, cache = translator_forward(self.params_, self.net_config_, b["src"], b["src_mask"], b["tgt_in"],
                                                b["tgt_out"], b["tgt_mask"], label_smoothing=self.label_smoothing,
                                                training=True, rng=rng)
            return loss, translator_backward(cache)

        evaluate = None  # the dev metric: BLEU of greedy translations
        if validation is not None:
            evaluate = lambda: self.score_bleu(dev_sources, dev_targets, beam_size=1).score  # noqa: E731

        if self.max_steps == 0:
            self.history_ = TrainHistory()
            self.dev_bleu_ = evaluate() if evaluate is not None else None
        else:
            task = TorchTask(self.net_config_, batch_inputs, "translator",
                             options={"label_smoothing": self.label_smoothing})
            target_tokens = np.array([len(t) + 1 for t in tgt_ids], dtype=np.float64)  # y_1 … </s>

            def set_task_state(saved: dict[str, object]) -> None:  # for resuming
                steps_left[0], self.tokens_seen_ = int(saved["steps_left"]), int(saved["tokens_seen"])

            task_state = TaskState(lambda: {"steps_left": steps_left[0], "tokens_seen": self.tokens_seen_},
                                   set_task_state)
            self.history_ = self._train_loop(make_batches, batch_loss, train_config, evaluate=evaluate,
                                             higher_is_better=True, callbacks=callbacks, engine=engine, device=device,
                                             distributed=distributed, torch_task=task, example_weights=target_tokens,
                                             task_state=task_state)
            self.dev_bleu_ = self.history_.best_metric
        self.training_seconds_ = time.perf_counter() - started + self.seconds_before_resume_
        return self

    @staticmethod
    def _training_batch(sources: list[np.ndarray], targets: list[np.ndarray]):
        src, src_mask = pad_batch(sources)
        tgt_in, tgt_mask = pad_batch([np.concatenate([[BOS_ID], t]) for t in targets])
        tgt_out, _ = pad_batch([np.concatenate([t, [EOS_ID]]) for t in targets])
        return src, src_mask, tgt_in, tgt_out, tgt_mask

    # --- translation -------------------------------------------------------------------------------------

    def _decode(self, texts: list[str], *, beam_size: int, alpha: float, max_len_a: float, max_len_b: float,
                forbid_unk: bool) -> tuple[list[list[str]], list[Hypothesis]]:
        """Tokenized sources and their best hypotheses, in input order."""
        self._check_fitted()
        check_positive_int("beam_size", beam_size)
        for name, value in (("alpha", alpha), ("max_len_a", max_len_a), ("max_len_b", max_len_b)):
            check_nonnegative_number(name, value)
        source_tokens = [self.vocab_.split(text) for text in texts]
        for i, tokens in enumerate(source_tokens):
            _check_source_length(f"texts[{i}]", tokens)
        ids = [np.array(self._source_ids(t), np.int64) for t in source_tokens]
        hypotheses: list[Hypothesis | None] = [None] * len(texts)
        for batch in length_bucketed_batches([len(i) for i in ids], EVAL_BATCH, shuffle=False):
            src, src_mask = pad_batch([ids[i] for i in batch])
            limits = max_lengths(src_mask.sum(axis=1), max_len_a, max_len_b)
            common = dict(bos_id=BOS_ID, eos_id=EOS_ID, unk_id=Vocab.UNK_ID, max_len=limits, forbid_unk=forbid_unk)
            if beam_size == 1:
                found = greedy_decode(self.params_, self.net_config_, src, src_mask, **common)
            else:
                found = beam_search(self.params_, self.net_config_, src, src_mask, beam_size=beam_size, alpha=alpha,
                                    **common)
            for i, hypothesis in zip(batch, found):
                hypotheses[i] = hypothesis
        return source_tokens, hypotheses  # type: ignore[return-value]

    def _output_tokens(self, source_tokens: list[str], hypothesis: Hypothesis, replace_unk: bool) -> list[str]:
        words = self.vocab_.target.decode(hypothesis.tokens)
        if replace_unk:
            words = [source_tokens[pos] if w == Vocab.UNK and pos < len(source_tokens) else w
                     for w, pos in zip(words, hypothesis.attended)]
        return words

    def translate_tokens(self, texts: Sequence[str], *, beam_size: int = 5, alpha: float = 0.6,
                         max_len_a: float = 1.5, max_len_b: float = 5.0, replace_unk: bool = True,
                         forbid_unk: bool = False) -> list[list[str]]:
        """The translations as token lists (lower-cased, as the model writes them)."""
        texts = _check_texts("texts", texts)
        source_tokens, hypotheses = self._decode(texts, beam_size=beam_size, alpha=alpha, max_len_a=max_len_a,
                                                 max_len_b=max_len_b, forbid_unk=forbid_unk)
        return [self.vocab_.words(self._output_tokens(s, h, replace_unk)) for s, h in zip(source_tokens, hypotheses)]

    def translate(self, texts: Sequence[str], *, beam_size: int = 5, alpha: float = 0.6, max_len_a: float = 1.5,
                  max_len_b: float = 5.0, replace_unk: bool = True, forbid_unk: bool = False) -> list[str]:
        """Translate each text: beam search of width ``beam_size`` (1 = greedy) with length penalty ``alpha``;
        at most ⌊max_len_a·S + max_len_b⌋ tokens for a source of S tokens. Returns detokenized sentences."""
        return [detokenize(t) for t in self.translate_tokens(
            texts, beam_size=beam_size, alpha=alpha, max_len_a=max_len_a, max_len_b=max_len_b,
            replace_unk=replace_unk, forbid_unk=forbid_unk)]

    def _translated_tokens(self, sources: Sequence[str], references: Sequence[str],
                           options: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
        sources, references = _check_texts("sources", sources), _check_texts("references", references)
        if len(sources) != len(references):
            raise ValueError(f"references: expected one per source ({len(sources)}), got {len(references)}")
        return self.translate_tokens(sources, **options), references

    def score_bleu(self, sources: Sequence[str], references: Sequence[str], **options: Any) -> BleuScore:
        """Corpus BLEU of the translations of ``sources`` against ``references``, both tokenized and
        lower-cased by unrolled's tokenizer (the metric published Multi30k results use)."""
        hypotheses, references = self._translated_tokens(sources, references, options)
        return corpus_bleu(hypotheses, [tokenize(r) for r in references])

    def evaluate(self, sources: Sequence[str], references: Sequence[str], **options: Any) -> TranslationScores:
        """Translate ``sources`` once (``options`` as :meth:`translate` takes them) and score the translations
        both ways: tokenized BLEU (as :meth:`score_bleu`) and sacreBLEU on the detokenized text (None when
        sacreBLEU is not installed)."""
        hypotheses, references = self._translated_tokens(sources, references, options)
        translations = [detokenize(h) for h in hypotheses]
        return TranslationScores(corpus_bleu(hypotheses, [tokenize(r) for r in references]),
                                 sacrebleu_score(translations, references), translations)

    def score(self, sources: Sequence[str], references: Sequence[str]) -> float:
        """Corpus BLEU (0–100, tokenized, lower-cased) of beam-5 translations: higher is better."""
        return self.score_bleu(sources, references).score

    def explain(self, text: str, *, beam_size: int = 5, alpha: float = 0.6, top_k: int = 5,
                replace_unk: bool = True) -> Translation:
        """Translate one sentence and re-run its decoder along the chosen tokens: per step the chosen
        token's probability, the top-k alternatives and the attention weights over the source tokens."""
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, got {type(text).__name__}")
        check_positive_int("top_k", top_k)
        _check_source_length("text", self.vocab_.split(text))
        (source_tokens,), (hypothesis,) = self._decode([text], beam_size=beam_size, alpha=alpha, max_len_a=1.5,
                                                       max_len_b=5.0, forbid_unk=False)
        src = np.array([self._source_ids(source_tokens)], np.int64)
        mask = np.ones(src.shape, bool)
        keys, state, _ = encode(self.params_, self.net_config_, src, mask, keep_cache=False)
        params = sub_params(self.params_, "decoder.")
        steps = hypothesis.tokens + ([EOS_ID] if hypothesis.finished else [])
        prev, output = np.array([BOS_ID]), None
        probabilities, alternatives, attention = [], [], []
        target = self.vocab_.target
        for token in steps:
            logits, weights, state, output, _ = decoder_step_forward(
                params, self.net_config_.decoder, prev, keys, src_mask=mask, state=state, prev_output=output,
                keep_cache=False)
            probs = softmax(logits[0])
            top = np.argsort(-probs, kind="stable")[:top_k]
            probabilities.append(float(probs[token]))
            alternatives.append([(target.tokens[i], float(probs[i])) for i in top])
            attention.append(weights[0].copy())
            prev = np.array([token])
        tokens = self._output_tokens(source_tokens, hypothesis, replace_unk)
        return Translation(source_tokens, tokens, detokenize(self.vocab_.words(tokens)), hypothesis.log_prob,
                           probabilities, alternatives, np.array(attention).reshape(len(steps), len(source_tokens) or 1))

    # --- checkpoints -------------------------------------------------------------------------------------

    def _config_fields(self) -> dict[str, Any]:
        return {"dev_bleu": self.dev_bleu_}

    def _restore_config(self, config: dict[str, Any]) -> None:
        self.net_config_ = restore.net_config(TranslatorNetConfig, config)
        self.dev_bleu_ = restore.field(config, "dev_bleu")
        if self.dev_bleu_ is not None and (isinstance(self.dev_bleu_, bool)
                                           or not isinstance(self.dev_bleu_, (int, float))):
            raise ValueError(f"dev_bleu: expected a number or null, got {restore.json_value(self.dev_bleu_)}")

    def _restore_checkpoint(self, checkpoint: Checkpoint, path: Path) -> None:
        source = str(path / "vocab.json")
        if checkpoint.vocab is None:
            raise ValueError(f"{source}: missing (a translator needs its vocabularies)")
        self.vocab_ = TranslationVocab.from_json(checkpoint.vocab, source)
        for side, size in (("source", self.net_config_.source_vocab_size),
                           ("target", self.net_config_.target_vocab_size)):
            if len(getattr(self.vocab_, side)) != size:
                raise ValueError(f"{source}: {len(getattr(self.vocab_, side))} {side} tokens, but the model has "
                                 f"{side}_vocab_size {size}")
