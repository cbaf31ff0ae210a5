"""One message schema for everything said about a session: the patient's
DataChannel, the therapists' WebSocket, the Redis fan-out between server
processes and the events of the JSON report.

A message is a JSON object `{"v": VERSION, "type": ..., ...}`:

- An engine event (`rehab_programs.events`) becomes the message named after
  its class in snake_case (`RepCompleted` -> `rep_completed`), with the
  event's own fields (a repetition as `rep_to_dict`: its fields and what is
  derived from them). A new event class is a new message type at once: no
  list to extend, nothing dropped.
- Whoever sends it may add context fields that the event does not hold (the
  live server adds `exercise_id`, `set`, running totals and the English
  `text`); a context field never replaces one of the event's own.
- Messages about the session itself rather than the movement (`pose`,
  `status`, `summary`, and `auth` from a client) are built with `message`;
  `server/live.py` documents their fields.

`json_schema()` gives the JSON Schema of every event message, derived from
the dataclasses (written to docs/messages.schema.json, which a test keeps in
step; docs/messages.md describes the types and their context fields). `VERSION` changes when a
type is renamed or a field changes meaning; clients check it.

Values are made JSON-ready here, once: floats rounded to 4 places, NaN as
null, tuples as lists.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .events import Event, RepResult

VERSION = 2  # 2: event messages named after their event class (were rep, set, view, ...)


def type_of(event_class: type[Event]) -> str:
    """The message type of an event class: `RepCompleted` -> `rep_completed`."""
    name = event_class.__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _event_classes() -> list[type[Event]]:
    found, todo = [], list(Event.__subclasses__())
    while todo:
        cls = todo.pop(0)
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def event_types() -> dict[str, type[Event]]:
    """Every event message type and its class: the subclasses of `Event` in
    `rehab_programs.events`, where the engine's events are defined."""
    return {type_of(c): c for c in _event_classes() if c.__module__ == Event.__module__}


def json_ready(value: object) -> object:
    """`value` for JSON: floats rounded to 4 places, NaN as None, tuples as lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return value


def rep_to_dict(rep: RepResult) -> dict:
    """A repetition as plain data: its fields, the share of the target reached
    and whether its range is trusted."""
    return dataclasses.asdict(rep) | {
        "target_share": rep.target_share,
        "rom_trusted": rep.rom_trusted,
    }


def message(kind: str, **fields: Any) -> dict:
    """A typed, versioned message of the session (`pose`, `status`, ...)."""
    return {"v": VERSION, "type": kind, **{k: json_ready(v) for k, v in fields.items()}}


def event_message(event: Event, **context: Any) -> dict:
    """The message of an engine event: its type, its fields, then `context`.

    Raises ValueError when a context field would replace one of the event's."""
    own = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    clash = own.keys() & context.keys()
    if clash:
        raise ValueError(f"context fields {sorted(clash)} are {type(event).__name__}'s own")
    if isinstance(own.get("rep"), RepResult):
        own["rep"] = rep_to_dict(own["rep"])
    return message(type_of(type(event)), **own, **context)


def json_schema() -> dict:
    """The JSON Schema of every event message (without context fields, which
    a message may add): `{"$defs": ..., "oneOf": [...]}`."""
    from pydantic import TypeAdapter

    defs: dict[str, Any] = {}
    variants = []
    for kind, cls in sorted(event_types().items()):
        schema = TypeAdapter(cls).json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        props = schema.setdefault("properties", {})
        props["v"] = {"const": VERSION}
        props["type"] = {"const": kind}
        if "rep" in props:  # sent with what is derived from it
            props["rep"] = {"allOf": [{"$ref": "#/$defs/RepResult"}], "properties": {
                "target_share": {"type": ["number", "null"]},
                "rom_trusted": {"type": "boolean"},
            }}  # fmt: skip
        schema["required"] = ["v", "type", *schema.get("required", [])]
        defs[cls.__name__] = schema
        variants.append({"$ref": f"#/$defs/{cls.__name__}"})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"telerehab session messages, version {VERSION}",
        "$defs": _nullable_numbers(defs),
        "oneOf": variants,
    }


def _nullable_numbers(schema: Any) -> Any:
    """Every number may be null: missing data is NaN, and NaN is sent as null."""
    if isinstance(schema, dict):
        out = {k: _nullable_numbers(v) for k, v in schema.items()}
        if out.get("type") == "number":
            out["type"] = ["number", "null"]
        return out
    if isinstance(schema, list):
        return [_nullable_numbers(v) for v in schema]
    return schema
