"""The datasets commands: ``unrolled datasets list|info|download``, and the options and data loading of
``unrolled train --dataset NAME`` (used by classify.py).

Like the whole CLI, this module only orchestrates library calls (:mod:`unrolled.datasets`) and prints; the
registry is imported inside the functions, so that importing this module (predict does, through
classify.py) costs nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TextIO

from unrolled.cli.common import Command, Streams, UsageError, file_summary, write_json

DATA_DIR_HELP = ("where datasets are kept (default: $UNROLLED_DATA_DIR, else $XDG_CACHE_HOME/unrolled/data, "
                 "else ~/.cache/unrolled/data); a folder laid out like shared/data works as is")
DATASETS_HELP = """\
Public datasets, downloaded from their canonical source, checked against a known sha256, converted to
the project's files (TSV or gzip JSONL with text and label) and kept in the data directory:
$UNROLLED_DATA_DIR, else $XDG_CACHE_HOME/unrolled/data, else ~/.cache/unrolled/data, or --data-dir.

example:
  unrolled datasets list
  unrolled datasets info sst2
  unrolled datasets download imdb
  unrolled train --dataset sst2 --out models/sst2-gru
"""
LIST_HELP = """\
List the datasets: what each one is, how much it downloads and whether it is in the data directory.

example:
  unrolled datasets list --data-dir ../shared/data
"""
INFO_HELP = """\
Describe a dataset: source archives and their sha256, citation, license or terms, files and status.

example:
  unrolled datasets info imdb --json
"""
DOWNLOAD_HELP = """\
Download a dataset, check its sha256, convert it and keep it in the data directory. A copy that is
already there (and verifies) is kept unless --force; a failed download leaves the old copy as it was.

example:
  unrolled datasets download sst2
  unrolled datasets download mr --data-dir /data/unrolled --force
