"""A throw-away PostgreSQL server on 127.0.0.1 for tests.

It uses the distribution's server binaries (Debian's `postgresql` package: `.ci/run`
installs it), found on PATH or in /usr/lib/postgresql/*/bin. PostgreSQL refuses to run as
root, so under root the server runs as the `postgres` system user. Its data lives in a
temporary folder that `remove` deletes; connections are trusted (loopback only).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The server could not be started here; the message says why."""


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                        key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        raise ServerUnavailable("no PostgreSQL server binaries (pg_ctl, initdb) on PATH or in "
                                "/usr/lib/postgresql/*/bin; install the `postgresql` package")
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """`start()`, `create_database(name)` -> URL, `stop()`, `remove()`; a stopped
    server starts again on the same port with its data."""

    def __init__(self):
        self.port = free_port()
        self.bindir = _bindir()
        self.base = Path(tempfile.mkdtemp(prefix="jaxcx-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                self.remove()
                raise ServerUnavailable("running as root and there is no `postgres` user to "
                                        "run the server as") from None
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        try:
            self._initdb()
        except (ServerUnavailable, OSError, subprocess.SubprocessError):
            self.remove()
            raise

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run([*self._as_user, *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise ServerUnavailable(f"{Path(args[0]).name} failed ({done.returncode}): "
                                    f"{done.stderr.strip()[-2000:]} {log}".strip())

    def _initdb(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")

    def start(self) -> None:
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.base} -F "
                   "-c full_page_writes=off -c max_connections=40")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", options, "-w", "-t", "60", "start", timeout=90)

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (`immediate` is as abrupt as a crash)."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                  "stop")

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname="postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
