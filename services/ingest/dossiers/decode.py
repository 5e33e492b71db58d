"""Decoding a dossier event's data: its keys made canonical, then validated into the inbound models.

Sources spell the portal's field names in any case and with stray whitespace; the contracts in
`schemas/dossier.py` name them once. Pure.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from services.ingest.errors import ContractError

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class _Fields:
    by_lower: dict[str, tuple[str, type[BaseModel] | None]]
    """Lower-case alias to (alias, nested model)."""
    exact: frozenset[str]
    nested: tuple[tuple[str, type[BaseModel]], ...]


@functools.cache
def _fields(model: type[BaseModel]) -> _Fields:
    """A contract's field names, built once per model."""
    by_lower = {
        (field.alias or name).lower(): (field.alias or name, _nested_model(field.annotation))
        for name, field in model.model_fields.items()
    }
    return _Fields(
        by_lower=by_lower,
        exact=frozenset(alias for alias, _ in by_lower.values()),
        nested=tuple((alias, nested) for alias, nested in by_lower.values() if nested),
    )


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _already_canonical(data: Mapping[str, Any], fields: _Fields) -> bool:
    """Every key is a contract name as spelt, nested items too: most sources, nothing to do."""
    if not fields.exact.issuperset(data.keys()):
        return False
    for alias, nested in fields.nested:
        items = data.get(alias)
        if isinstance(items, list):
            inner = _fields(nested)
            for item in items:
                if isinstance(item, Mapping) and not _already_canonical(item, inner):
                    return False
    return True


_PLAN_MAX_KEYS = 64
_PLAN_MAX_CHARS = 2048
"""Key lists cached by `_plan`: what sources send (a few dozen short names), so that a flood of
odd key lists costs the cache only entries of bounded size."""


@functools.lru_cache(maxsize=4096)
def _plan(model: type[BaseModel], keys: tuple[str, ...]) -> tuple[str, ...] | None:
    """The contract names of a key list as a source spells it, found once per source dialect;
    None when two keys name the same field (their values must then be compared)."""
    fields = _fields(model)
    names = tuple(fields.by_lower.get(key.strip().lower(), (key.strip(), None))[0] for key in keys)
    return names if len(set(names)) == len(names) else None


def canonical_keys(data: Mapping[str, Any], model: type[BaseModel]) -> Mapping[str, Any]:
    """Rename keys sent in any case or with stray whitespace to the contract's field names.

    Unknown keys are kept as sent (inbound models tolerate extras). The same field sent twice
    under different spellings is accepted only when both carry the same value.
    """
    fields = _fields(model)
    if _already_canonical(data, fields):
        return data
    keys = tuple(data)
    if (
        len(keys) <= _PLAN_MAX_KEYS
        and all(isinstance(k, str) for k in keys)
        and sum(map(len, keys)) <= _PLAN_MAX_CHARS
        and (names := _plan(model, keys)) is not None
    ):
        result = dict(zip(names, data.values(), strict=True))
        for alias, nested in fields.nested:
            items = result.get(alias)
            if isinstance(items, list):
                result[alias] = _renamed_items(items, nested)
        return result
    return _renamed(data, fields)


def _renamed(data: Mapping[str, Any], fields: _Fields) -> dict[str, Any]:
    """`canonical_keys` key by key: any key list, two spellings of one field compared."""
    result: dict[str, Any] = {}
    for raw_key, value in data.items():
        if not isinstance(raw_key, str):
            raise ContractError("field names must be strings", [("data", "a name not a string")])
        key = raw_key.strip()
        known = fields.by_lower.get(key.lower())
        canonical, nested = known or (key, None)
        if nested is not None and isinstance(value, list):
            value = _renamed_items(value, nested)
        if canonical in result and result[canonical] != value:
            # Only a contract field is named: an unknown name is the sender's text, and senders
            # put ID numbers in names too.
            if known is None:
                raise ContractError(
                    "a field not in the contract is sent twice with different values",
                    [("data", "a field not in the contract sent twice with different values")],
                )
            raise ContractError(
                f"field {canonical} is sent twice with different values",
                [(canonical, "sent twice with different values")],
            )
        result[canonical] = value
    return result


def _renamed_items(items: list[Any], model: type[BaseModel]) -> list[Any]:
    """A list of nested items, each object's keys made canonical (anything else as sent)."""
    return [canonical_keys(v, model) if isinstance(v, Mapping) else v for v in items]


def validate_data(data: Any, model: type[T]) -> T:
    """Validate an event's data against an inbound contract after canonicalising its keys."""
    if not isinstance(data, Mapping):
        raise ContractError(
            f"data must be a JSON object ({model.__name__})", [("data", "not an object")]
        )
    try:
        return model.model_validate(canonical_keys(data, model))
    except ValidationError as exc:
        raise ContractError.from_validation(
            f"data breaks the {model.__name__} contract", exc
        ) from None
