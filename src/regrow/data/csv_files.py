"""Read CSV files without guessing wrong: find the delimiter, refuse a one-column misread.

A semicolon- or tab-separated file read with commas becomes one column named ``"a;b;c"``;
stored like that, it is a snapshot nobody can use. :func:`sniff_delimiter` looks at the first
lines only (64 KB at most) and picks the delimiter among ``,`` ``;`` tab and ``|`` that splits
every line into the same number of fields, the most fields winning (commas on a tie), so its
cost does not grow with the file. :func:`read_csv` uses it unless told the delimiter, and
refuses a one-column result whose header holds a delimiter character. In a file not separated
by commas, text columns whose values all look like numbers with a decimal comma (``3,227``)
get a :class:`~regrow.errors.DataQualityWarning`: they are kept as text, not converted
(see :func:`decimal_comma_columns` for why).

>>> sniff_delimiter("a;b;c\\n1;2,5;3\\n4;5;6\\n")
';'
>>> sniff_delimiter("name,comment\\nana,\\"yes; sure\\"\\nbo,no\\n")
','
>>> sniff_delimiter("only\\n1\\n2\\n")
','
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from regrow.errors import DataError, DataQualityWarning

__all__ = ["CANDIDATES", "check_delimiter", "decimal_comma_columns", "read_csv", "sniff_delimiter"]

CANDIDATES = (",", ";", "\t", "|")
"""The delimiters :func:`sniff_delimiter` chooses from, in order of preference on a tie."""

_SAMPLE_BYTES = 64 * 1024
_SAMPLE_LINES = 50
_NAMED = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
# A number written with a decimal comma, optionally with '.' grouping thousands: 3,227 1.234,5
_DECIMAL_COMMA = r"^[+-]?(\d+|\d{1,3}(\.\d{3})+)(,\d+)?$"


def check_delimiter(delimiter: str) -> str:
    """One delimiter character; ``"\\t"`` (backslash, t) and names such as ``tab`` are accepted.

    >>> check_delimiter("tab"), check_delimiter(";")
    ('\\t', ';')
    """
    if not isinstance(delimiter, str):
        raise DataError(
            f"the delimiter must be a string (got a {type(delimiter).__name__})",
            hint="pass one character, e.g. delimiter=';'",
        )
    value = _NAMED.get(delimiter.lower(), delimiter)
    if len(value) != 1 or value in '\r\n"':
        raise DataError(
            f"the delimiter must be one character other than a quote or a newline "
            f"(got {delimiter!r})",
            hint="pass e.g. ';', ',', '|' or 'tab'",
        )
    return value


def sniff_delimiter(sample: str) -> str:
    """The delimiter among :data:`CANDIDATES` that splits the sample's lines most evenly.

    A candidate qualifies when it splits every non-empty line into the same number (> 1) of
    fields (quotes respected); the one with the most fields wins. ``,`` when none qualifies.
    """
    lines = [line for line in sample.splitlines()[:_SAMPLE_LINES] if line.strip()]
    best, best_fields = ",", 1
    for candidate in CANDIDATES:
        try:
            counts = {len(row) for row in csv.reader(lines, delimiter=candidate)}
        except csv.Error:
            continue
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = candidate, fields
    return best


def read_csv(path: Path, *, delimiter: str | None = None) -> pa.Table:
    """Read a CSV file with pyarrow (an empty field is a null, as in pandas).

    ``delimiter`` defaults to :func:`sniff_delimiter` of the file's first lines. A result with
    one column whose name holds one of :data:`CANDIDATES` raises
    :class:`~regrow.errors.DataError`: the delimiter was not the file's.
    """
    chosen = check_delimiter(delimiter) if delimiter is not None else _sniff_file(path)
    table: pa.Table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=chosen),
        # An empty field is missing, as pandas reads it (CSV cannot tell null from "").
        convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
    )
    if table.num_columns == 1:
        header = table.column_names[0]
        found = [c for c in CANDIDATES if c in header and c != chosen]
        if found:
            shown = "tab" if found[0] == "\t" else repr(found[0])
            raise DataError(
                f"{str(path)!r} was read as one column named {header!r} with the delimiter "
                f"{'tab' if chosen == chr(9) else repr(chosen)}, but its header holds a {shown}",
                hint=f"give the delimiter: --delimiter {shown} on the command line, or "
                f"delimiter={found[0]!r} in Python",
            )
    if chosen != ",":
        commas = decimal_comma_columns(table)
        if commas:
            note = (
                f"{str(path)!r}: {_listed(list(commas))} numbers with a decimal comma "
                f"({', '.join(repr(v) for v in next(iter(commas.values())))}); they are read "
                "as text, and a model reads no number from them. regrow reads '.' as the "
                "decimal mark: convert the file first, e.g. pandas.read_csv(path, sep="
                f"{chosen!r}, decimal=',').to_csv('fixed.csv', index=False)"
            )
            warnings.warn(DataQualityWarning(note, notes=(note,)), stacklevel=2)
    return table


def decimal_comma_columns(table: pa.Table) -> dict[str, list[str]]:
    """The text columns of ``table`` whose every value looks like a number written with a
    decimal comma (at least one with a comma), with up to three examples of each.

    They are reported, not converted: ``3,227`` is 3.227 where the comma is the decimal mark
    and 3227 where it groups thousands, and a file cannot say which; a number read wrong is
    stored silently, while text is flagged by every data-quality check downstream.

    >>> decimal_comma_columns(pa.table({"x": ["3,227", "12", "-0,5"], "y": ["a,1", "2", "3"]}))
    {'x': ['3,227', '12', '-0,5']}
    """
    found: dict[str, list[str]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        values = pc.drop_null(column)
        if len(values) == 0 or not pc.all(pc.match_substring_regex(values, _DECIMAL_COMMA)).as_py():
            continue
        if pc.any(pc.match_substring(values, ",")).as_py():
            found[name] = [str(v) for v in values.slice(0, 3).to_pylist()]
    return found


def _listed(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:5])
    more = f" and {len(columns) - 5} more" if len(columns) > 5 else ""
    return f"columns {shown}{more} hold" if len(columns) > 1 else f"column {shown} holds"


def _sniff_file(path: Path) -> str:
    with path.open("rb") as handle:
        raw = handle.read(_SAMPLE_BYTES)
    text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if len(raw) == _SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]  # drop the line the sample cut in two
    return sniff_delimiter(text)
