"""Look at a snapshot before anything is fitted on it: numbers stored as text, too few rows.

One stray ``"1,234.5"`` in a CSV column of numbers makes the whole column text; a transform
that expects numbers then fails deep inside scikit-learn (``Cannot use mean strategy with
non-numeric data``), naming neither the column nor the row. :func:`check_text_columns`
refuses such a column before the first fit, naming the column, the components that read it,
the first stray values with their rows and the snapshot. A column counts as numbers stored as
text when the snapshot holds it as ``string`` or ``category`` and either it was numeric
before (an earlier schema of the name, or the snapshot an earlier version of the system was
trained on) or the snapshot's own data-quality note found it mostly numbers with a few
strays (:func:`~regrow.data.quality.quality_notes`). A component that reads such a column
as text on purpose says so with its own ``Cast(column, "string")`` adapter: the caller leaves
columns a component adapts itself out of ``readers``.

:func:`few_rows` says when a snapshot is small to train on: fewer than :data:`MIN_ROWS` rows,
or fewer than :data:`ROWS_PER_FEATURE` per data column a member reads.

>>> import pyarrow as pa
>>> stray_values(pa.array(["12.5", None, "1,234.5", "7", "n/a"]))
(2, [(2, '1,234.5'), (4, 'n/a')])
>>> print(few_rows(3, {"m": 2}, "snapshot 'credit'"))
snapshot 'credit' has 3 rows to train on, fewer than 50 (at least 50 rows, and 10 per data
column a member reads: 'm' reads 2): the fitted version may only have memorised them; train
on more rows
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from regrow.data.quality import NUMBER_TEXT
from regrow.errors import DataError

__all__ = [
    "MIN_ROWS",
    "NUMERIC_DTYPES",
    "ROWS_PER_FEATURE",
    "TEXT_DTYPES",
    "check_text_columns",
    "few_rows",
    "stray_values",
]

MIN_ROWS = 50
"""Fewer rows than this in a training snapshot are warned about."""

ROWS_PER_FEATURE = 10
"""Fewer rows than this per data column a member reads are warned about."""

TEXT_DTYPES = ("string", "category")
"""Schema dtypes that hold text."""

NUMERIC_DTYPES = ("int", "float")
"""Schema dtypes that hold numbers."""
_SHOWN = 5


def stray_values(
    array: pa.Array | pa.ChunkedArray, limit: int = _SHOWN
) -> tuple[int, list[tuple[int, str]]]:
    """How many non-null values of a text column are not numbers, and the first ``limit`` of
    them with their rows (counted from 0, as in a pandas frame of the snapshot)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    text = array.cast(pa.large_string())
    stray = pc.and_(pc.is_valid(text), pc.invert(pc.match_substring_regex(text, NUMBER_TEXT)))
    stray = pc.fill_null(stray, False)
    rows = pc.indices_nonzero(stray)
    count = len(rows)
    first = rows.slice(0, limit).to_pylist()
    return count, [(int(row), str(text[row].as_py())) for row in first]


def check_text_columns(
    read: Callable[[str], pa.Array | pa.ChunkedArray],
    dtypes: Mapping[str, str],
    readers: Mapping[str, Sequence[str]],
    *,
    numeric_before: Mapping[str, str],
    flagged: Collection[str],
    snapshot: str,
) -> None:
    """Refuse a snapshot whose components would read numbers stored as text.

    ``dtypes`` are the snapshot's column dtypes, ``readers`` maps each data column to the
    components about to be fitted on it, ``numeric_before`` maps the columns that were numeric
    before to where (e.g. ``"float in schema v1 of 'credit'"``), ``flagged`` names the columns
    the snapshot's note found mostly numbers. ``read(column)`` gives a column's values; it is
    called only for the columns in question. ``snapshot`` names the snapshot in the message.

    Raises :class:`~regrow.errors.DataError` listing each such column with its stray values;
    a column whose values all read as numbers is not refused (models convert them).
    """
    problems: list[str] = []
    examples: list[str] = []
    for column, components in readers.items():
        if dtypes.get(column) not in TEXT_DTYPES or not components:
            continue
        if column in numeric_before:
            why = f"it was {numeric_before[column]}"
        elif column in flagged:
            why = "most of its values are numbers"
        else:
            continue
        count, first = stray_values(read(column))
        if not count:
            continue
        shown = ", ".join(f"row {row}: {value!r}" for row, value in first)
        more = f" and {count - len(first):,} more" if count > len(first) else ""
        who = ", ".join(repr(c) for c in components)
        problems.append(
            f"column {column!r} (read by {who}) is {dtypes[column]} in this snapshot, but "
            f"{why}: {count:,} value{'s' if count != 1 else ''} not numeric ({shown}{more})"
        )
        examples.append(column)
    if not problems:
        return
    lines = "".join(f"\n  - {p}" for p in problems)
    first_column = examples[0]
    raise DataError(
        f"{snapshot} holds numbers stored as text; nothing was fitted (rows count from 0, "
        f"as in the snapshot's frame; in a CSV with a header, row N is line N + 2):{lines}",
        hint="fix the values in the source and snapshot again (make them numbers, or empty "
        f"for a null: e.g. frame[{first_column!r}] = pandas.to_numeric(frame[{first_column!r}]"
        ", errors='coerce')), then train on the new snapshot; if a component reads the "
        f"column as text on purpose, give it its own adapter Cast({first_column!r}, 'string')",
    )


def few_rows(rows: int, features: Mapping[str, int], snapshot: str) -> str | None:
    """A warning line when ``rows`` are few to train on, else None.

    ``features`` maps each member to the data columns it reads (directly or through
    transforms); the minimum is :data:`MIN_ROWS`, or :data:`ROWS_PER_FEATURE` per column of
    the member that reads the most, whichever is larger.
    """
    widest = max(features, key=lambda m: features[m], default=None)
    width = features[widest] if widest is not None else 0
    minimum = max(MIN_ROWS, ROWS_PER_FEATURE * width)
    if rows >= minimum:
        return None
    reads = f": {widest!r} reads {width}" if widest is not None else ""
    return (
        f"{snapshot} has {rows:,} row{'s' if rows != 1 else ''} to train on, fewer than "
        f"{minimum:,} (at least {MIN_ROWS} rows, and {ROWS_PER_FEATURE} per data column a "
        f"member reads{reads}): the fitted version may only have memorised them; train on "
        "more rows"
    )
