"""What several benchmark scripts share: a free loopback port and writing a table between a doc's markers."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_between_markers(doc: Path, name: str, text: str) -> None:
    """Replace what stands between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``doc`` with ``text``."""
    begin_mark, end_mark = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    content = doc.read_text()
    begin, end = content.index(begin_mark) + len(begin_mark), content.index(end_mark)
    doc.write_text(content[:begin] + "\n" + text + "\n" + content[end:])
