"""The prediction log's index and feedback labels (``catalog.predictions``), on SQLite and
PostgreSQL: files found by the time their rows span, labels upserted in bulk, one audit event
per feedback call, and doctor keeping logged files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from regrow.catalog import Catalog
from regrow.catalog.health import examine
from regrow.catalog.store import open_store
from regrow.errors import DataError, NotFound

from .conftest import Builder

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _file(catalog: Catalog, n: int, first: datetime, last: datetime, system: str = "churn") -> str:
    key = f"{n:x}" * 64
    catalog.predictions.add_file(
        system=system,
        hour=first.replace(minute=0, second=0, microsecond=0),
        artifact=key[:64],
        rows=10 * n,
        first_at=first,
        last_at=last,
        versions={"churn:v1": 10 * n},
    )
    return key[:64]


def test_files_are_found_by_the_time_their_rows_span(catalog: Catalog) -> None:
    a = _file(catalog, 1, T0 + timedelta(minutes=5), T0 + timedelta(minutes=20))
    b = _file(catalog, 2, T0 + timedelta(minutes=40), T0 + timedelta(minutes=59))
    c = _file(catalog, 3, T0 + timedelta(hours=1, minutes=1), T0 + timedelta(hours=1, minutes=2))
    _file(catalog, 4, T0, T0 + timedelta(minutes=1), system="other")
    files = catalog.predictions

    def keys(since: datetime | None = None, until: datetime | None = None) -> list[str]:
        return [f.artifact for f in files.files("churn", since=since, until=until)]

    assert keys() == [a, b, c]
    assert keys(T0 + timedelta(minutes=20)) == [a, b, c]  # last_at == since: overlaps
    assert keys(T0 + timedelta(minutes=21)) == [b, c]
    assert keys(until=T0 + timedelta(minutes=40)) == [a]  # first_at == until: does not
    assert keys(T0 + timedelta(minutes=21), T0 + timedelta(hours=1)) == [b]
    assert keys(T0 + timedelta(hours=2)) == []
    record = files.files("churn")[0]
    assert (record.rows, record.versions, record.hour) == (10, {"churn:v1": 10}, T0)
    assert record.first_at.tzinfo is not None
    assert files.span("churn") == (
        T0 + timedelta(minutes=5),
        T0 + timedelta(hours=1, minutes=2),
        60,
        3,
    )
    assert files.span("nothing") is None


def test_indexing_the_same_file_twice_is_a_no_op(catalog: Catalog) -> None:
    key = _file(catalog, 1, T0, T0)
    again = catalog.predictions.add_file(
        system="churn", hour=T0, artifact=key, rows=999, first_at=T0, last_at=T0, versions={}
    )
    assert again.rows == 10
    assert len(catalog.predictions.files("churn")) == 1
    assert catalog.predictions.artifacts() == {key}
    assert catalog.predictions.holds(key)
    assert not catalog.predictions.holds("e" * 64)
    assert catalog.integrity.referenced(key)


def test_a_later_label_replaces_an_earlier_one_in_one_audited_call(
    catalog: Catalog, build: Builder, raw: Engine, rows: object
) -> None:
    build.version("churn")
    sent = [("r1", 0, 1), ("r1", 1, "no"), ("r2", 0, 0.5), ("r1", 0, 0)]  # r1/0 twice: last wins
    assert catalog.predictions.add_feedback("churn", sent, actor="ana") == 3
    assert catalog.predictions.labels("churn", ["r1", "r2", "r9"]) == {
        ("r1", 0): 0,
        ("r1", 1): "no",
        ("r2", 0): 0.5,
    }
    assert catalog.predictions.add_feedback("churn", [("r2", 0, True)], actor="bo") == 1
    assert catalog.predictions.labels("churn", ["r2"]) == {("r2", 0): True}
    events = [e for e in catalog.audit_events() if e.action == "feedback.add"]
    assert [(e.actor, e.subject, e.payload["labels"]) for e in events] == [
        ("bo", "feedback:churn", 1),
        ("ana", "feedback:churn", 3),
    ]
    assert len(events[1].payload["digest"]) == 64
    assert rows(raw, "prediction_feedback") == 3  # type: ignore[operator]
    catalog.verify_audit()


def test_labels_keep_their_json_type(catalog: Catalog, build: Builder) -> None:
    build.version("churn")
    sent = [("a", 0, 1), ("b", 0, "1"), ("c", 0, 1.0), ("d", 0, False), ("e", 0, np.int64(3))]
    catalog.predictions.add_feedback("churn", sent)
    got = {r: v for (r, _), v in catalog.predictions.labels("churn", "abcde").items()}
    # JSON does not tell 1.0 from 1 (SQLite stores both as the number 1): the window coerces
    assert got == {"a": 1, "b": "1", "c": 1, "d": False, "e": 3}
    assert [type(got[k]) for k in "abde"] == [int, str, bool, int]


def test_many_labels_are_stored_and_read_in_bulk(catalog: Catalog, build: Builder) -> None:
    build.version("churn")
    sent = [(f"r{i}", i % 3, i % 2) for i in range(12_000)]
    assert catalog.predictions.add_feedback("churn", sent) == 12_000
    got = catalog.predictions.labels("churn", (f"r{i}" for i in range(12_000)))
    assert len(got) == 12_000
    assert got[("r11999", 11999 % 3)] == 1
    assert len([e for e in catalog.audit_events() if e.action == "feedback.add"]) == 1


@pytest.mark.parametrize(
    ("item", "match"),
    [
        (("r1", 0), "triple"),
        (("", 0, 1), "request id"),
        ((7, 0, 1), "request id"),
        (("r1", -1, 1), "row"),
        (("r1", True, 1), "row"),
        (("r1", 0, None), "label"),
        (("r1", 0, [1, 2]), "label"),
        (("r1", 0, float("nan")), "label"),
    ],
)
def test_a_malformed_label_is_named_and_nothing_is_stored(
    catalog: Catalog, build: Builder, item: tuple[object, ...], match: str
) -> None:
    build.version("churn")
    with pytest.raises(DataError, match=match):
        catalog.predictions.add_feedback("churn", [("ok", 0, 1), item])
    assert catalog.predictions.labels("churn", ["ok", "r1"]) == {}
    assert not [e for e in catalog.audit_events() if e.action == "feedback.add"]


def test_feedback_for_an_unknown_system_is_refused(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="system 'nope'"):
        catalog.predictions.add_feedback("nope", [("r1", 0, 1)])
    assert catalog.predictions.add_feedback("nope", []) == 0  # nothing to store: no event
    assert catalog.audit_events() == []


def test_doctor_keeps_logged_files(catalog: Catalog) -> None:
    store = open_store(f"memory://regrow-predictions-{id(catalog)}")
    key = store.put(b"logged rows")
    stray = store.put(b"nobody's")
    catalog.predictions.add_file(
        system="churn", hour=T0, artifact=key, rows=1, first_at=T0, last_at=T0, versions={}
    )
    later = datetime.now(UTC) + timedelta(days=30)
    report = examine(catalog, store, now=later)
    orphans = {p.subject for p in report.problems if p.kind == "orphan"}
    assert any(stray in s for s in orphans)
    assert not any(key in s for s in orphans)
