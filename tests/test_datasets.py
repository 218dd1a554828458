"""The datasets registry against a real HTTP server on 127.0.0.1 serving small synthetic archives.

No test reaches beyond 127.0.0.1 and none writes outside tmp_path (HOME, XDG_CACHE_HOME and
UNROLLED_DATA_DIR point into it). Set UNROLLED_DATA_DIR to a folder laid out like shared/data to also check
that the real reference files verify.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import http.server
import io
import itertools
import json
import os
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from unrolled import datasets
from unrolled.cli import UsageError
from unrolled.cli.common import Streams
from unrolled.cli.datasets import add_datasets_arguments, check_dataset_options, load_training_data, run_datasets
from unrolled.datasets import (
    MANIFEST,
    REGISTRY,
    DatasetError,
    DatasetInfo,
    Source,
    dataset_status,
    default_data_dir,
    describe,
    download,
    locate,
)

REAL_DATA_DIR = os.environ.get("UNROLLED_DATA_DIR")  # read before any test points it into tmp_path


# --- a local HTTP server ---------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (body, mode)``; mode "truncate" promises the whole body and sends half."""

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, mode = route
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if mode == "truncate" else body)
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@dataclasses.dataclass
class Server:
    url: str
    routes: dict[str, tuple[bytes, str]]
    paths: itertools.count = dataclasses.field(default_factory=itertools.count)

    def serve(self, name: str, body: bytes, mode: str = "ok") -> str:
        path = f"/{next(self.paths)}/{name}"
        self.routes[path] = (body, mode)
        return self.url + path


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.routes = {}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd.routes)
    httpd.shutdown()
    httpd.server_close()


ORIGINAL_DATA_DIR = os.environ.get("UNROLLED_DATA_DIR")  # before the fixture below points it at tmp_path


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Everything the code could write goes under tmp_path; no proxy stands between us and 127.0.0.1."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("UNROLLED_DATA_DIR", str(tmp_path / "data"))
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(server: Server, name: str, bodies: list[bytes], mode: str = "ok", **changes) -> DatasetInfo:
    """The registry entry ``name`` with its sources served locally (and no reference hashes)."""
    base = REGISTRY[name]
    sources = tuple(
        Source(server.serve(source.filename, body, mode), _sha(body), len(body))
        for source, body in zip(base.sources, bodies)
    )
    return dataclasses.replace(base, sources=sources, files=dict.fromkeys(base.files), **changes)


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --- synthetic archives ---------------------------------------------------------------------------------------

BROMWELL = 'Bromwell High is a cartoon comedy. <br /><br />"Teachers"\tcafé über'


def _imdb_reviews() -> dict[str, bytes]:
    members = {"aclImdb/imdb.vocab": b"the\nand\n", "aclImdb/train/unsup/0_0.txt": b"unlabelled"}
    for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9):  # archive order is not id order, and 10 sorts after 9
        members[f"aclImdb/train/neg/{i}_{1 + i % 4}.txt"] = f"negative train review {i}".encode()
    members["aclImdb/train/pos/1_8.txt"] = b"positive train review 1"
    members["aclImdb/train/pos/0_9.txt"] = BROMWELL.encode()
    members["aclImdb/test/neg/0_2.txt"] = b"Once again Mr. Costner has dragged out a movie"
    members["aclImdb/test/pos/0_10.txt"] = b"positive test review 0"
    members["aclImdb/train/labeledBow.feat"] = b"0 0:9"
    return members


def _mr_archive() -> bytes:
    return _tar_gz({
        "rt-polaritydata.README.1.0.txt": b"readme",
        "rt-polaritydata/rt-polarity.neg": b"simplistic , silly and tedious . \nit's a caf\xe9 \x97 dull . \n",
        "rt-polaritydata/rt-polarity.pos": b"the rock is destined to be great . \n\nna\xefve but fun \n",
    })


SST_TRAIN_TREES = "\n".join([
    "(3 (2 (2 The) (2 Rock)) (4 (2 is) (4 great)))",
    "(1 (2 A) (1 (2 -LRB-) (1 (2 dull) (2 -RRB-))))",
    "(2 (2 neutral) (2 sentence))",
    "(4 (2 good) (4 humour))",
    "(0 (2 co-writer\\/director) (0 (2 2\xa01\\/2) (0 hours)))",
    "(1 (2 I) (1 (2 wanna) (1 leave)))",
    "(3 (2 (2 The) (2 Rock)) (4 (2 is) (4 great)))",
]) + "\n"
SST_TEST_TREES = "\n".join([
    "(4 (2 A) (4 masterpiece))",
    "(0 (2 No.) (0 .))",
    "(2 (2 so) (2 so))",
    "(3 (2 favourite) (3 film))",
]) + "\n"
GLUE_TRAIN = ("sentence\tlabel\nthe rock is great \t1\na ( dull ) \t0\ngood humor \t1\n"
              "co-writer/director 2 1/2 hours \t0\ni wan na leave \t0\ngreat \t1\n")
