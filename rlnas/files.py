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


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (missing folders are created); when the block ends
    without an exception the temporary file replaces ``path`` in one step, else it is removed."""
    path = Path(path)
    blocking = next((folder for folder in reversed(path.parent.parents) if folder.is_file()), None)
    if blocking is None and path.parent.is_file():
        blocking = path.parent
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
