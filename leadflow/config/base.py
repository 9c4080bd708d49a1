"""Building blocks shared by every configuration model.

* `ConfigModel`: strict (no silent "70" → 70 coercion), frozen, and unknown keys are errors.
* Small validated scalar types (identifiers, country/language codes, e-mail, clock times,
  time zones, money) whose error messages read well in `file:line: key: message` form.
* `key_discriminated`: the YAML style used for filters, triggers and steps, where the one
  key present says what a mapping is (`purchased: {...}`, `send: {...}`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PlainValidator,
    Tag,
)
from pydantic_core import PydanticCustomError

# Loc components that are union tags rather than YAML keys; the error locator skips them.
LOC_TAGS: set[str] = set()
# Every key any config model accepts: the pool "did you mean ...?" suggestions are drawn from.
KNOWN_KEYS: set[str] = set()


class ConfigModel(BaseModel):
    """Base of every configuration model."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        populate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            KNOWN_KEYS.add(info.alias or name)


def config_error(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose text is exactly `message`.

    Without a context pydantic does not format the template, so braces stay as written.
    """
    return PydanticCustomError(kind, message)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when a choice is close to `word`, else an empty string."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _pattern_validator(pattern: str, description: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def validate(value: str) -> str:
        if not compiled.fullmatch(value):
            raise config_error("identifier", f"expected {description}, got {value!r}")
        return value

    return validate


Slug = Annotated[
    str,
    AfterValidator(
        _pattern_validator(
            r"[a-z][a-z0-9_]{0,62}", "a lower-case identifier (letters, digits, '_')"
        )
    ),
]
ProductId = Annotated[
    str,
    AfterValidator(
        _pattern_validator(r"[A-Z0-9][A-Z0-9_-]{0,39}", "an upper-case product id like HS2000")
    ),
]
TenantCode = Annotated[
    str,
    AfterValidator(
        _pattern_validator(r"[a-z][a-z0-9_]{0,19}", "a short lower-case tenant code like fr")
    ),
]
CountryCode = Annotated[
    str, AfterValidator(_pattern_validator(r"[A-Z]{2}", "an ISO country code like DE"))
]
LanguageCode = Annotated[
    str, AfterValidator(_pattern_validator(r"[a-z]{2}", "an ISO language code like de"))
]
CurrencyCode = Annotated[
    str, AfterValidator(_pattern_validator(r"[A-Z]{3}", "an ISO currency code like EUR"))
]
Email = Annotated[
    str,
    AfterValidator(_pattern_validator(r"[^@\s]+@[^@\s]+\.[^@\s.]+", "an e-mail address")),
]
NonEmptyText = Annotated[str, Field(min_length=1)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _check_time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise config_error(
            "time_zone", f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]


def _parse_clock_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{2}:\d{2}", value.strip()):
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise config_error("clock_time", f'expected a time of day like "08:00", got {value!r}')


ClockTime = Annotated[
    dt.time,
    PlainValidator(_parse_clock_time),
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
]


def _parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise config_error("date", f"expected a date like 2026-04-20, got {value!r}")


IsoDate = Annotated[
    dt.date,
    PlainValidator(_parse_date),
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
]


def _parse_date_or_datetime(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        for parse in (dt.datetime.fromisoformat, dt.date.fromisoformat):
            try:
                return parse(value.strip())
            except ValueError:
                continue
    raise config_error(
        "datetime", f"expected a date or date-time like 2026-03-02T09:00, got {value!r}"
    )


DateOrDateTime = Annotated[
    dt.date,
    PlainValidator(_parse_date_or_datetime),
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
]


def _none_as_empty_mapping(value: Any) -> Any:
    return {} if value is None else value


INVALID_TAG = "Invalid"


def key_discriminated(
    members: dict[str, type[ConfigModel]], what: str, example: str
) -> Discriminator:
    """A discriminator that picks the union member by the one identifying key present.

    `members` maps the identifying YAML key to the model (e.g. `{"send": SendStep}`).
    A mapping with none of the keys, or with two of them, goes to the INVALID_TAG member,
    whose error message names the keys found; a non-mapping gets the discriminator's error.
    """
    keys = list(members)
    by_class = {model: model.__name__ for model in members.values()}
    LOC_TAGS.update(by_class.values())
    LOC_TAGS.add(INVALID_TAG)

    def discriminate(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            return by_class.get(type(value))
        if not isinstance(value, dict):
            return None
        present = [key for key in keys if key in value]
        return by_class[members[present[0]]] if len(present) == 1 else INVALID_TAG

    return Discriminator(
        discriminate,
        custom_error_type=f"{what.replace(' ', '_')}_kind",
        custom_error_message=f"expected a {what}: a mapping with one of the keys "
        f"{', '.join(keys)} (e.g. {example})",
    )


def _reject_invalid(what: str, keys: list[str]) -> Callable[[Any], Any]:
    def reject(value: dict[str, Any]) -> Any:
        present = [key for key in keys if key in value]
        if present:
            raise config_error(
                "ambiguous",
                f"a {what} takes exactly one of the keys {', '.join(present)}; "
                f"{'combine them with all/any' if what == 'filter' else 'split it in two'}",
            )
        unknown = [str(key) for key in value]
        hints = "".join(did_you_mean(key, keys) for key in unknown)
        raise config_error(
            f"{what.replace(' ', '_')}_kind",
            f"a {what} needs one of the keys {', '.join(keys)}; "
            f"got {', '.join(unknown) or 'an empty mapping'}{hints}",
        )

    return reject


def tagged_union(members: dict[str, type[ConfigModel]], what: str, example: str) -> Any:
    """`Annotated[Union[...], Discriminator]` over `members` (see `key_discriminated`)."""
    choices = [Annotated[model, Tag(model.__name__)] for model in members.values()]
    invalid = Annotated[Any, PlainValidator(_reject_invalid(what, list(members))), Tag(INVALID_TAG)]
    return Annotated[
        Union[(*choices, invalid)],
        key_discriminated(members, what, example),
    ]


def none_as_empty(model: type[ConfigModel]) -> Any:
    """`model` that also accepts a bare key (`exit:`) as an empty mapping."""
    return Annotated[model, BeforeValidator(_none_as_empty_mapping)]


__all__ = [
    "LOC_TAGS",
    "WEEKDAYS",
    "ClockTime",
    "ConfigModel",
    "CountryCode",
    "CurrencyCode",
    "DateOrDateTime",
    "Email",
    "IsoDate",
    "LanguageCode",
    "Money",
    "NonEmptyText",
    "Percent",
    "PositiveInt",
    "ProductId",
    "Slug",
    "TenantCode",
    "TimeZoneName",
    "Weekday",
    "config_error",
    "did_you_mean",
    "none_as_empty",
    "tagged_union",
]