GLUE_DEV = "sentence\tlabel\nit 's a charming journey . \t1\ntoo long \t0\n"
GLUE_TEST = "index\tsentence\n0\tfavorite film \n1\ta masterpiece\n2\tno . .\n"


def _sst_archives(glue_test: str = GLUE_TEST) -> list[bytes]:
    trees = _zip({"trees/train.txt": SST_TRAIN_TREES.encode(), "trees/dev.txt": b"(3 (3 nice))\n",
                  "trees/test.txt": SST_TEST_TREES.encode()})
    glue = _zip({"SST-2/train.tsv": GLUE_TRAIN.encode(), "SST-2/dev.tsv": GLUE_DEV.encode(),
                 "SST-2/test.tsv": glue_test.encode()})
    return [trees, glue]


def _jsonl_gz(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).decode().splitlines()]


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# --- where the data lives -------------------------------------------------------------------------------------


def test_data_dir_precedence_env_then_xdg_then_home(tmp_path, monkeypatch):
    assert default_data_dir() == tmp_path / "data"
    monkeypatch.delenv("UNROLLED_DATA_DIR")
    assert default_data_dir() == tmp_path / "xdg" / "unrolled" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_data_dir() == tmp_path / "home" / ".cache" / "unrolled" / "data"
    assert dataset_status("mr").data_dir == tmp_path / "home" / ".cache" / "unrolled" / "data"
    assert dataset_status("mr", tmp_path / "mine").folder == tmp_path / "mine" / "mr"


def test_registry_entries_are_complete():
    assert sorted(REGISTRY) == ["fsdd", "imdb", "mr", "multi30k", "sst2", "tinyshakespeare"]
    for info in REGISTRY.values():
        assert info.description and info.citation and info.license and info.homepage.startswith("https://")
        for source in info.sources:
            assert source.url.startswith("https://") and len(source.sha256) == 64 and source.size > 0
        assert all(len(sha) == 64 for sha in info.files.values())
    assert set(REGISTRY["sst2"].splits) == {"train", "dev", "test", "train_phrases"}
    assert set(REGISTRY["imdb"].splits) == {"train", "test"}
    assert REGISTRY["tinyshakespeare"].folder == "text"
    assert json.loads(json.dumps(describe("sst2")))["status"]["ready"] is False


# --- good downloads: converted exactly ------------------------------------------------------------------------


def test_imdb_download_converts_sorted_by_label_then_id_with_gzip_mtime_0(server, tmp_path):
    archive = _tar_gz(_imdb_reviews())
    info = _entry(server, "imdb", [archive])
    calls = []
    files = download(info, progress=lambda done, total: calls.append((done, total)))

    root = tmp_path / "data"
    assert files == {"train": root / "imdb/train.jsonl.gz", "test": root / "imdb/test.jsonl.gz"}
    train = _jsonl_gz(files["train"])
    assert [row["text"] for row in train[:11]] == [f"negative train review {i}" for i in range(11)]
    assert train[11:] == [{"text": BROMWELL, "label": 1}, {"text": "positive train review 1", "label": 1}]
    assert [row["label"] for row in train] == [0] * 11 + [1] * 2
    assert list(train[0]) == ["text", "label"]
    assert json.dumps(train[11], ensure_ascii=False) in gzip.decompress(files["train"].read_bytes()).decode()
    assert [row["text"] for row in _jsonl_gz(files["test"])] == [
        "Once again Mr. Costner has dragged out a movie", "positive test review 0"]
    header = files["train"].read_bytes()[:10]
    assert header[:4] == b"\x1f\x8b\x08\x08" and header[4:8] == b"\0\0\0\0"  # gzip, name field, mtime 0

    manifest = json.loads((root / "imdb" / MANIFEST).read_text())
    assert manifest["dataset"] == "imdb"
    assert manifest["sources"] == [{"url": info.sources[0].url, "sha256": _sha(archive), "bytes": len(archive)}]
    assert manifest["files"]["imdb/train.jsonl.gz"]["sha256"] == _sha(files["train"].read_bytes())
    assert calls[-1] == (len(archive), len(archive)) and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    assert _leftovers(root) == ["imdb", "imdb/MANIFEST.json", "imdb/test.jsonl.gz", "imdb/train.jsonl.gz"]
    assert locate(info) == files  # no reference hash: the manifest vouches for the files


def test_mr_download_decodes_cp1252_strips_and_puts_negatives_first(server, tmp_path):
    files = download(_entry(server, "mr", [_mr_archive()]))
    assert files["train"].read_text(encoding="utf-8") == (
        "sentence\tlabel\n"
        "simplistic , silly and tedious .\t0\n"
        "it's a café — dull .\t0\n"
        "the rock is destined to be great .\t1\n"
        "naïve but fun\t1\n"
    )


