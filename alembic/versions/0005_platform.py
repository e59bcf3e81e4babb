"""The platform source: a company's platform connection, the platform's event catalog, and
what each company's stream is doing.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

- `companies.platform_token` / `companies.cluster`: the 3C Plus token the relay connects with
  (socket.io, one connection per company) and which of the platform's clusters it lives on;
  a company without a token is fed by `POST /v1/events` only.
- `events.id_path`: where an event type carries its own unique id (a dotted path into the
  event, e.g. `callHistory._id`); the platform source drops a repeat of an id it has seen.
- The catalog is seeded with the platform's event types (those socket2webhook knew). A type
  that is already there keeps its row (and its webhooks' subscriptions); only an id path it
  lacks is filled in.
- `platform_streams`: one row per company whose stream a relay holds or tried to open: its
  state, since when, why (a refusal's message), and which relay holds it.

Frozen like the earlier revisions: the seed is spelled out here, not imported.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)

# (name, display name, id path or None): the platform's event types.
PLATFORM_EVENTS: tuple[tuple[str, str, str | None], ...] = (
    ("call-history-was-created", "Call history was created", "callHistory._id"),
    ("call-history-was-updated", "Call history was updated", "callHistory._id"),
    ("call-was-connected", "Call was connected", "callHistory._id"),
    ("call-was-finished", "Call was finished", "callHistory._id"),
    ("call-was-qualified", "Call was qualified", "callHistory._id"),
    ("call-was-transferred", "Call was transferred", "callHistory._id"),
    ("call-was-created", "Call was created", None),
    ("call-is-trying", "Call is trying", None),
    ("call-was-answered", "Call was answered", None),
    ("call-was-not-answered", "Call was not answered", None),
    ("call-was-abandoned", "Call was abandoned", None),
    ("call-was-amd", "Call was answered by a machine (AMD)", None),
    ("queue-call-abandoned", "Queue call abandoned", None),
    ("manual-call-was-updated", "Manual call was updated", None),
    ("manual-call-was-qualified", "Manual call was qualified", None),
    ("recording-started", "Recording started", None),
    ("new-message-whatsapp", "WhatsApp: new message", "message.id"),
    ("new-agent-message-whatsapp", "WhatsApp: new agent message", "message.id"),
    ("message-ack-whatsapp", "WhatsApp: message acknowledged", "message.id"),
    ("message-error-whatsapp", "WhatsApp: message error", "message.id"),
    ("new-whatsapp-internal-message", "WhatsApp: new internal message", None),
    ("new-agent-chat-whatsapp", "WhatsApp: new agent chat", None),
    ("transfer-chat-whatsapp", "WhatsApp: chat transferred", None),
    ("start-snooze-chat-whatsapp", "WhatsApp: chat snoozed", None),
    ("finish-chat", "Chat finished", None),
    ("chat-was-created", "Chat was created", "chat.id"),
    ("chat-was-finished", "Chat was finished", "chat.id"),
    ("chat-was-transferred", "Chat was transferred", "chat.id"),
    ("agent-status-changed", "Agent status changed", None),
    ("agent-logged-in", "Agent logged in", None),
    ("agent-logged-out", "Agent logged out", None),
    ("agent-was-logged-out", "Agent was logged out", None),
    ("agent-is-idle", "Agent is idle", None),
    ("agent-entered-manual", "Agent entered manual mode", None),
    ("campaign-started", "Campaign started", None),
    ("campaign-paused", "Campaign paused", None),
    ("mailing-list-was-finished", "Mailing list was finished", None),
    ("sms-sent", "SMS sent", None),
    ("sms-delivery-confirmed", "SMS delivery confirmed", None),
    ("email-sent", "Email sent", None),
    ("email-opened", "Email opened", None),
    ("contact-created", "Contact created", None),
    ("contact-deleted", "Contact deleted", None),
)
# 0001 seeded this one; downgrading keeps it.
FIRST_SEEDED = "call-history-was-created"

events = sa.table(
    "events",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("display_name", sa.String()),
    sa.column("id_path", sa.String()),
)
webhook_events = sa.table("webhook_events", sa.column("event_id", sa.Integer()))


def upgrade() -> None:
    op.add_column("companies", sa.Column("platform_token", sa.Text()))
    op.add_column("companies", sa.Column("cluster", sa.String(20)))
    op.add_column("events", sa.Column("id_path", sa.String(200)))
    op.create_table(
        "platform_streams",
        sa.Column(
            "company_id",
            sa.Uuid(),
            sa.ForeignKey("companies.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("holder", sa.String(255)),
        sa.Column("since", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    conn = op.get_bind()
    known = set(conn.execute(sa.select(events.c.name)).scalars())
    op.bulk_insert(
        events,
        [
            {"name": name, "display_name": display, "id_path": path}
            for name, display, path in PLATFORM_EVENTS
            if name not in known
        ],
    )
    for name, _display, path in PLATFORM_EVENTS:
        if name in known and path is not None:
            conn.execute(
                events.update()
                .where(events.c.name == name, events.c.id_path.is_(None))
                .values(id_path=path)
            )


def downgrade() -> None:
    # The seeded types go unless a webhook subscribes to one (then it stays, as a type added
    # by hand would).
    used = sa.select(webhook_events.c.event_id)
    op.execute(
        events.delete().where(
            events.c.name.in_([name for name, _, _ in PLATFORM_EVENTS if name != FIRST_SEEDED]),
            events.c.id.not_in(used),
        )
    )
    op.drop_table("platform_streams")
    op.drop_column("events", "id_path")
    op.drop_column("companies", "cluster")
    op.drop_column("companies", "platform_token")
