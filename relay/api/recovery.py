"""`POST /api/v1/webhooks/{id}/recover` and `GET /api/v1/jobs/{id}`: resend, in the
background, every message whose deliveries to a webhook failed for good in a window.

The job is recorded in this relay's spool and worked by its dispatcher role
(relay/inbox/recovery.py): it resumes after a restart and sends each message at most once.
"""

from __future__ import annotations

from relay.api import params
from relay.api.routing import Access, Answer, ApiRoute, Call
from relay.api.schemas import NULLABLE_TIMESTAMP, TIMESTAMP, UUID, ref
from relay.execution_log.inputs import parse_time
from relay.inbox.recovery import RECOVERABLE, job_status, start_recovery

JOB = "RecoveryJob"
SCHEMAS = {
    JOB: {
        "type": "object",
        "properties": {
            "kind": {"const": "recover"},
            "id": {"type": "string"},
            "webhook_id": UUID,
            "company_id": UUID,
            "since": TIMESTAMP,
            "until": TIMESTAMP,
            "status": {"enum": list(RECOVERABLE)},
            "state": {"enum": ["running", "done", "failed"]},
            "rows_scanned": {"type": "integer", "description": "failed attempts looked at"},
            "messages_sent": {"type": "integer"},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "finished_at": NULLABLE_TIMESTAMP,
            "error": {"type": ["string", "null"]},
        },
        "required": ["kind", "id", "webhook_id", "company_id", "state", "messages_sent"],
    }
}


def recover_webhook(call: Call) -> Answer:
    params.only_fields(call.body, ("since", "until", "status"))
    webhook_id = params.path_id(call, "webhook_id")
    since = params.text(call.body, "since", required=True)
    until = params.text(call.body, "until")
    assert since is not None
    job = start_recovery(
        call.engine,
        call.spool.jobs,
        webhook_id,
        since=parse_time("since", since),
        until=None if until is None else parse_time("until", until),
        status=params.text(call.body, "status") or "failed",
        companies=call.caller.companies,
    )
    return Answer(202, job.as_json())


def show_job(call: Call) -> Answer:
    job = job_status(call.spool.jobs, call.path["job_id"], companies=call.caller.companies)
    return Answer(200, job.as_json())


ROUTES = (
    ApiRoute(
        "POST",
        "/webhooks/{webhook_id}/recover",
        "Resend, in the background, every message whose deliveries to this webhook failed "
        "for good in [since, until); answers the job (progress at /jobs/{id})",
        Access.WRITE,
        recover_webhook,
        ref(JOB),
        status=202,
        body={
            "type": "object",
            "properties": {
                "since": TIMESTAMP,
                "until": TIMESTAMP,
                "status": {"enum": list(RECOVERABLE)},
            },
            "required": ["since"],
            "additionalProperties": False,
        },
        errors=(404, 413, 415, 422),
    ),
    ApiRoute(
        "GET",
        "/jobs/{job_id}",
        "A recovery job's state and progress",
        Access.READ,
        show_job,
        ref(JOB),
        errors=(404,),
    ),
)
