"""Result values to strict JSON (gust.values): the conversions, the refusals naming the type
and where it sits, and the depth limit at its exact edge."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import pathlib
import sys
import uuid
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gust import protocol
from gust.protocol import decode_payload, encode_frame
from gust.values import MAX_DEPTH, UnsupportedValueError, to_json_value


@dataclasses.dataclass
class Row:
    name: str
    score: float


@dataclasses.dataclass
class Box:
    item: Any


def test_a_result_nested_exactly_max_depth_levels_is_sent_and_one_more_is_refused():
    boxes = [  # a container, and its JSON form around the same JSON item
        (lambda v: [v], lambda j: [j]),
        (lambda v: {"k": v}, lambda j: {"k": j}),
        (lambda v: (v,), lambda j: [j]),
    ]
    for box, json_box in boxes:
        value: Any = "bottom"
        expected: Any = "bottom"
        for _ in range(MAX_DEPTH):
            value, expected = box(value), json_box(expected)
        assert to_json_value(value) == expected
        encode_frame({"v": to_json_value(value)})  # the deepest accepted value still encodes
        with pytest.raises(UnsupportedValueError, match=f"nested more than {MAX_DEPTH} levels"):
            to_json_value(box(value))


def test_a_dataclass_counts_as_one_level_of_nesting():
    value: Any = "bottom"
    for _ in range(MAX_DEPTH - 1):
        value = [value]
    assert to_json_value(Box(value)) == {"item": value}
    with pytest.raises(UnsupportedValueError) as info:
        to_json_value(Box([value]))
    assert str(info.value) == (
        f"value of type 'list' at $.item{'[0]' * (MAX_DEPTH - 1)} has no JSON form: "
        f"it is nested more than {MAX_DEPTH} levels deep"
    )


def test_unsupported_values_name_their_type_and_path() -> None:
    cases: list[tuple[Any, str, str]] = [
        ({"rows": [1, 2, 3, object()]}, "$.rows[3]", "'object'"),
        ({"a b": {1: {2j}}}, "$['a b']['1'][0]", "'complex'"),
        ({"x": Row("n", 1.0), "y": [Row("m", b"bytes")]}, "$.y[0].score", "'bytes'"),
        ({(1, 2): "tuple key"}, "$[(1, 2)]", "'tuple'"),
        ({1: "int", "1": "str"}, "$['1']", "also sent as '1'"),
        ({"n": 10**5000}, "$.n", "digits"),
    ]
    for value, path, fragment in cases:
        with pytest.raises(UnsupportedValueError) as info:
            to_json_value(value)
        assert info.value.path == path
        assert path in str(info.value) and fragment in str(info.value)


def test_a_value_containing_itself_is_refused_with_the_path_of_the_repeat() -> None:
    loop: list[Any] = [1]
    loop.append({"again": loop})
    with pytest.raises(UnsupportedValueError, match=r"\$\[1\]\.again.*contains itself"):
        to_json_value(loop)
    shared = [1]
    assert to_json_value([shared, shared]) == [[1], [1]]  # the same list twice is no loop
    row = Row("n", 1.0)
    assert to_json_value([row, row]) == [{"name": "n", "score": 1.0}] * 2


def test_a_dataclass_containing_itself_is_refused_with_the_path_of_the_repeat() -> None:
    node = Box(None)
    node.item = [node]
    with pytest.raises(UnsupportedValueError) as info:
        to_json_value({"head": node})
    assert str(info.value) == (
        f"value of type '{__name__}.Box' at $.head.item[0] has no JSON form: it contains itself"
    )


def test_a_refusal_without_a_reason_is_the_type_and_path_alone() -> None:
    """The message of an unsupported leaf: the type (with its module unless a builtin) and
    where it sits, and nothing after."""
    for value, message in [
        ({"rows": [1, object()]}, "value of type 'object' at $.rows[1] has no JSON form"),
        ([datetime.timedelta(1)], "value of type 'datetime.timedelta' at $[0] has no JSON form"),
        ({"b": Box}, "value of type 'type' at $.b has no JSON form"),  # a class, not an instance
    ]:
        with pytest.raises(UnsupportedValueError) as info:
            to_json_value(value)
        assert str(info.value) == message


@settings(max_examples=50, deadline=None)
@given(st.datetimes(timezones=st.timezones()), st.decimals(allow_nan=False, allow_infinity=False))
def test_dates_and_decimals_round_trip_through_their_strings(
    when: datetime.datetime, amount: decimal.Decimal
) -> None:
    data = to_json_value({"when": when, "amount": amount})
    parsed = datetime.datetime.fromisoformat(data["when"])
    # ISO 8601 carries the wall time and the UTC offset (an ambiguous wall time in a zone with
    # DST never compares equal across zones, PEP 495, so compare the parts).
    assert parsed.replace(tzinfo=None) == when.replace(tzinfo=None)
    assert parsed.utcoffset() == when.utcoffset()
    assert decimal.Decimal(data["amount"]) == amount


class Name(str):
    pass


class Count(int):
    pass


class Celsius(float):
    pass


class Limit(enum.Enum):
    NONE = (math.inf, 0)
    SOME = (10, 1)


class Color(enum.Enum):
    RED = "red"
    ONE = 1


class Level(enum.IntEnum):
    HIGH = 3


def test_dict_keys_become_the_strings_json_would_write_for_them() -> None:
    value = {True: 1, False: 2, None: 3, Color.RED: 4, Name("n"): 5, 10: 6, Level.HIGH: 7, 1.5: 8}
    data = to_json_value(value)
    assert data == {"true": 1, "false": 2, "null": 3, "red": 4, "n": 5, "10": 6, "3": 7, "1.5": 8}
    assert all(type(k) is str for k in data)


def test_dict_keys_without_a_string_form_are_refused_naming_the_key() -> None:
    for value, message in [
        (
            {"x": {b"k": 1}},
            "value of type 'bytes' at $.x[b'k'] has no JSON form: "
            "dict keys must be strings or numbers",
        ),
        (
            {Color.ONE: 1},  # an enum key is its value only when that is a string
            f"value of type '{__name__}.Color' at $[<Color.ONE: 1>] has no JSON form: "
            "dict keys must be strings or numbers",
        ),
        (
            {"big": {10**5000: 1}},
            "value of type 'int' at $.big[<int key>] has no JSON form: "
            "a dict key has more than 4300 digits",
        ),
        (
            {True: 1, "true": 2},
            "value of type 'str' at $.true has no JSON form: "
            "another key of this dict is also sent as 'true'",
        ),
    ]:
        with pytest.raises(UnsupportedValueError) as info:
            to_json_value(value)
        assert str(info.value) == message


def test_subclasses_of_str_int_and_float_are_sent_as_the_plain_value() -> None:
    warnings: list[str] = []
    data = to_json_value(
        {"name": Name("ada"), "n": Count(3), "t": Celsius(21.5), "cold": Celsius("-inf")},
        warn=warnings.append,
    )
    assert data == {"name": "ada", "n": 3, "t": 21.5, "cold": None}
    assert [type(v) for v in data.values()] == [str, int, float, type(None)]
    assert warnings == ["result value -inf at $.cold is not valid JSON; sent as null"]
    with pytest.raises(UnsupportedValueError) as info:
        to_json_value({"big": Count(10**5000)})
    assert info.value.path == "$.big"
    assert "more than 4300 digits" in str(info.value)


def test_an_enum_member_is_its_value_converted_at_the_members_place() -> None:
    warnings: list[str] = []
    data = to_json_value({"limit": Limit.NONE, "other": [Limit.SOME]}, warn=warnings.append)
    assert data == {"limit": [None, 0], "other": [[10, 1]]}
    assert warnings == ["result value inf at $.limit[0] is not valid JSON; sent as null"]


def test_sets_are_sorted_when_they_can_be_and_their_non_finite_numbers_warned() -> None:
    warnings: list[str] = []
    assert to_json_value({3, 1, 2}) == [1, 2, 3]
    assert to_json_value({"s": frozenset({math.nan})}, warn=warnings.append) == {"s": [None]}
    assert warnings == ["result value nan at $.s[0] is not valid JSON; sent as null"]
    mixed = {1, "a", (2,)}  # no order among these: kept in iteration order
    assert to_json_value(mixed) == [[2] if isinstance(v, tuple) else v for v in mixed]


def test_non_finite_decimals_are_warned_as_the_number_they_are() -> None:
    warnings: list[str] = []
    values = [decimal.Decimal("Infinity"), decimal.Decimal("-Infinity"), decimal.Decimal("sNaN")]
    assert to_json_value(values, warn=warnings.append) == [None, None, None]
    assert warnings == [
        f"result value {v} at $[{i}] is not valid JSON; sent as null"
        for i, v in enumerate(["inf", "-inf", "nan"])
    ]


# -- any value: its JSON form, its warnings, or the refusal, exactly ----------------------------


class Case(NamedTuple):
    """A value, built with what the rules of gust.values say about it: its JSON form, the places
    of its non-finite numbers (each must get a warning), and its unsupported leaves (the first,
    in the order the value is walked, must be the refusal)."""

    value: Any
    expected: Any
    warned: list[str]
    refused: list[tuple[str, str]]  # (path, type name)


def _step(key: str) -> str:
    return f".{key}" if key.isidentifier() else f"[{key!r}]"


any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=8)  # surrogates too
_leaves = [
    st.none().map(lambda v: (v, v)),
    st.booleans().map(lambda v: (v, v)),
    st.integers().map(lambda v: (v, v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: (v, v)),
    any_text.map(lambda v: (v, v)),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda v: (v, str(v))),
    st.datetimes().map(lambda v: (v, v.isoformat())),
    st.dates().map(lambda v: (v, v.isoformat())),
]


@st.composite
def cases(draw: st.DrawFn, path: str = "$", depth: int = 0) -> Case:
    kind = draw(
        st.sampled_from(
            ["leaf"] * 4
            + ["non-finite", "unsupported"]
            + (["list", "tuple", "dict", "row"] if depth < 3 else [])
        )
    )
    if kind == "leaf":
        value, expected = draw(st.one_of(_leaves))
        return Case(value, expected, [], [])
    if kind == "non-finite":
        value = draw(
            st.sampled_from([math.nan, math.inf, -math.inf, decimal.Decimal("NaN"),
                             decimal.Decimal("-Infinity"), decimal.Decimal("sNaN")])
        )  # fmt: skip
        return Case(value, None, [path], [])
    if kind == "unsupported":
        value = draw(st.sampled_from([object(), 2j, b"bytes", bytearray(b"x"), range(3)]))
        return Case(value, None, [], [(path, type(value).__name__)])
    if kind in ("list", "tuple"):
        size = draw(st.integers(0, 4))
        items = [draw(cases(f"{path}[{i}]", depth + 1)) for i in range(size)]
        container = [c.value for c in items]
        value = container if kind == "list" else tuple(container)
    elif kind == "row":
        name, score = (
            draw(cases(path + ".name", depth + 1)),
            draw(cases(path + ".score", depth + 1)),
        )
        return Case(
            Row(name.value, score.value),
            {"name": name.expected, "score": score.expected},
            name.warned + score.warned,
            name.refused + score.refused,
        )
    else:
        keys = draw(st.lists(any_text, max_size=4, unique=True))
        items = [draw(cases(path + _step(k), depth + 1)) for k in keys]
        value = {k: c.value for k, c in zip(keys, items, strict=True)}
        return Case(
            value,
            {k: c.expected for k, c in zip(keys, items, strict=True)},
            [w for c in items for w in c.warned],
            [r for c in items for r in c.refused],
        )
    return Case(
        value,
        [c.expected for c in items],
        [w for c in items for w in c.warned],
        [r for c in items for r in c.refused],
    )


@settings(max_examples=300, deadline=None)
@given(cases())
def test_any_value_is_its_json_form_with_a_warning_per_non_finite_number_or_the_refusal(
    case: Case,
) -> None:
    warnings: list[str] = []
    if case.refused:
        path, type_name = case.refused[0]  # the first one met: dicts and lists in order
        with pytest.raises(UnsupportedValueError) as info:
            to_json_value(case.value, warn=warnings.append)
        assert (info.value.path, info.value.type_name) == (path, type_name)
        assert f"value of type {type_name!r} at {path} has no JSON form" in str(info.value)
        return
    data = to_json_value(case.value, warn=warnings.append)
    assert data == case.expected
    assert len(warnings) == len(case.warned)
    for where, warning in zip(case.warned, warnings, strict=True):
        assert f" at {where} is not valid JSON; sent as null" in warning, (where, warning)
    frame = encode_frame(protocol.result_success(data))  # strict JSON, valid UTF-8
    assert (
        json.loads(frame[4:].decode("utf-8"))["data"]["value"]
        == decode_payload(frame[4:])["data"]["value"]
    )


def test_the_cases_cover_every_outcome() -> None:
    """The property above sees refusals, warnings and clean values alike (not one of them
    vacuously): a fixed sample of the strategy holds all three."""
    from hypothesis import find

    find(cases(), lambda c: bool(c.refused) and len(c.refused) > 1)
    find(cases(), lambda c: not c.refused and len(c.warned) > 1)
    find(cases(), lambda c: not c.refused and not c.warned and c.expected not in (None, [], {}))


def test_a_dict_containing_itself_is_refused_and_the_same_dict_twice_is_not() -> None:
    loop: dict[str, Any] = {"n": 1}
    loop["inner"] = {"back": loop}
    with pytest.raises(UnsupportedValueError) as info:
        to_json_value(loop)
    assert str(info.value) == (
        "value of type 'dict' at $.inner.back has no JSON form: it contains itself"
    )
    shared = {"k": 1}
    assert to_json_value([shared, shared]) == [{"k": 1}, {"k": 1}]
    assert to_json_value({"a": shared, "b": [shared]}) == {"a": {"k": 1}, "b": [{"k": 1}]}


def test_uuids_and_paths_are_sent_as_their_text() -> None:
    value = {"id": uuid.UUID(int=1), "where": pathlib.PurePosixPath("/data/in.csv")}
    assert to_json_value(value) == {
        "id": "00000000-0000-0000-0000-000000000001",
        "where": "/data/in.csv",
    }


@pytest.mark.skipif(not hasattr(sys, "get_int_max_str_digits"), reason="Python 3.11+ limit")
def test_an_int_too_long_to_print_is_refused_naming_its_type_place_and_the_limit() -> None:
    limit = sys.get_int_max_str_digits()
    assert to_json_value({"n": 10 ** (limit - 1)}) == {"n": 10 ** (limit - 1)}
    with pytest.raises(UnsupportedValueError) as info:
        to_json_value({"n": 10**limit})
    assert str(info.value) == (
        f"value of type 'int' at $.n has no JSON form: it has more than {limit} digits, "
        "Python's limit for printing"
    )
