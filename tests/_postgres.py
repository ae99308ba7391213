"""A throwaway PostgreSQL server for the tests (a helper of the gradebook test modules).

:func:`start` makes a new cluster with ``initdb`` in a private folder and runs it on
127.0.0.1 on a free port, reachable over TCP from this machine only (its Unix socket in that
folder); :meth:`Server.stop` ends it.  PostgreSQL refuses to run as root: as root (CI), the
folder is given to the ``postgres`` user that Debian's package creates and the server runs
as that user (``runuser``).  The programs are found on ``PATH`` or where Debian's
``postgresql`` package puts them (``/usr/lib/postgresql/<version>/bin``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

USER = "cvloss"
START_S = 60


def binaries() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    return Path(versions[-1]).parent if versions else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


def unavailable() -> str | None:
    """Why a server cannot be started here, or None."""
    if binaries() is None:
        return "PostgreSQL (initdb, pg_ctl: Debian's postgresql) is not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run the server as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg (the grading extra's PostgreSQL driver) is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    folder: Path
    port: int
    bindir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, as ``pg_ctl stop -m fast`` sends): by
        signal, since the server's user may no longer reach its folder (pytest makes its
        base folder private again when another session starts)."""
        try:
            pid = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGINT)
        except (OSError, ValueError, IndexError):
            return
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def _as_owner(command: list[str], check: bool = True) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=START_S, check=check)


def start(folder: Path) -> Server:
    """A new server whose files are under ``folder``."""
    bindir = binaries()
    assert bindir is not None
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in [folder, *folder.parents]:
            if path == Path("/"):
                break
            # the server must be able to reach its folder (a pytest temp folder is 0700)
            os.chmod(path, os.stat(path).st_mode | 0o111)
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    data = folder / "data"
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust"]
    _as_owner([*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"])
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    pg_ctl = [str(bindir / "pg_ctl"), "start", "-D", str(data), "-w", "-t", str(START_S)]
    _as_owner([*pg_ctl, "-l", str(folder / "server.log"), "-o", options])
    server = Server(folder, port, bindir)
    deadline = time.monotonic() + START_S
    import psycopg

    while True:
        try:
            psycopg.connect(server.url(), connect_timeout=5).close()
            return server
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
