"""JSON Schemas the OpenAPI document shares between routes (components), and the shape of a
list page; each resource module adds its own components beside its routes."""

from __future__ import annotations

from relay.api.routing import JsonSchema

ERROR = "Error"
TIMESTAMP: JsonSchema = {"type": "string", "format": "date-time"}
NULLABLE_TIMESTAMP: JsonSchema = {"type": ["string", "null"], "format": "date-time"}
UUID: JsonSchema = {"type": "string", "format": "uuid"}

COMPONENTS: dict[str, JsonSchema] = {
    ERROR: {
        "type": "object",
        "description": "Every error answer: `field` names what was wrong (absent for 404 of a "
        "path and 405).",
        "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
        "required": ["error"],
    },
}


def ref(name: str) -> JsonSchema:
    return {"$ref": f"#/components/schemas/{name}"}


def page_of(item: str) -> JsonSchema:
    return {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": ref(item)},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "pass as `cursor` for the next page; null on the last page",
            },
        },
        "required": ["items", "next_cursor"],
    }


def deleted() -> JsonSchema:
    return {
        "type": "object",
        "properties": {"id": UUID, "deleted": {"const": True}},
        "required": ["id", "deleted"],
    }
