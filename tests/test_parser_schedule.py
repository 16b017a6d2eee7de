"""Schedules as Gust reads them (``gust.parser._schedule``): what its cron parser accepts.

The tables follow the rules of ``Crontab.CronExpression.Parser`` in crontab 1.2.0, the version
in Gust's lock file; the README states the same rules. Through the CLI, a refused schedule is an
in-band error at the line where it is written (see the error table of ``test_parser.py``).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gust.parser._schedule import ScheduleError, check_schedule

ACCEPTED = [
    "@daily",
    "@DAILY",
    "@Midnight",
    "@reboot",
    "@secondly",
    "@minutely",
    "* * * * *",
    "*",  # fields left out mean *
    "0 12",
    "*/5 * * * *",
    "0 0 1 1 * 2030",  # a sixth field: the year
    "1-5/2 * * * *",
    "0,15,30,45 * * * *",
    "0 0 * JAN-MAR MON-FRI",
    "0 0 * jan mon",
    "0 0 L * *",
    "0 0 LW * *",
    "0 0 15W * *",
    "0 0 * L *",
    "0 0 * * L",
    "0 0 * * 5L",
    "0 0 * * FRIL",
    "0 0 * * MON#2",
    "0 0 * * 0",
    "0 0 * * 7",
    "59 23 31 12 7 -5",
    "+5 * * * *",  # Elixir's Integer.parse reads a sign
    "05 * * * *",
    "*/-5 * * * *",  # so a negative step passes too
    "5-1 * * * *",  # ranges are not ordered
]

REFUSED = [
    ("every tuesday at noon", "'every' is not a minute (0-59)"),
    ("", "it is empty"),
    ("0  12 * * *", "it has an empty field"),
    (" 0 12 * * *", "it has an empty field"),
    ("0 12 * * * ", "it has an empty field"),
    ("@every 5m", "'@every 5m' is not an @ shortcut Gust knows"),
    ("@", "'@' is not an @ shortcut Gust knows"),
    ("@daily ", "'@daily ' is not an @ shortcut Gust knows"),
    ("0 12 * * * 2030 x", "it has 7 fields (split on single spaces), more than the 6 Gust reads"),
    ("60 * * * *", "'60' is not a minute (0-59)"),
    ("-1 * * * *", "'-1' is not a minute (0-59)"),
    ("* 24 * * *", "'24' is not an hour (0-23)"),
    ("* * 0 * *", "'0' is not a day of month (1-31, L, LW or NW)"),
    ("* * 32 * *", "'32' is not a day of month"),
    ("* * 32W * *", "'32W' is not a day of month"),
    ("* * * 13 *", "'13' is not a month (1-12 or JAN-DEC)"),
    ("* * * JANUARY *", "'JANUARY' is not a month"),
    ("* * * * 8", "'8' is not a day of week (0-7 or MON-SUN, alone or with L or #N)"),
    ("0 0 * * MONDAY", "'MONDAY' is not a day of week"),
    ("0 0 * * 8L", "'8L' is not a day of week"),
    ("0 0 * * 1#2#3", "'1#2#3' is not a day of week"),
    ("0 0 * * * 20x", "'20x' is not a year (a whole number)"),
    ("*/0 * * * *", "'0' is not a step (a whole number other than 0)"),
    ("*/x * * * *", "'x' is not a step"),
    ("*/5/2 * * * *", "'*/5/2' has more than one /"),
    ("5/10 * * * *", "'5' before /10 is neither * nor a range A-B"),
    ("1-2-3 * * * *", "'1-2-3' is not a range of two values"),
    ("a-b * * * *", "'a' is not a minute"),
    ("1,,2 * * * *", "'' is not a minute"),
    ("? * * * *", "'?' is not a minute"),  # Quartz's ? is not cron's
    ("0\t12 * * *", "'0\\t12' is not a minute"),
    ("1" * 5000 + " * * * *", "'11111111111111111...' is not a minute (0-59)"),
]


@pytest.mark.parametrize("schedule", ACCEPTED)
def test_schedules_gust_accepts(schedule: str) -> None:
    check_schedule(schedule)


@pytest.mark.parametrize(("schedule", "reason"), REFUSED, ids=[r[:30] for r, _ in REFUSED])
def test_schedules_gust_refuses_say_why(schedule: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        check_schedule(schedule)
    message = str(raised.value)
    assert message.startswith(reason), message
    assert message.endswith(
        'use five cron fields such as "0 12 * * TUE" (minute hour day month weekday) or one of '
        "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
    )


MINUTE = st.integers(0, 59).map(str)
HOUR = st.integers(0, 23).map(str)
DAY = st.one_of(st.integers(1, 31).map(str), st.sampled_from(["L", "LW", "1W", "31W"]))
MONTH = st.one_of(st.integers(1, 12).map(str), st.sampled_from(["JAN", "dec", "Jun", "L"]))
WEEKDAY = st.one_of(
    st.integers(0, 7).map(str),
    st.sampled_from(["MON", "sun", "L", "5L", "MON#2", "0#1"]),
)


def field(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    plain = [values.filter(lambda v: "#" not in v and not v.endswith(("L", "W")))]
    part = st.one_of(
        st.just("*"),
        values,
        st.tuples(*plain, *plain).map("-".join),
        st.tuples(
            st.one_of(st.just("*"), st.tuples(*plain, *plain).map("-".join)), st.integers(1, 60)
        ).map(lambda t: f"{t[0]}/{t[1]}"),
    )
    return st.lists(part, min_size=1, max_size=3).map(",".join)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(field(MINUTE), field(HOUR), field(DAY), field(MONTH), field(WEEKDAY)),
    st.integers(1, 5),
)
def test_any_cron_built_from_valid_parts_is_accepted(fields: tuple[str, ...], count: int) -> None:
    check_schedule(" ".join(fields[:count]))


CRON_LIKE = st.text(st.sampled_from("0123456789*/-,#@ LWlw\tMONJANsunxX+?"), max_size=30)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(max_size=40), CRON_LIKE))
def test_any_text_is_accepted_or_refused_with_a_schedule_error(text: str) -> None:
    # the fuzz invariant: no other exception, and a refusal always says what to write instead
    try:
        check_schedule(text)
    except ScheduleError as exc:
        assert str(exc).endswith("@daily, @midnight, @hourly")