def test_sst2_download_builds_all_four_files_as_the_readme_describes(server):
    files = download(_entry(server, "sst2", _sst_archives()))
    assert files["train"].read_text() == (
        "sentence\tlabel\n"
        "the rock is great\t1\n"
        "a ( dull )\t0\n"
        "good humor\t1\n"  # the tree says humour: GLUE's spelling of the same sentence wins
        "co-writer/director 2 1/2 hours\t0\n"  # \/ and the non-breaking space undone
        "i wan na leave\t0\n"
        "the rock is great\t1\n"  # a repeated sentence is kept, as in SST
    )
    assert files["dev"].read_text() == "sentence\tlabel\nit 's a charming journey .\t1\ntoo long\t0\n"
    assert files["test"].read_text() == "sentence\tlabel\nfavorite film\t1\na masterpiece\t1\nno . .\t0\n"
    assert files["train_phrases"].read_text() == GLUE_TRAIN.replace(" \t", "\t")
    notes = json.loads((files["train"].parent / MANIFEST).read_text())["notes"]
    assert "sst2/train.tsv: 6 tree sentences, 2 in GLUE's spelling" in notes


def test_sst2_test_falls_back_to_tree_order_when_a_glue_sentence_has_no_tree(server):
    files = download(_entry(server, "sst2", _sst_archives(GLUE_TEST + "3\tnot in any tree\n")))
    assert files["test"].read_text() == "sentence\tlabel\na masterpiece\t1\nno. .\t0\nfavourite film\t1\n"


def test_tinyshakespeare_is_copied_byte_for_byte(server, tmp_path):
    text = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"
    files = download(_entry(server, "tinyshakespeare", [text]))
    assert files == {"text": tmp_path / "data" / "text" / "tinyshakespeare.txt"}
    assert files["text"].read_bytes() == text


def test_fsdd_downloads_every_recording_into_its_folder(server, tmp_path):
    from unrolled.audio.wav import write_wav

    bodies = []
    for i in range(3):
        path = write_wav(tmp_path / f"{i}.wav", [0.1 * i] * 80, 8000)
        bodies.append(path.read_bytes())
    base = REGISTRY["fsdd"]
    names = [Path(source.url).name for source in base.sources[:3]]
    sources = tuple(Source(server.serve(name, body), _sha(body), len(body)) for name, body in zip(names, bodies))
    info = dataclasses.replace(base, sources=sources, files={f"fsdd/recordings/{n}": None for n in names})
    files = download(info)
    assert files == {"recordings": tmp_path / "data" / "fsdd" / "recordings"}
    assert sorted(p.name for p in files["recordings"].iterdir()) == sorted(names)
    assert (files["recordings"] / names[1]).read_bytes() == bodies[1]
    assert locate(info) == files  # verified against the MANIFEST.json written beside them


def test_fsdd_list_matches_the_shared_sha256sums():
    """The per-file hashes shipped in the package are the shared copy's SHA256SUMS (itself pinned)."""
    root = ORIGINAL_DATA_DIR
    sums = Path(root or "") / "fsdd" / "SHA256SUMS"
    if not root or not sums.is_file():
        pytest.skip("the shared data (fsdd/SHA256SUMS) is not available")
    assert _sha(sums.read_bytes()) == "1801eae019c063377d98f831d3f93574f259475df7332bb0e3d1b080fb5e6959"
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    info = REGISTRY["fsdd"]
    assert {Path(path).name: sha for path, sha in info.files.items()} == listed
    assert len(info.sources) == 3000 and info.download_bytes == 21_128_848


def test_tsv_rows_lose_tabs_and_line_breaks(tmp_path):
    written = datasets._write_tsv(tmp_path / "x.tsv", [("a\tb\r\nc ", 1), (" \t ", 0)])
    assert written == 1
    assert (tmp_path / "x.tsv").read_text() == "sentence\tlabel\na b  c\t1\n"


# --- failed downloads: clear errors, nothing cached -----------------------------------------------------------


def _assert_nothing_cached(root: Path, name: str = "imdb") -> None:
    assert not dataset_status(name, root).ready
    assert _leftovers(root) == []  # no dataset folder, no .part, no temporary folder


def test_bad_checksum_is_refused_and_nothing_is_cached(server, tmp_path):
    archive = _tar_gz(_imdb_reviews())
    info = _entry(server, "imdb", [archive])
    wrong = dataclasses.replace(info.sources[0], sha256="0" * 64)
    with pytest.raises(DatasetError) as error:
        download(dataclasses.replace(info, sources=(wrong,)))
    assert str(error.value) == f"sha256 of {wrong.url} is {_sha(archive)}, expected {'0' * 64}: not cached"
    _assert_nothing_cached(tmp_path / "data")


