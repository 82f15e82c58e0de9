"""A throw-away PostgreSQL server for tests and benchmarks: Debian's binaries, 127.0.0.1, a temp data dir.

>>> with PgServer() as pg:                 # doctest: +SKIP
...     psycopg.connect(pg.dsn)

``.ci/install-postgres.sh`` installs the binaries. As root, the server runs as the ``postgres`` user
(``initdb`` refuses root), through ``runuser``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import glob
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PgServer", "pg_bin_dir"]


def pg_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl (or the PATH's)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    if initdb := shutil.which("initdb"):
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL binaries not found: run `bash .ci/install-postgres.sh`")


_template: Path | None = None  # an initdb'd cluster to copy


def _free_port() -> int:
    """A loopback port free now, below the kernel's ephemeral range where it can (so no client connection or
    bind to port 0 is handed it while the server is down for a restart). PostgreSQL binds it itself, later:
    start() retries on another port if something took it meanwhile."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(10_000, low) if low > 11_000 else 0
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free loopback port found")


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


class PgServer:
    """Start with ``start()`` (or ``with``), stop with ``stop()``; ``restart()`` keeps the data."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.bin = pg_bin_dir()
        self.port = _free_port()
        self.fsync = fsync
        # As root the server runs as another user, who must reach the data dir: /tmp, not a private $TMPDIR.
        self.root = Path(tempfile.mkdtemp(prefix="llmcost-pg-", dir="/tmp" if os.geteuid() == 0 else None))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.user = "postgres"
        self._as: list[str] = []
        self._owns_template = False
        self._started = False  # once started, the port stays: clients keep the DSN across restarts
        if os.geteuid() == 0:
            account = "postgres" if _user_exists("postgres") else "nobody"
            self._as = ["runuser", "-u", account, "--"]
            shutil.chown(self.root, account)
        self.root.chmod(0o755)

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *args], check=check, capture_output=True, text=True, cwd=self.root)

    def start(self, *, port_attempts: int = 5) -> PgServer:
        """Start the server; if its port was taken meanwhile, on another port (the first start) or on the same
        one once it is free again (a restart: clients keep the DSN)."""
        for attempt in range(port_attempts):
            done = self._start()
            if done.returncode == 0:
                self._wait_ready()
                self._started = True
                return self
            if not _in_use(self.port) or attempt == port_attempts - 1:
                break
            if not self._started:
                self.port = _free_port()
            else:
                time.sleep(1)
        raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {done.stderr}\n"
                           f"{self.log.read_text()[-2000:] if self.log.exists() else ''}")

    def _start(self) -> subprocess.CompletedProcess[str]:
        if not (self.data / "PG_VERSION").exists():
            # initdb once per process; later servers copy that cluster (a tenth of the time)
            global _template
            if _template is None or not (_template / "PG_VERSION").exists():
                template = self.root / "template"
                self._run(
                    str(self.bin / "initdb"), "-D", str(template), "-U", self.user, "--auth=trust",
                    "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
                )  # fmt: skip
                _template, self._owns_template = template, True
                atexit.register(shutil.rmtree, self.root, ignore_errors=True)
            subprocess.run(["cp", "-a", str(_template), str(self.data)], check=True)
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
            f"-c max_connections=50 -c fsync={'on' if self.fsync else 'off'}"
        )
        return self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not listen on 127.0.0.1:{self.port}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` ends open sessions, ``immediate`` is a crash); the data dir stays."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        if not self._owns_template:  # the template stays for the servers that copy it
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
