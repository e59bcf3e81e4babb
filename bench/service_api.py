"""The concurrent API reader of the intake-latency benchmark: one kept-alive connection that
queries /api/v1 as support people's consoles would (a phone search, a company's page, the
counts), at a steady rate or one request after the other without pause, while intake takes
its steady load."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from collections.abc import Sequence
from urllib.parse import quote

from bench.service_http import RawConnection


def api_reads(company_ids: Sequence[uuid.UUID], bodies: Sequence[bytes]) -> list[str]:
    """The paths the reader cycles through: numbers of events already sent (their rows are
    in the spool or the database), each company's page, and the counts."""
    numbers = [json.loads(body)["data"]["callHistory"]["number"] for body in bodies[:20]]
    paths = [f"/api/v1/executions?phone={quote(number)}" for number in numbers]
    paths += [f"/api/v1/executions?company_id={company}" for company in company_ids]
    paths.append("/api/v1/stats")
    return paths


async def read_in_a_loop(
    port: int,
    paths: Sequence[str],
    token: str,
    answered: dict[int, int],
    stop: asyncio.Event,
    per_second: float,
) -> None:
    """GET `paths` in turn until `stop` is set, at most `per_second` a second (inf: each
    request as soon as the last is answered), counting the answers' statuses."""
    connection = await RawConnection.open(port)
    extra = f"authorization: Bearer {token}\r\n"
    gap = 0.0 if math.isinf(per_second) else 1.0 / per_second
    loop = asyncio.get_running_loop()
    due = loop.time()
    n = 0
    while not stop.is_set():
        path = paths[n % len(paths)]
        status, _body = await connection.request(connection.head("GET", path, 0, extra))
        answered[status] = answered.get(status, 0) + 1
        n += 1
        due += gap
        if gap and due > loop.time():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), due - loop.time())
