"""Schedules as Gust reads them: the cron expressions and ``@`` shortcuts it accepts.

Gust (``Gust.DAG.Run.Cron.JobLoader``) turns a DAG's schedule into a Quantum job with
``~e[schedule]``, which is ``Crontab.CronExpression.Parser.parse!(schedule, false)`` of the
``crontab`` hex package (1.2.0 in Gust's lock file). A schedule that parser refuses raises in
Gust's scheduler, so ``gust parse`` checks it the same way and reports it in-band. The rules,
those of that parser:

- ``@`` and a name, in any case: ``@yearly``, ``@annually``, ``@monthly``, ``@weekly``,
  ``@daily``, ``@midnight``, ``@hourly``, ``@minutely``, ``@secondly``, ``@reboot``.
- Otherwise 1 to 6 fields split on single spaces (two spaces in a row make an empty field, which
  is refused; so are leading and trailing spaces and tabs): minute, hour, day of month, month, day
  of week, year. Fields left out mean ``*``.
- A field is a comma-separated list of parts. A part is ``*``; ``BASE/STEP`` where ``BASE`` is
  ``*`` or a range and ``STEP`` a whole number other than 0; ``A-B`` (a range, of two values);
  or a single value. Whole numbers may carry a sign, as Elixir's ``Integer.parse`` allows.
- Values: minute 0-59, hour 0-23, day of month 1-31 (also ``L``, ``LW`` and ``NW`` for the
  weekday nearest day N), month 1-12 or ``JAN``-``DEC`` (also ``L``), day of week 0-7 or
  ``MON``-``SUN`` (also ``L``, ``NL`` for the last such day of the month, and ``N#K`` for the
  K-th), year any whole number. Names are three letters, in any case.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing is only for the type checker: `gust parse` starts on every edit
if TYPE_CHECKING:
    from typing import Final

#: The ``@`` shortcuts Gust accepts (case does not matter).
SHORTCUTS: Final = (
    "yearly",
    "annually",
    "monthly",
    "weekly",
    "daily",
    "midnight",
    "hourly",
    "minutely",
    "secondly",
    "reboot",
)
_FIELDS: Final = ("minute", "hour", "day of month", "month", "day of week", "year")
_MONTHS: Final = (
    "JAN",
    "FEB",
    "MAR",
    "APR",
    "MAY",
    "JUN",
    "JUL",
    "AUG",
    "SEP",
    "OCT",
    "NOV",
    "DEC",
)
_WEEKDAYS: Final = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
# What each field accepts, as messages say it.
_ACCEPTS: Final = {
    "minute": "0-59",
    "hour": "0-23",
    "day of month": "1-31, L, LW or NW",
    "month": "1-12 or JAN-DEC",
    "day of week": "0-7 or MON-SUN, alone or with L or #N",
    "year": "a whole number",
}
_INTEGER = re.compile(r"[+-]?[0-9]+")  # the start Elixir's Integer.parse/2 reads
_RANGE = re.compile(r".+-.+", re.DOTALL)
_HINT: Final = (
    'use five cron fields such as "0 12 * * TUE" (minute hour day month weekday) or one of '
    + ", ".join(f"@{name}" for name in SHORTCUTS[:7])
)


class ScheduleError(ValueError):
    """The schedule is not one Gust accepts; the message says which part and why."""


def check_schedule(schedule: str) -> None:
    """Accept ``schedule`` as Gust's cron parser would, or raise :class:`ScheduleError`."""
    if schedule.startswith("@"):
        if schedule[1:].lower() not in SHORTCUTS:
            raise ScheduleError(f"{schedule[:40]!r} is not an @ shortcut Gust knows; {_HINT}")
        return
    fields = schedule.split(" ")
    if "" in fields:
        where = "it is empty" if not schedule else "it has an empty field"
        raise ScheduleError(
            f"{where} (fields are split on single spaces: two in a row, or one at either end, "
            f"make an empty field); {_HINT}"
        )
    if len(fields) > len(_FIELDS):
        raise ScheduleError(
            f"it has {len(fields)} fields (split on single spaces), more than the "
            f"{len(_FIELDS)} Gust reads; {_HINT}"
        )
    for name, text in zip(_FIELDS, fields, strict=False):
        for part in text.split(","):
            problem = _part_problem(name, part)
            if problem:
                raise ScheduleError(f"{problem}; {_HINT}")


