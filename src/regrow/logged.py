"""Windows from the prediction log: what a system served, joined with the labels sent back.

A server logs every prediction (:mod:`regrow.serve.predlog`) and takes labels by request id
(``POST /regrow/v1/feedback``, :meth:`regrow.Workspace.feedback`). :func:`logged_window`
turns the rows served in a time range into a snapshot named ``<system>-served`` that
``regrow monitor``, ``regrow plan`` and ``regrow evaluate`` take like any other window:

* the **input columns** the server was sent (as logged: one column per input);
* a **time column**, the prediction time, named like the time column of the snapshot that
  the version serving most of the rows was trained on (so ``ts`` in, ``ts`` out), else
  ``served_at`` (also when an input already has that name); naive like the training one if
  it was naive (UTC wall time), else UTC;
* with ``labelled=True``, only the rows that have a label, and the system's **target
  column** holding it, coerced to the target's dtype in that training snapshot (labels come
  as JSON: ``1``, ``"1"`` and ``1.0`` are the same integer class; ``"yes"`` is no integer,
  and is refused naming the request and row); an input of the target's name gives way to it.

Rows logged under lane ``shadow`` (a rollout's candidate scored beside the version that
served the request, :mod:`regrow.serve.routing`) are left out: each request counts once.

The slices of that training snapshot that apply to the window are kept. Like monitoring
windows, the snapshot is stored without the schema review (dirty served data is a signal,
not a reason to refuse it). Times are ISO dates or times (``2026-03-01``,
``2026-03-01T12:00``, a naive time is UTC) or relative to now (``90m``, ``24h``, ``7d``,
``2w``: that long ago).

>>> from datetime import datetime, UTC
>>> now = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
>>> [t.isoformat() for t in time_range("7d", "2026-03-08T06:00", now=now)]
['2026-03-01T12:00:00+00:00', '2026-03-08T06:00:00+00:00']
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from regrow.catalog.records import SnapshotRecord, SystemVersionRecord
from regrow.errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    ConfigError,
    DataError,
    NotFound,
    SliceError,
)

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.services import Services

__all__ = ["SERVED_AT", "feedback", "logged_window", "parse_time", "time_range", "window_name"]

#: The time column of a window whose version's training snapshot has none.
SERVED_AT = "served_at"
#: The lane of rows scored beside the served ones (a rollout's shadow or blend candidate):
#: not served traffic, so not in windows.
SHADOW_LANE = "shadow"
_RELATIVE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME_HINT = (
    "write an ISO date or time (2026-03-01, 2026-03-01T12:00, 2026-03-01T12:00+02:00; naive "
    "times are UTC) or a span ago: 90m, 24h, 7d, 2w"
)


def window_name(system: str) -> str:
    """The name of the snapshots built from ``system``'s log."""
    return f"{system}-served"


def parse_time(name: str, value: Any, *, now: datetime | None = None) -> datetime:
    """``value`` (a datetime, a date, an ISO string or a span ago) as an aware UTC time."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.lower() == "now":
            return now or datetime.now(UTC)
        match = _RELATIVE.fullmatch(text)
        if match:
            try:
                ago = timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
                return (now or datetime.now(UTC)) - ago
            except OverflowError:
                raise ConfigError(
                    f"--{name} {value!r} is further back than a date can go",
                    hint="give a span of at most a few thousand years, or an ISO date",
                ) from None
        try:
            return parse_time(name, datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ConfigError(f"cannot read --{name} {value!r} as a time", hint=_TIME_HINT)


def time_range(
    since: Any, until: Any = None, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``[since, until)`` as aware UTC times (``until`` defaults to now)."""
    clock = now or datetime.now(UTC)
    start = parse_time("since", since, now=clock)
    end = clock if until is None else parse_time("until", until, now=clock)
    if start >= end:
        raise ConfigError(
            f"--since {_show(start)} is not before --until {_show(end)}",
            hint="give a since earlier than until (until defaults to now)",
        )
    return start, end


