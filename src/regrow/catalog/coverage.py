"""Which catalog rows the audit chain covers, and the hash of one row.

Every audit event carries, in its payload under ``"covers"``, the hash of each row it
records (see :func:`regrow.catalog.audit.append`); :func:`regrow.catalog.audit.verify` checks
that every covered row still hashes to what its newest covering event says. This module is the
registry of covered tables (:data:`COVERED`) and the canonical form of a row that is hashed.

A row's hash covers its table name, its primary key and the registered columns. Values are put
in one form that reads back the same on SQLite and PostgreSQL: timestamps as ISO 8601 in UTC,
floats as Python floats (integers as ints), JSON as canonical JSON (sorted keys).

Columns left out, because they change without an audited write:

* ``runs.heartbeat_at``, ``runs.lease_seconds``, ``runs.holder``: the run lease
  (:mod:`regrow.catalog.leases`) renews them every few seconds while the run is alive.

Tables not covered: ``audit_events`` and ``audit_head`` (the chain itself), ``fit_leases``
(short-lived locks), ``member_outputs`` (a cache, never a record), ``profiles`` (derived
statistics, rewritten by ``put_profile``), ``components`` (one row per name, implied by its
component versions), ``prediction_files`` (the prediction log's index, written at serving
rates), ``prediction_feedback`` (labels of served rows, replaced when a later label comes;
each call is audited as ``feedback.add`` with a digest of its labels), ``watch_leases``
(short-lived locks, renewed every few seconds), ``watch_cycles`` (a watcher's working record,
rewritten at each step; the whole record of a finished cycle is the payload of its
``watch.cycle`` audit event), ``alembic_version``.

A migration that changes a covered table's columns changes its rows' hashes: it sets
``regrow.catalog.core.ROWS_COVERED_SINCE`` to its revision, so that catalogs upgraded past it
get a new baseline (:func:`regrow.catalog.audit.baseline`).

>>> row_hash("aliases", ("churn", "champion"), {"system": "churn", "name": "champion",
...          "version_id": "a" * 64, "revision": 1,
...          "updated_at": datetime(2024, 1, 1, tzinfo=UTC)})[:16]
'e1d5f38d847566e9'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa

from regrow._hashing import canonical_json, sha256_hex
from regrow.catalog import models

__all__ = [
    "COVERED",
    "Coverage",
    "Covered",
    "Ledger",
    "RowProblem",
    "any_rows",
    "canonical_key",
    "coverage",
    "entries",
    "fast_canonical_json",
    "row_hash",
    "row_value",
]


@dataclass(frozen=True)
class Coverage:
    """One covered table: its primary-key columns (in order) and the columns hashed."""

    table: sa.Table
    key: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        """The table's name."""
        return self.table.name

    def select(self) -> sa.Select[Any]:
        """A select of the key and hashed columns, ordered by the primary key."""
        table = self.table
        return sa.select(*(table.c[c] for c in self.columns)).order_by(
            *(table.c[c] for c in self.key)
        )

    def key_of(self, row: Mapping[Any, Any]) -> Any:
        """The primary key of ``row`` as stored in an event: a scalar, or a list."""
        if len(self.key) == 1:
            return row[self.key[0]]
        return [row[c] for c in self.key]


def _cover(model: type[models.Base], *, exclude: Sequence[str] = ()) -> Coverage:
    table = cast(sa.Table, model.__table__)
    key = tuple(c.name for c in table.primary_key.columns)
    columns = tuple(c.name for c in table.columns if c.name not in exclude)
    assert set(key) <= set(columns), f"{table.name}: a key column is excluded"
    return Coverage(table=table, key=key, columns=columns)


#: The covered tables, by name, in the order verification walks them.
COVERED: dict[str, Coverage] = {
    c.name: c
    for c in (
        _cover(models.Schema),
        _cover(models.Snapshot),
        _cover(models.ComponentVersion),
        _cover(models.SystemVersion),
        _cover(models.Run, exclude=("heartbeat_at", "lease_seconds", "holder")),
        _cover(models.Evaluation),
        _cover(models.MonitorReport),
        _cover(models.Plan),
        _cover(models.Alias),
        _cover(models.AliasMove),
        _cover(models.Identity),
        _cover(models.Token),
        _cover(models.Approval),
        _cover(models.PolicyRecord),
        _cover(models.Experiment),
        _cover(models.Rollout),
    )
}


def coverage(table: str) -> Coverage:
    """The coverage of ``table``; a table that is not covered is a programming error."""
    try:
        return COVERED[table]
    except KeyError:
        raise ValueError(
            f"table {table!r} is not covered by the audit chain (covered: {', '.join(COVERED)})"
        ) from None


