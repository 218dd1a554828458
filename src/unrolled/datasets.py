"""The datasets registry: public datasets downloaded from their canonical source, verified, cached, converted.

Each :class:`DatasetInfo` in :data:`REGISTRY` names its source archives (URL, sha256, size), the files it
yields in the project's layout and the reference sha256 of each file (``shared/data/README.md``)::

    <data dir>/sst2/{train,dev,test,train_phrases}.tsv     sentence<TAB>label, header line
    <data dir>/imdb/{train,test}.jsonl.gz                  {"text": ..., "label": 0|1}, gzip mtime 0
    <data dir>/mr/mr.tsv                                   sentence<TAB>label
    <data dir>/text/tinyshakespeare.txt                    the char-rnn text, as is
    <data dir>/fsdd/recordings/*.wav                       the 3,000 FSDD recordings, as is (one download each)

The data dir is ``$UNROLLED_DATA_DIR``, else ``$XDG_CACHE_HOME/unrolled/data``, else
``~/.cache/unrolled/data``; every function takes ``data_dir`` to override it. A folder that already holds
the files (``shared/data``) works as is: :func:`locate` checks each file's sha256 against the reference, or
against the ``MANIFEST.json`` that :func:`download` writes beside the files it converted.

:func:`download` streams each archive into ``<data dir>/.downloads/*.part``, checks its length and sha256,
converts into a temporary folder there, and only then renames that folder into place (an existing copy is
replaced only once the new one is complete). Whatever fails, nothing is left that :func:`locate` would
accept and no temporary file stays behind. Every problem is one :class:`DatasetError` line naming the URL
or the file. The library never prints; ``progress(bytes_done, bytes_total_or_None)`` reports progress.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from unrolled import __version__

__all__ = [
    "REGISTRY",
    "DatasetError",
    "DatasetInfo",
    "DatasetStatus",
    "Source",
    "dataset_status",
    "default_data_dir",
    "describe",
    "download",
    "get_info",
    "locate",
    "sha256_file",
]

MANIFEST = "MANIFEST.json"
# Training on a registered sentiment dataset (``unrolled train --dataset``): its 0/1 labels get these names,
# and imdb and mr, which have no dev file, get a stratified share of train as dev, drawn with a fixed seed so
# that runs with different seeds (and benchmarks/sentiment.py) are compared on the same dev rows.
LABEL_NAMES = {"0": "negative", "1": "positive"}
DEV_FRACTION = 0.1
DEV_SEED = 0
_MANIFEST_FORMAT = "unrolled-dataset"
_STAGING = ".downloads"
_CHUNK = 1 << 16
Progress = Callable[[int, "int | None"], None]


class DatasetError(ValueError):
    """A dataset problem, one line naming the URL or the file (download, checksum, archive, cache)."""


@dataclasses.dataclass(frozen=True)
class Source:
    """One archive to download: ``url`` (then ``mirrors``, tried in turn), its ``sha256`` and ``size`` in bytes.

    ``sha256=None`` means no trustworthy hash is known: :func:`download` refuses such a source.
    ``checksum_from`` says where the hash was published.
    """

    url: str
    sha256: str | None
    size: int | None
    mirrors: tuple[str, ...] = ()
    checksum_from: str = ""

    @property
    def filename(self) -> str:
        """The archive's name, the last part of the URL's path (``aclImdb_v1.tar.gz``)."""
        return Path(urllib.parse.urlsplit(self.url).path).name or "download"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A registry entry. ``files`` maps each path it yields (``sst2/train.tsv``, relative to the data dir)
    to the reference sha256 (None when there is none); ``splits`` maps roles (``train``, ``dev``, ``test``,
    ``train_phrases``, ``text``; ``recordings``, a folder of them) to those paths; ``convert(archives,
    folder)`` writes the files, by their paths below the dataset's folder, into ``folder`` from the
    downloaded archives (one per source, in order) and returns notes."""

    name: str
    description: str
    citation: str
    license: str
    homepage: str
    task: str
    sources: tuple[Source, ...]
    files: Mapping[str, str | None]
    splits: Mapping[str, str]
    convert: Callable[[Sequence[_Archive], Path], list[str]] = dataclasses.field(repr=False, compare=False)

    def __post_init__(self) -> None:
        folders = {Path(path).parts[0] for path in self.files}
        if len(folders) != 1 or any(len(Path(path).parts) < 2 for path in self.files):
            raise ValueError(f"dataset {self.name!r}: files must lie in one folder, got {list(self.files)[:3]}")
        unknown = sorted(p for p in set(self.splits.values()) - set(self.files)
                         if not any(f.startswith(p + "/") for f in self.files))
        if unknown:
            raise ValueError(f"dataset {self.name!r}: split path {unknown[0]!r} is not one of its files")

    @property
    def folder(self) -> str:
        """The folder under the data dir that holds the files (and MANIFEST.json): ``sst2``, ``text``."""
        return Path(next(iter(self.files))).parts[0]

    @property
    def download_bytes(self) -> int | None:
        """The total size of the source archives (None if one size is unknown)."""
        sizes = [source.size for source in self.sources]
        return None if None in sizes else sum(sizes)


