"""A lock shared by processes: `flock` on a small private file.

SQLite's own locks last one transaction; some work spans several (a drain cycle reads the
spool, commits to the sink, then deletes from the spool), and another process must not slip
in between. The lock file holds nothing and is never deleted: removing a lock file while
another process waits on it would let two holders in.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

_PRIVATE_FILE = 0o600
POLL_SECONDS = 0.02


class FileLock:
    """An exclusive advisory lock on `path`, not re-entrant.

    flock belongs to the open file, so two `FileLock`s on one path exclude each other even
    inside one process (threads), as well as across processes. The holder dying (even by
    SIGKILL) releases it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, wait_seconds: float = 0.0) -> bool:
        """Take the lock, waiting up to `wait_seconds` for its holder; False if it stays taken.

        The wait is counted in polls rather than read from a clock, so a frozen test clock
        cannot make it endless.
        """
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this FileLock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _PRIVATE_FILE)
        polls = max(0, round(wait_seconds / POLL_SECONDS))
        try:
            for poll in range(polls + 1):
                if poll:
                    time.sleep(POLL_SECONDS)
                if _try_flock(fd):
                    self._fd = fd
                    return True
        finally:
            if self._fd != fd:
                os.close(fd)
        return False

    def release(self) -> None:
        """Let the next holder in (closing the file releases the flock)."""
        if self._fd is None:
            raise RuntimeError(f"lock {self.path} is not held")
        fd, self._fd = self._fd, None
        os.close(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
