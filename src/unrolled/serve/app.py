"""The HTTP API and the explorer pages: ``create_app(models)`` -> a FastAPI (ASGI) app.

Models are the ones given at start, chosen by name in each request (``"model": "sst2-rnn"``; omitted: the first
model of the kind the endpoint needs) — never a path from a request. Endpoints (JSON in, JSON out; the schema
is at ``/openapi.json``, browsable at ``/docs``):

    GET  /api/models                 the models, their kinds and what the pages need to know
    POST /api/predict                classifier: labels and probabilities of texts
    POST /api/explain                classifier: the full trace (``unrolled explain --json``); language model: the
                                     per-step next-token distributions; translator: tokens, alternatives, attention
    POST /api/generate               language model: text, streamed as NDJSON lines {"text": …}, then {"done": true}
    POST /api/forecast               forecaster: the forecast after given values, with the naive baselines
    POST /api/translate              translator: translations
    POST /api/transcribe             speech recognizer: a base64 WAV -> transcript, probability, features, posteriors
    GET  /api/walkthrough            the seed's worked example (``?cell=rnn|gru|lstm``)
    GET  /api/walkthrough/weights    its default weights, the word vectors among them
    POST /api/walkthrough            the example recomputed with edited weights
    POST /api/match                  classifier: the phrases of the match dataset where a hidden unit fires most
    GET  /, /walkthrough, /static/…  the explorer pages

Bad input is a 4xx with ``{"error": {"field": "texts[0]", "message": "…"}}``: 422 for a request that does not fit
the schema, 400 for one the model refuses, 404 for an unknown model, 413 for a body over the size limit.
Every request's work is bounded (:class:`Limits`: texts, characters, tokens to generate, steps, audio bytes)
and timed (``timeout_seconds``: 503 past it). Each model computes one request at a time (a lock per model),
in a worker thread, so the server stays responsive and concurrent requests are safe.
"""

import asyncio
import base64
import binascii
import json
import math
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

import unrolled

__all__ = ["ApiError", "Limits", "create_app"]

STATIC = Path(__file__).with_name("static")
KINDS = ("classifier", "language_model", "forecaster", "translator", "speech_recognizer")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 6 * 2**20  # a request's body (a base64 WAV of 4 MiB fits)
    max_texts: int = 64  # texts per predict/translate request
    max_chars: int = 5_000  # characters per text
    max_generate: int = 2_000  # tokens per generate request
    max_values: int = 100_000  # history values per forecast request
    max_steps: int = 1_000  # forecast steps
    max_match_texts: int = 20_000  # phrases of the match dataset kept
    timeout_seconds: float = 30.0  # a request's compute


class ApiError(Exception):
    """A request the API refuses: HTTP ``status``, the request ``field`` it is about, one-line ``message``."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


def _error(status: int, field: str | None, message: str) -> JSONResponse:
    return JSONResponse({"error": {"field": field, "message": message}}, status_code=status)


def _field_of(message: str) -> str | None:
    """The field a library message names first ("text: empty" -> "text"), if it starts with one."""
    head = message.split(":", 1)[0]
    return head if head and len(head) < 40 and " " not in head.strip() else None


# --- requests -------------------------------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Name | None = Field(default=None, description="a model's name (GET /api/models); omitted: the first "
                                                         "model of the kind the endpoint needs")


def _text(limits: Limits):
    return Annotated[str, StringConstraints(min_length=1, max_length=limits.max_chars)]


def _requests(limits: Limits) -> SimpleNamespace:
    """The request bodies, with the server's limits in their schema."""
    Text = _text(limits)

    class PredictRequest(_Request):
        texts: list[Text] = Field(min_length=1, max_length=limits.max_texts)

    class ExplainRequest(_Request):
        text: Text
        label: Annotated[str, StringConstraints(max_length=200)] | None = Field(
            default=None, description="classifier: the class the loss is taken against (default: the prediction)")

    class GenerateRequest(_Request):
        prompt: Annotated[str, StringConstraints(max_length=limits.max_chars)] = ""
        length: int = Field(default=200, ge=0, le=limits.max_generate)
        temperature: float = Field(default=1.0, ge=0.0, le=100.0, allow_inf_nan=False)
        top_k: int | None = Field(default=None, ge=1, le=1_000_000)
        top_p: float | None = Field(default=None, gt=0.0, le=1.0, allow_inf_nan=False)
        seed: int | None = Field(default=None, ge=0, le=2**63 - 1)

    class ForecastRequest(_Request):
        values: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(min_length=1, max_length=limits.max_values)
        steps: int | None = Field(default=None, ge=1, le=limits.max_steps)
        season: int | None = Field(default=None, ge=2, le=10_000, description="period of the seasonal baseline")

    class TranslateRequest(_Request):
        texts: list[Text] = Field(min_length=1, max_length=limits.max_texts)
        beam: int = Field(default=5, ge=1, le=16)

    class TranscribeRequest(_Request):
        audio: Annotated[str, StringConstraints(min_length=1, max_length=limits.max_body_bytes)] = Field(
            description="a WAV file, base64-encoded")
        beam: int | None = Field(default=None, ge=1, le=64)

    class WalkthroughRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        cell: str = Field(default="rnn", pattern="^(rnn|gru|lstm)$")
        weights: dict[str, Any] | None = Field(default=None, description="the six arrays (GET /api/walkthrough/"
                                                                         "weights); omitted: the defaults")
        embeddings: list[list[float]] | None = Field(default=None, description='the (3, D) vectors of "I", '
                                                                               '"love", "this"')
        lr: float | None = Field(default=None, gt=0.0, le=1e6, allow_inf_nan=False)

    class MatchRequest(_Request):
        unit: int = Field(ge=0, le=1_000_000, description="a unit of the top layer's hidden state: direction · H "
                                                          "+ j for the trace's h[t][direction][j]")
        top: int = Field(default=10, ge=1, le=100)

    return SimpleNamespace(**{c.__name__: c for c in (
        PredictRequest, ExplainRequest, GenerateRequest, ForecastRequest, TranslateRequest, TranscribeRequest,
        WalkthroughRequest, MatchRequest)})


