"""A throwaway PostgreSQL cluster built from the installed server binaries.

Tests and benchmarks that simulate database outages must be able to stop and start
PostgreSQL themselves, which a shared, externally managed server cannot offer. This
module runs ``initdb``/``pg_ctl`` into a private directory, on a fixed loopback port
that survives restarts, so clients can reconnect to the same URL after an outage.

``initdb`` and ``pg_ctl`` refuse to run as root; CI runs as root, so in that case
every server command is run as the ``postgres`` user through ``runuser`` and the
cluster directory is handed to that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.support.ports import reserved_port

__all__ = ["PgCluster", "find_bin_dir"]

SERVER_USER = "postgres"
"""OS account that owns the cluster when we run as root (initdb refuses root)."""

_STOP_MODES = frozenset({"smart", "fast", "immediate"})
_LOG_TAIL_LINES = 40
# sun_path holds 108 bytes; leave room for "/.s.PGSQL.NNNNN.lock" plus the NUL.
_MAX_SOCKET_DIR_LEN = 80
_CONNECT_TIMEOUT = 10
_QUICK_TIMEOUT = 30.0


def _is_root() -> bool:
    """Whether server commands must be delegated to the postgres user."""
    return os.geteuid() == 0


def _has_server_binaries(bindir: Path) -> bool:
    """Whether ``bindir`` holds the two programs this module needs."""
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _version_key(bindir: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` so that 15 beats 9.6."""
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))


def find_bin_dir() -> Path:
    """Locate the directory holding ``initdb`` and ``pg_ctl``.

    ``pg_config --bindir`` wins when it points at server binaries (client-only
    installs ship pg_config too); otherwise the newest Debian-style
    ``/usr/lib/postgresql/*/bin`` is used.
    """
    tried: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        tried.append("pg_config not on PATH")
    else:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"],
                capture_output=True,
                text=True,
                timeout=_QUICK_TIMEOUT,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"pg_config --bindir failed: {exc}")
        else:
            if out and _has_server_binaries(Path(out)):
                return Path(out)
            tried.append(f"pg_config --bindir gave {out!r} without initdb and pg_ctl")
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_server_binaries(p)),
        key=_version_key,
    )
    if candidates:
        return candidates[-1]
    tried.append("no /usr/lib/postgresql/*/bin contains initdb and pg_ctl")
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: " + "; ".join(tried))


def _conf_quote(value: str) -> str:
    """Quote a string for postgresql.conf."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _clean_env() -> dict[str, str]:
    """Environment without PG* variables, so a developer's settings cannot leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