"""


def add_datasets_arguments(datasets: argparse.ArgumentParser) -> None:
    from unrolled.datasets import REGISTRY

    actions = datasets.add_subparsers(dest="datasets_action", metavar="ACTION", required=True)

    def action(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=summary, description=description,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show the traceback of an error")
        return parser

    listing = action("list", "the datasets and whether each one is here", LIST_HELP)
    listing.add_argument("--json", action="store_true", help="print every dataset's description as JSON")
    info = action("info", "sources, citation, terms and files of a dataset", INFO_HELP)
    info.add_argument("name", choices=sorted(REGISTRY), metavar="NAME", help=", ".join(sorted(REGISTRY)))
    info.add_argument("--json", action="store_true", help="print the description as JSON")
    fetch = action("download", "download, verify and convert a dataset", DOWNLOAD_HELP)
    fetch.add_argument("name", choices=sorted(REGISTRY), metavar="NAME", help=", ".join(sorted(REGISTRY)))
    fetch.add_argument("--force", action="store_true", help="download again even when a good copy is here")


def run_datasets(args: argparse.Namespace, streams: Streams) -> None:
    out, err = streams.out, streams.err
    if args.datasets_action == "list":
        _run_list(args, out)
    elif args.datasets_action == "info":
        _run_info(args, out)
    else:
        _run_download(args, out, err)


def _run_list(args: argparse.Namespace, out: TextIO) -> None:
    from unrolled.datasets import REGISTRY, describe

    if args.json:
        write_json([describe(name, args.data_dir) for name in REGISTRY], out)
        return
    rows = [("name", "description", "download", "status")]
    for name, info in REGISTRY.items():
        rows.append((name, info.description, _size(info.download_bytes), _status_text(info, args.data_dir)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3] + "\n")


def _status_text(info, data_dir: str | None) -> str:
    from unrolled.datasets import dataset_status

    status = dataset_status(info, data_dir)
    if status.ready:
        return f"ready at {status.folder}"
    if len(status.missing) < len(status.present):
        return f"incomplete at {status.folder} ({len(status.missing)} of {len(status.present)} files missing)"
    return "not downloaded"


def _run_info(args: argparse.Namespace, out: TextIO) -> None:
    from unrolled.datasets import describe, get_info

    described = describe(args.name, args.data_dir)
    if args.json:
        write_json(described, out)
        return
    out.write(f"{described['name']}: {described['description']}\n")
    out.write(f"homepage: {described['homepage']}\n")
    out.write(f"cite:     {described['citation']}\n")
    out.write(f"terms:    {described['license']}\n")
    out.write("sources:\n")
    for source in described["sources"]:
        out.write(f"  {source['url']}\n    {_size(source['bytes'])}, sha256 {source['sha256'] or 'unknown'}\n")
        for mirror in source["mirrors"]:
            out.write(f"    mirror {mirror}\n")
    roles = {path: role for role, path in described["splits"].items()}
    out.write("files:\n")
    width = max(len(file["path"]) for file in described["files"])
    for file in described["files"]:
        role = roles.get(file["path"], "")
        out.write(f"  {file['path'].ljust(width)}  {role:<13}  reference sha256 {file['reference_sha256'] or '-'}\n")
    out.write(f"status:   {_status_text(get_info(args.name), args.data_dir)}\n")


def _run_download(args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    from unrolled.datasets import dataset_status, get_info, locate

    info = get_info(args.name)
    status = dataset_status(info, args.data_dir)
    if status.ready and not args.force:
        locate(info, args.data_dir)  # a changed file is an error that names it and suggests --force
        out.write(f"{info.name} is already in {status.folder} (verified); --force downloads it again\n")
        return
    files = _fetch(info, args.data_dir, err)
    out.write(f"{info.name}: downloaded and verified into {status.folder}\n")
    width = max(len(role) for role in files)
    for role, path in files.items():
        out.write(f"  {role.ljust(width)}  {path}\n")


def _fetch(info, data_dir: str | None, err: TextIO, why: str = "") -> dict[str, Path]:
    """Download with a notice (``why`` first) and a progress line on ``err``."""
    from urllib.parse import urlsplit

    from unrolled.datasets import download

    hosts = ", ".join(dict.fromkeys(urlsplit(source.url).hostname or source.url for source in info.sources))
    err.write(f"{why}downloading {info.name} ({_size(info.download_bytes)}) from {hosts}\n")
    progress = _DownloadProgress(err)
    try:
        if len(info.sources) > 20:  # many small files (fsdd): one line for all of them
            return download(info, data_dir, progress=_Cumulative(progress, info.download_bytes))
        return download(info, data_dir, progress=progress)
    finally:
        progress.close()


class _Cumulative:
    """Progress over many downloads as one: each file's bytes added to those of the files before it."""

    def __init__(self, progress: _DownloadProgress, total: int | None) -> None:
        self.progress, self.total, self.before, self.last = progress, total, 0, 0

    def __call__(self, done: int, total: int | None) -> None:
        if done < self.last:  # the next file began
            self.before += self.last
        self.last = done
        self.progress(self.before + done, self.total)