# --- the models -------------------------------------------------------------------------------------------------


class _Served:
    """A model, its name and the lock that makes it compute one request at a time."""

    def __init__(self, name: str, model: Any) -> None:
        self.name, self.model, self.kind = name, model, model.KIND
        self.lock = threading.Lock()
        self.match: _MatchIndex | None = None

    def describe(self) -> dict[str, Any]:
        model, config = self.model, self.model.net_config_
        info: dict[str, Any] = {"name": self.name, "kind": self.kind}
        recurrent = getattr(config, "recurrent", None) or getattr(config, "encoder", None)
        if recurrent is not None:
            info.update(cell=recurrent.cell, num_layers=recurrent.num_layers, hidden_size=recurrent.hidden_size,
                        bidirectional=recurrent.bidirectional)
        if self.kind == "classifier":
            info["classes"] = [str(c) for c in model.classes_]
        elif self.kind == "forecaster":
            info.update(window=model.window, horizon=model.horizon, columns=list(model.columns_))
        elif self.kind == "language_model":
            info["level"] = model.level
        elif self.kind == "speech_recognizer":
            info.update(objective=model.objective, symbols=list(model.symbols_))
        return info


class _MatchIndex:
    """Per phrase of the match dataset and per hidden unit (top layer, directions concatenated): the
    highest activation over the phrase's steps and the step where it is."""

    def __init__(self, model: Any, texts: Sequence[str]) -> None:
        from unrolled.data.batching import length_bucketed_batches, pad_batch
        from unrolled.nn.embedding import embedding_forward
        from unrolled.nn.recurrent_layer import recurrent_forward
        from unrolled.text.tokenize import tokenize
        from unrolled.text.vocab import Vocab

        config = model.net_config_
        self.texts = list(texts)
        self.tokens = [tokenize(t, lowercase=model.lowercase)[: model.max_len] or [Vocab.UNK] for t in self.texts]
        encoded = model._encode(self.texts)
        width = config.recurrent.output_size
        self.peak = np.full((len(encoded), width), -np.inf)
        self.where = np.zeros((len(encoded), width), np.int64)
        for batch in length_bucketed_batches([len(e) for e in encoded], 256, shuffle=False):
            ids, mask = pad_batch([encoded[i] for i in batch], pad_id=model.vocab_.id_of(Vocab.PAD))
            x, _ = embedding_forward(ids, model.params_["embedding.weight"], config.padding_idx, check=False)
            out, _, _ = recurrent_forward(x, model.params_, config.recurrent, mask=mask, prefix="rnn.",
                                          keep_cache=False)
            out = np.where(mask[:, :, None], out, -np.inf)
            self.peak[batch] = out.max(axis=1)
            self.where[batch] = out.argmax(axis=1)

    def top(self, unit: int, k: int) -> list[dict[str, Any]]:
        order = np.argsort(-self.peak[:, unit], kind="stable")[:k]
        return [{"text": self.texts[i], "tokens": self.tokens[i], "position": int(self.where[i, unit]),
                 "activation": float(self.peak[i, unit])} for i in order]