def logged_window(
    services: Services,
    system: str,
    since: Any,
    until: Any = None,
    labelled: bool = False,
    *,
    now: datetime | None = None,
) -> SnapshotRecord:
    """Store the rows ``system`` served in ``[since, until)`` as snapshot ``<system>-served``
    (see the module docs); with ``labelled``, only labelled rows, with the target column.

    Raises :class:`~regrow.errors.NotFound` for an unknown system,
    :class:`~regrow.errors.ConfigError` for unreadable times or an empty range, and
    :class:`~regrow.errors.DataError` when no logged row (or no labelled row) is in range,
    or a label cannot be read as the target's dtype.
    """
    catalog = services.catalog
    start, end = time_range(since, until, now=now)
    known = catalog.list_systems()
    if system not in known:
        raise NotFound("system", system, hint=f"known systems: {', '.join(known) or 'none'}")
    served = _read(services, system, start, end)
    version = _most_served(catalog, served)
    reference = catalog.get_snapshot(version.snapshot_id) if version.snapshot_id else None
    inputs = _inputs(served)
    time_name = reference.time_column if reference is not None else None
    if time_name is None or time_name in inputs.column_names:
        time_name = SERVED_AT
        while time_name in inputs.column_names:
            time_name += "_"
    stamps = served.column("served_at")
    if reference is not None and reference.time_column and _naive(catalog, reference):
        stamps = stamps.cast(pa.timestamp("us"))
    columns: dict[str, Any] = {n: inputs.column(n) for n in inputs.column_names}
    columns[time_name] = stamps
    table = pa.table(columns)
    if labelled:
        table = _labelled(catalog, system, version, reference, served, table)
    slices = _slices(reference, table)
    return services.snapshot(
        table, name=window_name(system), time_column=time_name, slices=slices or None,
        check_schema=False,
    )  # fmt: skip


def feedback(catalog: Catalog, system: str, labels: Any, *, actor: str | None = None) -> int:
    """Store ``labels`` of ``system``'s served rows (as ``actor``, default the catalog's);
    return how many were received.

    ``labels`` is a mapping ``{request_id: label}`` (row 0), an iterable of ``(request_id,
    label)`` pairs, ``(request_id, row, label)`` triples or ``{"id", "row", "label"}`` dicts,
    or a DataFrame with columns ``id`` (or ``request_id``), ``label`` and optionally ``row``.
    Labels no version of the system could compare with its predictions (a regressor's that
    is no number, a classifier's that is none of its classes: :func:`regrow.labels.check_labels`)
    raise :class:`~regrow.errors.DataError` naming request, row and label; nothing of the call
    is stored then.
    """
    from regrow.labels import check_labels

    items = list(_triples(labels))
    check_labels(catalog, system, items)
    return catalog.predictions.add_feedback(system, items, actor=actor)


def _triples(labels: Any) -> Iterable[tuple[Any, Any, Any]]:
    if hasattr(labels, "to_dict") and hasattr(labels, "columns"):  # a DataFrame
        labels = labels.to_dict("records")
    if isinstance(labels, Mapping):
        return ((k, 0, v) for k, v in labels.items())
    if isinstance(labels, str | bytes) or not isinstance(labels, Iterable):
        raise DataError(
            f"labels must be a mapping, pairs, triples, dicts or a DataFrame (got {labels!r:.60})",
            hint="e.g. {'r1': 1} or [('r1', 0, 1)] or [{'id': 'r1', 'row': 0, 'label': 1}]",
        )
    return (_triple(n, item) for n, item in enumerate(labels))


def _triple(n: int, item: Any) -> tuple[Any, Any, Any]:
    if isinstance(item, Mapping):
        unknown = set(item) - {"id", "request_id", "row", "label"}
        if unknown or "label" not in item or ("id" in item) == ("request_id" in item):
            raise DataError(
                f"label #{n} is {dict(item)!r:.80}",
                hint="a label dict has 'id' (or 'request_id'), 'label' and optionally 'row'",
            )
        return item.get("id", item.get("request_id")), item.get("row", 0), item["label"]
    if isinstance(item, tuple | list) and len(item) == 2:
        return item[0], 0, item[1]
    return item  # type: ignore[no-any-return]  # a triple, or what add_feedback names as bad


