"""The webhook editor's form: what a person typed, read back into the API's webhook body, and
a check of its filters against a sample of each event.

Filters are rows (event, field path, operator, value) picked from a sample payload of the
event: the relay's own sample where it ships one (`relay/samples/<event>.json`), else one
the person pastes. The check runs the real filter code (`relay.registry.filters`) on the
server, so what the preview says is what deliveries will do; a value is read as JSON when it
is JSON (`201074`, `true`, `"201074"`), else as the text typed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData

from relay.registry.filters import InvalidFilter, JsonValue, Operator, matches_all, parse_filters

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
MAX_ROWS = 50  # filter rows one form carries
MAX_PATHS = 400  # field paths offered from one sample
OPERATORS = tuple(op.value for op in Operator)


@dataclass
class FilterRow:
    event: str = ""
    field_path: str = ""
    operator: str = Operator.EQUALS.value
    value: str = ""  # as typed

    @property
    def blank(self) -> bool:
        return not self.field_path.strip()

    def as_json(self) -> dict[str, JsonValue]:
        return {
            "field_path": self.field_path.strip(),
            "operator": self.operator,
            "value": typed(self.value),
        }


@dataclass
class Verdict:
    """What the check says of one event's filters on its sample."""

    event: str
    passes: bool | None  # None: no sample to check against, or a filter is invalid
    message: str


@dataclass
class WebhookForm:
    url: str = ""
    name: str = ""
    events: list[str] = field(default_factory=list)
    rows: list[FilterRow] = field(default_factory=list)
    sample: str = ""  # pasted, for events the relay has no sample of
    secret: bool = False

    @classmethod
    def from_form(cls, form: FormData) -> WebhookForm:
        rows = []
        for n in range(MAX_ROWS):
            if f"f_path_{n}" not in form:
                break
            rows.append(
                FilterRow(
                    _text(form, f"f_event_{n}"),
                    _text(form, f"f_path_{n}"),
                    _text(form, f"f_op_{n}") or Operator.EQUALS.value,
                    _text(form, f"f_value_{n}"),
                )
            )
        events = [str(e) for e in form.getlist("events")]
        for row in rows:  # a row made before its event was ticked: the first event's
            if row.event not in events and events:
                row.event = events[0]
        return cls(
            url=_text(form, "url").strip(),
            name=_text(form, "name").strip(),
            events=events,
            rows=rows,
            sample=_text(form, "sample"),
            secret=form.get("secret") == "on",
        )

    @classmethod
    def from_webhook(cls, webhook: Mapping[str, Any]) -> WebhookForm:
        rows = [
            FilterRow(event, f["field_path"], f["operator"], json.dumps(f["value"]))
            for event, filters in webhook.get("filters", {}).items()
            for f in filters
        ]
        return cls(webhook["url"], webhook.get("name") or "", list(webhook["events"]), rows)

    def with_blank_row(self) -> WebhookForm:
        """The form with one empty row more (for the next filter), if there is room."""
        if len(self.rows) < MAX_ROWS:
            first = self.events[0] if self.events else ""
            self.rows.append(FilterRow(event=first))
        return self

    def filters(self) -> dict[str, list[dict[str, JsonValue]]]:
        """The rows as the API's `filters`: event -> its filters, every chosen event listed
        (an event without rows has none, so a removed row is removed)."""
        by_event: dict[str, list[dict[str, JsonValue]]] = {event: [] for event in self.events}
        for row in self.rows:
            if not row.blank:
                by_event.setdefault(row.event, []).append(row.as_json())
        return by_event

    def body(self, *, creating: bool) -> dict[str, object]:
        """The API body this form asks for."""
        body: dict[str, object] = {
            "url": self.url,
            "name": self.name or None,
            "events": self.events,
            "filters": self.filters(),
        }
        if creating:
            body["secret"] = self.secret
        return body

    def check(self) -> list[Verdict]:
        """Each chosen event's filters run on its sample."""
        pasted = _parsed(self.sample)
        verdicts = []
        for event, raw in self.filters().items():
            sample = sample_of(event, pasted)
            try:
                filters = parse_filters(raw)
            except InvalidFilter as exc:
                verdicts.append(Verdict(event, None, f"not a valid filter: {exc}"))
                continue
            if sample is None:
                verdicts.append(Verdict(event, None, "no sample of this event: paste one below"))
            elif matches_all(filters, sample):
                verdicts.append(Verdict(event, True, "the sample passes every filter"))
            else:
                verdicts.append(Verdict(event, False, "the sample would not pass"))
        return verdicts

    def paths(self) -> list[tuple[str, str]]:
        """(field path, sample value) to pick from, over the chosen events' samples (before
        any is chosen, over the samples the relay ships)."""
        pasted = _parsed(self.sample)
        seen: dict[str, str] = {}
        shipped = sorted(path.stem for path in SAMPLES.glob("*.json"))
        for event in self.events or shipped:  # nothing ticked yet: what the relay ships
            sample = sample_of(event, pasted)
            if sample is not None:
                for path, value in leaf_paths(sample):
                    seen.setdefault(path, value)
                    if len(seen) >= MAX_PATHS:
                        return list(seen.items())
        return list(seen.items())


def typed(text: str) -> JsonValue:
    """A typed value: JSON when it reads as JSON, else the text itself."""
    stripped = text.strip()
    try:
        value: JsonValue = json.loads(stripped)
    except ValueError:
        return text
    return value


def sample_of(event: str, pasted: object | None) -> object | None:
    """The event's sample: the relay's own, else the pasted one."""
    if event.replace("-", "").isalnum():
        shipped = SAMPLES / f"{event}.json"
        if shipped.is_file():
            loaded: object = json.loads(shipped.read_text())
            return loaded
    return pasted


def leaf_paths(document: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every leaf of a JSON document as (dotted path, its value as JSON); a list by its
    first element (`items[0].id`), as filter paths index lists."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from leaf_paths(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(document, list):
        if document:
            yield from leaf_paths(document[0], f"{prefix}[0]")
    elif prefix:
        yield prefix, json.dumps(document, ensure_ascii=False)[:80]


def _parsed(text: str) -> object | None:
    if not text.strip():
        return None
    try:
        value: object = json.loads(text)
    except ValueError:
        return None
    return value


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
