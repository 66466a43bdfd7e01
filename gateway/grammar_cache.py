"""Compiled X12 grammars kept on disk between runs of the offline commands, so
`gateway translate` on a small file does not compile the XML maps (and import lxml)
every time: :class:`translators.x12.grammar.GrammarStore` over a folder.

The folder is ``$XDG_CACHE_HOME/edi-gateway/grammars`` (``~/.cache/...`` by default),
created private to the user. Entries are pickles named by a key that changes with
the map, the dictionary, the compiler's source and the Python version, so a stale
entry is never read; an entry is read only from a folder and file the current user
owns that nobody else may write (a pickle is code). Any failure to read or write
means the map is compiled, as without a cache.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def default_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edi-gateway" / "grammars"


def _private(info: os.stat_result) -> bool:
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


class FolderGrammarStore:
    """Pickled grammars in one folder, one file per key, written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, key: str) -> bytes | None:
        path = self.folder / f"{key}.pickle"
        try:
            with path.open("rb") as file:
                if not (_private(os.fstat(file.fileno())) and _private(self.folder.stat())):
                    return None
                return file.read()
        except OSError:
            return None

    def put(self, key: str, data: bytes) -> None:
        temporary = self.folder / f".{key}.{os.getpid()}.tmp"
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(self.folder.stat()):
                return
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, self.folder / f"{key}.pickle")
        except OSError:
            temporary.unlink(missing_ok=True)


def use_grammar_cache(folder: Path | None = None) -> None:
    """Have this process load and keep compiled grammars in ``folder`` (default:
    :func:`default_folder`)."""
    from translators.x12.grammar import use_grammar_store

    use_grammar_store(FolderGrammarStore(folder if folder is not None else default_folder()))