def _show(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _read(services: Services, system: str, start: datetime, end: datetime) -> pa.Table:
    """The logged rows of ``system`` served in ``[start, end)``, in the log's layout."""
    import pyarrow.parquet as pq

    parts: list[pa.Table] = []
    for f in services.catalog.predictions.files(system, since=start, until=end):
        try:
            data = services.store.get(f.artifact)
        except (ArtifactNotFound, ArtifactCorrupted) as exc:
            raise DataError(
                f"the log file {f.artifact[:12]} of {system!r} ({f.rows:,} rows served "
                f"{_show(f.first_at)} to {_show(f.last_at)}) is lost: {exc.message}",
                hint="restore the artifact store from a backup, or build the window from a "
                "range that leaves that hour out",
            ) from exc
        table = pq.read_table(pa.BufferReader(data))
        at = table.column("served_at")
        keep = pc.and_(pc.greater_equal(at, pa.scalar(start, at.type)),
                       pc.less(at, pa.scalar(end, at.type)))  # fmt: skip
        if "lane" in table.column_names:  # a shadow's rows scored requests main served
            keep = pc.and_(keep, pc.not_equal(table.column("lane"), pa.scalar(SHADOW_LANE)))
        parts.append(table.filter(keep))
    rows = sum(p.num_rows for p in parts)
    if not rows:
        span = services.catalog.predictions.span(system)
        logged = (
            f"its log holds {span[2]:,} rows served from {_show(span[0])} to {_show(span[1])}"
            if span
            else "nothing of it is logged yet: serve it with log_predictions = true"
        )
        raise DataError(
            f"no logged predictions of {system!r} between {_show(start)} and {_show(end)}",
            hint=f"{logged}; choose --since/--until in that range",
        )
    return pa.concat_tables([_flat(p) for p in parts], promote_options="permissive")


def _flat(table: pa.Table) -> pa.Table:
    """The log's columns with the ``input`` struct spread into ``input.<name>`` columns."""
    inputs = table.select(["input"]).flatten()
    rest = table.select(["request_id", "row", "served_at", "system_version"])
    for name, column in zip(inputs.column_names, inputs.columns, strict=True):
        rest = rest.append_column(name, column)
    return rest


def _inputs(served: pa.Table) -> pa.Table:
    names = [n for n in served.column_names if n.startswith("input.")]
    return served.select(names).rename_columns([n.removeprefix("input.") for n in names])


def _most_served(catalog: Catalog, served: pa.Table) -> SystemVersionRecord:
    counts = pc.value_counts(served.column("system_version")).to_pylist()
    ref = max(counts, key=lambda c: (c["counts"], c["values"]))["values"]
    return catalog.get_system_version(ref)


def _naive(catalog: Catalog, reference: SnapshotRecord) -> bool:
    """Whether the reference's time column holds naive times (its profile's ``min`` says)."""
    try:
        columns = catalog.get_profile(reference.id).get("columns", {})
    except NotFound:  # a snapshot regrow did not profile: naive, like most data
        return True
    column = columns.get(reference.time_column) if isinstance(columns, Mapping) else None
    low = column.get("min") if isinstance(column, Mapping) else None
    return not (isinstance(low, str) and ("+" in low[10:] or low.endswith("Z")))


def _target_dtype(catalog: Catalog, reference: SnapshotRecord | None, target: str) -> str | None:
    if reference is None:
        return None
    for column in catalog.snapshot_schema(reference.id).spec.get("columns", []):
        if isinstance(column, Mapping) and column.get("name") == target:
            dtype = column.get("dtype")
            return dtype if isinstance(dtype, str) else None
    return None


def _labelled(
    catalog: Catalog,
    system: str,
    version: SystemVersionRecord,
    reference: SnapshotRecord | None,
    served: pa.Table,
    table: pa.Table,
) -> pa.Table:
    target = version.spec.get("target")
    if not isinstance(target, str):
        raise DataError(
            f"{version.ref} has no target column to put the labels in",
            hint="build an unlabelled window (without --labelled)",
        )
    ids = served.column("request_id").to_pylist()
    rows = served.column("row").to_pylist()
    found = catalog.predictions.labels(system, dict.fromkeys(ids))
    # A client may reuse a request id: a label then belongs to the latest prediction under it.
    latest: dict[tuple[str, int], int] = {}
    for i in pc.sort_indices(served.column("served_at")).to_pylist():
        latest[(ids[i], rows[i])] = i
    keep, values, keys = [], [], []
    for i, key in enumerate(zip(ids, rows, strict=True)):
        label = found.get(key)
        if label is not None and latest[key] == i:
            keep.append(i)
            values.append(label)
            keys.append(key)
    if not keep:
        raise DataError(
            f"none of the {served.num_rows:,} rows {system!r} served in the range has a label",
            hint="send labels by request id (POST /regrow/v1/feedback, Workspace.feedback), "
            "or build an unlabelled window (without --labelled)",
        )
    dtype = _target_dtype(catalog, reference, target)
    column = _coerce(values, keys, dtype, target, system)
    _check_classes(catalog, version, column, keys, system)
    if target in table.column_names:
        table = table.drop_columns([target])
    return table.take(pa.array(keep, pa.int64())).append_column(target, column)


def _check_classes(
    catalog: Catalog,
    version: SystemVersionRecord,
    column: pa.Array,
    keys: list[tuple[str, int]],
    system: str,
) -> None:
    """Refuse labels of a classifier that are none of the classes its members know."""
    from regrow.labels import classes_of

    known = classes_of(catalog, version)
    if not known:
        return
    bad = [(k, v) for k, v in zip(keys, column.to_pylist(), strict=True) if v not in known]
    if bad:
        shown = ", ".join(f"request {k[0]!r} row {k[1]}: {v!r:.30}" for k, v in bad[:3])
        raise DataError(
            f"{len(bad):,} labels of {system!r} are none of the classes {sorted(known, key=str)} "
            f"that {version.ref} predicts: {shown}{', ...' if len(bad) > 3 else ''}",
            hint="send labels of those classes (a later label for the same request and row "
            "replaces a wrong one); a new class needs a version trained on it",
        )


def _coerce(
    values: list[Any], keys: list[tuple[str, int]], dtype: str | None, target: str, system: str
) -> pa.Array:
    """The labels as an Arrow column of the target's dtype (see the module docs)."""
    if dtype is None:
        return pa.array(values)
    convert, kind = _CONVERTERS.get(dtype, (_as_string, pa.string()))
    out, bad = [], []
    for value, key in zip(values, keys, strict=True):
        try:
            out.append(convert(value))
        except (TypeError, ValueError, OverflowError):
            bad.append((key, value))
    if bad:
        shown = ", ".join(f"request {k[0]!r} row {k[1]}: {v!r:.30}" for k, v in bad[:3])
        raise DataError(
            f"{len(bad):,} labels of {system!r} cannot be read as its target {target!r} "
            f"({dtype}): {shown}{', ...' if len(bad) > 3 else ''}",
            hint=f"send {dtype} labels; a later label for the same request and row replaces "
            "a wrong one",
        )
    return pa.array(out, kind)


def _as_int(value: Any) -> int:
    if isinstance(value, str):
        value = float(value.strip()) if not value.strip().lstrip("+-").isdigit() else int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        value = int(value)
    if isinstance(value, int):  # bool included: True is 1
        if not -(2**63) <= value < 2**63:  # what an int64 target holds
            raise OverflowError(value)
        return int(value)
    raise TypeError(value)


def _as_float(value: Any) -> float:
    result = float(value.strip() if isinstance(value, str) else value)
    if not math.isfinite(result):
        raise ValueError(value)
    return result


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "1.0"):
            return True
        if text in ("false", "0", "0.0"):
            return False
    elif isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    raise ValueError(value)


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _as_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(value)
    return parse_time("label", datetime.fromisoformat(value))


_CONVERTERS: dict[str, tuple[Any, pa.DataType]] = {
    "int": (_as_int, pa.int64()),
    "float": (_as_float, pa.float64()),
    "bool": (_as_bool, pa.bool_()),
    "string": (_as_string, pa.string()),
    "category": (_as_string, pa.string()),
    "datetime": (_as_time, pa.timestamp("us", tz="UTC")),
}


def _slices(reference: SnapshotRecord | None, table: pa.Table) -> dict[str, str]:
    """The reference's slices that apply to the window's rows."""
    if reference is None or not reference.slices:
        return {}
    from regrow.data.snapshot import apply_slice

    frame = table.to_pandas()
    kept = {}
    for name, expr in reference.slices.items():
        try:
            apply_slice(frame, name, expr)
        except SliceError:
            continue
        kept[name] = expr
    return kept
