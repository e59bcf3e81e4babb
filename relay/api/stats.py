"""`GET /api/v1/stats`: counts over a window of the execution log, per status, per company
and per hour or day (the original design note's monitoring queries), read from an index
over the window's partitions only (relay/execution_log/stats.py)."""

from __future__ import annotations

from relay.api import params
from relay.api.routing import Access, Answer, ApiRoute, Call, Param
from relay.api.schemas import TIMESTAMP, UUID, ref
from relay.execution_log.inputs import parse_time, parse_uuid
from relay.execution_log.stats import BUCKETS, stats

STATS = "Stats"
_COUNTS = {
    "total": {"type": "integer"},
    "successes": {"type": "integer"},
    "failures": {"type": "integer"},
}
SCHEMAS = {
    STATS: {
        "type": "object",
        "properties": {
            "since": TIMESTAMP,
            "until": TIMESTAMP,
            "bucket": {"enum": list(BUCKETS)},
            "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
            "companies": {
                "type": "array",
                "description": "most rows first",
                "items": {
                    "type": "object",
                    "properties": {
                        "company_id": {"type": ["string", "null"], "format": "uuid"},
                        "name": {"type": ["string", "null"]},
                        **_COUNTS,
                    },
                },
            },
            "buckets": {
                "type": "array",
                "description": "oldest first; buckets without rows are left out",
                "items": {"type": "object", "properties": {"start": TIMESTAMP, **_COUNTS}},
            },
        },
        "required": ["since", "until", "bucket", "by_status", "companies", "buckets"],
    }
}
QUERY = (
    Param("company_id", "one company", UUID),
    Param("since", "ISO-8601 with an offset; default: a week before `until`", TIMESTAMP),
    Param("until", "ISO-8601 with an offset, exclusive; default: now", TIMESTAMP),
    Param("bucket", "hour (default) or day", {"enum": list(BUCKETS)}),
)


def read_stats(call: Call) -> Answer:
    params.only_query_params(call, [p.name for p in QUERY])
    company = call.query.get("company_id")
    since = call.query.get("since")
    until = call.query.get("until")
    counted = stats(
        call.engine,
        company_id=None if company is None else parse_uuid("company_id", company),
        since=None if since is None else parse_time("since", since),
        until=None if until is None else parse_time("until", until),
        bucket=call.query.get("bucket", "hour"),
        companies=call.caller.companies,
    )
    return Answer(200, counted.as_json())


ROUTES = (
    ApiRoute(
        "GET",
        "/stats",
        "Counts of the execution log in a window (default the last 7 days): by status, per "
        "company, per hour or day; rows still in the spool are not counted yet",
        Access.READ,
        read_stats,
        ref(STATS),
        query=QUERY,
        errors=(422,),
    ),
)