@dataclasses.dataclass(frozen=True)
class DatasetStatus:
    """Which of a dataset's files exist under ``data_dir`` (no hashing: see :func:`locate` for that)."""

    name: str
    data_dir: Path
    folder: Path
    present: dict[str, bool]
    has_manifest: bool

    @property
    def ready(self) -> bool:
        return all(self.present.values())

    @property
    def missing(self) -> list[str]:
        return [path for path, here in self.present.items() if not here]


# --- where the data lives -----------------------------------------------------------------------------------


def default_data_dir() -> Path:
    """``$UNROLLED_DATA_DIR``, else ``$XDG_CACHE_HOME/unrolled/data``, else ``~/.cache/unrolled/data``."""
    explicit = os.environ.get("UNROLLED_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    if cache:
        return Path(cache).expanduser() / "unrolled" / "data"
    return Path.home() / ".cache" / "unrolled" / "data"


def _data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


def get_info(name: str | DatasetInfo) -> DatasetInfo:
    """The registry entry called ``name`` (a :class:`DatasetInfo` is returned as is)."""
    if isinstance(name, DatasetInfo):
        return name
    info = REGISTRY.get(name)
    if info is None:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(sorted(REGISTRY))})")
    return info


def dataset_status(name: str | DatasetInfo, data_dir: str | os.PathLike[str] | None = None) -> DatasetStatus:
    """Which files of dataset ``name`` are present under the data dir."""
    info = get_info(name)
    root = _data_dir(data_dir)
    return DatasetStatus(
        name=info.name,
        data_dir=root,
        folder=root / info.folder,
        present={path: (root / path).is_file() for path in info.files},
        has_manifest=(root / info.folder / MANIFEST).is_file(),
    )