def test_truncated_download_is_refused_and_no_part_file_is_left(server, tmp_path):
    archive = _tar_gz(_imdb_reviews())
    info = _entry(server, "imdb", [archive], mode="truncate")
    with pytest.raises(DatasetError, match=rf"download of .* ended after {len(archive) // 2} of {len(archive)} bytes"):
        download(info)
    _assert_nothing_cached(tmp_path / "data")


def test_http_404_names_the_status_and_the_url(server, tmp_path):
    source = Source(server.url + "/no/such/file.tar.gz", "0" * 64, 10)
    info = dataclasses.replace(REGISTRY["imdb"], sources=(source,))
    with pytest.raises(DatasetError) as error:
        download(info)
    assert str(error.value) == f"HTTP 404 Not Found from {source.url}"
    _assert_nothing_cached(tmp_path / "data")


def test_unreachable_server_is_one_clear_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    url = f"http://127.0.0.1:{port}/aclImdb_v1.tar.gz"
    info = dataclasses.replace(REGISTRY["imdb"], sources=(Source(url, "0" * 64, 10),))
    with pytest.raises(DatasetError, match=rf"^cannot reach {url}: "):
        download(info, timeout=5)
    _assert_nothing_cached(tmp_path / "data")


def test_an_archive_without_a_needed_member_is_named(server, tmp_path):
    members = {name: data for name, data in _imdb_reviews().items() if "/train/pos/" not in name}
    info = _entry(server, "imdb", [_tar_gz(members)])
    with pytest.raises(DatasetError) as error:
        download(info)
    assert str(error.value) == f"{info.sources[0].url}: archive has no member aclImdb/train/pos/0_*.txt"
    _assert_nothing_cached(tmp_path / "data")


def test_a_source_without_a_known_sha256_is_refused_before_any_request(tmp_path):
    info = dataclasses.replace(REGISTRY["mr"], sources=(Source("http://127.0.0.1:9/x.tar.gz", None, None),))
    with pytest.raises(DatasetError, match=r"^no known sha256 for http://127.0.0.1:9/x.tar.gz; download it "
                                           r"yourself and use --data-dir$"):
        download(info)
    _assert_nothing_cached(tmp_path / "data", "mr")


def test_a_failed_redownload_leaves_the_good_copy_intact(server, tmp_path):
    good = _entry(server, "mr", [_mr_archive()])
    files = download(good)
    before = {path.name: path.read_bytes() for path in (tmp_path / "data" / "mr").iterdir()}
    for broken in (_entry(server, "mr", [_mr_archive()], mode="truncate"),
                   dataclasses.replace(good, sources=(dataclasses.replace(good.sources[0], sha256="1" * 64),)),
                   _entry(server, "mr", [_tar_gz({"rt-polaritydata/rt-polarity.neg": b"x\n"})])):
        with pytest.raises(DatasetError):
            download(broken)
        assert {path.name: path.read_bytes() for path in (tmp_path / "data" / "mr").iterdir()} == before
        assert locate(good) == files
    assert _leftovers(tmp_path / "data") == ["mr", "mr/MANIFEST.json", "mr/mr.tsv"]


def test_a_redownload_replaces_the_old_copy(server, tmp_path):
    download(_entry(server, "tinyshakespeare", [b"old text\n"]))
    download(_entry(server, "tinyshakespeare", [b"new text\n"]))
    assert (tmp_path / "data" / "text" / "tinyshakespeare.txt").read_bytes() == b"new text\n"
    assert _leftovers(tmp_path / "data") == ["text", "text/MANIFEST.json", "text/tinyshakespeare.txt"]


def test_a_folder_with_foreign_files_is_not_replaced(server, tmp_path):
    (tmp_path / "data" / "text").mkdir(parents=True)
    (tmp_path / "data" / "text" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match=r"holds files that are not part of dataset tinyshakespeare \(notes.txt\)"):
        download(_entry(server, "tinyshakespeare", [b"text\n"]))
    assert _leftovers(tmp_path / "data") == ["text", "text/notes.txt"]


def test_a_mirror_is_tried_when_the_url_fails(server, tmp_path):
    archive = _mr_archive()
    mirror = server.serve("rt-polaritydata.tar.gz", archive)
    source = Source(server.url + "/gone/rt-polaritydata.tar.gz", _sha(archive), len(archive), mirrors=(mirror,))
    info = dataclasses.replace(REGISTRY["mr"], sources=(source,), files={"mr/mr.tsv": None})
    files = download(info)
    assert files["train"].read_text().startswith("sentence\tlabel\nsimplistic")
    assert json.loads((tmp_path / "data" / "mr" / MANIFEST).read_text())["sources"][0]["url"] == mirror


# --- locate: present files are verified, missing ones named ---------------------------------------------------


