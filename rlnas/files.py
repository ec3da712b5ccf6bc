"""Output files that appear whole or not at all, with the permissions a plain ``open`` would give."""
from __future__ import annotations

import os
import stat
import tempfile
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


def check_folder_can_be_made(folder: str | Path, what: str) -> None:
    """:class:`~rlnas.errors.ConfigError` unless ``folder`` is (or can be made as) a writable folder."""
    from rlnas.errors import ConfigError

    blocking = blocking_file(folder)
    if blocking is not None:
        raise ConfigError(f"{what} {folder}: {blocking} is a file, not a folder")
    existing = next(p for p in [Path(folder), *Path(folder).parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {folder}: folder {existing} is not writable")


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (missing folders are created); when the block ends
    without an exception the temporary file replaces ``path`` in one step, else it is removed."""
    path = Path(path)
    blocking = blocking_file(path.parent)
    if blocking is not None:  # mkdir would say only "File exists"
        raise NotADirectoryError(20, f"{blocking} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        os.fchmod(handle, _mode_for(path))  # mkstemp makes it 0600
        os.close(handle)
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder (created when missing)."""
    with replacing(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)