def locate(
    name: str | DatasetInfo,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    *,
    verify: bool = True,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """The dataset's files by role (``{"train": .../sst2/train.tsv, "dev": ..., ...}``).

    Files that are all present are used, after checking (``verify=True``) that each one's sha256 equals the
    reference hash or the one in the folder's MANIFEST.json. Missing files are downloaded with
    ``download=True``; otherwise the error names the command that fetches them.
    """
    info = get_info(name)
    status = dataset_status(info, data_dir)
    if not status.ready:
        if not download:
            missing = status.missing[0]
            raise DatasetError(
                f"dataset {info.name} is not in {status.data_dir} ({status.data_dir / missing} is missing): "
                f"run `unrolled datasets download {info.name}`, or pass --data-dir DIR for a folder that holds "
                f"{missing}"
            )
        return _download(info, status.data_dir, timeout=timeout, progress=progress)
    if verify:
        _verify(info, status)
    return {role: status.data_dir / path for role, path in info.splits.items()}


def _verify(info: DatasetInfo, status: DatasetStatus) -> None:
    recorded = _manifest_hashes(info, status.folder)
    for path, reference in info.files.items():
        actual = sha256_file(status.data_dir / path)
        if actual in (reference, recorded.get(path)):
            continue
        expected = [f"{reference} (reference)"] if reference else []
        if path in recorded:
            expected.append(f"{recorded[path]} ({MANIFEST})")
        wanted = " or ".join(expected) if expected else f"a hash in {MANIFEST}, which is missing"
        raise DatasetError(
            f"{status.data_dir / path}: sha256 is {actual}, expected {wanted}: the file was changed or is "
            f"incomplete (`unrolled datasets download {info.name} --force` replaces it)"
        )


def _manifest_hashes(info: DatasetInfo, folder: Path) -> dict[str, str]:
    """The converted files' sha256 recorded at download time ({} when there is no usable manifest)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != _MANIFEST_FORMAT or manifest.get("dataset") != info.name:
            return {}
        return {path: entry["sha256"] for path, entry in manifest["files"].items() if isinstance(entry["sha256"], str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def describe(name: str | DatasetInfo, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything about a dataset, JSON-able: description, citation, terms, sources, files, status."""
    info = get_info(name)
    status = dataset_status(info, data_dir)
    return {
        "name": info.name,
        "description": info.description,
        "task": info.task,
        "homepage": info.homepage,
        "citation": info.citation,
        "license": info.license,
        "sources": [
            {"url": s.url, "mirrors": list(s.mirrors), "sha256": s.sha256, "bytes": s.size,
             "checksum_from": s.checksum_from}
            for s in info.sources
        ],
        "download_bytes": info.download_bytes,
        "files": [{"path": path, "reference_sha256": sha} for path, sha in info.files.items()],
        "splits": dict(info.splits),
        "status": {
            "data_dir": str(status.data_dir),
            "folder": str(status.folder),
            "ready": status.ready,
            "missing": status.missing,
            "manifest": status.has_manifest,
        },
    }


# --- download ------------------------------------------------------------------------------------------------


def download(
    name_or_info: str | DatasetInfo,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    timeout: float = 30.0,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Download, verify and convert a dataset into the data dir (replacing any copy there); its files by role.

    ``timeout`` (seconds) applies to connecting and to each read. ``progress(done, total)`` is called as
    bytes arrive, once per source archive in turn (``total`` None when the size is unknown).
    """
    return _download(get_info(name_or_info), _data_dir(data_dir), timeout=timeout, progress=progress)


def _download(info: DatasetInfo, root: Path, *, timeout: float, progress: Progress | None) -> dict[str, Path]:
    for source in info.sources:
        if source.sha256 is None:
            raise DatasetError(f"no known sha256 for {source.url}; download it yourself and use --data-dir")
    target = root / info.folder
    _check_replaceable(info, target)
    staging = root / _STAGING
    try:
        staging.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"cannot write to {root}: {error.strerror or error}") from None
    parts: list[Path] = []
    converted: Path | None = None
    try:
        archives = []
        for source in info.sources:
            url, part = _fetch(source, staging, timeout, progress, parts)
            archives.append(_Archive(part, url))
        converted = Path(tempfile.mkdtemp(prefix=f"{info.folder}-", suffix=".tmp", dir=staging))
        notes = info.convert(archives, converted)
        _write_manifest(info, converted, archives, notes)
        _swap_in(converted, target, staging)
        converted = None
    except OSError as error:
        raise DatasetError(f"cannot write to {root}: {error.strerror or error}") from None
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
        if converted is not None:
            shutil.rmtree(converted, ignore_errors=True)
        try:
            staging.rmdir()  # only when empty: another download may be using it
        except OSError:
            pass
    return {role: root / path for role, path in info.splits.items()}


def _check_replaceable(info: DatasetInfo, target: Path) -> None:
    """Refuse, before downloading, to replace a folder that holds files the dataset does not own."""
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise DatasetError(f"{target} exists and is not a folder; refusing to replace it with dataset {info.name}")
    owned = {Path(path).parts[1] for path in info.files} | {MANIFEST}
    foreign = sorted(entry.name for entry in target.iterdir() if entry.name not in owned)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        raise DatasetError(f"{target} holds files that are not part of dataset {info.name} ({shown}); move them "
                           "or choose another --data-dir")


def _swap_in(converted: Path, target: Path, staging: Path) -> None:
    """Rename the complete new folder into place; an old copy is set aside first and removed after."""
    if not target.exists():
        os.replace(converted, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{target.name}-", suffix=".old", dir=staging))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(converted, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _fetch(
    source: Source, staging: Path, timeout: float, progress: Progress | None, parts: list[Path]
) -> tuple[str, Path]:
    """Download ``source`` (its URL, then each mirror) into a verified ``.part`` file: ``(url used, path)``."""
    errors = []
    for url in (source.url, *source.mirrors):
        handle, name = tempfile.mkstemp(prefix=f"{source.filename}-", suffix=".part", dir=staging)
        part = Path(name)
        parts.append(part)
        try:
            with os.fdopen(handle, "wb") as file:
                _stream(url, source, file, timeout, progress)
            return url, part
        except DatasetError as error:
            part.unlink(missing_ok=True)
            errors.append(str(error))
    if len(errors) == 1:
        raise DatasetError(errors[0])
    raise DatasetError(f"{errors[0]} (mirrors also failed: {'; '.join(errors[1:])})")


def _stream(url: str, source: Source, file, timeout: float, progress: Progress | None) -> None:
    """Copy the body at ``url`` into ``file``, then check its length and sha256 against ``source``."""
    import http.client  # here, not at the top: every CLI command imports this module, few download
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": f"unrolled/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise DatasetError(f"HTTP {error.code} {error.reason} from {url}") from None
    except urllib.error.URLError as error:
        raise DatasetError(f"cannot reach {url}: {_reason(error.reason)}") from None
    except (OSError, http.client.HTTPException) as error:
        raise DatasetError(f"cannot reach {url}: {_reason(error)}") from None
    with response:
        header = response.headers.get("Content-Length", "")
        total = int(header) if header.isdigit() else source.size
        digest = hashlib.sha256()
        done = 0
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as error:
                raise DatasetError(
                    f"download of {url} ended after {done} of {total if total is not None else '?'} bytes: "
                    f"{_reason(error)}"
                ) from None
            if not chunk:
                break
            file.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
            if source.size is not None and done > source.size:
                raise DatasetError(f"download of {url} is longer than the expected {source.size} bytes: not cached")
    expected = max(n for n in (total, source.size, 0) if n is not None)
    if done < expected:
        raise DatasetError(f"download of {url} ended after {done} of {expected} bytes")
    actual = digest.hexdigest()
    if actual != source.sha256:
        raise DatasetError(f"sha256 of {url} is {actual}, expected {source.sha256}: not cached")


def _reason(reason: object) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return " ".join(str(reason).split()) or type(reason).__name__


def _write_manifest(info: DatasetInfo, folder: Path, archives: Sequence[_Archive], notes: list[str]) -> None:
    files = {}
    for path in info.files:
        written = folder.joinpath(*Path(path).parts[1:])
        if not written.is_file():
            raise DatasetError(f"converting {info.name} did not produce {path}")
        files[path] = {"sha256": sha256_file(written), "bytes": written.stat().st_size}
    manifest = {
        "format": _MANIFEST_FORMAT,
        "version": 1,
        "dataset": info.name,
        "sources": [
            {"url": archive.url, "sha256": source.sha256, "bytes": source.size}
            for archive, source in zip(archives, info.sources)
        ],
        "files": files,
        "notes": notes,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- archives and writers -----------------------------------------------------------------------------------


class _Archive:
    """A downloaded archive (or plain file) and the URL it came from, for error messages."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url

    def zip_member(self, name: str) -> bytes:
        import zipfile

        try:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(name)
        except KeyError:
            raise DatasetError(f"{self.url}: archive has no member {name}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
            raise DatasetError(f"{self.url}: not a readable zip archive ({_reason(error)})") from None

    def tar_members(self, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
        """``(name, bytes)`` of each regular file whose name (without a leading ``./``) is wanted, in order."""
        import tarfile

        try:
            with tarfile.open(self.path, "r:*") as archive:
                for member in archive:
                    name = member.name[2:] if member.name.startswith("./") else member.name
                    if member.isfile() and wanted(name):
                        yield name, archive.extractfile(member).read()
        except (tarfile.TarError, zlib.error, EOFError, OSError) as error:
            raise DatasetError(f"{self.url}: not a readable tar archive ({_reason(error)})") from None

    def text(self, data: bytes, member: str, encoding: str = "utf-8") -> str:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as error:
            raise DatasetError(
                f"{self.url}: {member}: byte 0x{data[error.start]:02x} at offset {error.start} is not {encoding}"
            ) from None


_SENTENCE_BREAKS = re.compile(r"[\t\r\n]")


def _clean_sentence(text: str) -> str:
    """One TSV field: tabs and line breaks become spaces, surrounding whitespace goes."""
    return _SENTENCE_BREAKS.sub(" ", text).strip()


def _write_tsv(path: Path, rows: Iterable[tuple[str, int]]) -> int:
    """``sentence<TAB>label`` with a header; rows whose sentence is empty after cleaning are left out."""
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        file.write("sentence\tlabel\n")
        for sentence, label in rows:
            sentence = _clean_sentence(sentence)
            if sentence:
                file.write(f"{sentence}\t{label}\n")
                written += 1
    return written


def _write_jsonl_gz(path: Path, rows: Iterable[tuple[str, int]]) -> None:
    """JSON lines ``{"text": ..., "label": ...}`` (UTF-8, not ASCII-escaped), gzip level 9 with mtime 0."""
    with gzip.GzipFile(path, mode="wb", compresslevel=9, mtime=0) as file:
        for text, label in rows:
            file.write((json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n").encode("utf-8"))


# --- converters ----------------------------------------------------------------------------------------------

_IMDB_REVIEW = re.compile(r"aclImdb/(train|test)/(neg|pos)/(\d+)_(\d+)\.txt")


def _convert_imdb(archives: Sequence[_Archive], folder: Path) -> list[str]:
    """aclImdb_v1 -> train/test.jsonl.gz: neg reviews by numeric id (label 0), then pos (label 1)."""
    (archive,) = archives
    reviews: dict[tuple[str, str], dict[int, str]] = collections.defaultdict(dict)
    for name, data in archive.tar_members(_IMDB_REVIEW.fullmatch):
        split, polarity, review_id, _ = _IMDB_REVIEW.fullmatch(name).groups()
        reviews[split, polarity][int(review_id)] = archive.text(data, name)
    notes = []
    for split in ("train", "test"):
        rows = []
        for label, polarity in enumerate(("neg", "pos")):
            found = reviews.get((split, polarity), {})
            ids = sorted(found)
            if ids != list(range(len(ids))) or not ids:
                gap = next(i for i in range(len(ids) + 1) if i not in found)
                raise DatasetError(f"{archive.url}: archive has no member aclImdb/{split}/{polarity}/{gap}_*.txt")
            rows.extend((found[i], label) for i in ids)
        _write_jsonl_gz(folder / f"{split}.jsonl.gz", rows)
        notes.append(f"imdb/{split}.jsonl.gz: {len(rows)} reviews")
    return notes


def _convert_mr(archives: Sequence[_Archive], folder: Path) -> list[str]:
    """rt-polaritydata -> mr.tsv: cp1252 lines, stripped, all negative (0) then all positive (1)."""
    (archive,) = archives
    names = {f"rt-polaritydata/rt-polarity.{polarity}": polarity for polarity in ("neg", "pos")}
    found = dict(archive.tar_members(names.__contains__))
    rows = []
    for name, polarity in names.items():
        if name not in found:
            raise DatasetError(f"{archive.url}: archive has no member {name}")
        text = archive.text(found[name], name, "cp1252")
        rows.extend((line, 0 if polarity == "neg" else 1) for line in text.split("\n") if line.strip())
    written = _write_tsv(folder / "mr.tsv", rows)
    return [f"mr/mr.tsv: {written} sentences"]


def _convert_tinyshakespeare(archives: Sequence[_Archive], folder: Path) -> list[str]:
    (archive,) = archives
    shutil.copyfile(archive.path, folder / "tinyshakespeare.txt")
    return []


# Multi30k task 1: the source files in registry order (each .de then its .en), kept byte for byte.
_MULTI30K_SPLITS = (("train", "train"), ("dev", "val"), ("test2016", "test_2016_flickr"),
                    ("test2017", "test_2017_flickr"))
_MULTI30K_FILES = tuple(f"{stem}.{language}.gz" for _, stem in _MULTI30K_SPLITS for language in ("de", "en"))


def _gzip_lines(archive: _Archive, name: str) -> int:
    """The number of lines of a gzip-compressed UTF-8 text (a last line without ``\\n`` counts)."""
    data = archive.path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        raise DatasetError(f"{archive.url}: not gzip-compressed (starts with {data[:2].hex(' ') or 'nothing'})")
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{archive.url}: corrupt or truncated gzip data ({_reason(error)})") from None
    archive.text(text, name)  # UTF-8, or an error naming the byte
    return text.count(b"\n") + (bool(text) and not text.endswith(b"\n"))


def _convert_multi30k(archives: Sequence[_Archive], folder: Path) -> list[str]:
    """The task-1 raw files, copied byte for byte under their own names, after checking that each is gzip
    UTF-8 text and that the .de and .en files of every split have the same number of lines."""
    if len(archives) != len(_MULTI30K_FILES):
        raise DatasetError(f"multi30k: expected {len(_MULTI30K_FILES)} files, got {len(archives)}")
    counts = {name: _gzip_lines(archive, name) for name, archive in zip(_MULTI30K_FILES, archives)}
    urls = {name: archive.url for name, archive in zip(_MULTI30K_FILES, archives)}
    notes = []
    for _, stem in _MULTI30K_SPLITS:
        de, en = f"{stem}.de.gz", f"{stem}.en.gz"
        if counts[de] != counts[en]:
            raise DatasetError(f"{urls[de]} has {counts[de]:,} lines, {urls[en]} has {counts[en]:,}: the two sides "
                               f"of {stem} are not aligned")
        notes.append(f"multi30k/{stem}.{{de,en}}.gz: {counts[de]} sentence pairs")
    for name, archive in zip(_MULTI30K_FILES, archives):
        shutil.copyfile(archive.path, folder / name)
    return notes


_FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
_FSDD_RAW = f"https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/{_FSDD_COMMIT}/recordings"


def _fsdd_files() -> list[tuple[str, int, str]]:
    """(name, bytes, sha256) of the 3,000 recordings, from the list shipped in the package (the sha256 of
    every file as shared/data/fsdd/SHA256SUMS lists it, whose own sha256 is 1801eae0…6959)."""
    from importlib.resources import files

    rows = files("unrolled").joinpath("fsdd_files.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [(name, int(size), sha) for name, size, sha in (row.split("\t") for row in rows)]


def _convert_fsdd(archives: Sequence[_Archive], folder: Path) -> list[str]:
    """Each recording, verified on download, copied byte for byte into recordings/ under its own name."""
    (folder / "recordings").mkdir()
    for archive in archives:
        shutil.copyfile(archive.path, folder / "recordings" / Path(urllib.parse.urlsplit(archive.url).path).name)
    return [f"fsdd/recordings: {len(archives)} recordings from commit {_FSDD_COMMIT}"]


_TREE_ROOT = re.compile(r"\((\d) ")
_TREE_LEAF = re.compile(r"\(\d ([^()]+)\)")
_PTB_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LCB-": "{", "-RCB-": "}", "-LSB-": "[", "-RSB-": "]"}
_PTB_ESCAPE = re.compile(r"\\(.)")


def _tree_sentences(archive: _Archive, member: str) -> list[tuple[str, int]]:
    """The binary-labelled sentences of an SST tree file, in order: root 0/1 -> 0, 3/4 -> 1, 2 dropped.

    The text is the leaves joined by spaces, lower-cased, with PTB brackets and backslash escapes undone
    and non-breaking spaces made ordinary.
    """
    text = archive.text(archive.zip_member(member), member)
    sentences = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        root = _TREE_ROOT.match(line)
        leaves = _TREE_LEAF.findall(line)
        if root is None or not leaves:
            raise DatasetError(f"{archive.url}: {member} line {number}: not a sentiment tree")
        label = int(root.group(1))
        if label == 2:
            continue
        words = [_PTB_ESCAPE.sub(r"\1", _PTB_BRACKETS.get(leaf, leaf)).replace("\xa0", " ") for leaf in leaves]
        sentences.append((" ".join(words).lower(), 0 if label < 2 else 1))
    return sentences


def _glue_rows(archive: _Archive, member: str, columns: tuple[str, str]) -> list[tuple[str, str]]:
    """The two named columns of a GLUE TSV file, fields stripped."""
    text = archive.text(archive.zip_member(member), member)
    lines = text.split("\n")
    header = [column.strip() for column in lines[0].split("\t")]
    if any(column not in header for column in columns):
        raise DatasetError(f"{archive.url}: {member}: header {header} lacks {' or '.join(columns)}")
    first, second = (header.index(column) for column in columns)
    rows = []
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != len(header):
            raise DatasetError(f"{archive.url}: {member} line {number}: expected {len(header)} fields")
        rows.append((fields[first].strip(), fields[second].strip()))
    return rows


def _glue_labelled(archive: _Archive, member: str) -> list[tuple[str, int]]:
    rows = []
    for sentence, label in _glue_rows(archive, member, ("sentence", "label")):
        if label not in ("0", "1"):
            raise DatasetError(f"{archive.url}: {member}: label {label!r} is not 0 or 1")
        rows.append((sentence, int(label)))
    return rows


# British spellings and PTB tokenisation differences between the SST trees and GLUE's text, undone in a
# comparison key only (never in the text written): humour/humor, theatre/theater, learnt/learned,
# realise/realize, dialogue/dialog, travelled/traveled, `wanna`/`wan na`, `no. .`/`no . .`.
_SPELLING = [(re.compile(pattern), replacement) for pattern, replacement in (
    (r"our(s|ed|ing|ite|ites|able|ably|ful)?$", r"or\1"),
    (r"([tb])re(s|d)?$", r"\1er\2"),
    (r"(learn|spel|dream|burn|spoil|smel|spil)t$", r"\1ed"),
    (r"is(e|es|ed|ing|ation|ations)$", r"iz\1"),
    (r"ys(e|es|ed|ing)$", r"yz\1"),
    (r"ogue(s)?$", r"og\1"),
    (r"ll", "l"),
)]


def _spelling_key(sentence: str) -> str:
    """A sentence with spelling variants and spaces taken out, to pair a tree sentence with its GLUE text."""
    words = []
    for word in sentence.lower().split():
        for pattern, replacement in _SPELLING:
            word = pattern.sub(replacement, word)
        words.append(word)
    return "".join(words)


def _convert_sst2(archives: Sequence[_Archive], folder: Path) -> list[str]:
    """SST PTB trees + GLUE SST-2 -> train/dev/test/train_phrases.tsv, as ``shared/data/README.md`` describes.

    - train.tsv: the non-neutral train trees in order, each in GLUE's spelling when the GLUE phrases hold
      the same sentence spelled differently (same label, same :func:`_spelling_key`), else the tree text;
    - dev.tsv: GLUE's dev file (its labels equal the tree labels);
    - test.tsv: GLUE's test sentences in GLUE order with the labels of the matching test trees; if some
      GLUE sentence has no tree, the tree sentences in tree order instead (recorded in the manifest notes);
    - train_phrases.tsv: GLUE's train file, all 67,349 phrases in order.
    """
    trees, glue = archives
    train_trees = _tree_sentences(trees, "trees/train.txt")
    test_trees = _tree_sentences(trees, "trees/test.txt")
    phrases = _glue_labelled(glue, "SST-2/train.tsv")
    dev = _glue_labelled(glue, "SST-2/dev.tsv")
    glue_test = [sentence for _, sentence in _glue_rows(glue, "SST-2/test.tsv", ("index", "sentence"))]
    notes = []

    known = set(phrases)
    spellings: dict[tuple[str, int], set[str]] = collections.defaultdict(set)
    for sentence, label in phrases:
        spellings[_spelling_key(sentence), label].add(sentence)
    train, respelled = [], 0
    for sentence, label in train_trees:
        if (sentence, label) not in known and len(spellings[_spelling_key(sentence), label]) == 1:
            (sentence,) = spellings[_spelling_key(sentence), label]
            respelled += 1
        train.append((sentence, label))
    notes.append(f"sst2/train.tsv: {len(train)} tree sentences, {respelled} in GLUE's spelling")

    exact = _unique_labels((sentence, label) for sentence, label in test_trees)
    by_key = _unique_labels((_spelling_key(sentence), label) for sentence, label in test_trees)
    test = []
    for sentence in glue_test:
        label = exact.get(sentence, by_key.get(_spelling_key(sentence)))
        if label is None:
            break
        test.append((sentence, label))
    if len(test) != len(glue_test):
        test = test_trees
        notes.append(f"sst2/test.tsv: {len(test)} tree sentences in tree order (a GLUE test sentence had no tree)")
    else:
        notes.append(f"sst2/test.tsv: {len(test)} GLUE test sentences in GLUE order, labels from the trees")

    for name, rows in (("train.tsv", train), ("dev.tsv", dev), ("test.tsv", test), ("train_phrases.tsv", phrases)):
        _write_tsv(folder / name, rows)
    return notes


def _unique_labels(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """text -> label for texts that occur with one label only."""
    labels: dict[str, set[int]] = collections.defaultdict(set)
    for text, label in pairs:
        labels[text].add(label)
    return {text: next(iter(found)) for text, found in labels.items() if len(found) == 1}


# --- the registry --------------------------------------------------------------------------------------------
# Archive hashes (sha256, bytes) and where they were published:
# - trainDevTestTrees_PTB.zip: huggingface/datasets, datasets/sst/dataset_infos.json (download_checksums),
#   the same hash as in a Julia DataDeps registration of the same URL.
# - SST-2.zip: huggingface/datasets, datasets/glue/dataset_infos.json (config sst2, download_checksums).
# - aclImdb_v1.tar.gz: huggingface/datasets, datasets/imdb/dataset_infos.json (download_checksums); many
#   other projects pin the same hash for the Stanford URL.
# - rt-polaritydata.tar.gz: huggingface/datasets, datasets/rotten_tomatoes/dataset_infos.json, recorded for
#   Seldon's copy of the archive (storage.googleapis.com/seldon-datasets/...), which SeldonIO/alibi
#   (alibi/datasets.py) lists as interchangeable with Cornell's URL. No hash published for Cornell's URL
#   itself was found, so the Seldon copy is kept as a mirror and the hash is checked whichever URL answers.
# - tinyshakespeare input.txt: the reference hash of text/tinyshakespeare.txt (shared/data/README.md, a
#   byte-identical copy, git blob 7dcb3a2d), also pinned by many projects for this URL.
# - multi30k task1/raw/*.gz: the reference hashes of multi30k/*.gz (shared/data/README.md section 6,
#   byte-identical copies of the official repository's files at the pinned commit).

_GLUE_CITATION = ("Wang, Singh, Michael, Hill, Levy and Bowman (2019), GLUE: A Multi-Task Benchmark and Analysis "
                  "Platform for Natural Language Understanding, ICLR")

_MULTI30K_RAW = ("https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/"
                 "data/task1/raw")
_MULTI30K_HASHES = {  # file name: (sha256, bytes), in _MULTI30K_FILES order
    "train.de.gz": ("726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6", 637_044),
    "train.en.gz": ("d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f", 568_929),
    "val.de.gz": ("f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a", 24_681),
    "val.en.gz": ("14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28", 21_650),
    "test_2016_flickr.de.gz": ("9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8", 22_890),
    "test_2016_flickr.en.gz": ("611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9", 21_077),
    "test_2017_flickr.de.gz": ("a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee", 21_471),
    "test_2017_flickr.en.gz": ("76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074", 19_138),
}

REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="sst2",
            description="SST-2: movie-review sentences, binary sentiment (6,920/872/1,821 + 67k phrases)",
            citation=("Socher, Perelygin, Wu, Chuang, Manning, Ng and Potts (2013), Recursive Deep Models for "
                      f"Semantic Compositionality Over a Sentiment Treebank, EMNLP; phrases: {_GLUE_CITATION}"),
            license="no explicit license; distributed for research use: cite Socher et al. (2013) and GLUE",
            homepage="https://nlp.stanford.edu/sentiment/",
            task="classify",
            sources=(
                Source("https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip",
                       "5c613a4f673fc74097d523a2c83f38e0cc462984d847b82c7aaf36b01cbbbfcc", 789_539,
                       checksum_from="huggingface/datasets datasets/sst/dataset_infos.json"),
                Source("https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
                       "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa", 7_439_277,
                       checksum_from="huggingface/datasets datasets/glue/dataset_infos.json"),
            ),
            files={
                "sst2/train.tsv": "49209d7f704c103899788575125bce8dcb7ec4d17a200a142c71f9ebb74b0c66",
                "sst2/dev.tsv": "db8f4a5951968681dadc4c6ddaf53e8ba31a1436574072c3fa6273a5d333b35a",
                "sst2/test.tsv": "4c395e34c8ae196d76abc3724c42336f2e17ad6dab6977be7a690f4c36b140ca",
                "sst2/train_phrases.tsv": "4c5e12ec5fabed1f7aa8b4fde0f0257412d76ab9c4314bb1eec46ba80c7a4438",
            },
            splits={"train": "sst2/train.tsv", "dev": "sst2/dev.tsv", "test": "sst2/test.tsv",
                    "train_phrases": "sst2/train_phrases.tsv"},
            convert=_convert_sst2,
        ),
        DatasetInfo(
            name="imdb",
            description="IMDB: 50,000 movie reviews, binary sentiment (25,000 train / 25,000 test)",
            citation=("Maas, Daly, Pham, Huang, Ng and Potts (2011), Learning Word Vectors for Sentiment Analysis, "
                      "ACL"),
            license="no explicit license; the dataset README asks users to cite Maas et al. (2011)",
            homepage="https://ai.stanford.edu/~amaas/data/sentiment/",
            task="classify",
            sources=(
                Source("https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                       "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe", 84_125_825,
                       checksum_from="huggingface/datasets datasets/imdb/dataset_infos.json"),
            ),
            files={
                "imdb/train.jsonl.gz": "08fe1c25260d8ffc5b15086b2453654026960ff9a7ad57259cbde095c7bbf634",
                "imdb/test.jsonl.gz": "202738b768df060bd799937dc66d0e769e144fc489c8ee8bcd0915e0fb9c3972",
            },
            splits={"train": "imdb/train.jsonl.gz", "test": "imdb/test.jsonl.gz"},
            convert=_convert_imdb,
        ),
        DatasetInfo(
            name="mr",
            description="MR: 10,662 Rotten Tomatoes sentences, binary sentiment (no official split)",
            citation=("Pang and Lee (2005), Seeing stars: Exploiting class relationships for sentiment "
                      "categorization with respect to rating scales, ACL"),
            license="no explicit license; distributed for research use: cite Pang and Lee (2005)",
            homepage="https://www.cs.cornell.edu/people/pabo/movie-review-data/",
            task="classify",
            sources=(
                Source("https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz",
                       "a05befe52aafda71d458d188a1c54506a998b1308613ba76bbda2e5029409ce9", 487_770,
                       mirrors=("https://storage.googleapis.com/seldon-datasets/sentence_polarity_v1/"
                                "rt-polaritydata.tar.gz",),
                       checksum_from="huggingface/datasets datasets/rotten_tomatoes/dataset_infos.json "
                                     "(for the Seldon mirror)"),
            ),
            files={"mr/mr.tsv": "a0fd06cc1d2b140fb39019a21c442843079195003fe6ec4203eda14d6da3888c"},
            splits={"train": "mr/mr.tsv"},
            convert=_convert_mr,
        ),
        DatasetInfo(
            name="tinyshakespeare",
            description="Tiny Shakespeare: 1.1 MB of plays, for character language models",
            citation="Karpathy (2015), char-rnn and The Unreasonable Effectiveness of Recurrent Neural Networks",
            license="Shakespeare's text is in the public domain; the char-rnn repository is MIT-licensed",
            homepage="https://github.com/karpathy/char-rnn",
            task="lm",
            sources=(
                Source("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                       "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1_115_394,
                       checksum_from="shared/data/README.md (byte-identical copy)"),
            ),
            files={"text/tinyshakespeare.txt": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"},
            splits={"text": "text/tinyshakespeare.txt"},
            convert=_convert_tinyshakespeare,
        ),
        DatasetInfo(
            name="multi30k",
            description="Multi30k: German-English image descriptions (29,000/1,014/1,000/1,000 pairs)",
            citation=("Elliott, Frank, Sima'an and Specia (2016), Multi30K: Multilingual English-German Image "
                      "Descriptions, Workshop on Vision and Language; English side from Flickr30k (Young, Lai, "
                      "Hodosh and Hockenmaier (2014), TACL); test 2017: Elliott, Frank, Barrault, Bougares and "
                      "Specia (2017), Findings of the Second Shared Task on Multimodal Machine Translation and "
                      "Multilingual Image Description, WMT"),
            license=("no explicit license; distributed by its authors for research: cite the papers above; the "
                     "Flickr30k captions carry Flickr30k's terms of use"),
            homepage="https://github.com/multi30k/dataset",
            task="translate",
            sources=tuple(
                Source(f"{_MULTI30K_RAW}/{name}", sha256, size,
                       checksum_from="shared/data/README.md (byte-identical copy)")
                for name, (sha256, size) in _MULTI30K_HASHES.items()
            ),
            files={f"multi30k/{name}": sha256 for name, (sha256, _) in _MULTI30K_HASHES.items()},
            splits={f"{role}.{language}": f"multi30k/{stem}.{language}.gz"
                    for role, stem in _MULTI30K_SPLITS for language in ("de", "en")},
            convert=_convert_multi30k,
        ),
        DatasetInfo(
            name="fsdd",
            description="Free Spoken Digit Dataset: 3,000 recordings of spoken digits, 6 speakers, 8 kHz WAV",
            citation=("Free Spoken Digit Dataset (FSDD), https://github.com/Jakobovski/free-spoken-digit-dataset: "
                      "cite it through the Zenodo DOI its README gives"),
            license="an open dataset; check its Zenodo record for the license before redistributing",
            homepage="https://github.com/Jakobovski/free-spoken-digit-dataset",
            task="speech",
            sources=tuple(Source(f"{_FSDD_RAW}/{name}", sha256, size,
                                 checksum_from="shared/data/fsdd/SHA256SUMS (byte-identical copies)")
                          for name, size, sha256 in _fsdd_files()),
            files={f"fsdd/recordings/{name}": sha256 for name, _, sha256 in _fsdd_files()},
            splits={"recordings": "fsdd/recordings"},
            convert=_convert_fsdd,
        ),
    )
}