def _shared_like(root: Path) -> DatasetInfo:
    """A folder laid out like shared/data (no manifest) and an entry whose reference hashes match it."""
    (root / "mr").mkdir(parents=True)
    (root / "mr" / "mr.tsv").write_text("sentence\tlabel\ndull .\t0\nfine .\t1\n")
    return dataclasses.replace(REGISTRY["mr"], files={"mr/mr.tsv": _sha((root / "mr" / "mr.tsv").read_bytes())})


def test_locate_uses_a_shared_like_folder_when_the_hashes_match(tmp_path):
    info = _shared_like(tmp_path / "shared")
    assert locate(info, tmp_path / "shared") == {"train": tmp_path / "shared" / "mr" / "mr.tsv"}


def test_locate_names_a_changed_file_and_both_hashes(server, tmp_path):
    info = _shared_like(tmp_path / "shared")
    path = tmp_path / "shared" / "mr" / "mr.tsv"
    reference = info.files["mr/mr.tsv"]
    path.write_text("sentence\tlabel\ndull .\t1\nfine .\t1\n")
    with pytest.raises(DatasetError) as error:
        locate(info, tmp_path / "shared")
    assert str(error.value).startswith(f"{path}: sha256 is {_sha(path.read_bytes())}, expected {reference} "
                                       "(reference)")
    assert locate(info, tmp_path / "shared", verify=False)["train"] == path

    downloaded = _entry(server, "mr", [_mr_archive()])
    files = download(downloaded)
    recorded = _sha(files["train"].read_bytes())
    files["train"].write_text("sentence\tlabel\ntampered\t1\n")
    with pytest.raises(DatasetError, match=rf"\(reference\) or {recorded} \(MANIFEST.json\): .* download mr --force"):
        locate(dataclasses.replace(downloaded, files={"mr/mr.tsv": reference}))


def test_locate_without_download_names_the_command(tmp_path):
    with pytest.raises(DatasetError) as error:
        locate("sst2")
    message = str(error.value)
    assert "\n" not in message
    assert f"dataset sst2 is not in {tmp_path / 'data'}" in message
    assert "run `unrolled datasets download sst2`" in message and "--data-dir DIR" in message


def test_locate_downloads_when_asked(server, tmp_path):
    info = _entry(server, "mr", [_mr_archive()])
    assert locate(info, download=True) == {"train": tmp_path / "data" / "mr" / "mr.tsv"}
    assert dataset_status(info).ready and dataset_status(info).has_manifest


def test_the_real_reference_files_verify():
    if not REAL_DATA_DIR or not (Path(REAL_DATA_DIR) / "sst2" / "dev.tsv").is_file():
        pytest.skip("set UNROLLED_DATA_DIR to a folder laid out like shared/data to check the reference files")
    for name in REGISTRY:
        files = locate(name, REAL_DATA_DIR)
        assert all(path.is_file() or path.is_dir() for path in files.values())


def test_the_imdb_writer_formats_rows_as_the_reference_files(tmp_path):
    reference = Path(REAL_DATA_DIR or "/nonexistent") / "imdb" / "test.jsonl.gz"
    if not reference.is_file():
        pytest.skip("set UNROLLED_DATA_DIR to a folder laid out like shared/data to compare with imdb/test.jsonl.gz")
    with gzip.open(reference, "rt", encoding="utf-8", newline="\n") as file:
        lines = [file.readline() for _ in range(300)]
    rows = [(row["text"], row["label"]) for row in map(json.loads, lines)]
    datasets._write_jsonl_gz(tmp_path / "test.jsonl.gz", rows)
    assert gzip.decompress((tmp_path / "test.jsonl.gz").read_bytes()).decode() == "".join(lines)
    assert (tmp_path / "test.jsonl.gz").read_bytes()[:24] == reference.read_bytes()[:24]  # header and file name


# --- the command line -----------------------------------------------------------------------------------------


def _cli(*argv: str) -> tuple[int, str, str]:
    assert argv[0] == "datasets"
    parser = argparse.ArgumentParser(prog="unrolled datasets")
    add_datasets_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    try:
        args = parser.parse_args(argv[1:])
        run_datasets(args, Streams(out, err, io.StringIO()))
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    except DatasetError as error:
        return 1, out.getvalue(), str(error)
    return 0, out.getvalue(), err.getvalue()