def _integer(text: str) -> tuple[int, str] | None:
    """Elixir's ``Integer.parse(text, 10)``: the leading whole number and the rest, or None."""
    found = _INTEGER.match(text)
    if found is None:
        return None
    digits = found.group()
    # past 30 digits no field's range can hold it; int() would refuse 4,300 digits
    number = int(digits) if len(digits) <= 30 else int(digits[0] + "1" + "0" * 30)
    return number, text[found.end() :]


def _whole(text: str) -> int | None:
    parsed = _integer(text)
    return parsed[0] if parsed is not None and not parsed[1] else None


def _part_problem(name: str, part: str) -> str | None:
    """Why ``part`` of field ``name`` is refused, or None when it is accepted."""
    if part == "*":
        return None
    if "/" in part:
        pieces = part.split("/")
        if len(pieces) != 2:
            return f"{_shown(part)} has more than one /"
        base, step = pieces
        parsed = _integer(step)
        if parsed is None or parsed[1] or parsed[0] == 0:
            return f"{_shown(step)} is not a step (a whole number other than 0)"
        if base == "*":
            return None
        if not _is_range(base):
            return f"{_shown(base)} before /{step} is neither * nor a range A-B"
        return _range_problem(name, base)
    if _RANGE.fullmatch(part):
        return _range_problem(name, part)
    return _value_problem(name, part)


def _is_range(text: str) -> bool:
    return len(text.split("-")) == 2 and bool(_RANGE.fullmatch(text))


def _range_problem(name: str, text: str) -> str | None:
    pieces = text.split("-")
    if len(pieces) != 2:
        return f"{_shown(text)} is not a range of two values"
    return _value_problem(name, pieces[0]) or _value_problem(name, pieces[1])


def _value_problem(name: str, value: str) -> str | None:
    """Why the single ``value`` is not one of field ``name``, or None."""
    if name in ("minute", "hour"):
        return _in_range(name, _whole(value), value, 0, 59 if name == "minute" else 23)
    if name == "day of month":
        if value in ("L", "LW"):
            return None
        if value.endswith("W"):
            return _in_range(name, _whole(value[:-1]), value, 1, 31)
        return _in_range(name, _whole(value), value, 1, 31)
    if name == "month":
        if value == "L" or value.upper() in _MONTHS:
            return None
        return _in_range(name, _whole(value), value, 1, 12)
    if name == "day of week":
        if value == "L":
            return None
        if value.endswith("L"):
            return _weekday_problem(value[:-1], value)
        if re.search(r"#[0-9]+$", value):
            pieces = value.split("#")
            if len(pieces) != 2 or _whole(pieces[1]) is None:
                return _not_a(name, value)
            return _weekday_problem(pieces[0], value)
        return _weekday_problem(value, value)
    if _whole(value) is None:  # year: any whole number
        return _not_a(name, value)
    return None


def _weekday_problem(day: str, value: str) -> str | None:
    if day.upper() in _WEEKDAYS:
        return None
    return _in_range("day of week", _whole(day), value, 0, 7)


def _in_range(name: str, number: int | None, value: str, low: int, high: int) -> str | None:
    return _not_a(name, value) if number is None or not low <= number <= high else None


def _not_a(name: str, value: str) -> str:
    article = "an" if name == "hour" else "a"
    return f"{_shown(value)} is not {article} {name} ({_ACCEPTS[name]})"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 20 else text[:17] + "...")
