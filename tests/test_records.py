"""The records between stages: frozen dataclasses whose ``__init__`` is the faster setter one."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from logwatch import records
from logwatch.records import Event, Features, ParsedLine, RawLine, _setter_init

RECORDS = [
    obj
    for obj in vars(records).values()
    if isinstance(obj, type)
    and dataclasses.is_dataclass(obj)
    and obj.__module__ == records.__name__
]


def test_every_record_has_the_setter_init_and_the_standard_signature() -> None:
    assert len(RECORDS) == 13
    for cls in RECORDS:
        params = list(inspect.signature(cls).parameters.values())
        fields = dataclasses.fields(cls)
        assert [p.name for p in params] == [f.name for f in fields], cls
        for p, f in zip(params, fields, strict=True):
            if f.default is not dataclasses.MISSING:
                assert p.default is f.default, (cls, f.name)
            elif f.default_factory is dataclasses.MISSING:
                assert p.default is inspect.Parameter.empty, (cls, f.name)
        assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"
        # Ours, not dataclasses' (whose __init__ has the same name and signature): it stores
        # every field through that field's slot setter.
        setters = {f"_set_{f.name}" for f in fields}
        assert setters <= set(cls.__init__.__code__.co_names), cls


def test_built_records_are_the_same_values_still_frozen_and_survive_copies() -> None:
    parsed = ParsedLine("disk full", datetime(2026, 1, 2, 3, 4, 5), "ERROR", layout="iso")
    assert (parsed.message, parsed.level, parsed.host, parsed.layout) == (
        "disk full",
        "ERROR",
        None,
        "iso",
    )
    assert parsed.fields == {}
    # A default factory gives each record its own value, as dataclasses' own __init__ does.
    assert ParsedLine("a").fields is not ParsedLine("b").fields
    assert ParsedLine("a", fields={"k": 1}).fields == {"k": 1}
    event = Event(10, 2, 20, 1, "2026-01-02 disk full", parsed)
    assert (event.offset, event.truncated, event.count) == (10, False, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.count = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RawLine(1, 2)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        RawLine(1, 2, "x", False, "extra")  # type: ignore[call-arg]
    replaced = dataclasses.replace(event, count=3)
    assert replaced.count == 3 and replaced.parsed is parsed and event.count == 1
    assert replaced == Event(10, 2, 20, 1, "2026-01-02 disk full", parsed, False, 3)
    line = RawLine(5, 1, "x")
    assert hash(line) == hash(RawLine(5, 1, "x", False)) and line == RawLine(5, 1, "x")
    assert pickle.loads(pickle.dumps(event)) == event  # the learning child sends records back
    assert copy.deepcopy(event) == event
    assert Features({}, 1, 2, None, 0.5, None, 0.5, None, None, 0.0).rare_cut == 2


def test_the_setter_init_refuses_what_it_does_not_handle() -> None:
    @dataclass(frozen=True, slots=True)
    class KeywordOnly:
        a: int
        b: int = field(kw_only=True, default=0)

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> Any:
            return None

    with pytest.raises(TypeError, match="KeywordOnly.b"):
        _setter_init(KeywordOnly)
    with pytest.raises(TypeError, match="__post_init__"):
        _setter_init(Checked)