class _BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is a 413 before the app sees it (declared lengths at once,
    chunked bodies as they arrive, buffered up to the limit)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_big = _error(413, None, f"the request body is over the limit of {self.limit:,} bytes")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                return await too_big(scope, receive, send)
            return await self.app(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await too_big(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


class _PredictBatcher:
    """Micro-batching of one classifier's predict requests: the requests that arrive while a batch computes
    wait together and go through ``predict_proba`` as the next batch, one worker-thread hop for all of them.
    Under concurrent load this is what keeps the latency low: one padded batch costs little more than one text."""

    def __init__(self, served: _Served, timeout: float) -> None:
        self.served, self.timeout = served, timeout
        # A queue and its worker per event loop (a server runs one; a test client may run several at once).
        self.queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.workers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def predict(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        queue = self.queues.get(loop)
        if queue is None:
            queue = self.queues[loop] = asyncio.Queue()
        worker = self.workers.get(loop)
        if worker is None or worker.done():
            self.workers[loop] = loop.create_task(self._work(queue))
        future = loop.create_future()
        queue.put_nowait((texts, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except asyncio.TimeoutError:
            raise ApiError(503, None, f"the request took longer than {self.timeout:g} s") from None

    def _proba(self, texts: list[str]) -> np.ndarray:
        with self.served.lock:
            return self.served.model.predict_proba(texts)

    async def _work(self, queue: asyncio.Queue) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            texts = [text for request, _ in batch for text in request]
            try:
                proba = await run_in_threadpool(self._proba, texts)
            except Exception:  # one request's input broke the batch: each alone, so each gets its own answer
                for request, future in batch:
                    try:
                        future.set_result(await run_in_threadpool(self._proba, request))
                    except Exception as error:
                        future.set_exception(error)
                continue
            start = 0
            for request, future in batch:
                if not future.done():
                    future.set_result(proba[start : start + len(request)])
                start += len(request)


# --- the app ------------------------------------------------------------------------------------------------------


def create_app(models: Mapping[str, Any], *, match_texts: Sequence[str] | None = None,
               limits: Limits | None = None) -> FastAPI:
    """The ASGI app serving ``models`` (name -> a fitted or loaded unrolled estimator).

    match_texts: phrases (e.g. a training file's texts) for the match view of classifiers' hidden units.
    """
    limits = limits or Limits()
    if not models:
        raise ValueError("models: give at least one model to serve")
    served = {}
    for name, model in models.items():
        if getattr(model, "KIND", None) not in KINDS:
            raise ValueError(f"models[{name!r}]: not an unrolled model (got {type(model).__name__})")
        model._check_fitted()
        served[name] = _Served(name, model)
    match = list(match_texts or [])[: limits.max_match_texts]
    schemas = _requests(limits)
    batchers: dict[str, _PredictBatcher] = {}
    app = FastAPI(title="unrolled", version=unrolled.__version__,
                  description="Recurrent neural networks you can see through: predictions, step-by-step traces, "
                              "generation, forecasts, translations, transcripts. Errors: "
                              '{"error": {"field", "message"}} with a 4xx status.')

    # --- errors and limits ---

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, error.field, error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:  # 404, 405 routes
        return _error(error.status_code, None, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        loc = list(first.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path"):
            loc = loc[1:]
        field = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            field, message = None, "the body is not valid JSON"
        return _error(422, field or None, f"{field}: {message}" if field else message)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:  # a bug: say so, as JSON
        return _error(500, None, f"internal error ({type(error).__name__}): please report it")

    app.add_middleware(_BodyLimit, limit=limits.max_body_bytes)

    def pick(name: str | None, kinds: tuple[str, ...]) -> _Served:
        if name is None:
            for candidate in served.values():
                if candidate.kind in kinds:
                    return candidate
            raise ApiError(404, "model", f"this server has no {' or '.join(kinds)} (models: {', '.join(served)})")
        if name not in served:
            raise ApiError(404, "model", f"no model {name!r} on this server (models: {', '.join(served)})")
        chosen = served[name]
        if chosen.kind not in kinds:
            raise ApiError(400, "model", f"{name!r} is a {chosen.kind}; this endpoint needs a {' or '.join(kinds)}")
        return chosen

    async def compute(target: _Served | None, work: Callable[[], Any]) -> Any:
        """``work()`` in a worker thread (under the model's lock), within the time limit; a ValueError from the
        library is the caller's bad input (400, the field it names)."""

        def locked():
            if target is None:
                return work()
            with target.lock:
                return work()

        try:
            return await asyncio.wait_for(run_in_threadpool(locked), limits.timeout_seconds)
        except asyncio.TimeoutError:
            raise ApiError(503, None, f"the request took longer than {limits.timeout_seconds:g} s") from None
        except (ValueError, TypeError) as error:
            message = " ".join(str(error).split()) or type(error).__name__
            raise ApiError(400, _field_of(message), message) from None

    # --- pages ---

    def page(name: str):
        if not (STATIC / name).is_file():
            raise ApiError(404, None, f"the page {name} is not installed")
        return FileResponse(STATIC / name)

    @app.get("/", include_in_schema=False)
    async def explorer_page():
        return page("index.html")

    @app.get("/walkthrough", include_in_schema=False)
    async def walkthrough_page():
        return page("walkthrough.html")

    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    # --- the API ---

    @app.get("/api/models", summary="the models this server was started with")
    async def list_models() -> dict:
        return {"models": [s.describe() for s in served.values()], "match": bool(match)}

    @app.post("/api/predict", summary="classifier: labels and probabilities")
    async def predict(body: schemas.PredictRequest) -> JSONResponse:
        target = pick(body.model, ("classifier",))
        batcher = batchers.setdefault(target.name, _PredictBatcher(target, limits.timeout_seconds))
        try:
            proba = await batcher.predict(body.texts)
        except (ValueError, TypeError) as error:
            message = " ".join(str(error).split()) or type(error).__name__
            raise ApiError(400, _field_of(message), message) from None
        classes = [str(c) for c in target.model.classes_]
        # A JSONResponse of plain types: the hot path skips FastAPI's generic encoder.
        return JSONResponse({"model": target.name, "results": [
            {"text": text, "label": classes[int(np.argmax(row))],
             "probabilities": {c: float(p) for c, p in zip(classes, row)}} for text, row in zip(body.texts, proba)]})

    @app.post("/api/explain", summary="a step-by-step trace of one text")
    async def explain(body: schemas.ExplainRequest) -> dict:
        target = pick(body.model, ("classifier", "language_model", "translator"))
        if body.label is not None and target.kind != "classifier":
            raise ApiError(422, "label", "label: only a classifier's trace takes a label")

        def work():
            if target.kind == "classifier":
                from unrolled.explain import explain as explain_classifier

                classes = [str(c) for c in target.model.classes_]
                if body.label is not None and body.label not in classes:
                    raise ValueError(f"label: {body.label!r} is not a class of {target.name} ({', '.join(classes)})")
                label = None if body.label is None else target.model.classes_[classes.index(body.label)]
                return explain_classifier(target.model, body.text, label=label).to_json()
            if target.kind == "language_model":
                from unrolled.explain_lm import explain_lm

                return explain_lm(target.model, body.text).to_json()
            return {"source": body.text, **target.model.explain(body.text).to_json()}

        # The trace as explain --json writes it (its "model" field is the network's shape), named and kinded.
        return {"model_name": target.name, "kind": target.kind, **await compute(target, work)}

    @app.post("/api/generate", summary="language model: generated text, streamed as NDJSON",
              response_description='NDJSON lines {"text": "…"}, then {"done": true}')
    async def generate(body: schemas.GenerateRequest) -> StreamingResponse:
        target = pick(body.model, ("language_model",))
        pieces = await compute(target, lambda: target.model.generate(
            body.prompt, body.length, temperature=body.temperature, top_k=body.top_k, top_p=body.top_p,
            seed=body.seed))  # the arguments are checked here, before the first token

        def lines() -> Iterator[str]:
            with target.lock:
                for piece in pieces:
                    yield json.dumps({"text": piece}) + "\n"
            yield json.dumps({"done": True}) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.post("/api/forecast", summary="forecaster: the next values, with the naive baselines")
    async def forecast(body: schemas.ForecastRequest) -> dict:
        target = pick(body.model, ("forecaster",))
        model = target.model
        if model.n_features_in_ != 1 or model.calendar:
            raise ApiError(400, "model", f"{target.name!r} reads {model.n_features_in_} column(s)"
                                         f"{' and dates' if model.calendar else ''}; the API sends one column")
        steps = body.steps or model.horizon
        season = body.season

        def work():
            from unrolled.timeseries.baselines import naive, seasonal_naive

            history = np.asarray(body.values, dtype=np.float64)
            if len(history) < model.window:
                raise ValueError(f"values: {len(history)} values, but {target.name} reads the last {model.window}")
            if model.log and not (history > 0).all():
                raise ValueError("values: this model forecasts log values: every value must be > 0")
            out = {"history": body.values, "forecast": model.forecast(history, steps).tolist(),
                   "baselines": {"naive": naive(history, steps).tolist()}}
            if season is not None:
                if len(history) < season:
                    raise ValueError(f"season: {season} is longer than the {len(history)} values")
                out["baselines"]["seasonal_naive"] = seasonal_naive(history, steps, season).tolist()
            return out

        result = await compute(target, work)
        if not all(math.isfinite(v) for v in result["forecast"]):
            raise ApiError(400, "values", "values: the forecast is not finite for these values (far outside the "
                                          "training range)")
        return {"model": target.name, "steps": steps, **result}

    @app.post("/api/translate", summary="translator: translations")
    async def translate(body: schemas.TranslateRequest) -> dict:
        target = pick(body.model, ("translator",))
        out = await compute(target, lambda: target.model.translate(body.texts, beam_size=body.beam))
        return {"model": target.name, "results": [{"source": s, "translation": t} for s, t in zip(body.texts, out)]}

    @app.post("/api/transcribe", summary="speech recognizer: the transcript of a base64 WAV, with its trace")
    async def transcribe(body: schemas.TranscribeRequest) -> dict:
        target = pick(body.model, ("speech_recognizer",))
        try:
            data = base64.b64decode(body.audio, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "audio", "audio: not base64 (expected the bytes of a WAV file, base64-encoded)") from None

        def work():
            from unrolled.audio.wav import AudioError, decode_wav

            try:
                samples, _ = decode_wav(data, "audio", target.model.feature_config_.sample_rate)
            except (AudioError, ImportError) as error:
                raise ValueError(str(error)) from None
            return target.model.explain(samples, beam_size=body.beam).to_json()

        explanation = await compute(target, work)
        return {"model": target.name, "transcript": explanation["transcript"],
                "probability": explanation["probability"], "explanation": explanation}

    @app.get("/api/walkthrough", summary="the seed's worked example, every number")
    async def walkthrough_default(cell: Annotated[str, Query(pattern="^(rnn|gru|lstm)$")] = "rnn") -> dict:
        from unrolled.walkthrough import run_walkthrough

        return await compute(None, lambda: run_walkthrough(cell=cell).to_json())

    @app.get("/api/walkthrough/weights", summary="the worked example's default weights (word vectors included)")
    async def walkthrough_weights(cell: Annotated[str, Query(pattern="^(rnn|gru|lstm)$")] = "rnn") -> dict:
        from unrolled.walkthrough import EMBEDDINGS, WORDS, default_weights, weight_shapes, weights_to_json

        template = weights_to_json(default_weights(cell), cell)
        return {"cell": cell, "shapes": {k: list(v) for k, v in weight_shapes(cell).items()},
                "weights": {k: v for k, v in template.items() if k not in ("cell", "comment")},
                "words": list(WORDS), "embeddings": EMBEDDINGS.tolist()}

    @app.post("/api/walkthrough", summary="the worked example with edited weights")
    async def walkthrough_edited(body: schemas.WalkthroughRequest) -> dict:
        from unrolled.walkthrough import DEFAULT_LR, check_weights, run_walkthrough

        def work():
            weights = None if body.weights is None else check_weights(body.weights, body.cell)
            return run_walkthrough(cell=body.cell, weights=weights, lr=body.lr or DEFAULT_LR,
                                   embeddings=body.embeddings).to_json()

        return await compute(None, work)

    @app.post("/api/match", summary="classifier: the phrases where a hidden unit fires most")
    async def match_unit(body: schemas.MatchRequest) -> dict:
        target = pick(body.model, ("classifier",))
        if not match:
            raise ApiError(404, None, "this server has no match dataset (start it with --match-data FILE)")
        width = target.model.net_config_.recurrent.output_size
        if body.unit >= width:
            raise ApiError(400, "unit", f"unit: {body.unit} is not a unit of {target.name} (0 … {width - 1})")

        def work():
            if target.match is None:
                target.match = _MatchIndex(target.model, match)
            return target.match.top(body.unit, body.top)

        return {"model": target.name, "unit": body.unit, "matches": await compute(target, work)}

    return app
