"""What a caller may see: another company's objects answer 404, exactly like ids that do not
exist, so a company-limited token cannot even learn which ids are taken."""

from __future__ import annotations

import uuid

from relay.api.routing import Call
from relay.errors import InputError
from relay.registry import listing
from relay.registry.listing import CompanyRow, WebhookRow


def visible_company(call: Call, company_id: uuid.UUID) -> CompanyRow:
    with call.engine.connect() as conn:
        found = listing.company(conn, company_id)
    if found is None or not call.caller.sees(company_id):
        raise InputError(404, "company_id", f"unknown company {company_id}")
    return found


def visible_webhook(call: Call, webhook_id: uuid.UUID) -> WebhookRow:
    with call.engine.connect() as conn:
        found = listing.webhook(conn, webhook_id)
    if found is None or not call.caller.sees(found.company_id):
        raise InputError(404, "webhook_id", f"unknown webhook {webhook_id}")
    return found
