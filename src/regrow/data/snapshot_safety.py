"""Keep a dataset name's shape from changing silently.

A snapshot stored under a name that already has snapshots is compared with the schema of the
name's newest one (:meth:`Schema.compare`). :func:`check_snapshot` finds what would break the
code and models built on that name, and :func:`refuse` turns it into an
:class:`~regrow.errors.IncompatibleSchema` that lists it with the whole diff:

* a removed column;
* a dtype the old schema does not accept (``float`` → ``string``: a numeric column that now
  holds text; ``int`` → ``float``); ``float`` → ``int`` and ``category`` ↔ ``string`` are
  compatible;
* nulls in the target column (a row without a label cannot train or evaluate anything).

Added columns are compatible, and mentioned. :func:`review_snapshot` runs the check on a
prepared snapshot, raises the refusal unless the change is allowed, and returns the lines to
warn about and the audit record of an allowed change. :func:`align_to` first reads the new
data the way the old schema did where that loses nothing (a column of whole floats as ``int``,
an all-null column as the old dtype), so a pandas column that gained a NaN does not look like
a type change.

>>> from regrow.data import ColumnSchema, Schema
>>> old = Schema((ColumnSchema("spend", "float"), ColumnSchema("plan", "category")))
>>> new = Schema((ColumnSchema("spend", "string"), ColumnSchema("extra", "int")))
>>> check = check_snapshot(old, new, {}, target=None)
>>> check.problems
("column 'plan' (category) is missing", "column 'spend': dtype float → string")
>>> check.mentions
("column 'extra' (int) is new",)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from regrow.data._compute import as_array
from regrow.data.quality import Note
from regrow.data.schema import Schema, conform_column
from regrow.data.schema_diff import SchemaDiff, dtype_accepts
from regrow.errors import DataError, IncompatibleSchema

if TYPE_CHECKING:
    from regrow.data.snapshot import PreparedSnapshot

__all__ = [
    "Review",
    "SchemaCheck",
    "align_to",
    "check_snapshot",
    "emptied_columns",
    "loose_categories",
    "refuse",
    "review_snapshot",
    "typed_like",
]


@dataclass(frozen=True)
class SchemaCheck:
    """What storing a snapshot would do to its name's schema.

    ``diff`` is from the previous schema (``None`` for a new name) to the new one;
    ``problems`` are the reasons to refuse; ``mentions`` the compatible changes worth a word.
    """

    diff: SchemaDiff | None
    problems: tuple[str, ...]
    mentions: tuple[str, ...]

    @property
    def refused(self) -> bool:
        """Whether anything would break."""
        return bool(self.problems)


def check_snapshot(
    previous: Schema | None,
    new: Schema,
    nulls: Mapping[str, int],
    *,
    target: str | None,
    notes: Sequence[Note] = (),
    rows: int | None = None,
) -> SchemaCheck:
    """Compare ``new`` with ``previous`` and check the ``target``'s ``nulls`` (column → count).

    ``notes`` (from :func:`~regrow.data.quality.quality_notes`) add detail to a dtype change,
    e.g. the stray values that made a numeric column text; ``rows`` adds the share of nulls.
    A ``target`` that is not a column of either schema raises :class:`~regrow.errors.DataError`.
    """
    problems: list[str] = []
    mentions: list[str] = []
    diff = previous.compare(new) if previous is not None else None
    if diff is not None:
        problems += [f"column {c.name!r} ({c.dtype}) is missing" for c in diff.removed]
        detail = {  # the values, not the advice: the refusal gives its own
            n.column: n.message.partition(": ")[2].removesuffix(n.fix)
            for n in notes
            if n.kind == "not_numeric"
        }
        for name, (old, now) in diff.changed.items():
            if not dtype_accepts(old.dtype, now.dtype):
                extra = f" ({detail[name]})" if name in detail else ""
                problems.append(f"column {name!r}: dtype {old.dtype} → {now.dtype}{extra}")
        mentions += [f"column {c.name!r} ({c.dtype}) is new" for c in diff.added]
    if target is not None:
        if target not in new and (previous is None or target not in previous):
            raise DataError(
                f"target {target!r} is not a column of the data",
                hint=f"pick one of {', '.join(map(repr, new.names))}, or leave the target out",
            )
        count = nulls.get(target, 0)
        if target in new and count:
            share = f" ({100 * count / rows:.2f}% of {rows:,} rows)" if rows else ""
            plural = "s" if count != 1 else ""
            problems.append(f"target {target!r} has {count:,} null{plural}{share}")
    return SchemaCheck(diff, tuple(problems), tuple(mentions))


@dataclass(frozen=True)
class Review:
    """What :func:`review_snapshot` found in a snapshot it lets through.

    ``warnings`` are one line each: the quality notes, the compatible changes worth a word
    and the incompatible ones that were allowed; ``change`` is the audit payload of an allowed
    incompatible change (``None`` when there was none).
    """

    check: SchemaCheck
    warnings: tuple[str, ...]
    change: dict[str, Any] | None


def review_snapshot(
    prepared: PreparedSnapshot,
    previous: Schema | None,
    version: int | None,
    *,
    name: str,
    target: str | None,
    allow: bool,
) -> Review:
    """Check ``prepared`` against its name's ``previous`` schema (``version``) and ``target``.

    Raises :func:`refuse`'s error when something would break, unless ``allow``.
    """
    table = prepared.table
    nulls = {n: table.column(n).null_count for n in table.column_names}
    check = check_snapshot(
        previous, prepared.schema, nulls, target=target, notes=prepared.notes, rows=table.num_rows
    )
    if check.refused and not allow:
        raise refuse(check, name=name, version=version)
    lines = [n.message for n in prepared.notes]
    lines += [f"{m} since schema v{version} (a compatible change)" for m in check.mentions]
    lines += [f"allowed schema change: {p}" for p in check.problems]
    change = None
    if check.refused:
        change = {
            "snapshot": prepared.id,
            "from_version": version,
            "problems": list(check.problems),
            "changes": list(check.diff.changes) if check.diff is not None else [],
        }
    return Review(check, tuple(lines), change)


def emptied_columns(
    table: pa.Table, earlier: Iterable[tuple[str, Mapping[str, Any]]]
) -> dict[str, str]:
    """The columns of ``table`` that hold no value at all though an ``earlier`` snapshot
    (its label and profile, newest first) counted values in them, each with a warning line.

    A column that was always null may be null; one that had values and now has none is most
    likely a broken feed, whatever the schema allows.

    >>> table = pa.table({"x": pa.array([None, None], pa.float64()), "y": [1, 2]})
    >>> earlier = [("snapshot 'n' 1a2b3c4d5e6f", {"columns": {"x": {"count": 7}}})]
    >>> print(emptied_columns(table, earlier)["x"])
    column 'x' is entirely null (2 of 2 rows), though snapshot 'n' 1a2b3c4d5e6f had 7 values
    in it: a broken feed? Fix the source and snapshot again; a model reads no value of 'x'
    from these rows
    """
    rows = table.num_rows
    empty = [c for c in table.column_names if rows and table.column(c).null_count == rows]
    found: dict[str, str] = {}
    if not empty:
        return found
    for label, profile in earlier:
        columns = profile.get("columns") or {}
        for name in empty:
            count = (columns.get(name) or {}).get("count")
            if name not in found and isinstance(count, int) and count > 0:
                found[name] = (
                    f"column {name!r} is entirely null ({rows:,} of {rows:,} rows), though "
                    f"{label} had {count:,} value{'s' if count != 1 else ''} in it: a broken "
                    f"feed? Fix the source and snapshot again; a model reads no value of "
                    f"{name!r} from these rows"
                )
        if len(found) == len(empty):
            break
    return found


def refuse(check: SchemaCheck, *, name: str, version: int | None) -> IncompatibleSchema:
    """The error that refuses ``check`` for the dataset ``name`` whose schema is ``version``."""
    count = f"{len(check.problems)} problem{'s' if len(check.problems) != 1 else ''}"
    lines = "".join(f"\n  - {p}" for p in check.problems)
    diff = f"\n{check.diff}" if check.diff is not None and not check.diff.unchanged else ""
    head = (
        f"snapshot {name!r} does not match its schema v{version} ({count})"
        if version is not None
        else f"snapshot {name!r} has {count}"
    )
    return IncompatibleSchema(
        f"{head}:{lines}{diff}",
        hint="fix the data (restore the column, clean the values, drop the rows without a "
        "label), or, if the change is meant, store it with allow_schema_change=True "
        "(--allow-schema-change on the command line), which records a new schema version; "
        "models trained on the old shape read the new one through boundary adapters "
        "(`regrow adapters propose SNAPSHOT --system S`)",
        problems=check.problems,
        changes=check.diff.changes if check.diff is not None else (),
    )


CATEGORIES_AT_MOST = 50
"""The most distinct values a string column :func:`align_to` reads as ``category`` may hold
(:meth:`Schema.infer <regrow.data.schema.Schema.infer>`'s default ``max_categories``)."""


def align_to(table: pa.Table, like: Schema) -> pa.Table:
    """``table`` with columns read as ``like`` says where no value changes.

    A ``float`` column whose values are all whole becomes ``int`` when ``like`` says ``int``;
    an ``int`` column becomes ``float`` when ``like`` says ``float``; an all-null column of
    unknown type takes ``like``'s dtype; a string column with at most
    :data:`CATEGORIES_AT_MOST` distinct values becomes ``category`` when ``like`` says
    ``category``. Every other column is left as it is.

    The last one is what a small window needs: three rows of a known category column hold
    too few repeats for :meth:`Schema.infer <regrow.data.schema.Schema.infer>` to call it a
    category, and it was read as ``string``, a change of type that was never made (a value
    the old categories lack still shows, as ``categories grown``).

    >>> import pyarrow as pa
    >>> from regrow.data.schema import ColumnSchema, Schema
    >>> like = Schema((ColumnSchema("plan", "category", categories=("free", "pro")),))
    >>> Schema.infer(align_to(pa.table({"plan": ["free", "pro"]}), like))["plan"].dtype
    'category'
    """
    arrays = []
    changed = False
    for name in table.column_names:
        array = as_array(table.column(name))
        if name in like:
            aligned = _aligned(array, like[name].dtype)
            changed = changed or aligned is not array
            array = aligned
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=table.column_names) if changed else table


