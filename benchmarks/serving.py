"""The HTTP server under load, fuzzed, and in a browser (docs/serving.md).

Sections (``--sections``; all by default):

- ``load``: ``unrolled serve`` as its own process on 127.0.0.1 (uvicorn, one worker) with the bundled sst2-rnn;
  ``--requests`` POST /api/predict of one sentence from ``--concurrency`` concurrent clients (a plain asyncio
  HTTP/1.1 client, one kept-alive connection each), after a warm-up: p50/p90/p99/max latency in ms, requests/s and errors (any status but 200). The same for
  /api/explain (the full trace) with fewer requests.
- ``fuzz``: schemathesis generates requests for every operation of the server's OpenAPI schema (valid ones
  and, in negative mode, ones that break the schema), ``--examples`` per operation and mode, sent in-process to
  the app serving one model of every kind; counts the statuses and the server errors (5xx), which must be 0.
- ``render``: the explorer in headless Chromium (Debian's chromium + chromium-driver, through selenium): type a
  sentence, the page's own clock from "typing stopped" to "trace drawn" (``document.body.dataset.renderMs``);
  median and max over ``--sentences`` sentences.

    PYTHONPATH=src:. python benchmarks/serving.py                   # full run -> docs/serving.md, docs/results/serving.json
    PYTHONPATH=src:. python benchmarks/serving.py --quick --out -   # smoke run, stdout only

Needs the [serve] extra, httpx and schemathesis; render needs selenium and chromium (skipped without them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import free_port, write_between_markers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "serving.md"
RESULTS = ROOT / "docs" / "results" / "serving.json"
SENTENCES = ["I love this", "a dull , lifeless film", "the plot is thin but the acting is superb",
             "not good at all", "one of the best films of the year", "I hated every minute of it",
             "a charming , funny and moving story", "it is neither funny nor smart", "great", "what a mess"]



class Server:
    """``unrolled serve`` in a subprocess, until the context ends."""

    def __init__(self, *models: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [arg for model in models for arg in ("--model", model)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.process = subprocess.Popen([sys.executable, "-m", "unrolled", "serve", *args, "--port", str(self.port)],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> Server:
        import httpx

        deadline = time.time() + 60
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.process.stderr.read()}")
            try:
                if httpx.get(self.url + "/api/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def _post(reader, writer, host: str, path: str, payload: bytes) -> int:
    """One HTTP/1.1 POST on a kept-alive connection; returns the status (the body is read and dropped)."""
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:  # chunked
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _load(url: str, path: str, bodies: list[dict], requests: int, concurrency: int) -> dict:
    """``concurrency`` clients, each on its own kept-alive connection, sending requests back to back. A plain
    asyncio client: on a 2-core machine the load generator shares the CPUs with the server, so it must be lean."""
    host, port = url.split("//")[1].split(":")
    payloads = [json.dumps(body).encode() for body in bodies]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    next_index = 0

    async def client(warm: bool) -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            await _post(reader, writer, host, path, payloads[0])  # warm-up: the connection, the model's first call
            while warm and next_index < requests:
                payload = payloads[next_index % len(payloads)]
                next_index += 1
                started = time.perf_counter()
                try:
                    status = await _post(reader, writer, host, path, payload)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    status = -1
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await client(False)
    started = time.perf_counter()
    await asyncio.gather(*(client(True) for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    ms = np.array(latencies)
    return {"path": path, "requests": len(ms), "concurrency": concurrency, "seconds": seconds,
            "requests_per_s": len(ms) / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "errors": sum(n for s, n in statuses.items() if s != 200),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def run_load(requests: int, concurrency: int) -> list[dict]:
    with Server("sst2-rnn") as server:
        predict = [{"texts": [s]} for s in SENTENCES]
        explain = [{"text": s} for s in SENTENCES]
        return [asyncio.run(_load(server.url, "/api/predict", predict, requests, concurrency)),
                asyncio.run(_load(server.url, "/api/explain", explain, max(100, requests // 4), concurrency))]


def run_fuzz(examples: int) -> list[dict]:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    from tests.serve.conftest import MATCH, small_models
    from unrolled.serve.app import create_app

    app = create_app(small_models(), match_texts=MATCH)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    rows = []
    for result in schema.get_all_operations():
        operation = result.ok()
        statuses: dict[int, int] = {}
        failures: list[str] = []
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                      derandomize=True)
            def send(case) -> None:
                response = case.call()
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code >= 500 and len(failures) < 3:
                    failures.append(f"{case.body!r:.200} -> {response.text[:200]}")

            try:
                send()
            except Unsatisfiable:  # nothing breaks the schema of an operation without parameters
                pass
        rows.append({"operation": f"{operation.method.upper()} {operation.path}", "requests": sum(statuses.values()),
                     "statuses": {str(k): v for k, v in sorted(statuses.items())},
                     "server_errors": sum(n for s, n in statuses.items() if s >= 500), "failures": failures})
    return rows


def run_render(sentences: int) -> dict | None:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return None
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    times = []
    with Server("sst2-rnn") as server:
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            driver.get(server.url + "/")
            box = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.CSS_SELECTOR, "#text, textarea, input[type=text]"))
            for sentence in (SENTENCES * 3)[:sentences]:
                before = driver.execute_script("return document.body.dataset.rendered || '0'")
                box.clear()
                box.send_keys(sentence)
                WebDriverWait(driver, 20).until(
                    lambda d: d.execute_script("return document.body.dataset.rendered || '0'") != before)
                times.append(float(driver.execute_script("return document.body.dataset.renderMs")))
        finally:
            driver.quit()
    return {"sentences": len(times), "median_ms": float(np.median(times)), "max_ms": float(max(times)),
            "all_ms": times}


def render_doc(results: dict) -> str:
    lines = [f"Measured by `benchmarks/serving.py` on {results['date']} ({results['machine']}); uvicorn, one worker, "
             "127.0.0.1.", ""]
    for row in results.get("load", []):
        lines.append(f"- `{row['path']}`: {row['requests']:,} requests from {row['concurrency']} concurrent clients: "
                     f"p50 {row['p50_ms']:.1f} ms, p90 {row['p90_ms']:.1f} ms, **p99 {row['p99_ms']:.1f} ms**, max "
                     f"{row['max_ms']:.1f} ms; {row['requests_per_s']:,.0f} requests/s; {row['errors']} errors.")
    if results.get("load"):
        lines.append("")
    fuzz = results.get("fuzz")
    if fuzz:
        lines += [f"Fuzzing (schemathesis, {results['examples']} valid and {results['examples']} schema-breaking "
                  "examples per operation, one model of every kind):", "",
                  "| operation | requests | statuses | server errors |", "|---|---:|---|---:|"]
        for row in fuzz:
            shown = ", ".join(f"{k}: {v}" for k, v in row["statuses"].items())
            lines.append(f"| `{row['operation']}` | {row['requests']:,} | {shown} | {row['server_errors']} |")
        lines.append("")
    render = results.get("render")
    if render:
        lines.append(f"Explorer, headless Chromium: typing stopped → trace drawn in a median {render['median_ms']:.0f} ms,"
                     f" at most {render['max_ms']:.0f} ms over {render['sentences']} sentences.")
    elif "render" in results:
        lines.append("Explorer render time: not measured (selenium, chromium or chromedriver missing).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", default=["load", "fuzz", "render"], choices=["load", "fuzz", "render"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--examples", type=int, default=500, help="fuzzed requests per operation and mode")
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="'-': print only")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.examples, args.sentences = 200, 20, 3
    import platform

    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                     "examples": args.examples}
    if "load" in args.sections:
        results["load"] = run_load(args.requests, args.concurrency)
    if "fuzz" in args.sections:
        results["fuzz"] = run_fuzz(args.examples)
    if "render" in args.sections:
        results["render"] = run_render(args.sentences)
    text = render_doc(results)
    print(text)
    if args.out != "-":
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        write_between_markers(DOC, "serving", text)


if __name__ == "__main__":
    main()
