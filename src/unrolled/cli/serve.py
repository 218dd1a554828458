"""``unrolled serve``: the HTTP API and the explorer pages over the models given at start.

The app is :func:`unrolled.serve.app.create_app` (FastAPI); uvicorn runs it. Like the whole CLI, this module
only orchestrates library calls and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unrolled.cli.common import Command, Streams, UsageError, port_number, positive_float, positive_int

SERVE_HELP = """\
Serve models over HTTP: a JSON API (predict, explain, generate, forecast, translate, transcribe, the
walkthrough, the match view; its schema at /openapi.json, browsable at /docs) and the explorer pages (/ and
/walkthrough). Requests choose a model by the name given here, never by a path. Binds to 127.0.0.1 unless
--host says otherwise. Needs the serve extra: pip install 'unrolled[serve]'.

example:
  unrolled serve                                             # the bundled sst2-rnn and sst2-best
  unrolled serve --model sst2-rnn --model lm=models/shakespeare --match-data sst2/train.tsv --port 8080
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unrolled.pretrained import BUNDLED

    parser.add_argument("--model", action="append", metavar="[NAME=]NAME|DIR",
                        help=f"a model to serve, repeatable: a bundled model ({', '.join(BUNDLED)}) or a checkpoint "
                             "directory, optionally named NAME= (default name: the bundled name or the folder's "
                             "name; default models: every bundled one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=port_number, default=8000, help="port (default: 8000)")
    parser.add_argument("--match-data", metavar="FILE",
                        help="phrases for the match view (a TSV/CSV/JSONL/TXT file, e.g. a training file): where "
                             "each hidden unit fires most")
    parser.add_argument("--text-column", default=None, metavar="NAME",
                        help="--match-data's text column (default: sentence, else text)")
    parser.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDS",
                        help="longest compute of one request (default: 30)")
    parser.add_argument("--max-body", type=positive_int, default=6 * 2**20, metavar="BYTES",
                        help="largest request body (default: 6 MiB)")


def _named_models(specs: list[str] | None) -> dict[str, str]:
    """--model values -> {name: NAME|DIR}, names unique."""
    from unrolled.pretrained import BUNDLED

    named: dict[str, str] = {}
    for spec in specs or list(BUNDLED):
        name, _, where = spec.partition("=") if "=" in spec else ("", "", spec)
        name = name or Path(where.rstrip("/")).name or where
        if not where:
            raise UsageError(f"--model {spec}: expected NAME=DIR or a model")
        if name in named:
            raise UsageError(f"--model {spec}: the name {name!r} is taken; give one with NAME=DIR")
        named[name] = where
    return named


def run(args: argparse.Namespace, streams: Streams) -> None:
    try:
        import uvicorn

        from unrolled.serve.app import Limits, create_app
    except ImportError as error:
        raise ImportError(f"unrolled serve needs FastAPI and uvicorn: pip install 'unrolled[serve]' ({error})") from None
    import unrolled

    models = {name: unrolled.load(where) for name, where in _named_models(args.model).items()}
    match = None
    if args.match_data:
        from unrolled.data.readers import read_dataset

        match = read_dataset(args.match_data, text_column=args.text_column, require_labels=False).texts
    app = create_app(models, match_texts=match, limits=Limits(max_body_bytes=args.max_body,
                                                               timeout_seconds=args.timeout))
    import gc

    gc.collect()
    gc.freeze()  # the models' many long-lived objects leave the collector's scans: no pauses mid-request
    sock = _bound_socket(args.host, args.port)  # a taken port or a bad host fails here, in one line
    shown = ", ".join(f"{name} ({model.KIND})" for name, model in models.items())
    base = f"http://{args.host}:{args.port}"
    streams.out.write(f"serving {shown} at {base}/ (explorer), {base}/walkthrough, API docs {base}/docs; "
                      "Ctrl-C stops\n")
    streams.out.flush()
    with sock:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


def _bound_socket(host: str, port: int):
    """A listening TCP socket on host:port, or an OSError naming --host/--port."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as error:
        raise OSError(f"--host {host}: not an address of this machine ({error.strerror})") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise OSError(f"--port {port}: cannot listen on {host}:{port} ({error.strerror or error})") from None
    return sock


COMMANDS = {"serve": Command(SERVE_HELP, add_arguments, run)}
