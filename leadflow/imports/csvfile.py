"""Reading an import file: UTF-8 CSV streamed record by record, hashed on the way.

The file is read once: the bytes pass through SHA-256 as the CSV reader consumes them, so
a 1 GB file is never held in memory and never read twice. Every record carries the
physical line it starts on (the header is line 1; a quoted value with line breaks spans
several lines), which is what a user sees in an editor.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from leadflow.errors import LeadflowError

# Notes from a fair or long user agents can be big; the csv default (128 KiB) would make
# a whole import fail on one long cell.
csv.field_size_limit(16 * 1024 * 1024)


class _HashingReader(io.RawIOBase):
    """A raw binary stream that feeds every byte it hands out into a SHA-256."""

    def __init__(self, stream: io.BufferedIOBase) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self._stream.read(1024 * 1024):
            pass  # pragma: no cover - the CSV reader consumes the whole file


@dataclass(slots=True)
class Record:
    line: int
    values: list[str]


class CsvFile:
    """An open import file: its header, then its records; `sha256()` once they are read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            binary = path.open("rb")
        except FileNotFoundError:
            raise LeadflowError(f"{path}: no such file.") from None
        except IsADirectoryError:
            raise LeadflowError(f"{path}: is a directory, not a CSV file.") from None
        except OSError as error:
            raise LeadflowError(f"{path}: cannot be read ({error.strerror}).") from None
        self._hashing = _HashingReader(binary)
        self._binary = binary
        # utf-8-sig drops a byte-order mark; newline="" lets csv handle \r\n and quoted breaks.
        self._text = io.TextIOWrapper(
            io.BufferedReader(self._hashing, buffer_size=1024 * 1024),
            encoding="utf-8-sig",
            newline="",
        )
        self._reader = csv.reader(self._text)
        try:
            self.header = self._read_header()
        except LeadflowError:
            self.close()
            raise

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._text.close()
        self._binary.close()

    def _read_header(self) -> list[str]:
        for values in self._rows():
            if any(value.strip() for value in values):
                return [value.strip().lower() for value in values]
        raise LeadflowError(f"{self.path}: the file is empty; a header row is required.")

    def records(self) -> Iterator[Record]:
        """The data records after the header; blank lines are skipped."""
        previous_end = self._reader.line_num
        for values in self._rows():
            start, previous_end = previous_end + 1, self._reader.line_num
            if values and any(values):
                yield Record(start, values)

    def sha256(self) -> str:
        """The hex digest of the whole file (call after `records()` is exhausted)."""
        self._hashing.drain()
        return self._hashing.sha256.hexdigest()

    def _rows(self) -> Iterator[list[str]]:
        """csv rows, with decoding and CSV syntax errors turned into messages naming the line."""
        while True:
            try:
                yield next(self._reader)
            except StopIteration:
                return
            except UnicodeDecodeError as error:
                # The decoder reads ahead, so the line is where the reader stood, not exact.
                raise LeadflowError(
                    f"{self.path}: near line {self._reader.line_num + 1}: the file is not valid "
                    f"UTF-8 ({error.reason}); save it as UTF-8 and import it again."
                ) from None
            except csv.Error as error:
                raise LeadflowError(
                    f"{self.path}: line {self._reader.line_num}: unreadable CSV ({error})."
                ) from None
