"""Screenshots of the explorer pages (``unrolled serve``) in headless Chromium, for the docs.

    UNROLLED_DATA_DIR=../shared/data python benchmarks/screenshots.py            # writes docs/serving/*.png
    python benchmarks/screenshots.py --model sst2-rnn --model lm=path/to/checkpoint

Starts the server in-process (``unrolled.serve.app.create_app`` under uvicorn, on a free port of 127.0.0.1), opens
each page in headless Chromium (selenium) and saves a full-page PNG per model kind the server was given:

    explorer-classifier.png   the bundled sst2-rnn tracing a sentence, one hidden unit hovered and clicked
    explorer-lm.png           next-token guesses per step and a streamed sample
    explorer-forecast.png     a forecast with its baselines
    explorer-translate.png    a translation and its attention
    explorer-speech.png       a transcript, the features and the posteriors
    walkthrough.png           "I love this", every number

Without ``--model`` it serves the bundled sst2-rnn and models/fsdd-official (when present) and trains small demo
models in seconds: a character LM (Tiny Shakespeare's first 300k characters when the data folder has it, else this
repository's README), a forecaster (airline passengers, else a synthetic seasonal series) and a translator (a toy
German→English task: "<number> <colour>" pairs swapped and translated). The data folder is ``--data``, else
``$UNROLLED_DATA_DIR``; with SST-2's train.tsv there, its sentences are the match view's phrases, and an FSDD
test recording is what the speech view transcribes (else ``--wav``, else a synthetic vowel).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FILES = {"classifier": "explorer-classifier.png", "language_model": "explorer-lm.png",
         "forecaster": "explorer-forecast.png", "translator": "explorer-translate.png",
         "speech_recognizer": "explorer-speech.png"}
PHRASES = [  # the match view's phrases when SST-2 is not at hand
    "i love this film", "a gorgeous , witty , seductive movie", "the best film of the year",
    "a dull , boring mess", "not good at all", "i hated every minute", "great fun from start to finish",
    "an utterly charming and hilarious film", "the acting is terrible and the plot is worse",
    "a masterpiece of quiet beauty", "it is a waste of time", "sweet , funny and wise",
    "painfully slow and pretentious", "one of the most moving films in years", "the jokes fall flat",
]
NUMBERS = {"eins": "one", "zwei": "two", "drei": "three", "vier": "four", "fünf": "five", "sechs": "six"}
COLOURS = {"rot": "red", "blau": "blue", "grün": "green", "gelb": "yellow", "schwarz": "black"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the demo models ------------------------------------------------------------------------------------------


def toy_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """'<number> <colour> ...' -> '<colour> <number> ...' in English: each word translated, each pair swapped."""
    rng = np.random.default_rng(seed)
    numbers, colours = list(NUMBERS), list(COLOURS)
    sources, targets = [], []
    for _ in range(n):
        pairs = [(numbers[rng.integers(len(numbers))], colours[rng.integers(len(colours))])
                 for _ in range(rng.integers(1, 4))]
        sources.append(" ".join(f"{a} {b}" for a, b in pairs) + " .")
        targets.append(" ".join(f"{COLOURS[b]} {NUMBERS[a]}" for a, b in pairs) + " .")
    return sources, targets


def demo_models(data: Path | None) -> tuple[dict, dict]:
    """name -> model, and what the pages should be shown (texts, values, a WAV)."""
    import unrolled

    models, shown = {}, {}
    models["sst2-rnn"] = unrolled.load("sst2-rnn")
    shown["classifier"] = "a gorgeous, witty, seductive movie"

    start = time.perf_counter()
    shakespeare = data / "text" / "tinyshakespeare.txt" if data else None
    if shakespeare and shakespeare.is_file():
        text, source = shakespeare.read_text(encoding="utf-8")[:300_000], "Tiny Shakespeare (300k characters)"
        shown["language_model"] = "ROMEO:\nWhat light is this"
    else:
        text, source = (ROOT / "README.md").read_text(encoding="utf-8") * 3, "README.md"
        shown["language_model"] = "the model reads"
    models["char-lm"] = unrolled.RNNLanguageModel(level="char", cell="lstm", embedding_dim=32, hidden_size=128,
                                                  bptt=64, batch_size=32, epochs=3, lr=3e-3).fit(text)
    log(f"char-lm: {source}, {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    airline = data / "timeseries" / "airline_passengers.csv" if data else None
    if airline and airline.is_file():
        with open(airline, newline="", encoding="utf-8") as f:
            values = [float(row["Passengers"]) for row in csv.DictReader(f)]
        source = "airline passengers"
        forecaster = unrolled.RNNForecaster(window=24, horizon=12, hidden_size=32, epochs=200, log=True)
    else:
        t = np.arange(144)
        values = list(100 + t + 20 * np.sin(2 * np.pi * t / 12))
        source = "a synthetic seasonal series"
        forecaster = unrolled.RNNForecaster(window=24, horizon=12, hidden_size=32, epochs=200)
    models["forecaster"] = forecaster.fit(np.array(values[:-12]))
    shown["forecaster"] = {"values": values[:-12], "season": 12}
    log(f"forecaster: {source}, {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    sources, targets = toy_pairs(600)
    models["toy-translator"] = unrolled.RNNTranslator(
        embedding_dim=32, hidden_size=48, dropout=0.0, batch_size=32, lr=1e-2, label_smoothing=0.0, min_freq=1,
        epochs=15).fit(sources, targets, validation=toy_pairs(60, seed=1))
    shown["translator"] = "drei blau fünf rot zwei gelb ."
    log(f"toy-translator: {time.perf_counter() - start:.1f} s")

    speech = ROOT / "models" / "fsdd-official"
    if (speech / "config.json").is_file():
        models["fsdd-official"] = unrolled.load(speech)
        recording = data / "fsdd" / "recordings" / "7_jackson_0.wav" if data else None  # a test-split take
        shown["speech_recognizer"] = recording if recording and recording.is_file() else None
    return models, shown


def synthetic_vowel(path: Path, rate: int = 8000) -> Path:
    """Half a second of a gliding two-formant vowel (no recordings at hand): a pulse train through resonators."""
    from unrolled.audio.wav import write_wav

    n = rate // 2
    t = np.arange(n) / rate
    f0 = 120 + 30 * t
    phase = np.cumsum(f0 / rate)
    source = (np.diff(np.floor(phase), prepend=0) > 0).astype(float)
    out = np.zeros(n)
    for f, bw in ((700, 130), (1200, 150), (2600, 200)):
        r = np.exp(-np.pi * bw / rate)
        a1, a2 = 2 * r * np.cos(2 * np.pi * f / rate), -r * r
        y = np.zeros(n)
        for i in range(n):
            y[i] = source[i] + a1 * (y[i - 1] if i else 0) + a2 * (y[i - 2] if i > 1 else 0)
        out += y
    out *= np.hanning(n)
    return write_wav(path, 0.6 * out / np.abs(out).max(), rate)


# --- the server and the browser -------------------------------------------------------------------------------


def serve(app) -> tuple[str, object, threading.Thread]:
    import httpx
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=sock.getsockname()[1], log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    for _ in range(400):
        try:
            if httpx.get(f"{url}/api/models", timeout=2).status_code == 200:
                return url, server, thread
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


def browser(width: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("google-chrome")) if p),
                  None)
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},1000",
                "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    if binary:
        options.binary_location = binary
    from selenium.common.exceptions import WebDriverException

    try:
        return webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as error:  # a slow machine can miss chromedriver's start-up deadline once
        log(f"chromedriver did not start ({str(error).splitlines()[0]}); trying again")
        return webdriver.Chrome(service=Service(driver_path), options=options)


def wait(driver, script: str, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def rendered_after(driver, before: int, what: str) -> None:
    wait(driver, f"return Number(document.body.dataset.rendered || 0) > {before}", what)


def rendered_text(driver, value: str, what: str) -> None:
    """Wait for the render of exactly this text (the explorer reads it from the URL's ?text= or ?values=)."""
    deadline = time.monotonic() + 60
    while driver.execute_script("return document.body.dataset.renderedText") != value:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def renders(driver) -> int:
    return int(driver.execute_script("return Number(document.body.dataset.rendered || 0)"))


def set_value(driver, element_id: str, value: str) -> None:
    """Set an input's value and fire its input event, as typing would."""
    driver.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                          "e.dispatchEvent(new Event('input', {bubbles: true}))", element_id, value)


