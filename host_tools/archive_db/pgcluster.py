"""A throw-away PostgreSQL cluster: for the tests, the bench, and a trial on one laptop.

Debian's ``postgresql`` package server binaries (``/usr/lib/postgresql/<v>/bin``)
run a cluster in a temporary folder, listening only on a unix socket in
that folder, trust authentication, no fsync: nothing of it outlives
:meth:`PgCluster.stop`. PostgreSQL refuses to run as root; as root (CI) the
server runs as ``nobody`` through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

USER = "cryo"  # the cluster's superuser
PORT = 5432  # only names the socket file: the cluster has no TCP listener


def server_bin() -> Path | None:
    """The newest installed server's bin folder, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


class PgCluster:
    def __init__(self, bindir: Path | None = None):
        self.bindir = bindir or server_bin()
        if self.bindir is None:
            raise RuntimeError(
                "no PostgreSQL server: install Debian's `postgresql` package (make does as root)"
            )
        self.dir: Path | None = None

    def _as_server_user(self, argv: list) -> list:
        return ["runuser", "-u", "nobody", "--", *map(str, argv)] if os.geteuid() == 0 else argv

    def _run(self, argv):
        proc = subprocess.run(
            self._as_server_user(argv), capture_output=True, text=True, timeout=120
        )
        if proc.returncode:
            raise RuntimeError(f"{Path(argv[0]).name} failed:\n{proc.stdout}{proc.stderr}")

    def start(self) -> PgCluster:
        self.dir = Path(tempfile.mkdtemp(prefix="cryo-pg-"))
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
        data = self.dir / "data"
        self._run(
            [
                self.bindir / "initdb",
                "-D",
                data,
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        opts = f"-k {self.dir} -c listen_addresses='' -p {PORT} -c fsync=off -c max_connections=50"
        self._run(
            [
                self.bindir / "pg_ctl",
                "-D",
                data,
                "-o",
                opts,
                "-l",
                self.dir / "server.log",
                "-w",
                "start",
            ]
        )
        return self

    def url(self, dbname: str = "postgres") -> str:
        """The database's URL as a user gives it (``--archive``, ``$CRYO_ARCHIVE``)."""
        return f"postgresql://{USER}@/{dbname}?host={self.dir}&port={PORT}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host=str(self.dir), port=PORT, user=USER, dbname="postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        if self.dir is None:
            return
        try:
            self._run([self.bindir / "pg_ctl", "-D", self.dir / "data", "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
