"""The HTTP API (unrolled.serve.app) in-process: every endpoint gives the library's numbers, bad input is a 4xx
with a JSON error naming the field (never a 5xx), bodies and work are bounded, concurrent requests are safe."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.serve.conftest import MATCH


def error_of(response, status, field, message_part):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert message_part in error["message"]
    assert "\n" not in error["message"]


def test_models_lists_every_model_and_its_kind(client, models):
    listed = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert {name: m["kind"] for name, m in listed.items()} == {name: m.KIND for name, m in models.items()}
    assert listed["sst2-rnn"]["classes"] == ["negative", "positive"]
    assert listed["forecaster"]["window"] == 12 and listed["forecaster"]["horizon"] == 4
    assert client.get("/api/models").json()["match"] is True


def test_predict_is_predict_proba(client, models):
    texts = ["I love this", "a dull , lifeless film", "ok"]
    body = client.post("/api/predict", json={"model": "sst2-rnn", "texts": texts}).json()
    proba = models["sst2-rnn"].predict_proba(texts)
    for row, result, text in zip(proba, body["results"], texts):
        assert result["text"] == text
        assert result["probabilities"] == pytest.approx({"negative": row[0], "positive": row[1]}, abs=1e-12)
        assert result["label"] == ["negative", "positive"][int(np.argmax(row))]
    assert client.post("/api/predict", json={"texts": texts}).json() == body  # the default classifier


def test_explain_is_the_trace(client, models):
    from unrolled.explain import explain

    body = client.post("/api/explain", json={"text": "not good at all", "label": "positive"}).json()
    trace = explain(models["sst2-rnn"], "not good at all", label="positive").to_json()
    assert body["kind"] == "classifier"
    assert body["model_name"] == "sst2-rnn"
    assert {k: v for k, v in body.items() if k not in ("model_name", "kind")} == json.loads(json.dumps(trace))
    lm = client.post("/api/explain", json={"model": "lm", "text": "the cat"}).json()
    assert lm["kind"] == "language_model" and [s["token"] for s in lm["steps"]] == list("the cat")
    translation = client.post("/api/explain", json={"model": "translator", "text": "eins rot ."}).json()
    assert translation["kind"] == "translator"
    assert translation == {"model_name": "translator", "kind": "translator",
                           "source": "eins rot .",
                           **json.loads(json.dumps(models["translator"].explain("eins rot .").to_json()))}


def test_generate_streams_the_models_text(client, models):
    request = {"model": "lm", "prompt": "the ", "length": 40, "temperature": 0.8, "seed": 3}
    with client.stream("POST", "/api/generate", json=request) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines[-1] == {"done": True}
    expected = "".join(models["lm"].generate("the ", 40, temperature=0.8, seed=3))
    assert "".join(line["text"] for line in lines[:-1]) == expected


def test_forecast_and_its_baselines(client, models):
    values = list(np.sin(np.arange(48) / 4) * 10 + 50)
    body = client.post("/api/forecast", json={"model": "forecaster", "values": values, "steps": 6, "season": 25}).json()
    np.testing.assert_allclose(body["forecast"], models["forecaster"].forecast(np.array(values), 6))
    assert body["baselines"]["naive"] == [values[-1]] * 6
    assert body["baselines"]["seasonal_naive"] == values[-25:-19]
    assert body["history"] == values and body["steps"] == 6


def test_translate(client, models):
    body = client.post("/api/translate", json={"texts": ["eins rot .", "zwei blau ."], "beam": 3}).json()
    assert [r["translation"] for r in body["results"]] == models["translator"].translate(
        ["eins rot .", "zwei blau ."], beam_size=3)


def _wav_bytes(samples, rate=8000):
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def test_transcribe_a_base64_wav(client, models):
    samples = np.sin(np.arange(4000) * 0.1).astype(np.float32) * 0.3
    data = _wav_bytes(samples)
    body = client.post("/api/transcribe", json={"audio": base64.b64encode(data).decode()}).json()
    from unrolled.audio.wav import decode_wav

    expected = models["speech"].explain(decode_wav(data, sample_rate=8000)[0]).to_json()
    assert body["transcript"] == expected["transcript"]
    assert body["probability"] == pytest.approx(expected["probability"])
    assert len(body["explanation"]["posteriors"]) == len(expected["posteriors"])
    error_of(client.post("/api/transcribe", json={"audio": "!!!"}), 400, "audio", "not base64")
    error_of(client.post("/api/transcribe", json={"audio": base64.b64encode(b"RIFFxxxxWAVEjunk").decode()}),
             400, "audio", "audio:")


def test_walkthrough_default_weights_and_edits(client):
    from unrolled.walkthrough import run_walkthrough

    assert client.get("/api/walkthrough?cell=gru").json() == json.loads(json.dumps(run_walkthrough(cell="gru")
                                                                                   .to_json()))
    template = client.get("/api/walkthrough/weights?cell=rnn").json()
    assert template["words"] == ["I", "love", "this"] and len(template["embeddings"]) == 3
    weights = template["weights"]
    weights["head_bias"][0] += 0.5
    vectors = template["embeddings"]
    vectors[1][0] = -2.0
    edited = client.post("/api/walkthrough", json={"cell": "rnn", "weights": weights, "embeddings": vectors}).json()
    expected = run_walkthrough(cell="rnn", weights=weights, embeddings=vectors).to_json()
    assert edited == json.loads(json.dumps(expected))
    assert edited["loss"]["value"] != client.get("/api/walkthrough").json()["loss"]["value"]
    error_of(client.post("/api/walkthrough", json={"weights": {"x": 1}}), 400, "weights", "unexpected key")
    error_of(client.post("/api/walkthrough", json={"embeddings": [[1.0]]}), 400, "embeddings", "expected shape")
    error_of(client.get("/api/walkthrough?cell=tree"), 422, "cell", "String should match pattern")


def test_match_finds_the_phrases_where_a_unit_fires(client, models):
    body = client.post("/api/match", json={"unit": 5, "top": 3}).json()
    assert len(body["matches"]) == 3 and all(m["text"] in MATCH for m in body["matches"])
    activations = [m["activation"] for m in body["matches"]]
    assert activations == sorted(activations, reverse=True)
    from unrolled.explain import explain

    best = body["matches"][0]  # the unit's value at that step, as the trace shows it (one direction here)
    trace = explain(models["sst2-rnn"], best["text"])
    assert trace.h[best["position"], 0, 5] == pytest.approx(best["activation"], abs=1e-6)
    error_of(client.post("/api/match", json={"unit": 128}), 400, "unit", "not a unit of sst2-rnn (0 … 127)")


@pytest.mark.parametrize("path,body,status,field,message", [
    ("/api/predict", {"texts": []}, 422, "texts", "at least 1 item"),
    ("/api/predict", {"texts": ["x"] * 65}, 422, "texts", "at most 64 items"),
    ("/api/predict", {"texts": ["x" * 5001]}, 422, "texts[0]", "at most 5000 characters"),
    ("/api/predict", {"texts": [3]}, 422, "texts[0]", "valid string"),
    ("/api/predict", {"texts": ["x"], "extra": 1}, 422, "extra", "Extra inputs"),
    ("/api/predict", {"model": "nope", "texts": ["x"]}, 404, "model", "no model 'nope' on this server"),
    ("/api/predict", {"model": "lm", "texts": ["x"]}, 400, "model", "'lm' is a language_model"),
    ("/api/explain", {"text": "x", "label": "maybe"}, 400, "label", "'maybe' is not a class of sst2-rnn"),
    ("/api/explain", {"model": "lm", "text": "x", "label": "a"}, 422, "label", "only a classifier's trace"),
    ("/api/explain", {"text": ""}, 422, "text", "at least 1 character"),
    ("/api/explain", {"text": "   "}, 400, "text", "text:"),
    ("/api/generate", {"model": "lm", "length": 5000}, 422, "length", "less than or equal to 2000"),
    ("/api/generate", {"model": "lm", "top_p": 0}, 422, "top_p", "greater than 0"),
    ("/api/forecast", {"values": [1.0, 2.0]}, 400, "values", "2 values, but forecaster reads the last 12"),
    ("/api/forecast", {"values": [1.0] * 20, "season": 30}, 400, "season", "longer than the 20 values"),
    ("/api/forecast", {"values": [1.0, "x"]}, 422, "values[1]", "valid number"),
    ("/api/translate", {"texts": ["eins"], "beam": 0}, 422, "beam", "greater than or equal to 1"),
    ("/api/match", {"unit": -1}, 422, "unit", "greater than or equal to 0"),
])
def test_bad_input_is_a_4xx_naming_the_field(client, path, body, status, field, message):
    error_of(client.post(path, json=body), status, field, message)


def test_bodies_that_are_not_json_or_too_big(client):
    error_of(client.post("/api/predict", content=b"{nope", headers={"content-type": "application/json"}),
             422, None, "not valid JSON")
    error_of(client.post("/api/predict", content=b"x" * (6 * 2**20 + 1), headers={"content-type": "application/json"}),
             413, None, "over the limit of 6,291,456 bytes")
    error_of(client.get("/api/nothing"), 404, None, "Not Found")
    error_of(client.get("/api/predict"), 405, None, "Method Not Allowed")


def test_a_match_view_without_data_and_a_server_without_the_kind(models):
    from fastapi.testclient import TestClient

    from unrolled.serve.app import create_app

    client = TestClient(create_app({"c": models["sst2-rnn"]}))
    assert client.get("/api/models").json()["match"] is False
    error_of(client.post("/api/match", json={"unit": 1}), 404, None, "no match dataset")
    error_of(client.post("/api/generate", json={}), 404, "model", "this server has no language_model (models: c)")
    with pytest.raises(ValueError, match="models: give at least one model"):
        create_app({})
    with pytest.raises(ValueError, match=r"models\['x'\]: not an unrolled model"):
        create_app({"x": object()})


def test_concurrent_requests_get_their_own_answers(client, models):
    texts = [f"{w} film" for w in ("great", "awful", "fine", "dull", "lovely", "boring", "superb", "bad")] * 4
    expected = [models["sst2-rnn"].predict_proba([text])[0] for text in texts]

    def ask(i):
        return client.post("/api/predict", json={"texts": [texts[i]]}).json()["results"][0]["probabilities"]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(len(texts))))
    for row, answer in zip(expected, answers):  # batched together: float32 rounding of another padded batch
        assert answer["positive"] == pytest.approx(row[1], abs=1e-6)


def test_the_schema_and_the_pages(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/predict", "/api/explain", "/api/generate", "/api/forecast", "/api/translate", "/api/transcribe",
            "/api/walkthrough", "/api/match", "/api/models"} <= set(schema["paths"])
    assert client.get("/").headers["content-type"].startswith("text/html")
    assert client.get("/walkthrough").status_code == 200


def test_cli_model_names():
    from unrolled.cli.common import UsageError
    from unrolled.cli.serve import _named_models

    assert _named_models(["sst2-rnn", "mine=models/x", "models/y/"]) == {"sst2-rnn": "sst2-rnn", "mine": "models/x",
                                                                         "y": "models/y/"}
    with pytest.raises(UsageError, match="the name 'x' is taken"):
        _named_models(["a/x", "b/x"])
    with pytest.raises(UsageError, match="expected NAME=DIR"):
        _named_models(["name="])


def test_unrolled_serve_as_a_process():
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "unrolled", "serve", "--model", "sst2-rnn", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith(f"serving sst2-rnn (classifier) at http://127.0.0.1:{port}/")
        deadline = time.time() + 30
        while True:
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=2).json()
                break
            except httpx.HTTPError:
                assert time.time() < deadline, "the server did not answer"
                time.sleep(0.1)
        assert [m["name"] for m in models["models"]] == ["sst2-rnn"]
        answer = httpx.post(f"http://127.0.0.1:{port}/api/predict", json={"texts": ["I love this"]}).json()
        assert answer["results"][0]["label"] == "positive"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_serve_bad_model_is_one_line(tmp_path):
    import io

    from unrolled.cli import main

    err = io.StringIO()
    assert main(["serve", "--model", str(tmp_path / "missing")], out=io.StringIO(), err=err) == 1
    assert err.getvalue().startswith("unrolled: error: ") and err.getvalue().count("\n") == 1
