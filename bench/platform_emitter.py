"""The platform in a process of its own, for the platform benchmark: a real python-socketio
server (tests/support/platform_server.py) that knows the given tokens and pushes bursts.

    python -m bench.platform_emitter --tokens FILE     # prints {"url": ...} once listening

Commands, one per line on standard input, each answered by one JSON line on standard output:
`burst TOKEN FILE` emits every JSON document of FILE (one per line) as a
`call-history-was-created` event to TOKEN's connection, as fast as the server pushes them,
and answers `{"emitted": N, "started": t, "ended": t}` (`time.monotonic()`, system-wide on
Linux); `connected` answers `{"connected": N}`, the open connections over all tokens.

Its own process, so the emitter's CPU is neither the relay's nor the benchmark's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tests.support.platform_server import PlatformServer

EVENT = "call-history-was-created"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=Path, required=True, help="one token per line")
    args = parser.parse_args(argv)
    tokens = [t for t in args.tokens.read_text().split() if t]
    server = PlatformServer({token: f"company {n}" for n, token in enumerate(tokens)}).start()
    try:
        _answer({"url": server.url})
        for line in sys.stdin:
            command = line.split()
            if command[:1] == ["burst"]:
                token, path = command[1], Path(command[2])
                documents = [json.loads(row) for row in path.read_text().splitlines() if row]
                started = time.monotonic()
                emitted = server.emit_many(token, EVENT, documents)
                _answer({"emitted": emitted, "started": started, "ended": time.monotonic()})
            elif command[:1] == ["connected"]:
                _answer({"connected": sum(server.connected(token) for token in tokens)})
            else:
                _answer({"error": f"unknown command {line.strip()!r}"})
    finally:
        server.stop()
    return 0


def _answer(document: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
