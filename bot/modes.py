"""File modes of everything the program writes: folders 0700, files 0600.

The data directory holds DNIs, emails, phones and the officers' documents, so nothing in it
is readable by another local user, whatever the umask of whoever started the program:

* :func:`private_dir` creates a folder (and the missing parents below an existing one) 0700;
* :func:`create_private` creates or truncates a file 0600 (an existing file is narrowed
  to 0600 too: an export written over an old one does not keep its wider mode);
* :func:`secure_data_dir` narrows an existing installation at start (a data directory left
  0755 by an older release, a database 0644): only what this user owns is touched;
* ``pte-bot`` also sets the process umask to 077 (:func:`restrict_umask`), so a file some
  library creates on its own (SQLite's temporary files, a journal) is private as well.

SQLite creates the ``-wal`` and ``-shm`` files with the database file's mode, which is why
the database file is created 0600 before SQLite opens it. :func:`write_atomically` writes a
file that appears complete or not at all (the file store and the .eml outbox use it).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import TextIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def restrict_umask() -> None:
    """New files and folders of this process: no access for group and others."""
    os.umask(0o077)


def private_dir(path: Path) -> Path:
    """``path`` as a folder 0700, with the parents it lacks created 0700 as well."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for new_dir in reversed(missing):
        with contextlib.suppress(FileExistsError):
            new_dir.mkdir(mode=DIR_MODE)
        _narrow(new_dir, DIR_MODE)
    return path


def create_private(path: Path) -> None:
    """Create ``path`` empty and 0600 if it does not exist; narrow it to 0600 if it does."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def open_private(path: Path, *, encoding: str = "utf-8", newline: str | None = None) -> TextIO:
    """``open(path, "w")``, the file 0600 (created so, or narrowed if it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "w", encoding=encoding, newline=newline)


def secure_data_dir(data_dir: Path) -> None:
    """Narrow what a data directory already holds: folders 0700, files 0600.

    Walks the whole tree (stored files, mail, database): an installation made by an older
    release, or copied with ``cp`` under a wide umask, is fixed at the next start. Entries of
    another owner are left alone (changing them would fail anyway)."""
    if not data_dir.is_dir():
        return
    uid = os.geteuid()
    _narrow(data_dir, DIR_MODE, uid)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            _narrow(Path(root, name), DIR_MODE, uid)
        for name in files:
            _narrow(Path(root, name), FILE_MODE, uid)


def _narrow(path: Path, wanted: int, uid: int | None = None) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode) or (uid is not None and info.st_uid != uid):
        return
    if stat.S_IMODE(info.st_mode) != wanted:
        os.chmod(path, wanted)


def write_atomically(path: Path, data: bytes) -> None:
    """The file appears complete or not at all: temporary name in the same folder, fsync,
    rename, fsync the folder."""
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
