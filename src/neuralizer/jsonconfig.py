"""Typed JSON configs: frozen dataclasses read from JSON objects, every value checked by its type.

One loader for the training and the evaluation configs (and the configs nested in them: model,
source, sampler). JSON gives any type, so each value is checked against its field's annotation
and refused with the field's dotted name (``TrainConfig.sampler.batch_size``); lists become
tuples where the field is a tuple. A nested object changes only the fields it names: the others
keep the enclosing config's default (``{"model": {"stages": 3}}`` keeps the training default of
32 channels). Configs written before the nesting (flat files) are moved into place by
:func:`nest` first, so that a flat file and its nested equivalent give equal configs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")
C = TypeVar("C", bound="JsonConfig")


class JsonConfig:
    """Base of a frozen dataclass config read from JSON: :meth:`from_dict`, :meth:`from_file`,
    :meth:`to_dict`. ``FLAT``: where the keys of older flat files live now (see :func:`nest`);
    ``NULL_IS_DEFAULT``: flat keys whose ``null`` meant the default value."""

    FLAT: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    NULL_IS_DEFAULT: ClassVar[tuple[str, ...]] = ()
    WHAT: ClassVar[str] = "config"

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-able dict (nested configs as nested dicts)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], values: Mapping[str, Any]) -> C:
        """A config from JSON values, nested or flat; every value's type is checked."""
        if isinstance(values, Mapping):
            dropped = [k for k in cls.NULL_IS_DEFAULT if k in values and values[k] is None]
            kept = {k: v for k, v in values.items() if k not in dropped}
            values = nest(kept, cls.FLAT, cls.__name__)
        return build(cls, values)

    @classmethod
    def from_file(cls: type[C], path: str | Path) -> C:
        """The config in JSON file ``path``."""
        return cls.from_dict(read_object(path, cls.WHAT))


def read_object(path: str | Path, what: str) -> dict[str, Any]:
    """The JSON object in file ``path`` (``what``: the kind of config, for the messages)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a JSON object of {what} fields")
    return values


def nest(values: Mapping[str, Any], moves: Mapping[str, tuple[str, ...]], name: str) -> dict:
    """``values`` with each flat key of ``moves`` moved to its nested place (a path of keys).

    A key given both flat and nested is refused: the two could disagree.
    """
    out = {k: v for k, v in values.items() if k not in moves}
    for key, path in moves.items():
        if key not in values:
            continue
        where = out
        for step in path[:-1]:
            where = where.setdefault(step, {})
            if not isinstance(where, dict):
                raise ValueError(f"{name}.{step} must be a JSON object, got {_shown(where)}")
        if path[-1] in where:
            raise ValueError(f"{name}: {key!r} is given twice, flat and as {'.'.join(path)}")
        where[path[-1]] = values[key]
    return out


def build(cls: type[T], values: Any, base: T | None = None, *, name: str = "") -> T:
    """An instance of the frozen dataclass ``cls`` from the JSON object ``values``.

    Fields not in ``values`` keep ``base``'s value (default: the class defaults); a nested
    dataclass field is built the same way over its current value. ValueError, naming the field,
    for an unknown field, a missing required one or a value of the wrong type.
    """
    name = name or cls.__name__
    if not isinstance(values, dict):
        raise ValueError(f"{name} must be a JSON object of fields, got {_shown(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown {name} field(s) {unknown}; known: {sorted(fields)}")
    if base is None:
        missing = [
            k
            for k, f in fields.items()
            if k not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ValueError(f"{name} needs the field(s) {missing}")
    hints = typing.get_type_hints(cls)
    changes = {}
    for key, value in values.items():
        current = getattr(base, key) if base is not None else fields[key].default
        current = None if current is dataclasses.MISSING else current
        changes[key] = _typed(value, hints[key], f"{name}.{key}", current)
    return dataclasses.replace(base, **changes) if base is not None else cls(**changes)


def flat_items(config: Any, prefix: str = "") -> dict[str, Any]:
    """A config's fields as ``{"dotted.name": value}``, nested configs opened (to compare two
    configs field by field, and to name what differs)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flat_items(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_NAMES = {int: "integer", float: "finite number", str: "string", bool: "boolean"}


def _describe(hint: Any, plural: bool = False) -> str:
    """``hint`` in words: "an integer", "a list of strings", "an object of finite numbers"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a, plural) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        words = f"list of {_describe(args[0], plural=True)}"
    elif origin is tuple:
        words = f"list of {len(args)} {_describe(args[0], plural=True)}"
    elif origin in (dict, Mapping):
        words = f"object of {_describe(args[1], plural=True)}"
    elif dataclasses.is_dataclass(hint):
        words = "object"
    else:
        words = _NAMES.get(hint, str(hint))
    if plural:
        return words + "s" if words in _NAMES.values() else words
    return ("an " if words[0] in "aeiou" else "a ") + words


def _typed(value: Any, hint: Any, where: str, current: Any) -> Any:
    """``value`` checked against ``hint`` (and converted: lists to tuples, ints to floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, current, name=where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _typed(value, inner, where, current)
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: _is_number,
        str: lambda v: isinstance(v, str),
    }
    if hint in ok:
        if not ok[hint](value):
            raise ValueError(f"{where} must be {_describe(hint)}, got {_shown(value)}")
        return float(value) if hint is float else value
    if origin is tuple and isinstance(value, list | tuple):
        repeated = len(args) == 2 and args[1] is Ellipsis
        if repeated or len(value) == len(args):
            kinds = [args[0]] * len(value) if repeated else args
            items = zip(value, kinds, strict=True)
            return tuple(_typed(v, k, f"{where}[{i}]", None) for i, (v, k) in enumerate(items))
    elif origin in (dict, Mapping) and isinstance(value, dict):
        return {k: _typed(v, args[1], f"{where}.{k}", None) for k, v in value.items()}
    elif origin not in (tuple, dict, Mapping):
        raise TypeError(f"{where}: no JSON check for the type {hint}")  # a new field's type
    raise ValueError(f"{where} must be {_describe(hint)}, got {_shown(value)}")