def full_page(driver, path: Path, width: int) -> None:
    """A PNG of the whole page (not just the viewport)."""
    import base64

    height = driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.2)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                             "clip": {"x": 0, "y": 0, "width": width,
                                                                      "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# --- the pages ------------------------------------------------------------------------------------------------


def shoot(driver, url: str, models: dict, shown: dict, out: Path, width: int, wav: Path | None,
          tmp: Path) -> list[tuple[Path, str]]:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    written = []
    first = {}
    for name, model in models.items():
        first.setdefault(model.KIND, name)

    def page(name: str, **query: str) -> None:
        driver.get(f"{url}/?{urlencode({'model': name, **query})}")
        wait(driver, "return document.body.dataset.model", f"the explorer page of {name}")

    for kind, name in first.items():
        file = out / FILES[kind]
        note = name
        if kind == "classifier":
            text = shown.get("classifier", "a gorgeous, witty, seductive movie")
            page(name, text=text)
            rendered_text(driver, text, "the classifier trace")
            ms = driver.execute_script("return document.body.dataset.renderMs")
            # Follow the unit that changes most over the sentence, at the step it is largest.
            unit, step = driver.execute_script("""
                const cells = [...document.querySelectorAll('#trace .hcell')], by = {};
                for (const c of cells) (by[c.dataset.unit] ||= []).push([Number(c.dataset.value), c.dataset.step]);
                let best = null, spread = -1;
                for (const [u, vs] of Object.entries(by)) {
                  const s = Math.max(...vs.map(v => v[0])) - Math.min(...vs.map(v => v[0]));
                  if (s > spread) { spread = s; best = [u, vs.reduce((a, b) => (b[0] > a[0] ? b : a))[1]]; }
                }
                return best;""")
            cell = driver.find_element(By.CSS_SELECTOR, f'#trace .hcell[data-step="{step}"][data-unit="{unit}"]')
            ActionChains(driver).move_to_element(cell).click().perform()
            if driver.execute_script("return document.body.dataset.match") == "true":
                wait(driver, "return document.getElementById('match-list').dataset.unit", "the matches")
            ActionChains(driver).move_to_element(cell).perform()
            note += f", trace requested and drawn in {ms} ms"
        elif kind == "language_model":
            text = shown.get("language_model", "the ")
            page(name, text=text)
            rendered_text(driver, text, "the next-token view")
            set_value(driver, "gen-prompt", text)
            set_value(driver, "gen-length", "300")
            set_value(driver, "gen-temperature", "0.7")
            driver.find_element(By.ID, "gen-button").click()
            wait(driver, "return document.getElementById('gen-output').dataset.done === 'true'", "the generation")
        elif kind == "forecaster":
            spec = shown.get("forecaster")
            if spec:
                values = ", ".join(f"{v:g}" for v in spec["values"])
                page(name, values=values, season=str(spec["season"]))
                rendered_text(driver, values, "the forecast")
            else:
                page(name)
                wait(driver, "return document.body.dataset.renderedView === 'forecaster'", "the forecast")
        elif kind == "translator":
            text = shown.get("translator", "eins rot .")
            page(name, text=text)
            rendered_text(driver, text, "the translation")
        elif kind == "speech_recognizer":
            recording = wav or shown.get("speech_recognizer") or synthetic_vowel(tmp / "vowel.wav")
            page(name)
            before = renders(driver)
            driver.find_element(By.ID, "sp-file").send_keys(str(Path(recording).resolve()))
            rendered_after(driver, before, "the transcript")
            note += f", {Path(recording).name}"
        full_page(driver, file, width)
        error = driver.execute_script("const b = document.getElementById('error-box'); return b.hidden ? '' : "
                                      "b.textContent")
        if error:
            raise RuntimeError(f"{file.name}: the page shows an error: {error}")
        written.append((file, note))

    driver.get(f"{url}/walkthrough")
    wait(driver, "return document.body.dataset.rendered", "the walkthrough")
    file = out / "walkthrough.png"
    full_page(driver, file, width)
    written.append((file, "rnn cell, the default weights"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", metavar="[NAME=]NAME|DIR",
                        help="serve this model instead of the demo set (a bundled name or a checkpoint folder); "
                             "repeatable")
    parser.add_argument("--data", type=Path, default=None,
                        help="the data folder (default: $UNROLLED_DATA_DIR, else ../shared/data when it exists)")
    parser.add_argument("--wav", type=Path, help="the recording the speech view transcribes")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "serving", help="folder of the PNGs")
    parser.add_argument("--width", type=int, default=1400, help="page width in CSS pixels (default 1400)")
    args = parser.parse_args(argv)

    import tempfile

    import unrolled
    from unrolled.serve.app import create_app

    data = args.data or (Path(os.environ["UNROLLED_DATA_DIR"]) if os.environ.get("UNROLLED_DATA_DIR") else None)
    if data is None and (ROOT.parent / "shared" / "data").is_dir():
        data = ROOT.parent / "shared" / "data"
    if args.model:
        models = {}
        for spec in args.model:
            name, _, where = spec.rpartition("=")
            models[name or Path(where.rstrip("/")).name] = unrolled.load(where)
        shown = {}
    else:
        models, shown = demo_models(data)
    match = None
    sst2 = data / "sst2" / "train.tsv" if data else None
    if sst2 and sst2.is_file():
        from unrolled.data.readers import read_dataset

        match = read_dataset(sst2).texts
    elif any(m.KIND == "classifier" for m in models.values()):
        match = PHRASES

    url, server, thread = serve(create_app(models, match_texts=match))
    args.out.mkdir(parents=True, exist_ok=True)
    driver = browser(args.width)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            written = shoot(driver, url, models, shown, args.out, args.width, args.wav, Path(tmp))
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=5)
    for path, note in written:
        try:
            shown_path = path.resolve().relative_to(Path.cwd())
        except ValueError:
            shown_path = path
        print(f"wrote {shown_path} ({note})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