def row_value(value: Any) -> Any:
    """One column value in the form that is hashed (the same on SQLite and PostgreSQL)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite hands naive UTC back where no type processing ran
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value) if abs(value) < 2**53 else value
    return value


def canonical_key(table: str, key: Any) -> tuple[str, Any]:
    """What identifies a row of ``table`` (``key`` a scalar, or a list/tuple), hashable."""
    return (table, tuple(key) if isinstance(key, list | tuple) else key)


def row_hash(table: str, key: Any, row: Mapping[Any, Any]) -> str:
    """The hash of one row: its table, key and every column given, in canonical form."""
    if isinstance(key, tuple):
        key = list(key)
    content = {"table": table, "key": key, "row": {k: row_value(v) for k, v in row.items()}}
    return sha256_hex(fast_canonical_json(content).encode())


def fast_canonical_json(value: Any) -> str:
    """:func:`~regrow._hashing.canonical_json`, faster for values made of plain JSON types
    with string keys (what the database hands back, and what ``audit.normalize`` makes of a
    payload): the same string, without walking the value first."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):  # not plain JSON: numpy, sets, NaN, datetimes...
        return canonical_json(value)


@dataclass(frozen=True)
class Covered:
    """What the newest event covering a row says: the row's hash (None: deleted) and the
    event's seq and action."""

    hash: str | None
    seq: int
    action: str


@dataclass(frozen=True)
class RowProblem:
    """A covered row that does not match the chain (``seq``: the event that recorded it,
    None when no event covers it)."""

    table: str
    key: Any
    seq: int | None
    message: str

    def __str__(self) -> str:
        return self.message


class Ledger:
    """The newest covering event of every row, gathered while walking the chain."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[tuple[str, Any], tuple[Any, Covered]]] = {t: {} for t in COVERED}

    def record(self, seq: int, action: str, entries: Any) -> str | None:
        """Take in the ``covers`` entries of event ``seq``; a reason if they are malformed."""
        if not isinstance(entries, list):
            return "has a malformed 'covers' list"
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("table") not in self._rows:
                return f"covers an unknown table ({entry!r:.80})"
            digest = entry.get("hash")
            if digest is not None and not isinstance(digest, str):
                return f"covers a row with a malformed hash ({entry!r:.80})"
            key = entry.get("key")
            table = entry["table"]
            self._rows[table][canonical_key(table, key)] = (key, Covered(digest, seq, action))
        return None

    def check(self, conn: sa.Connection, batch: int = 1000) -> tuple[RowProblem | None, int]:
        """Compare every covered table with the ledger, one ordered pass per table.

        Returns the first problem (the one whose event is oldest; rows no event covers come
        last) and the number of problems found.
        """
        problems: list[RowProblem] = []
        for name, cover in COVERED.items():
            expected = self._rows[name]
            seen: set[tuple[str, Any]] = set()
            with conn.execute(cover.select().execution_options(yield_per=batch)) as result:
                for row in result.mappings():
                    key = cover.key_of(row)
                    canon = canonical_key(name, key)
                    seen.add(canon)
                    found = expected.get(canon)
                    if found is None:
                        problems.append(_problem(name, key, None, "is not recorded by any audit "
                                                 "event (inserted outside regrow)"))  # fmt: skip
                    elif found[1].hash is None:
                        problems.append(_problem(name, key, found[1], "exists, but {event} "
                                                 "recorded its deletion"))  # fmt: skip
                    elif row_hash(name, found[0], row) != found[1].hash:
                        problems.append(
                            _problem(name, key, found[1], "was altered after {event} recorded it")
                        )
            for canon, (key, covered) in expected.items():
                if covered.hash is not None and canon not in seen:
                    problems.append(
                        _problem(name, key, covered, "is missing (deleted); {event} recorded it")
                    )
        if not problems:
            return None, 0
        first = min(problems, key=lambda p: (p.seq is None, p.seq or 0))
        return first, len(problems)


def _problem(table: str, key: Any, covered: Covered | None, what: str) -> RowProblem:
    event = f"audit event seq {covered.seq} ({covered.action})" if covered else ""
    message = f"{table} row {canonical_json(key)} {what.format(event=event)}"
    return RowProblem(table, key, covered.seq if covered else None, message)


def entries(conn: sa.Connection, batch: int = 1000) -> list[dict[str, Any]]:
    """A ``covers`` entry for every row of every covered table (the baseline event's)."""
    out: list[dict[str, Any]] = []
    for name, cover in COVERED.items():
        with conn.execute(cover.select().execution_options(yield_per=batch)) as result:
            for row in result.mappings():
                key = _plain(cover.key_of(row))
                out.append({"table": name, "key": key, "hash": row_hash(name, key, row)})
    return out


def any_rows(conn: sa.Connection) -> bool:
    """Whether any covered table holds a row."""
    return any(
        conn.execute(sa.select(sa.literal(1)).select_from(c.table).limit(1)).first() is not None
        for c in COVERED.values()
    )


def _plain(key: Any) -> Any:
    return key if not isinstance(key, tuple | list) else list(key)
