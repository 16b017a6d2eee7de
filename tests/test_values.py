"""Result values to strict JSON (gust.values): the conversions, the refusals naming the type
and where it sits, and the depth limit at its exact edge."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import math
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gust import protocol
from gust.protocol import decode_payload, encode_frame
from gust.values import MAX_DEPTH, UnsupportedValueError, to_json_value


def test_a_result_nested_exactly_max_depth_levels_is_sent_and_one_more_is_refused():
    for box in (lambda v: [v], lambda v: {"k": v}):
        value: Any = "bottom"
        for _ in range(MAX_DEPTH):
            value = box(value)
        assert to_json_value(value) == value
        encode_frame({"v": to_json_value(value)})  # the deepest accepted value still encodes
        with pytest.raises(UnsupportedValueError, match=f"nested more than {MAX_DEPTH} levels"):
            to_json_value(box(value))


@dataclasses.dataclass
class Row:
    name: str
    score: float


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
