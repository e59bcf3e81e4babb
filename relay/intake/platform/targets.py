"""Which streams should be open: one per active company with a platform token and at least one
active webhook, listening to exactly the events those webhooks subscribe to."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping

from relay.intake.platform.streams import StreamTarget
from relay.registry.cache import RegistrySnapshot


def stream_targets(
    snapshot: RegistrySnapshot, cluster_urls: Mapping[str, str]
) -> dict[uuid.UUID, StreamTarget]:
    """The streams the registry asks for. A company leaves the result (and its stream closes)
    when it loses its token, its last active webhook, or is disabled or deleted."""
    wanted: dict[uuid.UUID, set[str]] = defaultdict(set)
    for company_id, event in snapshot.subscriptions:  # active webhooks of active companies
        wanted[company_id].add(event)
    targets = {}
    for company_id, events in wanted.items():
        company = snapshot.companies.get(company_id)
        if company is None or not company.active or company.platform is None:
            continue
        url = cluster_urls[company.platform.cluster]
        targets[company_id] = StreamTarget(
            company_id, url, company.platform.token, frozenset(events)
        )
    return targets
