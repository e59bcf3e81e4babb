"""What the numbers were measured on, so results.md can be read (and rerun) in context."""

from __future__ import annotations

import os
import platform
import sqlite3
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    cpus: int
    cpu_model: str
    ram_gib: float
    python: str
    sqlite: str
    postgresql: str
    packages: str
    filesystem: str

    def lines(self) -> list[str]:
        return [
            f"- CPUs (`nproc`): {self.cpus}",
            f"- CPU model: {self.cpu_model}",
            f"- RAM: {self.ram_gib:.1f} GiB",
            f"- Python: {self.python}",
            f"- SQLite (Python `sqlite3` module): {self.sqlite}",
            f"- PostgreSQL: {self.postgresql}",
            f"- Packages: {self.packages}",
            f"- Scratch filesystem: {self.filesystem}",
        ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return 0.0


def _package_versions() -> str:
    parts = []
    for name in ("persist-queue", "psycopg", "psycopg-binary", "SQLAlchemy"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def _filesystem(path: Path) -> str:
    """Device and mount of the scratch dir, to show spool files share the repo's disk."""
    device = os.stat(path).st_dev
    mount, fstype = "?", "?"
    try:
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            fields = line.split()
            point = fields[1]
            if str(path.resolve()).startswith(point) and len(point) > len(best):
                best, fstype = point, fields[2]
        mount = best or "?"
    except OSError:
        pass
    repo_device = os.stat(Path(__file__).resolve().parent).st_dev
    same = "same device as the repository" if device == repo_device else "DIFFERENT device"
    return f"{path} on {mount} ({fstype}), {same}"


def describe(scratch: Path, postgresql_version: str) -> Machine:
    return Machine(
        cpus=len(os.sched_getaffinity(0)),
        cpu_model=_cpu_model(),
        ram_gib=_ram_gib(),
        python=platform.python_version(),
        sqlite=sqlite3.sqlite_version,
        postgresql=postgresql_version,
        packages=_package_versions(),
        filesystem=_filesystem(scratch),
    )
