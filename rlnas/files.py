"""Output files that appear whole or not at all, with the permissions a plain ``open`` would give."""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _mode_for(path: Path) -> int:
    """The mode a new file ``path`` would get from ``open`` (0666 less the umask), or the mode of the
    file it replaces."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def blocking_file(folder: str | Path) -> Path | None:
    """The file (not folder) at ``folder`` or at one of its parents, which keeps it from being made."""
    folder = Path(folder)
    return next((p for p in [*reversed(folder.parents), folder] if p.is_file()), None)


def folder_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not (and cannot be made as) a writable folder, or ``None``."""
    blocking = blocking_file(folder)
    if blocking is not None:
        return f"{blocking} is a file, not a folder"
    dangling = next((p for p in [Path(folder), *Path(folder).parents] if p.is_symlink() and not p.exists()), None)
    if dangling is not None:  # mkdir would say only "File exists"
        return f"{dangling} is a link to {os.readlink(dangling)}, which does not exist (a disk not mounted?)"
    existing = next(p for p in [Path(folder), *Path(folder).parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"folder {existing} is not writable"
    return None


def check_folder_can_be_made(folder: str | Path, what: str) -> None:
    """:class:`~rlnas.errors.ConfigError` unless ``folder`` is (or can be made as) a writable folder."""
    from rlnas.errors import ConfigError

    problem = folder_problem(folder)
    if problem is not None:
        raise ConfigError(f"{what} {folder}: {problem}")


NOT_A_REGULAR_FILE = "it is not a regular file (a device, a pipe or a socket), so nothing is written there"


def output_target(path: str | Path) -> Path:
    """The file that writing ``path`` makes or replaces: ``path``, or where it points when it is a symbolic
    link (the link stays a link). ``OSError`` for an empty path, a folder, and anything that exists but is
    not a regular file: a device such as ``/dev/null`` would be replaced by a file, and a pipe would block."""
    if not str(path):
        raise OSError(errno.ENOENT, "the path is empty")
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "it is a folder")
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, NOT_A_REGULAR_FILE)
    if is_database(path):
        raise OSError(errno.EEXIST, "it is a database (or one's journal), which no output replaces")
    return path


SQLITE_HEADER = b"SQLite format 3\x00"
JOURNALS = ("-wal", "-shm", "-journal")
"""What SQLite keeps next to a database ``x.db``: ``x.db-wal`` ... (removed or rewritten by SQLite itself)."""


def is_database(path: str | Path) -> bool:
    """Whether ``path`` is an SQLite database, or the journal of one (an output written there would be lost,
    or would destroy the studies in it)."""
    return journal_of(path) is not None or _has_sqlite_header(Path(path))


OPENED_SQLITE_FILES: Counter[tuple[int, int]] = Counter()
"""``(device, inode)`` of every SQLite file this process holds open as a store, with the number of its
stores on it (a closed store lets go: a file that later gets the inode is not taken for it). Such a file must never be
opened and closed again by other means in this process: closing any descriptor of a file drops all of the
process's POSIX locks on it, SQLite's included, and another process that then closes its last connection
takes this one's for gone and deletes the -wal and -shm files under it (the next connection here read a
sound database as "malformed")."""


def opened_as_store(path: str | Path) -> bool:
    """Whether this process has opened the file at ``path`` as a SQLite store (see :data:`OPENED_SQLITE_FILES`)."""
    try:
        found = os.stat(path)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) in OPENED_SQLITE_FILES


def journal_of(path: str | Path) -> Path | None:
    """The SQLite database whose journal ``path`` names (``x.db`` for ``x.db-wal``), or ``None``."""
    path = Path(path)
    for journal in JOURNALS:
        if path.name.endswith(journal) and _has_sqlite_header(path.with_name(path.name[:-len(journal)])):
            return path.with_name(path.name[:-len(journal)])
    return None


def _has_sqlite_header(path: Path) -> bool:
    try:
        if not path.is_file():  # a pipe would block the read below
            return False
        if opened_as_store(path):  # reading it here would drop this process's locks on it
            return True
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (missing folders are created); when the block ends
    without an exception the temporary file replaces ``path`` in one step, else it is removed. See
    :func:`output_target` for what ``path`` may be."""
    path = output_target(path)
    blocking = blocking_file(path.parent)
    if blocking is not None:  # mkdir would say only "File exists"
        raise NotADirectoryError(20, f"{blocking} is a file, not a folder")
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path.name), suffix=".tmp")
    except BaseException:  # (a folder name that is too long: the ones made before it go too)
        _remove_empty(made)
        raise
    temporary = Path(name)
    try:
        os.fchmod(handle, _mode_for(path))  # mkstemp makes it 0600
        os.close(handle)
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        _remove_empty(made)  # a failed or interrupted write leaves no folder it made either
        raise


def _temporary_prefix(name: str) -> str:
    """``.NAME.``, with NAME cut so that the temporary file's name (the prefix, 8 random characters and
    ``.tmp``) is no longer than the 255 bytes a file name may have where ``name`` itself fits."""
    while len(f".{name}.".encode()) > 243:
        name = name[:-1]
    return f".{name}."


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders (deepest first) that are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):  # another process wrote there meanwhile: keep it
                return
            # else never made (mkdir stopped before it: missing, or its name too long): on to its parent


def write_atomically(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder (created when missing)."""
    with replacing(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def is_text(name: str) -> bool:
    """Whether ``name`` (a path or an argument) is text: not bytes the locale could not decode, which Python
    keeps as surrogates and only the file system takes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
