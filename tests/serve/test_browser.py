"""The explorer pages in headless Chromium (selenium), against the real server in-process: every number drawn is
the API's, the classifier trace renders within 300 ms of typing stopping, hover and click follow a hidden unit,
the language model streams generated text, the forecast, attention and speech views draw what the API returns,
the walkthrough recomputes live after an edit, and an API error shows in the error box.

Skipped when selenium, Chromium or chromedriver is missing. The models are conftest's (trained in seconds)."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import MATCH

webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need selenium")
uvicorn = pytest.importorskip("uvicorn", reason="the browser tests need uvicorn")
httpx = pytest.importorskip("httpx", reason="the browser tests need httpx")

from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p and Path(p).exists()), None)
CHROMEDRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver")) if p and Path(p).exists()),
                    None)
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="the browser tests need Chromium and chromedriver (apt install chromium "
                                       "chromium-driver)")

RENDER_BUDGET_MS = 300.0
WAIT_S = 15


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base_url(models):
    """An app of conftest's models and match phrases, served by uvicorn on a free port of 127.0.0.1 (an app of
    its own: conftest's is driven by TestClient's event loop, this one by uvicorn's)."""
    from unrolled.serve.app import create_app

    app = create_app(models, match_texts=MATCH)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/api/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu", "--disable-extensions"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_script_timeout(20)
    yield browser
    browser.quit()


def post(base_url, path, body):
    response = httpx.post(f"{base_url}{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def dataset(driver, key):
    return driver.execute_script("return document.body.dataset[arguments[0]] ?? null", key)


def wait_for(driver, predicate, message):
    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.02).until(lambda d: predicate())
    except TimeoutException:
        logs = [e["message"] for e in driver.get_log("browser")]
        raise AssertionError(f"{message}; browser log: {logs}") from None


def open_page(driver, url, view=None):
    """Load the page and wait until it is ready: the walkthrough's first render, the explorer's model list, and
    the first render of `view` when given."""
    driver.get(url)
    ready = "rendered" if "/walkthrough" in url else "model"
    wait_for(driver, lambda: dataset(driver, ready) is not None and
             (view is None or dataset(driver, "renderedView") == view), f"{url} did not render")


def type_text(driver, element_id, text):
    """Replace the input's text by typing it, and wait for the render of exactly that text."""
    box = driver.find_element(By.ID, element_id)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)
    wait_for(driver, lambda: dataset(driver, "renderedText") == text, f"no render of {text!r}")
    return float(dataset(driver, "renderMs"))