def test_cli_list_info_and_download(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(REGISTRY, "mr", _entry(server, "mr", [_mr_archive()]))
    code, out, _ = _cli("datasets", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "description", "download", "status"]
    assert [line.split()[0] for line in lines[1:]] == ["sst2", "imdb", "mr", "tinyshakespeare", "multi30k", "fsdd"]
    assert all(line.endswith("not downloaded") for line in lines[1:])

    code, out, err = _cli("datasets", "download", "mr")
    assert code == 0
    assert err.startswith("downloading mr (") and "from 127.0.0.1\n" in err
    assert f"mr: downloaded and verified into {tmp_path / 'data' / 'mr'}" in out
    assert str(tmp_path / "data" / "mr" / "mr.tsv") in out

    code, out, _ = _cli("datasets", "download", "mr")
    assert (code, out) == (0, f"mr is already in {tmp_path / 'data' / 'mr'} (verified); --force downloads it again\n")
    code, out, _ = _cli("datasets", "download", "mr", "--force")
    assert code == 0 and "downloaded and verified" in out
    code, out, _ = _cli("datasets", "list")
    assert f"ready at {tmp_path / 'data' / 'mr'}" in out

    code, out, _ = _cli("datasets", "info", "mr", "--json")
    assert code == 0 and json.loads(out)["status"]["ready"] is True
    code, out, _ = _cli("datasets", "info", "sst2", "--data-dir", str(tmp_path / "elsewhere"))
    assert code == 0 and "trainDevTestTrees_PTB.zip" in out and out.endswith("status:   not downloaded\n")
    code, out, _ = _cli("datasets", "list", "--json")
    assert [entry["name"] for entry in json.loads(out)] == ["sst2", "imdb", "mr", "tinyshakespeare", "multi30k", "fsdd"]

    assert _cli("datasets", "info", "nosuch")[0] == 2
    assert _cli("datasets")[0] == 2
    capsys.readouterr()


def test_cli_download_errors_are_one_line(server, monkeypatch):
    monkeypatch.setitem(REGISTRY, "mr", _entry(server, "mr", [_mr_archive()], mode="truncate"))
    code, _, message = _cli("datasets", "download", "mr")
    assert code == 1 and "ended after" in message and "\n" not in message


def _train_args(**given) -> argparse.Namespace:
    return argparse.Namespace(**{"dataset": None, "data_dir": None, "phrases": False, "train": None, "dev": None,
                                 **given})


def test_train_dataset_downloads_then_splits_dev_for_mr(server, tmp_path, monkeypatch):
    rows = b"".join(f"bad sentence {i} \n".encode() for i in range(20))
    good = b"".join(f"good sentence {i} \n".encode() for i in range(10))
    archive = _tar_gz({"rt-polaritydata/rt-polarity.neg": rows, "rt-polaritydata/rt-polarity.pos": good})
    monkeypatch.setitem(REGISTRY, "mr", _entry(server, "mr", [archive]))
    err = io.StringIO()
    data = load_training_data(_train_args(dataset="mr"), err)
    assert err.getvalue().startswith(f"mr is not in {tmp_path / 'data'}: downloading mr (")
    assert (len(data.train), len(data.dev)) == (27, 3)
    assert sorted(data.dev.labels) == ["0", "0", "1"]
    assert data.dev.path == data.train.path and all(line >= 2 for line in data.dev.lines)
    assert data.record["dev"] == {"split_of": data.train.path, "fraction": 0.1, "seed": 0, "rows": 3}
    assert data.held_out == {} and data.label_names == {"0": "negative", "1": "positive"}


def test_train_dataset_sst2_phrases_and_option_checks(server, monkeypatch):
    monkeypatch.setitem(REGISTRY, "sst2", _entry(server, "sst2", _sst_archives()))
    data = load_training_data(_train_args(dataset="sst2", phrases=True), io.StringIO())
    assert len(data.train) == 6 and data.dev.texts == ["it 's a charming journey .", "too long"]
    assert list(data.held_out) == ["test"] and data.record["train"]["path"].endswith("train_phrases.tsv")
    assert len(load_training_data(_train_args(dataset="sst2"), io.StringIO()).train) == 6
    for args in (_train_args(dataset="sst2", train="x.tsv"), _train_args(dataset="mr", phrases=True),
                 _train_args(data_dir="somewhere"), _train_args(phrases=True)):
        with pytest.raises(UsageError):
            check_dataset_options(args)


def test_unrolled_train_dataset_end_to_end_through_the_cli(server, tmp_path, monkeypatch):
    from unrolled.cli import main

    rows = b"".join(f"a dull and boring film number {i} \n".encode() for i in range(20))
    good = b"".join(f"a wonderful and moving film number {i} \n".encode() for i in range(20))
    archive = _tar_gz({"rt-polaritydata/rt-polarity.neg": rows, "rt-polaritydata/rt-polarity.pos": good})
    monkeypatch.setitem(REGISTRY, "mr", _entry(server, "mr", [archive]))
    out, err = io.StringIO(), io.StringIO()
    argv = ["train", "--dataset", "mr", "--data-dir", str(tmp_path / "d"), "--out", str(tmp_path / "m"),
            "--epochs", "3", "--hidden", "8", "--embedding-dim", "8", "--json"]
    assert main(argv, out=out, err=err) == 0, err.getvalue()
    summary = json.loads(out.getvalue())
    assert summary["labels"] == ["negative", "positive"]  # the dataset's 0/1 labels get their names
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["data"]["dev"]["rows"] == 4 and config["data"]["train"]["path"].endswith("mr.tsv")
    assert (tmp_path / "d" / "mr" / "MANIFEST.json").is_file()
    # the second run finds the dataset in place: no download notice
    err = io.StringIO()
    assert main(argv[:-1] + ["--quiet"], out=io.StringIO(), err=err) == 0 and err.getvalue() == ""


# --- multi30k: eight gzip text files from the official repository, kept byte for byte -------------------------

MULTI30K_COMMIT = "a3d2e0d26b56f3846f66a952536ffed4e401d05a"
MULTI30K_REFERENCE = {  # shared/data/README.md, section 6 and the table
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2017_flickr.de.gz": "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee",
    "test_2017_flickr.en.gz": "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074",
}
MULTI30K_SPLITS = {"train": "train", "dev": "val", "test2016": "test_2016_flickr", "test2017": "test_2017_flickr"}


def _multi30k_bodies(lines: int = 3) -> list[bytes]:
    """Gzip files in the registry's source order: ``lines`` German and English sentences per split."""
    bodies = []
    for source in REGISTRY["multi30k"].sources:
        stem, language = source.filename[: -len(".xx.gz")], source.filename[-5:-3]
        text = "".join(f"{stem} {language} Satz {i} ä\n" if language == "de" else f"{stem} {language} sentence {i}\n"
                       for i in range(lines))
        bodies.append(gzip.compress(text.encode(), mtime=0))
    return bodies


def test_multi30k_entry_points_at_the_pinned_commit_with_the_reference_hashes():
    info = REGISTRY["multi30k"]
    assert info.task == "translate" and info.folder == "multi30k"
    assert [source.filename for source in info.sources] == list(MULTI30K_REFERENCE)
    for source in info.sources:
        assert source.url == (f"https://raw.githubusercontent.com/multi30k/dataset/{MULTI30K_COMMIT}/data/task1/raw/"
                              f"{source.filename}")
        assert source.sha256 == MULTI30K_REFERENCE[source.filename]
    assert info.files == {f"multi30k/{name}": sha for name, sha in MULTI30K_REFERENCE.items()}
    assert info.splits == {f"{role}.{language}": f"multi30k/{stem}.{language}.gz"
                           for role, stem in MULTI30K_SPLITS.items() for language in ("de", "en")}
    assert info.download_bytes == 1_336_880
    assert "Elliott" in info.citation and "Flickr30k" in info.license


def test_multi30k_is_not_a_train_dataset_choice():
    from unrolled.cli.datasets import add_dataset_training_options

    parser = argparse.ArgumentParser()
    add_dataset_training_options(parser)
    choices = next(action.choices for action in parser._actions if action.dest == "dataset")
    assert sorted(choices) == ["imdb", "mr", "sst2"]


def test_multi30k_download_verifies_and_keeps_each_file_byte_for_byte(server, tmp_path):
    from unrolled.data.parallel import read_parallel

    bodies = _multi30k_bodies()
    info = _entry(server, "multi30k", bodies)
    info = dataclasses.replace(info, files={path: _sha(body) for path, body in zip(info.files, bodies)})
    files = download(info)
    root = tmp_path / "data" / "multi30k"
    assert files == {role: tmp_path / "data" / path for role, path in info.splits.items()}
    for source, body in zip(info.sources, bodies):
        assert (root / source.filename).read_bytes() == body
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["notes"] == [f"multi30k/{stem}.{{de,en}}.gz: 3 sentence pairs" for stem in MULTI30K_SPLITS.values()]
    assert [entry["url"] for entry in manifest["sources"]] == [source.url for source in info.sources]
    assert _leftovers(tmp_path / "data") == ["multi30k", "multi30k/MANIFEST.json",
                                             *sorted(f"multi30k/{name}" for name in MULTI30K_REFERENCE)]
    assert locate(info) == files  # by the reference hashes
    assert locate(dataclasses.replace(info, files=dict.fromkeys(info.files))) == files  # by the manifest
    pairs = read_parallel(files["test2016.de"], files["test2016.en"])
    assert pairs.sources[0] == "test_2016_flickr de Satz 0 ä" and pairs.targets[2] == "test_2016_flickr en sentence 2"

    (root / "val.en.gz").write_bytes(gzip.compress(b"tampered\n", mtime=0))
    expected = rf"^{root / 'val.en.gz'}: sha256 is [0-9a-f]{{64}}, expected .* multi30k --force` replaces it\)$"
    with pytest.raises(DatasetError, match=expected):
        locate(info)


def test_multi30k_a_corrupted_file_is_refused_and_nothing_is_cached(server, tmp_path):
    bodies = _multi30k_bodies()
    info = _entry(server, "multi30k", bodies)
    corrupted = bytearray(bodies[3])
    corrupted[12] ^= 0xFF
    bad = dataclasses.replace(info.sources[3], url=server.serve(info.sources[3].filename, bytes(corrupted)))
    sources = (*info.sources[:3], bad, *info.sources[4:])
    with pytest.raises(DatasetError) as error:
        download(dataclasses.replace(info, sources=sources))
    assert str(error.value) == (f"sha256 of {bad.url} is {_sha(bytes(corrupted))}, expected {_sha(bodies[3])}: "
                                "not cached")
    _assert_nothing_cached(tmp_path / "data", "multi30k")


def test_multi30k_the_pinned_hashes_refuse_other_bytes(server, tmp_path, monkeypatch):
    """The real entry with only its URLs moved to the local server: the synthetic files are not the real ones."""
    real = REGISTRY["multi30k"]
    bodies = _multi30k_bodies()
    sources = tuple(dataclasses.replace(source, url=server.serve(source.filename, body), size=len(body))
                    for source, body in zip(real.sources, bodies))
    monkeypatch.setitem(REGISTRY, "multi30k", dataclasses.replace(real, sources=sources))
    code, _, message = _cli("datasets", "download", "multi30k")
    assert code == 1 and message == (f"sha256 of {sources[0].url} is {_sha(bodies[0])}, expected "
                                     f"{MULTI30K_REFERENCE['train.de.gz']}: not cached")
    _assert_nothing_cached(tmp_path / "data", "multi30k")


def test_multi30k_unaligned_or_non_gzip_files_are_refused(server, tmp_path):
    bodies = _multi30k_bodies()
    short = bodies[:]
    short[5] = gzip.compress(b"only one line\n", mtime=0)  # test_2016_flickr.en.gz
    info = _entry(server, "multi30k", short)
    with pytest.raises(DatasetError) as error:
        download(info)
    assert str(error.value) == (f"{info.sources[4].url} has 3 lines, {info.sources[5].url} has 1: the two sides of "
                                "test_2016_flickr are not aligned")
    plain = bodies[:]
    plain[0] = b"Zwei Hunde\n"
    info = _entry(server, "multi30k", plain)
    with pytest.raises(DatasetError, match=rf"^{info.sources[0].url}: not gzip-compressed \(starts with 5a 77\)$"):
        download(info)
    _assert_nothing_cached(tmp_path / "data", "multi30k")


def test_multi30k_cli_download_through_the_registry(server, tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "multi30k", _entry(server, "multi30k", _multi30k_bodies()))
    code, out, err = _cli("datasets", "download", "multi30k")
    assert code == 0, err
    assert err.startswith("downloading multi30k (") and "from 127.0.0.1\n" in err
    assert f"multi30k: downloaded and verified into {tmp_path / 'data' / 'multi30k'}" in out
    assert f"test2017.en  {tmp_path / 'data' / 'multi30k' / 'test_2017_flickr.en.gz'}" in out
    code, out, _ = _cli("datasets", "download", "multi30k")
    assert (code, out) == (0, f"multi30k is already in {tmp_path / 'data' / 'multi30k'} (verified); --force "
                              "downloads it again\n")


def _real_multi30k() -> Path:
    folder = Path(REAL_DATA_DIR or "/nonexistent") / "multi30k"
    if not (folder / "train.de.gz").is_file():
        pytest.skip("set UNROLLED_DATA_DIR to a folder laid out like shared/data to check multi30k/")
    return folder


def test_multi30k_shared_copy_locates_verifies_and_reads():
    from unrolled.data.parallel import read_parallel

    folder = _real_multi30k()
    files = locate("multi30k", REAL_DATA_DIR)  # no MANIFEST.json there: the reference hashes vouch
    assert files["train.de"] == folder / "train.de.gz" and files["dev.en"] == folder / "val.en.gz"
    train = read_parallel(files["train.de"], files["train.en"])
    assert len(train) == 29_000 and train.skipped == [] and train.lines == list(range(1, 29_001))
    for role, pairs in (("dev", 1_014), ("test2016", 1_000), ("test2017", 1_000)):
        assert len(read_parallel(files[f"{role}.de"], files[f"{role}.en"])) == pairs


def test_multi30k_real_files_pass_the_real_entry_through_the_local_server(server, tmp_path, monkeypatch):
    """The shared copies served locally under the entry's pinned sha256 and sizes: the download accepts them,
    keeps them byte for byte, and locate verifies them by the reference hashes."""
    folder = _real_multi30k()
    real = REGISTRY["multi30k"]
    sources = tuple(dataclasses.replace(source, url=server.serve(source.filename,
                                                                 (folder / source.filename).read_bytes()))
                    for source in real.sources)
    monkeypatch.setitem(REGISTRY, "multi30k", dataclasses.replace(real, sources=sources))
    files = download("multi30k")
    for source in real.sources:
        kept = tmp_path / "data" / "multi30k" / source.filename
        assert kept.read_bytes() == (folder / source.filename).read_bytes()
    (tmp_path / "data" / "multi30k" / MANIFEST).unlink()  # the reference hashes alone vouch for them
    assert locate("multi30k") == files