class PgCluster:
    """A private PostgreSQL cluster on 127.0.0.1 that tests may stop and start at will."""

    host: str
    port: int

    def __init__(self, base_dir: Path, *, fsync: bool = True) -> None:
        """Prepare (but do not create) a cluster below ``base_dir``.

        ``fsync=False`` also turns off synchronous_commit and full_page_writes: fast,
        but not crash-safe, which is the usual trade for disposable test data.
        """
        self.base_dir = Path(base_dir)
        self.fsync = fsync
        self.host = "127.0.0.1"
        self.port = reserved_port()  # chosen once, kept across restarts
        self.bin_dir = find_bin_dir()
        self._dir: Path | None = None
        self._socket_dir: Path | None = None
        self._initialized = False
        self._owner: pwd.struct_passwd | None = None
        if _is_root():
            try:
                self._owner = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError(
                    f"running as root but there is no {SERVER_USER!r} user to run initdb/pg_ctl"
                ) from None
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root but runuser is not on PATH")

    # -- paths -----------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The cluster's own directory (created by :meth:`init`)."""
        if self._dir is None:
            raise RuntimeError("cluster not initialised; call init() first")
        return self._dir

    @property
    def data_dir(self) -> Path:
        """PGDATA of the cluster."""
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        """Server log, quoted in error messages to explain failures."""
        return self.directory / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        """Where the server puts its Unix socket (short enough for sun_path)."""
        if self._socket_dir is None:
            raise RuntimeError("cluster not initialised; call init() first")
        return self._socket_dir

    # -- command plumbing ----------------------------------------------------------

    def _argv(self, program: str, *args: str) -> list[str]:
        """Build a command line, delegated to the postgres user when we are root."""
        argv = [str(self.bin_dir / program), *args]
        if self._owner is not None:
            return ["runuser", "-u", self._owner.pw_name, "--", *argv]
        return argv

    def _chown(self, path: Path) -> None:
        """Give ``path`` to the server user (no-op when not root)."""
        if self._owner is not None:
            os.chown(path, self._owner.pw_uid, self._owner.pw_gid)

    def _log_tail(self) -> str:
        """Last lines of the server log, or a note why there are none."""
        if self._dir is None:
            return "(no cluster directory)"
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError as exc:
            return f"(no server log: {exc})"
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(server log empty)"

    def _fail(self, what: str, argv: Sequence[str], detail: str) -> RuntimeError:
        """An error carrying the command, its output and the server log tail."""
        return RuntimeError(
            f"{what} failed: {' '.join(argv)}\n{detail}\n"
            f"--- tail of {self._dir / 'postgres.log' if self._dir else 'server log'} ---\n"
            f"{self._log_tail()}"
        )

    def _run(
        self, what: str, argv: Sequence[str], timeout: float, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a server command with a timeout; raise RuntimeError with context on failure."""
        try:
            proc = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_clean_env(),
                # The postgres user may not be able to enter our cwd (e.g. /root).
                cwd=self._dir if self._dir is not None else "/",
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            raise self._fail(what, argv, f"timed out after {timeout}s\n{stderr}") from exc
        except OSError as exc:
            raise self._fail(what, argv, str(exc)) from exc
        if check and proc.returncode != 0:
            raise self._fail(
                what,
                argv,
                f"exit status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}",
            )
        return proc

    def _usable_by_server(self, path: Path) -> bool:
        """Whether the server user can enter and write ``path`` (every parent included)."""
        if self._owner is None:
            return True
        proc = subprocess.run(
            [
                "runuser",
                "-u",
                self._owner.pw_name,
                "--",
                "test",
                "-w",
                str(path),
                "-a",
                "-x",
                str(path),
            ],
            capture_output=True,
            timeout=_QUICK_TIMEOUT,
            cwd="/",
            check=False,
        )
        return proc.returncode == 0

    def _make_private_dir(self, parents: Sequence[Path], prefix: str) -> Path:
        """mkdtemp in the first parent the server user can reach, owned by that user.

        pytest's tmp_path lives below a root-owned 0700 directory, which the postgres
        user cannot traverse; rather than loosen permissions there we fall back to the
        system temp directory.
        """
        seen: set[Path] = set()
        for parent in parents:
            if parent in seen:
                continue
            seen.add(parent)
            parent.mkdir(parents=True, exist_ok=True)
            path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
            self._chown(path)
            if self._usable_by_server(path):
                return path
            shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(
            f"no directory usable by user {SERVER_USER!r} among: "
            + ", ".join(str(p) for p in parents)
        )

    # -- lifecycle -------------------------------------------------------------------

    def _settings(self) -> dict[str, str]:
        """postgresql.conf overrides; autovacuum off keeps pg_stat_database deterministic."""
        settings = {
            "listen_addresses": _conf_quote(self.host),
            "port": str(self.port),
            "unix_socket_directories": _conf_quote(str(self.socket_dir)),
            "max_connections": "100",
            "autovacuum": "off",
            "fsync": "on" if self.fsync else "off",
            "log_destination": "'stderr'",
            "logging_collector": "off",
            "log_min_messages": "warning",
        }
        if not self.fsync:
            settings["synchronous_commit"] = "off"
            settings["full_page_writes"] = "off"
        return settings

    def init(self) -> None:
        """Create the directory and run initdb; later calls do nothing."""
        if self._initialized:
            return
        temp = Path(tempfile.gettempdir())
        self._dir = self._make_private_dir([self.base_dir, temp, Path("/tmp")], prefix="pgcluster-")
        if len(str(self._dir)) <= _MAX_SOCKET_DIR_LEN:
            self._socket_dir = self._dir
        else:
            self._socket_dir = self._make_private_dir([temp, Path("/tmp")], prefix="pgsock-")
        self._run(
            "initdb",
            self._argv(
                "initdb",
                "-D",
                str(self.data_dir),
                "--auth=trust",
                f"--username={SERVER_USER}",
                "--encoding=UTF8",
                "--locale=C",
                # Throwaway cluster: skip flushing the fresh catalog files (much faster).
                "--no-sync",
            ),
            timeout=120,
        )
        lines = [f"{key} = {value}" for key, value in self._settings().items()]
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# --- tests/support/pg_cluster.py ---\n" + "\n".join(lines) + "\n")
        self._initialized = True

    @property
    def running(self) -> bool:
        """Whether a postmaster is serving this cluster (``pg_ctl status``)."""
        if not self._initialized:
            return False
        proc = self._run(
            "pg_ctl status",
            self._argv("pg_ctl", "status", "-D", str(self.data_dir)),
            timeout=_QUICK_TIMEOUT,
            check=False,
        )
        return proc.returncode == 0

    def start(self, timeout: float = 30) -> None:
        """Start the server and wait until it accepts connections; no-op if running."""
        self.init()
        if self.running:
            return
        self._run(
            "pg_ctl start",
            self._argv(
                "pg_ctl",
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(max(1, int(timeout + 0.999))),
            ),
            timeout=timeout + 15,
        )

    def stop(self, mode: str = "fast", timeout: float = 30) -> None:
        """Stop the server (``immediate`` simulates a crash); no-op if not running."""
        if mode not in _STOP_MODES:
            raise ValueError(f"stop mode must be one of {sorted(_STOP_MODES)}, got {mode!r}")
        if not self.running:
            return
        proc = self._run(
            "pg_ctl stop",
            self._argv(
                "pg_ctl",
                "stop",
                "-D",
                str(self.data_dir),
                "-m",
                mode,
                "-w",
                "-t",
                str(max(1, int(timeout + 0.999))),
            ),
            timeout=timeout + 15,
            check=False,
        )
        if proc.returncode != 0 and self.running:
            raise self._fail(
                "pg_ctl stop",
                proc.args,
                f"exit status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}",
            )

    def restart(self) -> None:
        """Fast stop followed by start, keeping the same port."""
        self.stop()
        self.start()

    def _kill_postmaster(self) -> None:
        """Last resort for destroy(): SIGKILL the postmaster named in postmaster.pid."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        """Stop immediately and delete everything on disk; safe to call repeatedly."""
        if self._initialized:
            try:
                self.stop(mode="immediate")
            except RuntimeError:
                self._kill_postmaster()
        for path in (self._socket_dir, self._dir):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        self._socket_dir = None
        self._dir = None
        self._initialized = False

    def __enter__(self) -> PgCluster:
        """init + start; cleans up after itself if that fails."""
        try:
            self.init()
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Destroy the cluster."""
        self.destroy()

    # -- clients ---------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``dbname``."""
        db = quote(dbname, safe="")
        return f"postgresql+psycopg://{SERVER_USER}@{self.host}:{self.port}/{db}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq conninfo string for raw ``psycopg.connect``."""
        return make_conninfo(
            host=self.host,
            port=self.port,
            user=SERVER_USER,
            dbname=dbname,
            connect_timeout=_CONNECT_TIMEOUT,
        )

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """Autocommit connection to the maintenance database (CREATE DATABASE needs it)."""
        return psycopg.connect(self.conninfo("postgres"), autocommit=True)

    def create_database(self, name: str) -> None:
        """(Re)create database ``name``, dropping any leftover from an earlier run."""
        with self._admin() as conn:
            self._drop(conn, name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its clients."""
        with self._admin() as conn:
            self._drop(conn, name)

    @staticmethod
    def _drop(conn: psycopg.Connection[tuple[object, ...]], name: str) -> None:
        """DROP DATABASE IF EXISTS, forcing out sessions where the server supports it."""
        stmt = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
        if conn.info.server_version >= 130000:
            stmt = sql.SQL("{} WITH (FORCE)").format(stmt)
        conn.execute(stmt)

    def __repr__(self) -> str:
        """Show where the cluster lives, for test failure output."""
        return f"PgCluster(dir={self._dir}, port={self.port}, fsync={self.fsync})"