def data_of(driver, selector, *keys):
    """[[data-key, ...], ...] of every element matching the CSS selector (dataset values are strings)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => arguments[1].map(k => e.dataset[k]))",
        selector, list(keys))


def close(a, b, tol=1e-6):
    return a == pytest.approx(b, abs=tol)


# --- classifier -------------------------------------------------------------------------------------------------


def test_classifier_trace_shows_the_apis_numbers(driver, base_url):
    open_page(driver, f"{base_url}/?model=sst2-rnn", "classifier")
    text = "I love this film"
    type_text(driver, "text-input", text)
    trace = post(base_url, "/api/explain", {"model": "sst2-rnn", "text": text})
    T, dirs, H = len(trace["tokens"]), len(trace["h"][0]), len(trace["h"][0][0])
    assert T == 4

    tokens = driver.execute_script("return [...document.querySelectorAll('#trace .tok')].map(e => e.textContent)")
    assert tokens == trace["tokens"]

    cells = data_of(driver, "#trace .hcell", "step", "unit", "value")
    assert len(cells) == T * dirs * H
    for step, unit, value in cells:
        t, u = int(step), int(unit)
        assert close(float(value), trace["h"][t][u // H][u % H]), (t, u)

    bars = data_of(driver, "#trace .pbar", "step", "class", "value")
    assert len(bars) == T * len(trace["classes"])
    for step, cls, value in bars:
        assert close(float(value), trace["prefix_probabilities"][int(step)][trace["classes"].index(cls)])

    grads = data_of(driver, "#trace .gbar", "step", "dir", "value")
    assert len(grads) == T * dirs
    for step, d, value in grads:
        assert close(float(value), trace["grad_h"][int(step)][int(d)], tol=1e-12)

    assert driver.find_element(By.ID, "cls-predicted").text == trace["predicted_label"]
    assert trace["gradient"]["summary"] in driver.find_element(By.ID, "grad-summary").text
    assert driver.find_element(By.ID, "error-box").is_displayed() is False


def test_trace_renders_within_300_ms_of_typing_stopping(driver, base_url):
    open_page(driver, f"{base_url}/?model=sst2-rnn", "classifier")
    times = {text: type_text(driver, "text-input", text)
             for text in ("I love this film", "a dull , lifeless and boring film", "not good at all")}
    print("render ms after the debounce:", times)
    assert all(0 < ms <= RENDER_BUDGET_MS for ms in times.values()), times
    assert int(dataset(driver, "rendered")) >= 4  # the first render, then one per text


def test_hovering_a_cell_follows_its_unit(driver, base_url):
    open_page(driver, f"{base_url}/?model=sst2-rnn", "classifier")
    text = "I love this film"
    type_text(driver, "text-input", text)
    trace = post(base_url, "/api/explain", {"model": "sst2-rnn", "text": text})
    unit, step = 5, 2
    cell = driver.find_element(By.CSS_SELECTOR, f'#trace .hcell[data-step="{step}"][data-unit="{unit}"]')
    ActionChains(driver).move_to_element(cell).perform()
    wait_for(driver, lambda: driver.find_element(By.ID, "unit-chart").get_attribute("data-unit") == str(unit),
             "the unit chart did not follow the hovered unit")
    highlighted = data_of(driver, "#trace .hcell.col-hl", "unit", "step")
    assert sorted(int(s) for _, s in highlighted) == list(range(len(trace["tokens"])))
    assert {u for u, _ in highlighted} == {str(unit)}
    tooltip = driver.find_element(By.ID, "tooltip")
    assert tooltip.is_displayed()
    assert close(float(tooltip.get_attribute("data-value")), trace["h"][step][0][unit])
    assert f"{trace['h'][step][0][unit]:.6f}" in tooltip.text
    line = data_of(driver, "#unit-chart circle", "step", "value")
    assert [close(float(v), trace["h"][int(s)][0][unit]) for s, v in line] == [True] * len(trace["tokens"])

    other = driver.find_element(By.CSS_SELECTOR, '#trace .hcell[data-step="0"][data-unit="9"]')
    ActionChains(driver).move_to_element(other).perform()
    wait_for(driver, lambda: driver.find_element(By.ID, "unit-chart").get_attribute("data-unit") == "9",
             "the unit chart did not move to the next unit")
    assert {u for (u,) in data_of(driver, "#trace .hcell.col-hl", "unit")} == {"9"}


def test_clicking_a_unit_shows_where_it_fires(driver, base_url):
    open_page(driver, f"{base_url}/?model=sst2-rnn", "classifier")
    type_text(driver, "text-input", "I love this film")
    unit = 17
    cell = driver.find_element(By.CSS_SELECTOR, f'#trace .hcell[data-step="1"][data-unit="{unit}"]')
    ActionChains(driver).move_to_element(cell).click().perform()
    wait_for(driver, lambda: driver.find_element(By.ID, "match-list").get_attribute("data-unit") == str(unit),
             "no matches were shown")
    expected = post(base_url, "/api/match", {"model": "sst2-rnn", "unit": unit, "top": 10})["matches"]
    items = driver.find_elements(By.CSS_SELECTOR, "#match-list li")
    assert len(items) == len(expected) > 0
    for item, match in zip(items, expected):
        mark = item.find_element(By.TAG_NAME, "mark")
        assert mark.text == match["tokens"][match["position"]]
        assert int(item.get_attribute("data-position")) == match["position"]
        assert close(float(item.get_attribute("data-activation")), match["activation"])


# --- language model ---------------------------------------------------------------------------------------------


def test_language_model_shows_top_k_per_step_and_streams_generation(driver, base_url):
    open_page(driver, f"{base_url}/?model=lm", "language_model")
    text = "the dog sat"
    type_text(driver, "lm-input", text)
    steps = post(base_url, "/api/explain", {"model": "lm", "text": text})["steps"]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#lm-steps .lm-step")) == len(steps) == len(text)
    bars = data_of(driver, "#lm-steps .topk", "step", "rank", "token", "value")
    assert len(bars) == sum(len(s["top_next"]) for s in steps)
    for step, rank, token, value in bars:
        guess = steps[int(step)]["top_next"][int(rank)]
        assert token == guess["token"] and close(float(value), guess["p"])

    for element_id, value in (("gen-prompt", "the "), ("gen-length", "40"), ("gen-temperature", "0.8"),
                              ("gen-seed", "3")):
        box = driver.find_element(By.ID, element_id)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.ID, "gen-button").click()
    out = driver.find_element(By.ID, "gen-output")
    wait_for(driver, lambda: out.get_attribute("data-done") == "true", "generation did not finish")
    with httpx.stream("POST", f"{base_url}/api/generate", timeout=30, json={
            "model": "lm", "prompt": "the ", "length": 40, "temperature": 0.8, "seed": 3}) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    pieces = [line["text"] for line in lines if "text" in line]
    assert lines[-1] == {"done": True} and len(pieces) == 40
    assert driver.find_element(By.CSS_SELECTOR, "#gen-output .gen").get_attribute("textContent") == "".join(pieces)
    assert int(out.get_attribute("data-chunks")) == len(pieces)  # one piece per streamed line


# --- forecaster, translator, speech -----------------------------------------------------------------------------


def test_forecast_plot_has_a_point_per_value(driver, base_url):
    open_page(driver, f"{base_url}/?model=forecaster", "forecaster")
    values = [float(v) for v in driver.find_element(By.ID, "fc-values").get_attribute("value").split(",")]
    assert len(values) == 12 * 4  # the model's window × 4, prefilled
    season = int(driver.find_element(By.ID, "fc-season").get_attribute("value"))
    expected = post(base_url, "/api/forecast", {"model": "forecaster", "values": values, "season": season})
    series = {"history": expected["history"], "forecast": expected["forecast"], **expected["baselines"]}
    assert set(series) == {"history", "forecast", "naive", "seasonal_naive"}
    for name, numbers in series.items():
        points = data_of(driver, f'#fc-plot circle[data-series="{name}"]', "value")
        assert len(points) == len(numbers), name
        assert all(close(float(p), v) for (p,), v in zip(points, numbers)), name
    assert len(expected["forecast"]) == 4  # the horizon
    legend = driver.find_element(By.ID, "fc-legend").text
    assert "RNN forecast" in legend and "history" in legend and "naive" in legend


def test_translator_draws_target_by_source_attention(driver, base_url):
    open_page(driver, f"{base_url}/?model=translator")
    text = "drei blau eins rot ."
    type_text(driver, "tr-input", text)
    explained = post(base_url, "/api/explain", {"model": "translator", "text": text})
    translated = post(base_url, "/api/translate", {"model": "translator", "texts": [text], "beam": 5})
    rows, cols = len(explained["steps"]), len(explained["source_tokens"])
    cells = data_of(driver, "#tr-matrix td.acell", "row", "col", "value")
    assert len(cells) == rows * cols and cols == 5
    for r, c, value in cells:
        assert close(float(value), explained["steps"][int(r)]["attention"][int(c)])
    assert driver.find_element(By.ID, "tr-output").get_attribute("data-value") == \
        translated["results"][0]["translation"]


def test_speech_upload_shows_transcript_and_heatmaps(driver, base_url, tmp_path):
    from unrolled.audio.wav import write_wav

    path = write_wav(tmp_path / "tone.wav", np.sin(np.arange(4000) * 0.1) * 0.3, 8000)
    open_page(driver, f"{base_url}/?model=speech")
    driver.find_element(By.ID, "sp-file").send_keys(str(path))
    wait_for(driver, lambda: dataset(driver, "renderedView") == "speech_recognizer", "no transcript")
    expected = post(base_url, "/api/transcribe",
                    {"model": "speech", "audio": base64.b64encode(Path(path).read_bytes()).decode()})
    assert driver.find_element(By.ID, "sp-transcript").get_attribute("data-value") == expected["transcript"]
    assert close(float(driver.find_element(By.ID, "sp-probability").get_attribute("data-value")),
                 expected["probability"])
    explanation = expected["explanation"]
    features = driver.find_element(By.ID, "sp-features")
    assert int(features.get_attribute("data-cols")) == explanation["frames"] == len(explanation["features"])
    assert int(features.get_attribute("data-rows")) == len(explanation["features"][0])
    posteriors = driver.find_element(By.ID, "sp-posteriors")
    assert int(posteriors.get_attribute("data-rows")) == len(explanation["outputs"])


# --- the walkthrough --------------------------------------------------------------------------------------------


def shown_numbers(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('[data-path]')].map(e => [e.dataset.path, e.dataset.value])")


def at(obj, path):
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def set_number(driver, selector, value):
    before = int(dataset(driver, "rendered"))
    box = driver.find_element(By.CSS_SELECTOR, selector)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(value, Keys.TAB)  # the change event
    wait_for(driver, lambda: int(dataset(driver, "rendered")) > before, f"no render after editing {selector}")


def test_walkthrough_shows_the_apis_numbers_and_recomputes_after_an_edit(driver, base_url):
    open_page(driver, f"{base_url}/walkthrough")
    expected = httpx.get(f"{base_url}/api/walkthrough", params={"cell": "rnn"}, timeout=30).json()
    loss = driver.find_element(By.ID, "wt-loss")
    assert float(loss.get_attribute("data-value")) == expected["loss"]["value"]
    numbers = shown_numbers(driver)
    assert len(numbers) > 200
    assert all(close(float(v), at(expected, p), tol=1e-12) for p, v in numbers)

    defaults = httpx.get(f"{base_url}/api/walkthrough/weights", params={"cell": "rnn"}, timeout=30).json()
    set_number(driver, 'input.w[data-weight="head_bias"][data-index="0"]', "1.5")
    weights = defaults["weights"]
    weights["head_bias"][0] = 1.5
    edited = post(base_url, "/api/walkthrough", {"cell": "rnn", "weights": weights,
                                                 "embeddings": defaults["embeddings"], "lr": 0.5})
    assert edited["loss"]["value"] != expected["loss"]["value"]
    assert float(loss.get_attribute("data-value")) == edited["loss"]["value"]

    set_number(driver, 'input.w[data-weight="embeddings"][data-index="1,0"]', "-0.7")  # "love"'s first entry
    defaults["embeddings"][1][0] = -0.7
    edited = post(base_url, "/api/walkthrough", {"cell": "rnn", "weights": weights,
                                                 "embeddings": defaults["embeddings"], "lr": 0.5})
    assert float(loss.get_attribute("data-value")) == edited["loss"]["value"]
    assert all(close(float(v), at(edited, p), tol=1e-12) for p, v in shown_numbers(driver))


def test_walkthrough_cell_picker_shows_the_gated_cells(driver, base_url):
    open_page(driver, f"{base_url}/walkthrough")
    before = int(dataset(driver, "rendered"))
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "wt-cell")).select_by_value("lstm")
    wait_for(driver, lambda: int(dataset(driver, "rendered")) > before and dataset(driver, "cell") == "lstm",
             "the LSTM walkthrough did not render")
    expected = httpx.get(f"{base_url}/api/walkthrough", params={"cell": "lstm"}, timeout=30).json()
    assert float(driver.find_element(By.ID, "wt-loss").get_attribute("data-value")) == expected["loss"]["value"]
    assert len(driver.find_elements(By.CSS_SELECTOR, 'input.w[data-weight="weight_ih"]')) == 16 * 4
    assert all(close(float(v), at(expected, p), tol=1e-12) for p, v in shown_numbers(driver))


# --- errors -----------------------------------------------------------------------------------------------------


def test_an_api_error_shows_in_the_error_box(driver, base_url):
    open_page(driver, f"{base_url}/?model=forecaster", "forecaster")
    box = driver.find_element(By.ID, "error-box")
    assert not box.is_displayed()
    textarea = driver.find_element(By.ID, "fc-values")
    textarea.clear()
    textarea.send_keys("1, 2, 3")
    response = httpx.post(f"{base_url}/api/forecast", json={"model": "forecaster", "values": [1, 2, 3], "season": 12},
                          timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    wait_for(driver, box.is_displayed, "no error box")
    assert error["message"] in box.text
    textarea.send_keys(", " + ", ".join(["4"] * 12))  # enough values: the error goes away
    wait_for(driver, lambda: not box.is_displayed(), "the error box stayed after a good request")

    open_page(driver, f"{base_url}/walkthrough")
    set_number(driver, 'input.w[data-weight="weight_hh"][data-index="0,0"]', "abc")
    box = driver.find_element(By.ID, "error-box")
    assert box.is_displayed() and "weight_hh" in box.text
