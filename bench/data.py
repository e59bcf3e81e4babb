"""Deterministic execution-log rows shaped like the real `call-history-was-created` event.

Every measurement of one kind uses the same generated rows (same seed), so strategies are
compared on identical data. Bodies mirror the shared sample's structure with varied values,
so payload sizes and JSON shapes are realistic.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import relay.execution_log.record
from relay.execution_log.record import ExecutionResult, ExecutionRow
from spool import SpoolRecord

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_PATH = REPO_ROOT.parent / "shared" / "samples" / "call-history-was-created.json"
EVENT_TYPE = "call-history-was-created"
# Noon of the 2nd of this month: the execution log's monthly partitions (this month and the
# next two, made by the migration) hold every generated row, which the raw-COPY baselines
# need, whenever the benchmark runs.
EPOCH = datetime.now(UTC).replace(day=2, hour=12, minute=0, second=0, microsecond=0)
_BRT = timezone(timedelta(hours=-3))
_NAMESPACE = uuid.UUID("6f1d3c52-8a51-4c1e-9d0e-5b7a3c2e1f00")
_AREA_CODES = ("11", "21", "31", "41", "51", "61", "71", "81", "82", "85", "91", "98")
_UFS = ("SP", "RJ", "MG", "PR", "RS", "DF", "BA", "PE", "AL", "CE", "PA", "MA")
_AGENTS = ("Maria Souza", "Joao Lima", "Ana Pereira", "Carlos Alves", "Beatriz Rocha")
_CAMPAIGNS = ("Renegociacao Novembro", "Cobranca Ativa", "Recuperacao 90d", "Pos-venda")
_QUALIFICATIONS = ((55, "Acordo fechado", 1, True), (12, "Sem contato", 2, False))
_HANGUPS = ((16, "Normal call clearing", "green", 200), (17, "User busy", "orange", 486))


@dataclass(frozen=True)
class SpoolInput:
    """One generated record as the relay would append it to the outbox spool."""

    record_id: str
    key: str
    payload: bytes
    created_at: datetime

    def as_record(self, seq: int = 0) -> SpoolRecord:
        return SpoolRecord(seq, self.record_id, self.key, self.created_at, self.payload)

    def row(self) -> ExecutionRow:
        """The validated row the sink would write (decoded exactly as the sink does)."""
        return decode([self.as_record()])[0]


def decode(records: Sequence[SpoolRecord]) -> list[ExecutionRow]:
    """Decode and validate records with the relay's own code, whichever API it exposes.

    The relay is being edited alongside the benchmark; accept both the batch and the
    per-record spelling so the baselines always do the same work as the real sink.
    """
    batch = getattr(relay.execution_log.record, "decode_records", None)
    if batch is not None:
        return list(batch(records))
    single = relay.execution_log.record.decode_record  # type: ignore[attr-defined]
    return [single(record) for record in records]


def row_values(row: ExecutionRow) -> tuple[Any, ...]:
    """Column values in `relay.execution_log.record.COLUMNS` order, for COPY and INSERT
    baselines."""
    return tuple(row)


def company_ids(count: int) -> list[uuid.UUID]:
    """Stable company ids, so every measurement partitions rows the same way."""
    return [uuid.uuid5(_NAMESPACE, f"company-{i}") for i in range(count)]


class RowFactory:
    """Builds `ExecutionResult`s whose request bodies look like the shared sample."""

    def __init__(self, companies: int, seed: int, sample_path: Path = SAMPLE_PATH) -> None:
        self._rng = random.Random(seed)
        self._companies = company_ids(companies)
        self._webhooks = [uuid.uuid5(_NAMESPACE, f"webhook-{c}") for c in self._companies]
        self._sample_keys = _shape(json.loads(sample_path.read_text(encoding="utf-8")))
        self._checked = False

    @property
    def companies(self) -> list[uuid.UUID]:
        return list(self._companies)

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def body(self, company_index: int, at: datetime) -> dict[str, Any]:
        """A call-history event with the sample's fields and plausible varied values."""
        rng = self._rng
        number = f"55{rng.choice(_AREA_CODES)}9{rng.randrange(10**8):08d}"
        local = at.astimezone(_BRT)
        speaking = rng.randrange(0, 900)
        qual_id, qual_name, behavior, conversion = rng.choice(_QUALIFICATIONS)
        hang_id, hang_text, hang_color, sip = rng.choice(_HANGUPS)
        list_id = rng.randrange(1000, 99999)
        return {
            "callHistory": {
                "_id": f"{rng.getrandbits(96):024x}",
                "number": number,
                "phone_type": rng.choice(("mobile", "landline")),
                "status": rng.choice((2, 3, 7)),
                "call_mode": rng.choice(("dialer", "manual", "receptive")),
                "telephony_id": str(self._uuid()),
                "call_date": (local - timedelta(seconds=speaking + 30)).isoformat(),
                "calling_time": rng.randrange(1, 40),
                "speaking_time": speaking,
                "speaking_with_agent_time": max(0, speaking - rng.randrange(0, 20)),
                "billed_time": speaking + rng.randrange(30, 90),
                "hangup_cause": hang_id,
                "amd_status": None,
                "recorded": rng.random() < 0.8,
                "ivr_digit_pressed": None,
                "campaign": {"id": rng.randrange(200000, 210000), "name": rng.choice(_CAMPAIGNS)},
                "company": {"id": 4000 + company_index, "name": f"Empresa {company_index:03d}"},
                "agent": {"id": rng.randrange(80000, 90000), "name": rng.choice(_AGENTS)},
                "route": {
                    "id": rng.randrange(100, 999),
                    "name": "Rota SP Movel",
                    "caller_id": f"5511{rng.randrange(10**8):08d}",
                },
                "qualification": {
                    "id": qual_id,
                    "name": qual_name,
                    "behavior": behavior,
                    "conversion": conversion,
                },
                "list": {"id": list_id, "name": f"Lote {local.date().isoformat()}"},
                "mailing_data": {
                    "_id": f"{rng.getrandbits(96):024x}",
                    "identifier": f"CPF-{rng.randrange(10**11):011d}",
                    "list_id": list_id,
                    "uf": rng.choice(_UFS),
                    "phone": number,
                    "data": {
                        "contrato": str(rng.randrange(100000, 999999)),
                        "valor": f"{rng.randrange(1000, 999999) / 100:.2f}",
                    },
                },
                "created_at": local.isoformat(timespec="seconds"),
            },
            "hangupCause": {"id": hang_id, "text": hang_text, "color": hang_color, "sip": sip},
            "qualificationList": {"id": rng.randrange(1, 20), "name": "Cobranca padrao"},
            "webhookEvent": None,
        }

    def result(self, company_index: int, at: datetime) -> ExecutionResult:
        """One POST attempt's result: mostly 2xx, some failures with an error text."""
        rng = self._rng
        body = self.body(company_index, at)
        if not self._checked:  # the generator must keep the sample's shape
            if _shape(body) != self._sample_keys:
                raise AssertionError("generated body does not have the sample's fields")
            self._checked = True
        ok = rng.random() < 0.95
        return ExecutionResult(
            company_id=self._companies[company_index],
            webhook_id=self._webhooks[company_index],
            event_id=1,
            event_type=EVENT_TYPE,
            message_id=str(self._uuid()),
            attempt=1 if ok else rng.randrange(1, 4),
            status="success" if ok else "failed",
            response_status=200 if ok else rng.choice((500, 502, 503, None)),
            error=None if ok else "upstream answered with an error or timed out",
            duration_ms=rng.randrange(20, 900),
            phone_number=body["callHistory"]["number"],
            request_payload=json.dumps(body, separators=(",", ":")),
            created_at=at,
        )

    def spool_input(self, company_index: int, at: datetime) -> SpoolInput:
        result = self.result(company_index, at)
        return SpoolInput(str(self._uuid()), result.spool_key(), result.spool_payload(), at)

    def backlog(self, count: int, start: datetime = EPOCH) -> Iterator[SpoolInput]:
        """`count` records round-robin over the companies, 10 ms apart (a burst backlog)."""
        companies = len(self._companies)
        for i in range(count):
            yield self.spool_input(i % companies, start + timedelta(milliseconds=10 * i))


def _shape(value: Any) -> Any:
    """The nested key structure of a JSON value (values ignored), to compare with the sample."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return None


def payload_sizes(inputs: list[SpoolInput]) -> tuple[float, float]:
    """Mean spool payload bytes and mean request-body bytes, reported in results.md."""
    if not inputs:
        return 0.0, 0.0
    spool = sum(len(item.payload) for item in inputs) / len(inputs)
    body = sum(len(json.loads(item.payload)["request_payload"]) for item in inputs) / len(inputs)
    return spool, body
