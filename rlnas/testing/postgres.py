"""A throwaway PostgreSQL server for tests and benchmarks.

:func:`postgres_server` creates a cluster in a temporary folder with ``initdb``, starts it
with ``pg_ctl`` listening only on ``127.0.0.1`` on a free port with ``trust`` authentication,
yields its SQLAlchemy URL ``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres``, and
stops it and deletes the folder afterwards. It needs the PostgreSQL server binaries
(``initdb``, ``pg_ctl``: on ``PATH`` or in ``/usr/lib/postgresql/*/bin``) and the
``psycopg`` driver. PostgreSQL refuses to run as root, so under root the server runs as the
``postgres`` system user (through ``runuser`` or ``su``). Anything missing raises
:class:`PostgresUnavailable` whose message says what.

    with postgres_server() as url:
        store = open_store(fresh_database(url))
"""
from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVER_USER = "postgres"
"""System user that runs the server when this process is root."""

FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""Durability switched off: a throwaway server need not survive a power cut, and tests run faster."""


class PostgresUnavailable(RuntimeError):
    """The server cannot be started here; the message says why (missing binaries, driver, user...)."""


def find_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: from ``PATH``, else the newest ``/usr/lib/postgresql/*/bin``."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: _version_key(p))
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed "
                              "(e.g. apt-get install postgresql)")


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def check_driver() -> None:
    """Raise :class:`PostgresUnavailable` if the psycopg driver cannot be imported."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise PostgresUnavailable(f"the psycopg driver is missing ({exc}); pip install 'rlnas[postgres]'") from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in ``folder/data`` (its log in ``folder/data/postgres.log``).

    Nothing else in ``folder`` is touched. Under root the server user must be able to reach
    ``folder`` (every parent folder open to others, as ``/tmp/anything`` made with ``mkdir`` is).
    ``durable=False`` turns fsync and synchronous commit off (see :data:`FAST_SETTINGS`).
    """

    def __init__(self, folder: str | os.PathLike, *, port: int | None = None, durable: bool = False):
        self.folder = Path(folder).resolve()
        self.data = self.folder / "data"
        self.log = self.data / "postgres.log"
        self.port = port
        self.durable = durable
        self.bin_dir = find_bin_dir()
        self.user = self._server_user()

    # ------------------------------------------------------------ commands
    @staticmethod
    def _server_user() -> str | None:
        """``None`` when this process may run the server itself, else the user to run it as."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresUnavailable(f"running as root and there is no {SERVER_USER!r} user to run "
                                      "PostgreSQL as (initdb refuses to run as root)") from None
        return SERVER_USER

    def _as_user(self, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``cmd``, as the server user when we are root."""
        if self.user is not None:
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", self.user, "--", *cmd]
            else:
                cmd = ["su", "-s", "/bin/sh", self.user, "-c", shlex.join(cmd)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a server binary (``initdb``, ``pg_ctl``) from :attr:`bin_dir`."""
        return self._as_user([str(self.bin_dir / args[0]), *args[1:]], timeout=timeout)

    def _fail(self, what: str, result: subprocess.CompletedProcess | None = None) -> PostgresUnavailable:
        lines = []
        if result is not None:
            lines += (result.stderr or result.stdout or "").strip().splitlines()[-3:]
        if self.log.exists():
            lines += self.log.read_text(errors="replace").strip().splitlines()[-3:]
        detail = " | ".join(line.strip() for line in lines if line.strip())
        return PostgresUnavailable(f"{what}{': ' + detail if detail else ''}")

    # ----------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database as the ``postgres`` superuser."""
        if self.port is None:
            raise PostgresUnavailable("the server has not been started")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        """Create the cluster if needed, start the server and return its URL."""
        check_driver()
        if not (self.data / "PG_VERSION").exists():
            self.data.mkdir(mode=0o700, parents=True, exist_ok=True)
            if self.user is not None:
                entry = pwd.getpwnam(self.user)
                os.chown(self.data, entry.pw_uid, entry.pw_gid)
                if self._as_user(["test", "-w", str(self.data)]).returncode != 0:
                    self.data.rmdir()
                    raise PostgresUnavailable(f"user {self.user!r} cannot reach {self.data} (a parent folder "
                                              "is closed to it; use a folder made with mkdir under /tmp)")
            result = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                               "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
            if result.returncode != 0:
                raise self._fail(f"initdb failed in {self.data}", result)
        settings = {"listen_addresses": "'127.0.0.1'", "unix_socket_directories": "''"}
        if not self.durable:
            settings |= FAST_SETTINGS
        for attempt in range(3):
            port = self.port if self.port is not None and attempt == 0 else free_port()
            options = " ".join(f"-c {k}={v}" for k, v in (settings | {"port": str(port)}).items())
            result = self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                               "-o", options, timeout=90)
            if result.returncode == 0:
                self.port = port
                return self.url
            if self.port is not None:
                break  # the caller chose the port: do not silently move to another
        raise self._fail("the PostgreSQL server did not start", result)

    def running_url(self) -> str:
        """URL of the server already running on this cluster (its port read from ``postmaster.pid``)."""
        pid_file = self.data / "postmaster.pid"
        if not self.running() or not pid_file.exists():
            raise PostgresUnavailable(f"no PostgreSQL server is running on {self.data}")
        self.port = int(pid_file.read_text().splitlines()[3])
        return self.url

    def running(self) -> bool:
        """Whether a server runs on this cluster."""
        return self.data.exists() and self._run("pg_ctl", "status", "-D", str(self.data)).returncode == 0

    def stop(self, *, remove: bool = True) -> None:
        """Stop the server (fast shutdown) and, with ``remove``, delete the cluster and its log."""
        if self.running():
            result = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", timeout=90)
            if result.returncode != 0:
                raise self._fail(f"could not stop the server in {self.data}", result)
        if remove:
            shutil.rmtree(self.data, ignore_errors=True)


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[str]:
    """Start a throwaway server in a new temporary folder; yield its URL; stop it and delete the folder."""
    folder = tempfile.mkdtemp(prefix="rlnas-pg-")
    os.chmod(folder, 0o711)  # mkdtemp makes it private; the server user (under root) must pass through
    try:
        server = PostgresServer(folder, durable=durable)
        url = server.start()
        try:
            yield url
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(url: str, prefix: str = "rlnas_test") -> str:
    """Create a new, empty database on the server of ``url``; return the URL pointing at it."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)
