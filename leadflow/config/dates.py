"""Relative dates (`-3y`, `+0d`, `2024-01-01`) and durations (`30d`, `6m`, `12h`) of the config.

Both are parsed once at load time into small immutable values. A relative date is resolved
against the run's `as_of` date later, so a segment like "bought more than 3 years ago" means
the same thing in every run for the same `as_of` (SPEC §2).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

DateUnit = Literal["d", "w", "m", "y"]
DurationUnit = Literal["h", "d", "w", "m", "y"]

_RELATIVE = re.compile(r"^([+-])(\d{1,5})([dwmy])$")
_DURATION = re.compile(r"^(\d{1,5})([hdwmy])$")


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole months; the day of month is clamped (31 Jan + 1m = 28/29 Feb)."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month + 1)[1]
    return day.replace(year=year, month=month + 1, day=min(day.day, last_day))


def _shift(day: dt.date, amount: int, unit: str) -> dt.date:
    if unit == "d":
        return day + dt.timedelta(days=amount)
    if unit == "w":
        return day + dt.timedelta(weeks=amount)
    if unit == "m":
        return add_months(day, amount)
    return add_months(day, 12 * amount)


class _ParsedFromString:
    """Pydantic hooks for a type written in YAML as one string: validated by `cls.parse`,
    serialised by `str()`, described in JSON schema as a string matching `cls.PATTERN`."""

    PATTERN: ClassVar[str]

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls.parse, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _schema: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "pattern": cls.PATTERN}


@dataclass(frozen=True)
class RelativeDate(_ParsedFromString):
    """A date relative to `as_of` (`-3y`, `+1y`, `-6m`, `-2w`, `-30d`, `+0d`) or an absolute date.

    Exactly one of `absolute` or (`amount`, `unit`) is meaningful: `absolute` set means a
    fixed calendar date; otherwise the date is `as_of` shifted by `amount` units.
    """

    amount: int = 0
    unit: DateUnit = "d"
    absolute: dt.date | None = None

    PATTERN: ClassVar[str] = r"^([+-]\d+[dwmy]|\d{4}-\d{2}-\d{2})$"

    @property
    def is_relative(self) -> bool:
        return self.absolute is None

    def resolve(self, as_of: dt.date) -> dt.date:
        """The calendar date this stands for in a run whose logical date is `as_of`."""
        if self.absolute is not None:
            return self.absolute
        return _shift(as_of, self.amount, self.unit)

    def __str__(self) -> str:
        if self.absolute is not None:
            return self.absolute.isoformat()
        sign = "-" if self.amount < 0 else "+"
        return f"{sign}{abs(self.amount)}{self.unit}"

    @classmethod
    def parse(cls, value: Any) -> RelativeDate:
        """Parse YAML input: a date, an ISO date string or a signed offset like `-3y`."""
        if isinstance(value, RelativeDate):
            return value
        if isinstance(value, dt.datetime):
            raise _relative_date_error(value, "a date without a time of day")
        if isinstance(value, dt.date):
            return cls(absolute=value)
        if isinstance(value, str):
            text = value.strip()
            match = _RELATIVE.match(text)
            if match:
                sign, amount, unit = match.groups()
                return cls(amount=-int(amount) if sign == "-" else int(amount), unit=unit)
            try:
                return cls(absolute=dt.date.fromisoformat(text))
            except ValueError:
                pass
        raise _relative_date_error(value)


def _relative_date_error(value: Any, expected: str = "") -> PydanticCustomError:
    hint = f"expected {expected}" if expected else "expected a relative date"
    return PydanticCustomError(
        "relative_date",
        "{hint} like -3y, +1y, -6m, -2w, -30d, +0d or a date YYYY-MM-DD, got {value}",
        {"hint": hint, "value": repr(value)},
    )


@dataclass(frozen=True)
class Duration(_ParsedFromString):
    """A positive length of time in one unit: `12h`, `30d`, `2w`, `6m`, `1y`.

    Months and years are calendar months/years (so `within: 1y` on 1 March means since the
    previous 1 March), not a fixed number of days.
    """

    amount: int
    unit: DurationUnit

    PATTERN: ClassVar[str] = r"^\d+[hdwmy]$"

    @property
    def hours(self) -> int:
        return self.amount if self.unit == "h" else 0

    @property
    def days(self) -> int:
        return {"d": self.amount, "w": 7 * self.amount}.get(self.unit, 0)

    @property
    def months(self) -> int:
        return self.amount if self.unit == "m" else 0

    @property
    def years(self) -> int:
        return self.amount if self.unit == "y" else 0

    def before(self, moment: dt.date) -> dt.date:
        """`moment` (a date or datetime) moved back by this duration."""
        return self._move(moment, -1)

    def after(self, moment: dt.date) -> dt.date:
        """`moment` (a date or datetime) moved forward by this duration."""
        return self._move(moment, 1)

    def _move(self, moment: dt.date, direction: int) -> dt.date:
        if self.unit == "h":
            if not isinstance(moment, dt.datetime):
                raise TypeError("an hour duration needs a datetime, not a date")
            return moment + direction * dt.timedelta(hours=self.amount)
        return _shift(moment, direction * self.amount, self.unit)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    @classmethod
    def parse(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        match = _DURATION.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise PydanticCustomError(
                "duration",
                "expected a duration like 12h, 30d, 2w, 6m or 1y, got {value}",
                {"value": repr(value)},
            )
        amount, unit = int(match.group(1)), match.group(2)
        if amount == 0:
            raise PydanticCustomError("duration", "a duration must be longer than zero")
        return cls(amount=amount, unit=unit)