def loose_categories(schema: Schema, like: Schema) -> tuple[str, ...]:
    """The ``string`` columns of ``schema`` that ``like`` calls ``category``: what
    :func:`typed_like` reads again from the rows.

    >>> from regrow.data.schema import ColumnSchema, Schema
    >>> like = Schema((ColumnSchema("plan", "category", categories=("free",)),))
    >>> loose_categories(Schema((ColumnSchema("plan", "string"),)), like)
    ('plan',)
    """
    return tuple(
        c.name
        for c in schema.columns
        if c.dtype == "string" and c.name in like and like[c.name].dtype == "category"
    )


def typed_like(schema: Schema, like: Schema, rows: Any) -> Schema:
    """``schema`` with its :func:`loose_categories` inferred again from ``rows`` (any table
    :func:`~regrow.data.to_arrow` accepts, holding at least those columns) read as ``like``
    says (:func:`align_to`): a snapshot stored under a new name, compared with the schema a
    model trained on (``regrow adapters propose``), has no earlier schema to be read by.

    >>> import pandas as pd
    >>> from regrow.data.schema import ColumnSchema, Schema
    >>> like = Schema((ColumnSchema("plan", "category", categories=("free", "pro")),))
    >>> rows = pd.DataFrame({"plan": ["pro", "free"]})
    >>> typed_like(Schema.infer(rows), like, rows)["plan"].categories
    ('free', 'pro')
    """
    from regrow.data.frames import to_arrow

    loose = loose_categories(schema, like)
    if not loose:
        return schema
    table = to_arrow(rows).select(list(loose))
    again = Schema.infer(align_to(table, like))
    # the column's nullability is the stored schema's (a declared schema may say more)
    return Schema(
        tuple(
            replace(again[c.name], nullable=c.nullable) if c.name in loose else c
            for c in schema.columns
        )
    )


def _aligned(array: pa.Array, dtype: str) -> pa.Array:
    kind = array.type
    if pa.types.is_null(kind):
        return conform_column(array, dtype)
    if dtype == "category" and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        # dictionary-encoded, as a pandas categorical arrives: inferred as ``category``
        if pc.count_distinct(array).as_py() <= CATEGORIES_AT_MOST:
            return array.dictionary_encode()
        return array
    if dtype == "float" and pa.types.is_integer(kind):
        return array.cast(pa.float64())
    if dtype == "int" and pa.types.is_floating(kind):
        values = pc.drop_null(array)
        whole = pc.all(pc.equal(pc.floor(values), values)).as_py() is not False
        in_range = len(values) == 0 or (
            pc.max(pc.abs(values)).as_py() < 2.0**53  # exactly representable as both
        )
        if whole and in_range:
            return array.cast(pa.int64())
    return array
