"""The hand-written validator agrees with a real JSON-Schema validator on our request schemas.

What `/api/openapi.json` promises (checked by jsonschema-rs, Draft 2020-12)
and what the server enforces (`crm_core.http.schema.validate`) must be the
same set of bodies, or integrators and schemathesis would be told a lie.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core.http.auth import LOGIN_BODY, ME_BODY
from crm_core.http.contacts import CONTACT_BODY, LIST_QUERY
from crm_core.http.intake import INTAKE_BODY
from crm_core.http.leads import LEAD_BODY
from crm_core.http.schema import validate, validate_query
from crm_core.http.timeline import NOTE_BODY
from crm_core.http.users import CREATE_USER, UPDATE_USER
from kernel.errors import ValidationFailed

SCHEMAS = {
    "login": LOGIN_BODY, "me": ME_BODY, "contact": CONTACT_BODY, "intake": INTAKE_BODY,
    "lead": LEAD_BODY, "note": NOTE_BODY, "create_user": CREATE_USER,
    "update_user": UPDATE_USER,
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.text(max_size=12),
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=8,
)


def near(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that often fit `schema` and often miss it by one detail."""
    choices: list[st.SearchStrategy[Any]] = [anything]
    if "enum" in schema:
        choices.append(st.sampled_from(schema["enum"]))
    for choice in schema.get("anyOf", ()):
        choices.append(near(choice))
    kinds = schema.get("type", [])
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        choices.append(_near_kind(kind, schema))
    return st.one_of(choices)


def _near_kind(kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind == "string":
        top = schema.get("maxLength", 20)
        text = st.text(min_size=max(0, schema.get("minLength", 0) - 1),
                       max_size=min(top + 1, 300))
        return st.one_of(text, st.sampled_from(["ana", "ana\n", "1001", "a@b.es", "x" * top]))
    if kind == "integer":
        return st.integers(schema.get("minimum", -5) - 1, min(schema.get("maximum", 99), 10**6) + 1)
    if kind == "array":
        return st.lists(near(schema.get("items", {})), max_size=schema.get("maxItems", 3) + 1)
    if kind == "object":
        props = schema.get("properties", {})
        if not props:
            return st.dictionaries(st.text(max_size=5), anything, max_size=3)
        keys = [*props, "unexpected"]
        return st.lists(st.sampled_from(keys), unique=True, max_size=len(keys)).flatmap(
            lambda chosen: st.fixed_dictionaries(
                {k: near(props.get(k, {})) for k in chosen}
            )
        )
    return {"boolean": st.booleans(), "null": st.none()}.get(kind, anything)


def ours_accept(value: Any, schema: dict[str, Any]) -> bool:
    try:
        validate(value, schema)
    except ValidationFailed:
        return False
    return True


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_validator_agrees_with_json_schema(name: str, data: st.DataObject) -> None:
    schema = SCHEMAS[name]
    value = data.draw(near(schema))
    reference = jsonschema_rs.validator_for(schema).is_valid(value)
    assert (name, value, ours_accept(value, schema)) == (name, value, reference)


@pytest.mark.parametrize("username", ["ana\n", "ana\r\n", "Ana", "ana ", "-ana"])
def test_patterns_end_where_json_schema_says(username: str) -> None:
    body = {"username": username, "role": "agent", "password": "long-enough"}
    assert jsonschema_rs.validator_for(CREATE_USER).is_valid(body) is False
    assert ours_accept(body, CREATE_USER) is False
    assert ours_accept({**body, "username": "ana"}, CREATE_USER) is True


def test_a_failure_names_the_deepest_field() -> None:
    body = {"first_name": "C", "phones": ["600", {"number": "601", "kind": 3}]}
    with pytest.raises(ValidationFailed) as err:
        validate(body, CONTACT_BODY)
    assert (err.value.field, err.value.message) == (
        "phones[1].kind", "phones[1].kind must be string"
    )


def test_query_values_are_converted_then_checked() -> None:
    assert validate_query({"mine": "1", "limit": "20", "q": "ana"}, LIST_QUERY) == {
        "mine": True, "limit": 20, "q": "ana",
    }
    for query, field in (({"limit": "2.5"}, "limit"), ({"mine": "yes"}, "mine"),
                         ({"limit": "201"}, "limit")):
        with pytest.raises(ValidationFailed) as err:
            validate_query(query, LIST_QUERY)
        assert err.value.field == field
