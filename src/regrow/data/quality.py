"""What in a table deserves a look before it is trusted: nulls, stray text, infinities.

:func:`quality_notes` finds, for every column, the nulls it holds and, for a text column
whose values are mostly numbers, the values that are not (one stray ``"oops"`` in a numeric
CSV column makes pyarrow read the whole column as strings). :func:`replace_infinities` turns
``inf`` and ``-inf`` into nulls, as NaN already is, and says how many it replaced: no profile,
drift test or model can use an infinite value, and numpy warns about them deep inside.

Each finding is a :class:`Note` whose ``message`` names the column and the count; the note of
stray text also says that the whole column is stored as strings, and how to fix the values.

>>> import pyarrow as pa
>>> table = pa.table({"x": [1.0, None, 3.0, 4.0], "y": ["1.5", "2", "oops", "4"]})
>>> for note in quality_notes(table):
...     print(note.message)
column 'x': 1 null (25.00%)
column 'y': 1 value not numeric, read as strings ('oops'): the whole column is stored as
strings, so a model reads no number from it; clean the value in the source and snapshot
again, or make it a null first (e.g. frame['y'] = pandas.to_numeric(frame['y'],
errors='coerce'))
>>> table, notes = replace_infinities(pa.table({"z": [1.0, float("inf"), -float("inf")]}))
>>> table.column("z").to_pylist(), notes[0].message
([1.0, None, None], "column 'z': 2 infinite values (inf, -inf) stored as nulls")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from regrow.data._compute import as_array

__all__ = ["NUMBER_TEXT", "Note", "quality_notes", "replace_infinities", "text_column_fix"]

#: A number as text (a regular expression): 12, -3.5, .5, 1e-3, inf, NaN; 1_000 is not one
#: (pandas and pyarrow disagree on it).
NUMBER_TEXT = r"(?i)^\s*[-+]?((\d+\.?\d*|\.\d+)(e[-+]?\d+)?|inf|infinity|nan)\s*$"
# A number with ',' grouping thousands: 1,234.5 -12,000
_GROUPED = r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?"
_SAMPLE = 1000
_SHOWN = 3


@dataclass(frozen=True)
class Note:
    """One finding about one column: ``kind`` is ``nulls``, ``not_numeric`` or ``infinite``.

    ``fix`` is the tail of ``message`` that says what it means and what to do, if any.
    """

    column: str
    kind: str
    count: int
    message: str
    fix: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the four fields."""
        return {
            "column": self.column,
            "kind": self.kind,
            "count": self.count,
            "message": self.message,
        }


def quality_notes(table: pa.Table) -> list[Note]:
    """The nulls of every column and the non-numeric values of mostly numeric text columns."""
    notes = []
    rows = table.num_rows
    for name in table.column_names:
        array = as_array(table.column(name))
        if array.null_count:
            notes.append(
                Note(
                    name,
                    "nulls",
                    array.null_count,
                    f"column {name!r}: {_count(array.null_count, 'null')} "
                    f"({_percent(array.null_count, rows)})",
                )
            )
        if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
            note = _not_numeric(name, array)
            if note is not None:
                notes.append(note)
    return notes


def replace_infinities(table: pa.Table) -> tuple[pa.Table, list[Note]]:
    """``table`` with every ``inf`` and ``-inf`` of its float columns made null, and a note per
    column that had some."""
    notes = []
    arrays = []
    for name in table.column_names:
        array = as_array(table.column(name))
        if pa.types.is_floating(array.type):
            infinite = pc.is_inf(array)
            count = pc.sum(infinite).as_py() or 0
            if count:
                signs = pc.unique(pc.sign(array.filter(infinite))).to_pylist()
                shown = ", ".join(s for s, v in (("inf", 1.0), ("-inf", -1.0)) if v in signs)
                notes.append(
                    Note(
                        name,
                        "infinite",
                        count,
                        f"column {name!r}: {_count(count, 'infinite value')} ({shown}) "
                        "stored as nulls",
                    )
                )
                array = pc.if_else(infinite, pa.scalar(None, array.type), array)
        arrays.append(array)
    if not notes:
        return table, notes
    return pa.Table.from_arrays(arrays, names=table.column_names), notes


def _not_numeric(name: str, array: pa.Array) -> Note | None:
    values = pc.drop_null(array)
    if len(values) == 0:
        return None
    # A cheap look first: a text column that is not mostly numbers is text, and costs no more.
    sample = values.slice(0, _SAMPLE)
    if (pc.sum(pc.match_substring_regex(sample, NUMBER_TEXT)).as_py() or 0) * 2 < len(sample):
        return None
    numeric = pc.match_substring_regex(values, NUMBER_TEXT)
    stray = values.filter(pc.invert(numeric))
    if len(stray) == 0 or len(stray) * 2 > len(values):
        return None
    counts = pc.value_counts(stray)
    pairs = sorted(
        zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True),
        key=lambda pair: (-pair[1], pair[0]),
    )
    shown = ", ".join(repr(value) for value, _ in pairs[:_SHOWN])
    more = f" and {len(pairs) - _SHOWN} more" if len(pairs) > _SHOWN else ""
    fix = text_column_fix(name, [value for value, _ in pairs], len(stray))
    return Note(
        name,
        "not_numeric",
        len(stray),
        f"column {name!r}: {_count(len(stray), 'value')} not numeric, read as strings "
        f"({shown}{more}){fix}",
        fix=fix,
    )


def text_column_fix(name: str, stray: list[str], count: int) -> str:
    """What a mostly numeric column ``name`` read as text means, and how to make it numbers
    again, given its ``stray`` (distinct non-numeric) values, ``count`` of them in all: the
    tail of its note.

    >>> print(text_column_fix("balance", ["1,234.5"], 1))
    : the whole column is stored as strings, so a model reads no number from it; '1,234.5' is
    a number with ',' grouping thousands: remove the commas (e.g. frame['balance'] =
    pandas.to_numeric(frame['balance'].str.replace(',', ''))) and snapshot again
    """
    one = count == 1
    if stray and all(re.fullmatch(_GROUPED, value) for value in stray):
        said = f"{stray[0]!r} is a number" if one else "they are numbers"
        how = (
            f"{said} with ',' grouping thousands: remove the commas (e.g. frame[{name!r}] = "
            f"pandas.to_numeric(frame[{name!r}].str.replace(',', ''))) and snapshot again"
        )
    else:
        how = (
            f"clean {'the value' if one else 'the values'} in the source and snapshot again, "
            f"or make {'it a null' if one else 'them nulls'} first (e.g. frame[{name!r}] = "
            f"pandas.to_numeric(frame[{name!r}], errors='coerce'))"
        )
    return f": the whole column is stored as strings, so a model reads no number from it; {how}"


def _count(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' if count != 1 else ''}"


def _percent(count: int, total: int) -> str:
    share = 100 * count / total if total else 0.0
    return "<0.01%" if 0 < share < 0.01 else f"{share:.2f}%"
