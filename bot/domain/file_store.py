"""Where received files are kept: :class:`FileStore` keeps each distinct content once, under
its SHA-256 (``root/ab/cd/abcd…``), written with a temporary name, fsync and an atomic rename
so that a stored file is complete before the database row that references it commits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bot.modes import fsync_dir, write_atomically

_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class StoredFile:
    sha256: str
    size: int
    path: Path


class FileIntegrityError(Exception):
    """A stored file no longer matches its hash."""


class FileStore:
    """Content-addressed files under ``root``: ``root/ab/cd/<sha256>``, each content once.

    Directories are created 0700 and files 0600: resolutions carry DNIs and signatures.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if not _SHA256_HEX.fullmatch(sha256):
            raise ValueError("not a lowercase hex SHA-256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        data = self.path_for(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise FileIntegrityError(sha256)
        return data

    def put(self, data: bytes) -> StoredFile:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha256)
        try:
            if path.stat().st_size == len(data):
                return StoredFile(sha256, len(data), path)
        except FileNotFoundError:
            pass
        self._make_dirs(path.parent)
        write_atomically(path, data)
        return StoredFile(sha256, len(data), path)

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and its parents, fsyncing each parent that gained an entry."""
        missing: list[Path] = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        for new_dir in reversed(missing):
            try:
                new_dir.mkdir(mode=0o700)
            except FileExistsError:  # another thread made it first
                continue
            fsync_dir(new_dir.parent)