class _DownloadProgress:
    """``done / total MB`` on one line, rewritten every MiB on a terminal; one line per file otherwise."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.live = err.isatty()
        self.shown = -1  # the MiB last shown; -1 when no line is open
        self.last = 0

    def __call__(self, done: int, total: int | None) -> None:
        if done < self.last:  # the next file began
            self.close()
        self.last = done
        finished = total is not None and done >= total
        if self.live and (done >> 20 != self.shown or finished):
            of = f" of {_size(total)}" if total is not None else ""
            self.err.write(f"\r  {_size(done)}{of}\033[K")
            self.err.flush()
            self.shown = done >> 20
        if finished:
            self.close()

    def close(self) -> None:
        if self.live and self.shown >= 0:
            self.err.write("\n")
        elif not self.live and self.last:
            self.err.write(f"  {_size(self.last)}\n")
        self.shown, self.last = -1, 0


def _size(size: int | None) -> str:
    if size is None:
        return "unknown size"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


# --- train --dataset --------------------------------------------------------------------------------------


def add_dataset_training_options(group) -> None:
    from unrolled.datasets import REGISTRY

    classification = sorted(name for name, info in REGISTRY.items() if info.task == "classify")
    group.add_argument("--dataset", choices=classification,
                       help="train on a registered dataset instead of --train/--dev; downloaded on first use "
                            "(imdb and mr: 10%% of train, stratified, is the dev split)")
    group.add_argument("--data-dir", metavar="DIR", help="with --dataset: " + DATA_DIR_HELP)
    group.add_argument("--phrases", action="store_true",
                       help="with --dataset sst2: train on the 67,349 labelled phrases (train_phrases.tsv) "
                            "instead of the 6,920 sentences; dev.tsv still picks the best epoch")


def check_dataset_options(args: argparse.Namespace) -> None:
    """The combinations argparse cannot refuse (exit 2)."""
    dataset = getattr(args, "dataset", None)
    if not dataset:
        given = [flag for flag, dest in (("--data-dir", "data_dir"), ("--phrases", "phrases")) if getattr(args, dest)]
        if given:
            raise UsageError(f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} --dataset")
        return
    if args.train or args.dev:
        raise UsageError("--dataset replaces --train and --dev: give one or the other")
    if args.phrases and dataset != "sst2":
        raise UsageError("--phrases applies to --dataset sst2 only")


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What ``train --dataset`` trains on. ``dev`` is dev.tsv (sst2) or a stratified split of train (imdb,
    mr: ``unrolled.datasets.DEV_FRACTION`` and ``DEV_SEED``; its ``lines`` point into the train file);
    ``held_out`` are the files training never reads (``{"test": path}``); ``record`` is the checkpoint's
    ``data`` field."""

    name: str
    train: object  # TextDataset
    dev: object  # TextDataset
    held_out: dict[str, Path]
    record: dict[str, object]
    label_names: dict[str, str]


def load_training_data(args: argparse.Namespace, err: TextIO) -> TrainingData:
    """Locate (downloading when missing, with a notice on ``err``), verify and read ``--dataset``'s files."""
    from unrolled.data.readers import read_dataset
    from unrolled.data.splits import split_dev
    from unrolled.datasets import DEV_FRACTION, DEV_SEED, LABEL_NAMES, dataset_status, get_info, locate

    check_dataset_options(args)
    info = get_info(args.dataset)
    status = dataset_status(info, args.data_dir)
    if status.ready:
        files = locate(info, args.data_dir)
    else:
        files = _fetch(info, args.data_dir, err, why=f"{info.name} is not in {status.data_dir}: ")
    train_path = files["train_phrases" if args.phrases else "train"]
    train = read_dataset(train_path)
    if "dev" in files:
        dev = read_dataset(files["dev"])
        dev_record = file_summary(str(files["dev"]), len(dev), 0)
    else:
        rows = list(range(len(train)))  # split row numbers, to keep each row's line for error messages
        train_rows, _, dev_rows, _ = split_dev(rows, train.labels, fraction=DEV_FRACTION, seed=DEV_SEED)
        train, dev = _rows(train, train_rows), _rows(train, dev_rows)
        dev_record = {"split_of": str(train_path), "fraction": DEV_FRACTION, "seed": DEV_SEED, "rows": len(dev)}
    held_out = {role: path for role, path in files.items() if role not in ("train", "dev", "train_phrases")}
    record = {
        "dataset": info.name,
        "data_dir": str(status.data_dir),
        "train": file_summary(str(train_path), len(train), 0),
        "dev": dev_record,
        "held_out": {role: str(path) for role, path in held_out.items()},
    }
    return TrainingData(info.name, train, dev, held_out, record, dict(LABEL_NAMES))


def _rows(dataset, rows):
    from unrolled.data.readers import TextDataset

    return TextDataset(
        texts=[dataset.texts[i] for i in rows],
        labels=[dataset.labels[i] for i in rows],
        lines=[dataset.lines[i] for i in rows],
        path=dataset.path,
    )


COMMANDS = {"datasets": Command(DATASETS_HELP, add_datasets_arguments, run_datasets)}
