"""Rows in PostgreSQL's COPY text format, built from numpy columns without a per-field loop.

Generating twenty million events is only as fast as turning numbers into text, so the hot
paths here are vectorised: timestamps, dates and zero-padded ids are assembled as byte
matrices in numpy; categorical columns are lookups into tables of pre-encoded values; a row
is one `b"\\t".join` over a handful of pieces (constant runs of columns, such as the NULLs of
an event type, are a single pre-joined piece).

Values must not contain tabs, line breaks or backslashes: nothing is escaped. The generator
only writes values from its own vocabulary and ASCII ids, which satisfy that.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence

import numpy as np

NULL = b"\\N"
SECONDS_PER_DAY = 86_400
EPOCH = dt.date(1970, 1, 1)

Piece = Sequence[bytes] | bytes


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 (numpy's datetime64[D] origin)."""
    return (day - EPOCH).days


def encode_table(values: Iterable[str | None]) -> np.ndarray:
    """An object array of encoded values (None → NULL), indexed by a code column."""
    return np.array([NULL if v is None else v.encode() for v in values], dtype=object)


def lookup(table: np.ndarray, codes: np.ndarray) -> list[bytes]:
    return table[codes].tolist()


def rows(pieces: Sequence[Piece]) -> bytes:
    """Tab-join the pieces of each row; a `bytes` piece is the same for every row.

    Returns the rows newline-terminated, ready for `copy.write`.
    """
    columns = [itertools.repeat(p) if isinstance(p, bytes) else p for p in pieces]
    body = b"\n".join(map(b"\t".join, zip(*columns, strict=False)))
    return body + b"\n" if body else b""


def joined(*constants: bytes) -> bytes:
    """Several constant columns as one piece (NULL runs of an event type, for example)."""
    return b"\t".join(constants)


def _digits(target: np.ndarray, first: int, width: int, values: np.ndarray) -> None:
    """Write `values` zero-padded into target[:, first:first + width] as ASCII digits."""
    remaining = values.astype(np.int64, copy=True)
    for position in range(first + width - 1, first - 1, -1):
        remaining, digit = np.divmod(remaining, 10)
        target[:, position] = 48 + digit


def padded_ids(prefix: str, numbers: np.ndarray, width: int) -> list[bytes]:
    """`prefix` followed by each number zero-padded to `width` digits, e.g. ACC-0000042."""
    head = prefix.encode()
    out = np.empty((numbers.size, len(head) + width), dtype=np.uint8)
    out[:, : len(head)] = np.frombuffer(head, dtype=np.uint8)
    _digits(out, len(head), width, numbers)
    return out.view(f"S{out.shape[1]}").ravel().tolist()


def _date_matrix(days: np.ndarray) -> np.ndarray:
    """ISO dates (YYYY-MM-DD) as an (n, 10) byte matrix, via a table over the day range."""
    if days.size == 0:
        return np.empty((0, 10), dtype=np.uint8)
    low = int(days.min())
    span = np.arange(low, int(days.max()) + 1).astype("datetime64[D]")
    table = np.datetime_as_string(span, unit="D").astype("S10").view(np.uint8).reshape(-1, 10)
    return table[days - low]


def dates(days: np.ndarray) -> list[bytes]:
    """Dates given as day numbers → b"2025-03-04"."""
    return _date_matrix(np.asarray(days, dtype=np.int64)).view("S10").ravel().tolist()


def timestamps(seconds: np.ndarray) -> list[bytes]:
    """UTC instants given as epoch seconds → b"2025-03-04 08:12:33+00" (timestamptz input)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    days, of_day = np.divmod(seconds, SECONDS_PER_DAY)
    out = np.empty((seconds.size, 22), dtype=np.uint8)
    out[:, :10] = _date_matrix(days)
    out[:, 10] = ord(" ")
    hours, rest = np.divmod(of_day, 3600)
    minutes, secs = np.divmod(rest, 60)
    _digits(out, 11, 2, hours)
    out[:, 13] = ord(":")
    _digits(out, 14, 2, minutes)
    out[:, 16] = ord(":")
    _digits(out, 17, 2, secs)
    out[:, 19:22] = np.frombuffer(b"+00", dtype=np.uint8)
    return out.view("S22").ravel().tolist()


def integers(values: np.ndarray) -> list[bytes]:
    return [b"%d" % v for v in np.asarray(values).tolist()]


def cents(values: np.ndarray) -> list[bytes]:
    """Integer cents → b"1234.50" (numeric input), exact."""
    return [b"%d.%02d" % divmod(v, 100) for v in np.asarray(values, dtype=np.int64).tolist()]


def text_array(items: Sequence[str]) -> bytes:
    """A PostgreSQL array literal of simple identifiers (no quoting needed)."""
    return ("{" + ",".join(items) + "}").encode()


def flag_arrays(names: Sequence[str]) -> np.ndarray:
    """Array literals for every subset of `names`, indexed by the subset's bit mask."""
    table = [
        text_array([name for bit, name in enumerate(names) if mask >> bit & 1])
        for mask in range(1 << len(names))
    ]
    return np.array(table, dtype=object)
