"""What an execution-log row says about an attempt: the phone number, the stored payload, and
the Standard Webhooks signature the receiver can check (verified with `standardwebhooks`)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from relay.delivery.signing import secret_key, sign
from relay.execution_log.record import PHONE_MAX_DIGITS, logged_payload, phone_number_of
from relay.registry.writes import new_signing_secret
from tests.relay.conftest import add_company, add_webhook
from tests.support.receivers import RunningReceiver
from tests.support.relay_data import sample_event
from tests.support.relay_launcher import InProcessRelay
from tests.support.waiting import eventually

# -- phone_number_of ----------------------------------------------------------------------------


def test_the_sample_events_dialled_number() -> None:
    assert phone_number_of(sample_event()) == "5582988628425"


@pytest.mark.parametrize(
    ("data", "phone"),
    [
        (
            {"callHistory": {"number": "5511987654321"}, "number": "1", "phone": "2"},
            "5511987654321",
        ),
        ({"number": "5511987654321", "phone": "2"}, "5511987654321"),
        ({"callHistory": {}, "number": "5511987654321"}, "5511987654321"),
        ({"callHistory": {"number": None}, "number": "5511987654321"}, "5511987654321"),
        ({"callHistory": "not an object", "number": "5511987654321"}, "5511987654321"),
        ({"callHistory": [{"number": "9"}], "number": "5511987654321"}, "5511987654321"),
        ({"phone": "5511987654321"}, "5511987654321"),
        ({"number": None, "phone": "5511987654321"}, "5511987654321"),
    ],
    ids=[
        "callHistory-first",
        "then-number",
        "callHistory-without-number",
        "callHistory-number-null",
        "callHistory-not-object",
        "callHistory-array",
        "then-phone",
        "number-null",
    ],
)
def test_falls_back_from_call_history_to_number_to_phone(data: dict[str, Any], phone: str) -> None:
    assert phone_number_of(data) == phone


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("+55 (82) 98862-8425", "5582988628425"),
        ("55.82.98862.8425", "5582988628425"),
        ("tel:+55-82-98862-8425", "5582988628425"),
        (" 5582988628425 ", "5582988628425"),
        ("1", "1"),
        ("9" * PHONE_MAX_DIGITS, "9" * PHONE_MAX_DIGITS),
        ("+1 (555) 010-9999 ext. 12", "1555010999912"),
    ],
)
def test_only_digits_are_kept(raw: str, digits: str) -> None:
    assert phone_number_of({"callHistory": {"number": raw}}) == digits


def test_an_integer_number_is_read_as_digits() -> None:
    assert phone_number_of({"number": 5582988628425}) == "5582988628425"


@pytest.mark.parametrize(
    "raw",
    ["9" * (PHONE_MAX_DIGITS + 1), "+" + "1 " * 21, "5582988628425" * 2, 10**25],
    ids=["21-digits", "21-spaced", "26-digits", "int-26-digits"],
)
def test_more_than_20_digits_is_none(raw: object) -> None:
    assert phone_number_of({"callHistory": {"number": raw}}) is None


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"callHistory": {}},
        {"other": "5582988628425"},
        {"callHistory": {"mailing_data": {"phone": "5582988628425"}}},  # not one of the paths
        {"Number": "5582988628425", "PHONE": "5582988628425"},  # keys are case-sensitive
    ],
)
def test_absent_is_none(data: dict[str, Any]) -> None:
    assert phone_number_of(data) is None


@pytest.mark.parametrize("data", [None, [], ["5582988628425"], "5582988628425", 5582988628425])
def test_data_that_is_not_an_object_is_none(data: object) -> None:
    assert phone_number_of(data) is None


@pytest.mark.parametrize(
    "value",
    [True, False, 55.82, [5582988628425], {"e164": "+5582988628425"}, None],
    ids=repr,
)
def test_values_that_are_not_text_or_integers_are_skipped(value: object) -> None:
    assert phone_number_of({"callHistory": {"number": value}}) is None
    assert phone_number_of({"callHistory": {"number": value}, "phone": "123"}) == "123"


@pytest.mark.parametrize("value", ["", "n/a", "+() -", "٥٥٨٢٩٨٨٦٢٨٤٢٥"], ids=repr)
def test_text_without_ascii_digits_is_none_and_decides(value: str) -> None:
    # the first path present decides, even when it holds no digits (documented behaviour)
    assert phone_number_of({"callHistory": {"number": value}, "phone": "123"}) is None


# -- logged_payload -----------------------------------------------------------------------------


def test_a_body_under_the_limit_is_stored_as_is() -> None:
    body = json.dumps({"event_type": "call-history-was-created", "data": sample_event()})
    assert logged_payload(body, 64 * 1024) is body


def test_a_body_exactly_at_the_limit_is_stored_as_is() -> None:
    body = json.dumps({"x": "y" * 100})
    assert logged_payload(body, len(body.encode())) == body


@pytest.mark.parametrize("limit", [0, 1, 100, 64 * 1024])
def test_a_body_over_the_limit_becomes_a_json_stand_in(limit: int) -> None:
    body = json.dumps({"data": {"blob": "é" * (limit + 1)}}, ensure_ascii=False)
    raw = body.encode()
    assert len(raw) > limit

    stored = logged_payload(body, limit)

    stand_in = json.loads(stored)  # valid JSON, fit for the jsonb column
    assert stand_in == {
        "truncated": True,
        "size_bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    assert len(stored) < 200


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    body = json.dumps({"name": "Conceição" * 10}, ensure_ascii=False)
    assert len(body) <= 120 < len(body.encode())
    assert json.loads(logged_payload(body, 120))["size_bytes"] == len(body.encode())


# -- signing ------------------------------------------------------------------------------------


def signed_headers(secret: str, message_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def test_a_signature_verifies_with_standardwebhooks() -> None:
    secret = new_signing_secret()
    body = json.dumps({"event_type": "call-history-was-created", "data": sample_event()}).encode()
    headers = signed_headers(secret, f"msg_{uuid.uuid4().hex}", body, int(time.time()))

    assert Webhook(secret).verify(body, headers)["data"] == sample_event()
    assert headers["webhook-signature"].startswith("v1,")


def test_non_ascii_bodies_verify_too() -> None:
    secret = new_signing_secret()
    body = json.dumps({"name": "Conceição \U0001f4de"}, ensure_ascii=False).encode()
    headers = signed_headers(secret, "msg_1", body, int(time.time()))
    assert Webhook(secret).verify(body, headers) == {"name": "Conceição \U0001f4de"}


def test_the_signature_known_answer() -> None:
    # Standard Webhooks' published example (secret, id, timestamp, body -> signature)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.parametrize("tamper", ["body", "id", "timestamp", "secret"])
def test_any_change_breaks_the_signature(tamper: str) -> None:
    secret, message_id, now = new_signing_secret(), "msg_1", int(time.time())
    body = b'{"a":1}'
    headers = signed_headers(secret, message_id, body, now)
    if tamper == "body":
        body = b'{"a":2}'
    elif tamper == "id":
        headers["webhook-id"] = "msg_2"
    elif tamper == "timestamp":
        headers["webhook-timestamp"] = str(now - 1)
    else:
        secret = new_signing_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_generated_secrets_are_whsec_and_24_random_bytes() -> None:
    secrets = {new_signing_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert secret_key(secret) == base64.b64decode(secret.removeprefix("whsec_"))
        assert len(secret_key(secret)) == 24


def test_a_secret_without_the_prefix_is_used_as_raw_text() -> None:
    assert secret_key("plain-text") == b"plain-text"


def test_a_relayed_post_is_signed_and_verifies_with_standardwebhooks(
    start_relay: Callable[..., InProcessRelay], pg_engine: Engine, receiver: RunningReceiver
) -> None:
    secret = new_signing_secret()
    company = add_company(pg_engine)
    add_webhook(pg_engine, company, f"{receiver.url}/ok/signed", secret=secret)
    add_webhook(pg_engine, company, f"{receiver.url}/ok/unsigned")
    relay = start_relay()

    assert relay.post(company).json()["deliveries"] == 2
    assert eventually(lambda: len(receiver.receiver.requests) == 2)

    (signed,) = receiver.receiver.on("/ok/signed")
    (unsigned,) = receiver.receiver.on("/ok/unsigned")
    delivered = Webhook(secret).verify(signed.body, signed.headers)
    assert delivered["data"] == sample_event()
    assert delivered["company_id"] == str(company)
    assert signed.headers["webhook-id"].startswith("msg_")
    assert "webhook-signature" not in unsigned.headers
    assert {"webhook-id", "webhook-timestamp"} <= set(unsigned.headers)
    assert unsigned.headers["webhook-id"] != signed.headers["webhook-id"]
