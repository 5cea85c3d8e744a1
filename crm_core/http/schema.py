"""A small JSON-Schema subset, checked by hand so every 422 names the exact field.

The same dictionaries describe the routes in `/api/openapi.json`, so what the
document promises and what the server accepts cannot drift apart.
Supported: type (one or a list), anyOf, enum, minLength, maxLength, pattern,
minimum, maximum, properties, required, additionalProperties, items,
minItems, maxItems.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from kernel.errors import ValidationFailed

Schema = dict[str, Any]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262: a final `$` is the end of the text. In
    # Python it also matches before a trailing newline, which let "ana\n" pass.
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _type_ok(value: Any, names: list[str]) -> bool:
    for name in names:
        if isinstance(value, bool) and name in ("integer", "number"):
            continue  # JSON true is not the number 1
        if isinstance(value, _TYPES[name]):
            return True
    return False


def validate(value: Any, schema: Schema, path: str = "") -> None:
    """Raise ValidationFailed naming the first field of `value` that breaks `schema`."""
    where = path or "body"
    if "anyOf" in schema:
        _check_any(value, schema["anyOf"], path, where)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not _type_ok(value, names):
            raise ValidationFailed(f"{where} must be {' or '.join(names)}", field=where)
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(str(c) for c in schema["enum"])
        raise ValidationFailed(f"{where} must be one of {choices}", field=where)
    if isinstance(value, str):
        _check_string(value, schema, where)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, where)
    elif isinstance(value, list):
        _check_array(value, schema, path, where)
    elif isinstance(value, dict):
        _check_object(value, schema, path)


def _check_any(value: Any, choices: list[Schema], path: str, where: str) -> None:
    """Accept the first choice that fits; otherwise report against the closest one.

    The closest is the choice whose type fits (an object with a bad field says
    which field), falling back to a plain "wrong type" message.
    """
    for choice in choices:
        try:
            validate(value, choice, path)
        except ValidationFailed:
            continue
        return
    for choice in choices:
        kind = choice.get("type")
        if kind is not None and _type_ok(value, [kind] if isinstance(kind, str) else kind):
            validate(value, choice, path)
    kinds = [str(c["type"]) for c in choices if isinstance(c.get("type"), str)]
    raise ValidationFailed(f"{where} must be {' or '.join(kinds) or 'another shape'}", field=where)


def _check_string(value: str, schema: Schema, where: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise ValidationFailed(f"{where} is too short", field=where)
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise ValidationFailed(
            f"{where} is longer than {schema['maxLength']} characters", field=where
        )
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        raise ValidationFailed(f"{where} has the wrong format", field=where)


def _check_number(value: float, schema: Schema, where: str) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise ValidationFailed(f"{where} must be at least {schema['minimum']}", field=where)
    if "maximum" in schema and value > schema["maximum"]:
        raise ValidationFailed(f"{where} must be at most {schema['maximum']}", field=where)


def _check_array(value: list[Any], schema: Schema, path: str, where: str) -> None:
    if len(value) < schema.get("minItems", 0):
        raise ValidationFailed(f"{where} needs at least {schema['minItems']} items", field=where)
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise ValidationFailed(f"{where} has more than {schema['maxItems']} items", field=where)
    items = schema.get("items")
    if items:
        for index, item in enumerate(value):
            validate(item, items, _join(path, index))


def _check_object(value: dict[str, Any], schema: Schema, path: str) -> None:
    properties: dict[str, Schema] = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            raise ValidationFailed(f"{_join(path, key)} is required", field=_join(path, key))
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            validate(item, properties[key], _join(path, key))
        elif extra is False:
            raise ValidationFailed(f"unknown field {_join(path, key)}", field=_join(path, key))
        elif isinstance(extra, dict):
            validate(item, extra, _join(path, key))


def validate_query(query: Any, params: dict[str, Schema]) -> dict[str, Any]:
    """The declared query parameters, converted (integer, boolean) and checked."""
    out: dict[str, Any] = {}
    for name, schema in params.items():
        raw = query.get(name)
        if raw is None or raw == "":
            continue
        value: Any = raw
        kind = schema.get("type")
        if kind == "integer":
            if not re.fullmatch(r"-?[0-9]{1,18}", raw):
                raise ValidationFailed(f"{name} must be an integer", field=name)
            value = int(raw)
        elif kind == "boolean":
            if raw not in ("1", "0", "true", "false"):
                raise ValidationFailed(f"{name} must be 1 or 0", field=name)
            value = raw in ("1", "true")
        validate(value, schema, name)
        out[name] = value
    return out
